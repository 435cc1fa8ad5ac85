// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * What the programs do for one connection: {@code struct hold_value} in bpf/hold.h (40 bytes, host
 * order).
 *
 * @param flags {@link HoldMaps}' F_* bits
 * @param rcvNxt the ack number the XDP program answers with (the exported rcv_nxt)
 * @param tsVal the connection's TSval clock when exported (ms)
 * @param wakeFrom sequence number of the window probe the restored socket sends at repair off
 * @param wakeTo the number the TC program rewrites it to, so that the client accepts the window the
 *     probe carries
 * @param tsBaseNanos CLOCK_MONOTONIC time at which {@code tsVal} was read
 * @param deadlineNanos CLOCK_MONOTONIC time after which the programs stop holding
 */
public record HoldEntry(
    int flags,
    int rcvNxt,
    int tsVal,
    int wakeFrom,
    int wakeTo,
    long tsBaseNanos,
    long deadlineNanos) {
  static final int SIZE = 40;

  byte[] encode() {
    return ByteBuffer.allocate(SIZE)
        .order(ByteOrder.nativeOrder())
        .putInt(flags)
        .putInt(rcvNxt)
        .putInt(tsVal)
        .putInt(wakeFrom)
        .putInt(wakeTo)
        .putInt(0)
        .putLong(tsBaseNanos)
        .putLong(deadlineNanos)
        .array();
  }

  static HoldEntry decode(byte[] raw) {
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    return new HoldEntry(
        b.getInt(0),
        b.getInt(4),
        b.getInt(8),
        b.getInt(12),
        b.getInt(16),
        b.getLong(24),
        b.getLong(32));
  }
}
