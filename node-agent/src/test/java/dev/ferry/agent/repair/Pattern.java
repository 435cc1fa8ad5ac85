// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

/**
 * A reproducible byte stream per seed in which every position has its own value, so that a lost,
 * duplicated or reordered byte shows up as a mismatch at a known offset.
 */
public final class Pattern {
  private Pattern() {}

  public static byte at(long seed, long offset) {
    long x = seed * 0x9E3779B97F4A7C15L + offset;
    x ^= x >>> 33;
    x *= 0xff51afd7ed558ccdL;
    x ^= x >>> 33;
    return (byte) x;
  }

  public static byte[] bytes(long seed, long offset, int length) {
    byte[] out = new byte[length];
    for (int i = 0; i < length; i++) {
      out[i] = at(seed, offset + i);
    }
    return out;
  }

  /** -1 if {@code got} is exactly the first {@code got.length} bytes of the stream. */
  public static long firstMismatch(long seed, byte[] got) {
    for (int i = 0; i < got.length; i++) {
      if (got[i] != at(seed, i)) {
        return i;
      }
    }
    return -1;
  }
}
