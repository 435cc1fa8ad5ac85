// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Per-connection counters the programs keep: {@code struct hold_stats} in bpf/hold.h. */
public record HoldStats(
    long probesAnswered, long segmentsDropped, long windowsZeroed, long resets, long expired) {
  static final int SIZE = 40;
  static final HoldStats ZERO = new HoldStats(0, 0, 0, 0, 0);

  byte[] encode() {
    return ByteBuffer.allocate(SIZE)
        .order(ByteOrder.nativeOrder())
        .putLong(probesAnswered)
        .putLong(segmentsDropped)
        .putLong(windowsZeroed)
        .putLong(resets)
        .putLong(expired)
        .array();
  }

  static HoldStats decode(byte[] raw) {
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    return new HoldStats(b.getLong(0), b.getLong(8), b.getLong(16), b.getLong(24), b.getLong(32));
  }
}
