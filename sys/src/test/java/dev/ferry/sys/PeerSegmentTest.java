// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import org.junit.jupiter.api.Test;

class PeerSegmentTest {
  /** A segment carrying its own checksum sums to zero, as the receiving kernel checks it. */
  @Test
  void checksumMakesTheSegmentVerifyForBothFamilies() throws Exception {
    for (String[] pair :
        new String[][] {{"198.18.0.1", "198.18.0.100"}, {"fd66::1", "fd66::100"}}) {
      byte[] src = InetAddress.getByName(pair[0]).getAddress();
      byte[] dst = InetAddress.getByName(pair[1]).getAddress();
      byte[] segment = {
        (byte) 0x9d,
        0x78,
        0x1f,
        (byte) 0x90, // ports 40312 -> 8080
        0x12,
        0x34,
        0x56,
        0x78, // seq
        (byte) 0xfe,
        (byte) 0xdc,
        (byte) 0xba,
        (byte) 0x98, // ack
        0x50,
        0x11,
        (byte) 0xff,
        (byte) 0xff, // data offset 5, FIN|ACK, window
        0,
        0,
        0,
        0 // checksum, urgent pointer
      };
      int sum = PeerSegment.checksum(src, dst, segment);
      segment[16] = (byte) (sum >> 8);
      segment[17] = (byte) sum;
      assertThat(PeerSegment.checksum(src, dst, segment)).as(pair[0]).isEqualTo(0);
    }
  }
}
