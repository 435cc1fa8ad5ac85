// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The options a SYN exchange negotiates, given back to a repaired socket with {@code
 * TCP_REPAIR_OPTIONS} as an array of {@code struct tcp_repair_opt {__u32 opt_code; __u32 opt_val;}}
 * (linux/tcp.h).
 *
 * @param mssClamp the peer's MSS; without it the kernel falls back to 536
 * @param windowScaling whether both sides announced a scale
 * @param sndWscale shift for windows the peer sends
 * @param rcvWscale shift for windows we send
 */
public record RepairOptions(
    int mssClamp,
    boolean windowScaling,
    int sndWscale,
    int rcvWscale,
    boolean sack,
    boolean timestamps) {

  // TCPOPT_* from include/net/tcp.h.
  private static final int TCPOPT_MAXSEG = 2;
  private static final int TCPOPT_WINDOW = 3;
  private static final int TCPOPT_SACK_PERM = 4;
  private static final int TCPOPT_TIMESTAMP = 8;

  byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(4 * 8).order(ByteOrder.nativeOrder());
    b.putInt(TCPOPT_MAXSEG).putInt(mssClamp);
    if (windowScaling) {
      b.putInt(TCPOPT_WINDOW).putInt(sndWscale | rcvWscale << 16);
    }
    if (sack) {
      b.putInt(TCPOPT_SACK_PERM).putInt(0);
    }
    if (timestamps) {
      // The value must be 0: a non-zero one is EINVAL. The clock is set with TCP_TIMESTAMP.
      b.putInt(TCPOPT_TIMESTAMP).putInt(0);
    }
    byte[] out = new byte[b.position()];
    b.flip().get(out);
    return out;
  }
}
