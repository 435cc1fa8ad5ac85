// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.tunnel;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.tunnel.TunnelEntry.Role;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** struct tunnel_entry's layout (bpf/tunnel.h), as the programs read it. */
class TunnelEntryTest {
  @Test
  void encodesAtTheOffsetsTheProgramsRead() throws Exception {
    TunnelEntry e =
        TunnelEntry.of(
            Role.SOURCE, ip("198.18.41.2"), ip("198.18.41.3"), Optional.of(ip("10.0.1.1")), 7, 99L);
    byte[] raw = e.encode();
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());

    assertThat(raw).hasSize(64);
    assertThat(b.getInt(0)).isEqualTo(1); // TUNNEL_SOURCE
    assertThat(new byte[] {raw[4], raw[5], raw[6], raw[7]})
        .as("addresses in network order")
        .isEqualTo(new byte[] {(byte) 198, 18, 41, 2});
    assertThat(raw[11]).isEqualTo((byte) 3);
    assertThat(raw[12]).isEqualTo((byte) 10);
    assertThat(b.getInt(16)).as("ifindex").isEqualTo(7);
    assertThat(b.getLong(24)).as("deadline_ns").isEqualTo(99L);
    assertThat(TunnelEntry.decode(raw)).isEqualTo(e);
  }

  @Test
  void aGatewayOfZeroMeansTheClientsAreOnTheLink() throws Exception {
    TunnelEntry e =
        TunnelEntry.of(Role.TARGET, ip("198.18.41.3"), ip("198.18.41.2"), Optional.empty(), 2, 5L);
    assertThat(e.encode()[12]).isZero();
    assertThat(TunnelEntry.decode(e.encode()).gateway()).isEmpty();
    assertThat(TunnelEntry.decode(e.encode()).switched()).isFalse();
  }

  private static Inet4Address ip(String s) throws Exception {
    return (Inet4Address) InetAddress.getByName(s);
  }
}
