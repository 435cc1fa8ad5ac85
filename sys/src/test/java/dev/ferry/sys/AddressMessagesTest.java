// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The netlink requests and the announcement packets have the kernel's and the RFCs' layouts. */
class AddressMessagesTest {
  private static final byte[] MAC = HexFormat.ofDelimiter(":").parseHex("02:00:5e:00:53:01");

  @Test
  void newAddrIsHeaderIfaddrmsgThenLocalAndAddressAttributes() throws Exception {
    InetAddress ip = InetAddress.getByName("198.18.0.100");
    byte[] raw =
        RtNetlink.addressRequest(
            RtNetlink.RTM_NEWADDR, RtNetlink.NLM_F_REQUEST | RtNetlink.NLM_F_ACK, 7, 3, ip, 24);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(raw).hasSize(16 + 8 + 8 + 8);
    assertThat(b.getInt(0)).isEqualTo(raw.length);
    assertThat(b.getShort(4)).isEqualTo((short) 20);
    assertThat(b.getShort(6)).isEqualTo((short) 0x5);
    assertThat(b.getInt(8)).isEqualTo(7);
    assertThat(new byte[] {raw[16], raw[17], raw[18], raw[19]})
        .containsExactly(2, 24, 0, 0); // AF_INET, /24, no flags, universe scope
    assertThat(b.getInt(20)).isEqualTo(3);
    assertThat(b.getShort(24)).isEqualTo((short) 8); // rta_len
    assertThat(b.getShort(26)).isEqualTo((short) 2); // IFA_LOCAL
    assertThat(slice(raw, 28, 4)).containsExactly(ip.getAddress());
    assertThat(b.getShort(34)).isEqualTo((short) 1); // IFA_ADDRESS
    assertThat(slice(raw, 36, 4)).containsExactly(ip.getAddress());
  }

  @Test
  void ipv6AddressSkipsDuplicateAddressDetection() throws Exception {
    byte[] raw =
        RtNetlink.addressRequest(
            RtNetlink.RTM_NEWADDR, 1, 1, 3, InetAddress.getByName("fd66::100"), 64);
    assertThat(raw).hasSize(16 + 8 + 20 + 20);
    assertThat(new byte[] {raw[16], raw[17], raw[18]}).containsExactly(10, 64, 0x02);
  }

  @Test
  void newRouteIsHeaderRtmsgThenDstAndOif() throws Exception {
    InetAddress ip = InetAddress.getByName("198.18.0.100");
    int flags =
        RtNetlink.NLM_F_REQUEST
            | RtNetlink.NLM_F_ACK
            | RtNetlink.NLM_F_CREATE
            | RtNetlink.NLM_F_EXCL;
    byte[] raw = RtNetlink.routeRequest(RtNetlink.RTM_NEWROUTE, flags, 7, 3, ip, 32);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(raw).hasSize(16 + 12 + 8 + 8);
    assertThat(b.getInt(0)).isEqualTo(raw.length);
    assertThat(b.getShort(4)).isEqualTo((short) 24); // RTM_NEWROUTE
    assertThat(b.getShort(6)).isEqualTo((short) 0x605);
    assertThat(b.getInt(8)).isEqualTo(7);
    // AF_INET, dst /32, no src, tos 0, main table, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST
    assertThat(slice(raw, 16, 8)).containsExactly(2, 32, 0, 0, 254, 4, 253, 1);
    assertThat(b.getInt(24)).isZero(); // rtm_flags
    assertThat(b.getShort(28)).isEqualTo((short) 8); // rta_len
    assertThat(b.getShort(30)).isEqualTo((short) 1); // RTA_DST
    assertThat(slice(raw, 32, 4)).containsExactly(ip.getAddress());
    assertThat(b.getShort(36)).isEqualTo((short) 8);
    assertThat(b.getShort(38)).isEqualTo((short) 4); // RTA_OIF
    assertThat(b.getInt(40)).isEqualTo(3);
  }

  @Test
  void ipv6RouteCarriesSixteenAddressBytes() throws Exception {
    InetAddress ip = InetAddress.getByName("fd66::100");
    byte[] raw = RtNetlink.routeRequest(RtNetlink.RTM_NEWROUTE, 1, 1, 5, ip, 128);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(raw).hasSize(16 + 12 + 20 + 8);
    assertThat(new byte[] {raw[16], raw[17]}).containsExactly(10, (byte) 128);
    assertThat(b.getShort(28)).isEqualTo((short) 20);
    assertThat(slice(raw, 32, 16)).containsExactly(ip.getAddress());
    assertThat(b.getShort(50)).isEqualTo((short) 4); // RTA_OIF
    assertThat(b.getInt(52)).isEqualTo(5);
  }

