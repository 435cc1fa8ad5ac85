// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * An application state of announced length, filled as its bytes arrive. Memory is taken as the
 * bytes come, never at the announced size up front: a peer that announces 256 MiB and sends nothing
 * costs 1 MiB at most. It grows by doubling, up to exactly the announced length, so that a state
 * that arrives whole is returned without a final copy.
 */
public final class StateBuffer {
  private static final int FIRST = 1 << 20;

  private final int length;
  private byte[] bytes;
  private int filled;

  /**
   * @param length the announced length, at most {@code Integer.MAX_VALUE - 8} (what one Java array
   *     holds; callers refuse larger states first)
   */
  public StateBuffer(long length) {
    if (length < 0 || length > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("a state of " + length + " bytes cannot be held");
    }
    this.length = (int) length;
    this.bytes = new byte[Math.min(this.length, FIRST)];
  }

  /** The length announced. */
  public int length() {
    return length;
  }

  /** How many bytes have arrived. */
  public int filled() {
    return filled;
  }

  /** How many bytes are still to come. */
  public int remaining() {
    return length - filled;
  }

  public boolean whole() {
    return filled == length;
  }

  /** Appends {@code chunk}'s remaining bytes; the caller has checked they fit. */
  public void put(ByteBuffer chunk) {
    int n = chunk.remaining();
    ensure(n);
    chunk.get(bytes, filled, n);
    filled += n;
  }

  /** Appends {@code data[off..off+n)}; the caller has checked they fit. */
  public void put(byte[] data, int off, int n) {
    ensure(n);
    System.arraycopy(data, off, bytes, filled, n);
    filled += n;
  }

  /** Room for {@code n} more bytes, as a window to write them into at {@link #filled()}. */
  public byte[] room(int n) {
    ensure(n);
    return bytes;
  }

  /** Counts {@code n} bytes written through {@link #room}. */
  public void advance(int n) {
    filled += n;
  }

  /** The whole state; only once {@link #whole()}. */
  public byte[] bytes() {
    if (!whole()) {
      throw new IllegalStateException(filled + " of " + length + " bytes have arrived");
    }
    return bytes.length == length ? bytes : Arrays.copyOf(bytes, length);
  }

  private void ensure(int n) {
    if (n > length - filled) {
      throw new IllegalArgumentException(
          (filled + n) + " bytes do not fit a state announced as " + length);
    }
    if (filled + n > bytes.length) {
      long grown = Math.max(2L * bytes.length, (long) filled + n);
      bytes = Arrays.copyOf(bytes, (int) Math.min(length, grown));
    }
  }
}
