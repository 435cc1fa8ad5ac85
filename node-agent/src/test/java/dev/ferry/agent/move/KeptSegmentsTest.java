// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.move.KeptSegments.Segment;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class KeptSegmentsTest {
  private static final int FROM = 1_000;

  private static Segment seg(int seq, String text) {
    return new Segment(seq, text.getBytes(StandardCharsets.US_ASCII));
  }

  private static String after(int from, int max, Segment... segments) {
    return new String(KeptSegments.after(from, List.of(segments), max), StandardCharsets.US_ASCII);
  }

  @Test
  void segmentsInArrivalOrderMakeTheStream() {
    assertThat(after(FROM, 100, seg(FROM, "abc"), seg(FROM + 3, "def"))).isEqualTo("abcdef");
  }

  @Test
  void reorderedDuplicatedAndOverlappingSegmentsGiveEachByteOnce() {
    assertThat(
            after(
                FROM,
                100,
                seg(FROM + 3, "def"),
                seg(FROM, "abc"),
                seg(FROM, "abc"), // a retransmission
                seg(FROM + 2, "cdefg"))) // a repacketised one, longer
        .isEqualTo("abcdefg");
  }

  @Test
  void theFirstGapEndsTheStream() {
    assertThat(after(FROM, 100, seg(FROM, "abc"), seg(FROM + 5, "fgh"))).isEqualTo("abc");
    assertThat(after(FROM, 100, seg(FROM + 1, "bcd"))).as("nothing at rcv_nxt").isEmpty();
  }

  @Test
  void bytesTheSocketHadAlreadyAreLeftOut() {
    assertThat(after(FROM, 100, seg(FROM - 2, "xyabc"), seg(FROM - 10, "old"))).isEqualTo("abc");
  }

  @Test
  void sequenceNumbersWrapAround() {
    int from = -2; // 0xFFFFFFFE
    assertThat(after(from, 100, seg(0, "cd"), seg(from, "ab"), seg(2, "e"))).isEqualTo("abcde");
  }

  @Test
  void noMoreThanTheWindowAllowed() {
    assertThat(after(FROM, 4, seg(FROM, "abc"), seg(FROM + 3, "def"))).isEqualTo("abcd");
    assertThat(after(FROM, 0, seg(FROM, "abc"))).isEmpty();
  }
}
