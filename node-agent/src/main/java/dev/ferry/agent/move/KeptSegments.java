// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The segments a held client sent, as the hold kept them (in arrival order, retransmissions and
 * overlaps included), put back into the byte stream that follows a given sequence number.
 */
public final class KeptSegments {
  /** One kept segment: its first byte's sequence number and its payload. */
  public record Segment(int seq, byte[] data) {}

  private KeptSegments() {}

  /**
   * The bytes that follow {@code from} without a gap, at most {@code max} of them. A segment that
   * begins before {@code from} gives only its part after it; the first gap ends the stream, since a
   * receive queue takes only bytes in order (the client sends what is missing again, and what came
   * after it with it). Sequence numbers wrap: every distance is taken modulo 2^32, and a segment
   * more than 2^31 away from {@code from} counts as before it.
   */
  public static byte[] after(int from, List<Segment> segments, int max) {
    List<Segment> sorted = new ArrayList<>(segments);
    sorted.sort(Comparator.comparingInt(s -> s.seq() - from));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    long end = 0; // bytes after `from` the stream has so far
    for (Segment s : sorted) {
      long offset = s.seq() - from; // negative: begins before `from`
      if (offset > end || end >= max) {
        break;
      }
      long skip = end - offset;
      if (skip >= s.data().length) {
        continue; // all of it is in the stream already
      }
      int n = (int) Math.min(s.data().length - skip, max - end);
      out.write(s.data(), (int) skip, n);
      end += n;
    }
    return out.toByteArray();
  }
}