  @Test
  void delRouteLeavesProtocolScopeAndTypeOpenSoAnyMatchingRouteGoes() throws Exception {
    byte[] raw =
        RtNetlink.routeRequest(
            RtNetlink.RTM_DELROUTE,
            RtNetlink.NLM_F_REQUEST | RtNetlink.NLM_F_ACK,
            2,
            3,
            InetAddress.getByName("198.18.0.100"),
            32);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(b.getShort(4)).isEqualTo((short) 25); // RTM_DELROUTE
    // RTPROT_UNSPEC, RT_SCOPE_NOWHERE, RTN_UNSPEC: what `ip route del` sends
    assertThat(slice(raw, 16, 8)).containsExactly(2, 32, 0, 0, 254, 0, (byte) 255, 0);
    assertThat(b.getInt(40)).isEqualTo(3);
  }

  @Test
  void aPrefixLongerThanTheAddressIsRefused() throws Exception {
    InetAddress ip = InetAddress.getByName("198.18.0.100");
    assertThatThrownBy(() -> RtNetlink.routeRequest(RtNetlink.RTM_NEWROUTE, 1, 1, 1, ip, 33))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("33");
  }

  @Test
  void gratuitousArpHasTheAddressAsSenderAndTarget() throws Exception {
    Inet4Address ip = (Inet4Address) InetAddress.getByName("198.18.0.100");
    byte[] raw = Announcer.arpPayload(MAC, ip);
    assertThat(HexFormat.of().formatHex(raw))
        .isEqualTo(
            "0001"
                + "0800"
                + "06"
                + "04"
                + "0001"
                + "02005e005301"
                + "c6120064"
                + "000000000000"
                + "c6120064");
  }

  @Test
  void advertisementSetsOnlyOverrideAndCarriesTargetLinkLayerAddress() throws Exception {
    Inet6Address ip = (Inet6Address) InetAddress.getByName("fd66::100");
    byte[] raw = Announcer.advertisement(MAC, ip);
    assertThat(raw).hasSize(32);
    assertThat(raw[0] & 0xff).isEqualTo(136);
    assertThat(raw[4]).isEqualTo((byte) 0x20);
    assertThat(slice(raw, 8, 16)).containsExactly(ip.getAddress());
    assertThat(new byte[] {raw[24], raw[25]}).containsExactly(2, 1);
    assertThat(slice(raw, 26, 6)).containsExactly(MAC);
  }

  @Test
  void advertisementPacketIsAWholeIpv6PacketToAllNodesWithHopLimit255AndAValidChecksum()
      throws Exception {
    Inet6Address target = (Inet6Address) InetAddress.getByName("fd66::100");
    byte[] source = InetAddress.getByName("fe80::1:2").getAddress();
    byte[] raw = Announcer.advertisementPacket(MAC, source, target);
    ByteBuffer b = ByteBuffer.wrap(raw);
    assertThat(raw).hasSize(40 + 32);
    assertThat(b.getInt(0)).isEqualTo(0x60000000); // version 6, no class, no flow label
    assertThat(b.getShort(4)).isEqualTo((short) 32); // payload length
    assertThat(raw[6]).isEqualTo((byte) 58); // next header: ICMPv6
    assertThat(raw[7]).isEqualTo((byte) 255); // hop limit
    assertThat(slice(raw, 8, 16)).containsExactly(source);
    assertThat(slice(raw, 24, 16)).containsExactly(InetAddress.getByName("ff02::1").getAddress());
    byte[] icmp = slice(raw, 40, 32);
    assertThat(icmp[0] & 0xff).isEqualTo(136);
    assertThat(slice(icmp, 8, 16)).containsExactly(target.getAddress());
    assertThat(new byte[] {icmp[2], icmp[3]}).as("checksum filled in").isNotEqualTo(new byte[2]);
    // A receiver sums pseudo-header and message, checksum included: all ones means valid.
    assertThat(Announcer.checksum(source, slice(raw, 24, 16), icmp)).isZero();
  }

