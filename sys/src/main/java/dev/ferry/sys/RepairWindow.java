// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * {@code struct tcp_repair_window} (linux/tcp.h): five __u32, 20 bytes. The window scale is not in
 * it: that travels in {@link RepairOptions}.
 */
public record RepairWindow(int sndWl1, int sndWnd, int maxWindow, int rcvWnd, int rcvWup) {
  static final int SIZE = 20;

  /** This window with the peer's offer closed: the socket may send no new data. */
  public RepairWindow withSendWindowClosed() {
    return new RepairWindow(sndWl1, 0, maxWindow, rcvWnd, rcvWup);
  }

  static RepairWindow parse(byte[] raw) {
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    return new RepairWindow(b.getInt(0), b.getInt(4), b.getInt(8), b.getInt(12), b.getInt(16));
  }

  byte[] encode() {
    return ByteBuffer.allocate(SIZE)
        .order(ByteOrder.nativeOrder())
        .putInt(sndWl1)
        .putInt(sndWnd)
        .putInt(maxWindow)
        .putInt(rcvWnd)
        .putInt(rcvWup)
        .array();
  }
}
