// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Tells the LAN that an address now lives behind this interface, so neighbours repoint their ARP or
 * neighbour cache entry at once instead of after it goes stale.
 *
 * <ul>
 *   <li>IPv4: a gratuitous ARP request (sender and target IP both the address, RFC 5227 §3) to the
 *       broadcast MAC through an AF_PACKET SOCK_DGRAM socket. Linux accepts it for an existing
 *       entry even within the entry's {@code locktime}, because it is gratuitous (arp_is_garp in
 *       net/ipv4/arp.c); {@code arp_accept} only decides whether a neighbour without an entry
 *       creates one.
 *   <li>IPv6: an unsolicited neighbour advertisement (RFC 4861 §7.2.6) to ff02::1 with the Override
 *       flag and a target link-layer address option, built whole (IPv6 header with hop limit 255,
 *       ICMPv6 checksum) and sent through an AF_PACKET SOCK_DGRAM socket to 33:33:00:00:00:01, from
 *       the interface's link-local address. Linux replaces the link-layer address of an existing
 *       entry for the target when the NA has Override set (ndisc_recv_na, NEIGH_UPDATE_F_OVERRIDE)
 *       and marks it STALE: the neighbour's next packet goes to the new MAC, and so does its
 *       reachability probe, a unicast solicitation.
 * </ul>
 *
 * <p>Runs in the calling thread's network namespace. Neither needs the address to be in it: a node
 * that only routes the address to a pod (the VPC CNI's wiring: the pod holds it) announces it for
 * the pod. An IPv6 raw socket could not, bound as it must be to a source address the node does not
 * hold (EADDRNOTAVAIL).
 */
public final class Announcer {
  private static final byte[] BROADCAST_MAC = {-1, -1, -1, -1, -1, -1};

  /** ff02::1, all nodes on the link. */
  private static final byte[] ALL_NODES = {
    (byte) 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
  };

  /** ff02::1 mapped to Ethernet (RFC 2464 §7): 33:33, then the address's last four bytes. */
  private static final byte[] ALL_NODES_MAC = {0x33, 0x33, 0, 0, 0, 1};

  private static final int ETH_P_IPV6 = 0x86DD;
  private static final int ARPHRD_ETHER = 1;
  private static final int ARPOP_REQUEST = 1;
  private static final int ETH_P_IP = 0x0800;
  private static final int ND_NEIGHBOR_ADVERT = 136;
  private static final int ND_NA_FLAG_OVERRIDE = 0x20;
  private static final int ND_OPT_TARGET_LINKADDR = 2;

  private Announcer() {}

  /** Sends one announcement of {@code address} out of {@code ifname}, with the interface's MAC. */
  public static void announce(String ifname, InetAddress address) throws SyscallException {
    byte[] mac;
    try (RtNetlink rt = RtNetlink.open()) {
      mac = rt.hardwareAddress(ifname);
    }
    if (mac.length != 6) {
      throw new SyscallException(
          "announce(" + address.getHostAddress() + " dev " + ifname + ")",
          Errno.EOPNOTSUPP,
          "not an Ethernet interface (" + mac.length + "-byte link-layer address)");
    }
    int index = Bpf.interfaceIndex(ifname);
    if (address instanceof Inet4Address v4) {
      gratuitousArp(ifname, index, mac, v4);
    } else {
      unsolicitedAdvertisement(ifname, index, mac, (Inet6Address) address);
    }
  }

  private static void gratuitousArp(String ifname, int index, byte[] mac, Inet4Address address)
      throws SyscallException {
    String what = "sendto(gratuitous ARP for " + address.getHostAddress() + " dev " + ifname + ")";
    try (SendOnlyPacketSocket socket = new SendOnlyPacketSocket()) {
      socket.send(
          arpPayload(mac, address), linkLayerAddress(index, Native.ETH_P_ARP, BROADCAST_MAC), what);
    }
  }

  private static void unsolicitedAdvertisement(
      String ifname, int index, byte[] mac, Inet6Address target) throws SyscallException {
    byte[] source;
    try (RtNetlink rt = RtNetlink.open()) {
      source = advertisementSource(rt.addresses(ifname), target);
    }
    String what =
        "sendto(neighbour advertisement for " + target.getHostAddress() + " dev " + ifname + ")";
    try (SendOnlyPacketSocket socket = new SendOnlyPacketSocket()) {
      socket.send(
          advertisementPacket(mac, source, target),
          linkLayerAddress(index, ETH_P_IPV6, ALL_NODES_MAC),
          what);
    }
  }

  /**
   * The advertisement's IPv6 source: "an address assigned to the interface from which the
   * advertisement is sent" (RFC 4861 §4.4), its link-local one by preference, as Linux's own proxy
   * answers have; the target itself when the interface has no IPv6 address (a receiver checks no
   * source, RFC 4861 §7.1.2).
   */
  static byte[] advertisementSource(List<RtNetlink.Assigned> onInterface, Inet6Address target) {
    byte[] any = null;
    for (RtNetlink.Assigned a : onInterface) {
      if (a.address() instanceof Inet6Address v6) {
        if (v6.isLinkLocalAddress()) {
          return v6.getAddress();
        }
        if (any == null) {
          any = v6.getAddress();
        }
      }
    }
    return any != null ? any : target.getAddress();
  }

  /**
   * The whole IPv6 packet of an unsolicited neighbour advertisement to ff02::1: the fixed header
   * (RFC 8200 §3) with hop limit 255 (RFC 4861 §7.1.2: receivers drop any other), then the {@link
   * #advertisement} with its checksum filled in over the pseudo-header (RFC 8200 §8.1).
   */
  static byte[] advertisementPacket(byte[] mac, byte[] source, Inet6Address target) {
    byte[] icmp = advertisement(mac, target);
    int sum = checksum(source, ALL_NODES, icmp);
    icmp[2] = (byte) (sum >>> 8);
    icmp[3] = (byte) sum;
    return ByteBuffer.allocate(40 + icmp.length)
        .putInt(6 << 28) // version 6, traffic class 0, flow label 0
        .putShort((short) icmp.length) // payload length
        .put((byte) Native.IPPROTO_ICMPV6) // next header
        .put((byte) 255) // hop limit
        .put(source)
        .put(ALL_NODES)
        .put(icmp)
        .array();
  }

  /**
   * The ICMPv6 checksum: the one's complement of the one's complement sum of the pseudo-header
   * (source, destination, upper-layer length, next header) and the message, with the message's
   * checksum field zero.
   */
  static int checksum(byte[] source, byte[] destination, byte[] message) {
    ByteBuffer pseudo =
        ByteBuffer.allocate(40 + message.length + (message.length & 1))
            .put(source)
            .put(destination)
            .putInt(message.length)
            .put(new byte[3])
            .put((byte) Native.IPPROTO_ICMPV6)
            .put(message);
    long sum = 0;
    for (int i = 0; i < pseudo.capacity(); i += 2) {
      sum += pseudo.getShort(i) & 0xffff;
    }
    while ((sum >>> 16) != 0) {
      sum = (sum & 0xffff) + (sum >>> 16);
    }
    return (int) (~sum & 0xffff);
  }

  /**
   * The ARP packet of a gratuitous ARP request (RFC 826 layout, network byte order): sender and
   * target protocol address both {@code address}, target hardware address zero.
   */
  static byte[] arpPayload(byte[] mac, Inet4Address address) {
    byte[] ip = address.getAddress();
    return ByteBuffer.allocate(28)
        .putShort((short) ARPHRD_ETHER) // ar_hrd
        .putShort((short) ETH_P_IP) // ar_pro
        .put((byte) 6) // ar_hln
        .put((byte) 4) // ar_pln
        .putShort((short) ARPOP_REQUEST) // ar_op
        .put(mac) // ar_sha
        .put(ip) // ar_sip
        .put(new byte[6]) // ar_tha
        .put(ip) // ar_tip
        .array();
  }

  /**
   * An unsolicited neighbour advertisement (RFC 4861 §4.4): type, code, checksum (left to the
   * kernel), flags with only Override set, the target, and a target link-layer address option.
   */
  static byte[] advertisement(byte[] mac, Inet6Address target) {
    return ByteBuffer.allocate(32)
        .put((byte) ND_NEIGHBOR_ADVERT)
        .put((byte) 0) // code
        .putShort((short) 0) // checksum
        .put((byte) ND_NA_FLAG_OVERRIDE) // R=0 S=0 O=1, then 29 reserved bits
        .put(new byte[3])
        .put(target.getAddress())
        .put((byte) ND_OPT_TARGET_LINKADDR)
        .put((byte) 1) // option length in units of 8 bytes
        .put(mac)
        .array();
  }

  /**
   * struct sockaddr_ll (linux/if_packet.h, 20 bytes): family, protocol (network order), ifindex,
   * hatype, pkttype, halen, addr[8].
   */
  static byte[] linkLayerAddress(int ifindex, int protocol, byte[] mac) {
    ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.nativeOrder());
    b.putShort((short) Native.AF_PACKET);
    b.order(ByteOrder.BIG_ENDIAN).putShort((short) protocol).order(ByteOrder.nativeOrder());
    b.putInt(ifindex);
    b.putShort((short) 0); // sll_hatype: only meaningful on receive
    b.put((byte) 0); // sll_pkttype: likewise
    b.put((byte) mac.length);
    b.put(mac);
    return b.array();
  }
}
