// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

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
 *   <li>IPv6: an unsolicited neighbour advertisement (RFC 4861 §7.2.6) to ff02::1 with the override
 *       flag and a target link-layer address option, from the address itself, with hop limit 255
 *       (receivers drop any other).
 * </ul>
 *
 * <p>Runs in the calling thread's network namespace; the address must already be on the interface.
 */
public final class Announcer {
  private static final byte[] BROADCAST_MAC = {-1, -1, -1, -1, -1, -1};
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
    // Protocol 0: the socket only sends, so no incoming frame is ever queued on it.
    int fd =
        check(
            () -> Native.LIBC.socket(Native.AF_PACKET, Native.SOCK_DGRAM | Native.SOCK_CLOEXEC, 0),
            () -> "socket(AF_PACKET, SOCK_DGRAM)");
    try {
      byte[] frame = arpPayload(mac, address);
      byte[] to = linkLayerAddress(index, Native.ETH_P_ARP, BROADCAST_MAC);
      check(() -> Native.LIBC.sendto(fd, frame, frame.length, 0, to, to.length), () -> what);
    } finally {
      Native.LIBC.close(fd);
    }
  }

  private static void unsolicitedAdvertisement(
      String ifname, int index, byte[] mac, Inet6Address address) throws SyscallException {
    String target = address.getHostAddress();
    int fd =
        check(
            () ->
                Native.LIBC.socket(
                    Native.AF_INET6, Native.SOCK_RAW | Native.SOCK_CLOEXEC, Native.IPPROTO_ICMPV6),
            () -> "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)");
    try {
      byte[] self = SockAddr.encode(new InetSocketAddress(address, 0));
      check(
          () -> Native.LIBC.bind(fd, self, self.length),
          () -> "bind(fd=" + fd + ", " + target + ")");
      setInt(fd, Native.IPV6_MULTICAST_HOPS, 255, "IPV6_MULTICAST_HOPS");
      setInt(fd, Native.IPV6_MULTICAST_IF, index, "IPV6_MULTICAST_IF");
      byte[] message = advertisement(mac, address);
      byte[] to = SockAddr.encode(new InetSocketAddress(allNodes(index), 0));
      // The kernel fills in the ICMPv6 checksum on IPPROTO_ICMPV6 raw sockets.
      check(
          () -> Native.LIBC.sendto(fd, message, message.length, 0, to, to.length),
          () -> "sendto(neighbour advertisement for " + target + " dev " + ifname + ")");
    } finally {
      Native.LIBC.close(fd);
    }
  }

  private static void setInt(int fd, int option, int value, String name) throws SyscallException {
    byte[] v = ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(value).array();
    check(
        () -> Native.LIBC.setsockopt(fd, Native.IPPROTO_IPV6, option, v, v.length),
        () -> "setsockopt(fd=" + fd + ", " + name + ")");
  }

  private static Inet6Address allNodes(int index) {
    byte[] ff02 = new byte[16];
    ff02[0] = (byte) 0xff;
    ff02[1] = 0x02;
    ff02[15] = 1;
    try {
      return Inet6Address.getByAddress(null, ff02, index);
    } catch (UnknownHostException impossible) {
      throw new AssertionError(impossible);
    }
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