  @Test
  void checksumIsTheComplementOfTheFoldedOnesComplementSum() {
    byte[] zero = new byte[16];
    // Pseudo-header words: length 2, next header 58; message 0x0001: 61 = 0x3d.
    assertThat(Announcer.checksum(zero, zero, new byte[] {0, 1})).isEqualTo(0xffc2);
    // 4 + 58 + 0xffff + 0xffff = 0x2003c, folded 0x3e: the carries wrap around.
    assertThat(Announcer.checksum(zero, zero, new byte[] {-1, -1, -1, -1})).isEqualTo(0xffc1);
  }

  @Test
  void advertisementLeavesFromTheInterfacesLinkLocalAddressElseAnyOtherElseTheTarget()
      throws Exception {
    Inet6Address target = (Inet6Address) InetAddress.getByName("fd66::100");
    RtNetlink.Assigned v4 = new RtNetlink.Assigned(InetAddress.getByName("10.0.0.2"), 24, 0);
    RtNetlink.Assigned global = new RtNetlink.Assigned(InetAddress.getByName("fd66::2"), 64, 0);
    RtNetlink.Assigned link = new RtNetlink.Assigned(InetAddress.getByName("fe80::2"), 64, 253);
    assertThat(Announcer.advertisementSource(List.of(v4, global, link), target))
        .containsExactly(InetAddress.getByName("fe80::2").getAddress());
    assertThat(Announcer.advertisementSource(List.of(v4, global), target))
        .containsExactly(InetAddress.getByName("fd66::2").getAddress());
    assertThat(Announcer.advertisementSource(List.of(v4), target))
        .containsExactly(target.getAddress());
  }

  @Test
  void proxyNeighbourIsHeaderNdmsgWithNtfProxyThenDst() throws Exception {
    InetAddress ip = InetAddress.getByName("fd66::100");
    byte[] raw =
        RtNetlink.proxyNeighbourRequest(
            RtNetlink.RTM_NEWNEIGH, RtNetlink.NLM_F_REQUEST | RtNetlink.NLM_F_ACK, 9, 4, ip);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(raw).hasSize(16 + 12 + 20);
    assertThat(b.getInt(0)).isEqualTo(raw.length);
    assertThat(b.getShort(4)).isEqualTo((short) 28); // RTM_NEWNEIGH
    assertThat(raw[16]).isEqualTo((byte) 10); // AF_INET6
    assertThat(b.getInt(20)).isEqualTo(4); // ndm_ifindex
    assertThat(b.getShort(24)).isEqualTo((short) 0x80); // NUD_PERMANENT
    assertThat(raw[26]).isEqualTo((byte) 0x08); // NTF_PROXY
    assertThat(b.getShort(28)).isEqualTo((short) 20); // rta_len
    assertThat(b.getShort(30)).isEqualTo((short) 1); // NDA_DST
    assertThat(slice(raw, 32, 16)).containsExactly(ip.getAddress());
  }

  @Test
  void anAddressCoversTheAddressesOfItsPrefixOnly() throws Exception {
    RtNetlink.Assigned eni = new RtNetlink.Assigned(InetAddress.getByName("10.0.1.5"), 24, 0);
    assertThat(eni.covers(InetAddress.getByName("10.0.1.100"))).isTrue();
    assertThat(eni.covers(InetAddress.getByName("10.0.2.100"))).isFalse();
    assertThat(eni.covers(InetAddress.getByName("fd66::100"))).isFalse();
    RtNetlink.Assigned v6 = new RtNetlink.Assigned(InetAddress.getByName("fd66::2"), 64, 0);
    assertThat(v6.covers(InetAddress.getByName("fd66::100"))).isTrue();
    assertThat(v6.covers(InetAddress.getByName("fd67::100"))).isFalse();
  }

  @Test
  void sockaddrLlIsTwentyBytesWithProtocolInNetworkOrder() {
    byte[] raw = Announcer.linkLayerAddress(5, 0x0806, MAC);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(raw).hasSize(20);
    assertThat(b.getShort(0)).isEqualTo((short) 17);
    assertThat(new byte[] {raw[2], raw[3]}).containsExactly(0x08, 0x06);
    assertThat(b.getInt(4)).isEqualTo(5);
    assertThat(raw[11]).isEqualTo((byte) 6);
    assertThat(slice(raw, 12, 6)).containsExactly(MAC);
  }

  private static byte[] slice(byte[] raw, int from, int len) {
    byte[] out = new byte[len];
    System.arraycopy(raw, from, out, 0, len);
    return out;
  }
}
