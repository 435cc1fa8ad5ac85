// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * Hands a restored socket the FIN its peer had sent to the original one, as a segment from the
 * peer's address delivered inside this network namespace.
 *
 * <p>Repair mode can set a socket's sequence numbers and queues but has no way to say "the peer has
 * closed": a received FIN lives in the socket's state (CLOSE_WAIT, and EOF after the receive
 * queue), not in its queues. The peer will not send it again, since it was acknowledged. So the FIN
 * is built by hand (CRIU does the same with libnet) and sent through a raw socket to the restored
 * socket's own address; the kernel routes it over loopback, so it never reaches the wire, and the
 * socket takes it exactly as the original did.
 *
 * <p>Opened in the namespace the restored socket lives in (a raw socket sends in the namespace it
 * was made in), and used after the socket has left repair mode.
 */
public final class PeerFin implements AutoCloseable {
  private static final int IPV4_HEADER = 20;
  private static final int IPV6_HEADER = 40;
  private static final int TCP_HEADER = 20;
  private static final int FIN = 0x01;
  private static final int ACK = 0x10;
  private static final int HOP_LIMIT = 64;

  private final int fd;
  private final boolean ipv4;
  private boolean closed;

  private PeerFin(int fd, boolean ipv4) {
    this.fd = fd;
    this.ipv4 = ipv4;
  }

  /** A raw socket for {@code local}'s family; needs CAP_NET_RAW in the calling namespace. */
  public static PeerFin open(InetSocketAddress local) throws SyscallException {
    boolean ipv4 = local.getAddress() instanceof Inet4Address;
    int family = ipv4 ? Native.AF_INET : Native.AF_INET6;
    // IPPROTO_RAW means the header is ours: the only way to send from an address that is not
    // this host's (an IPv4 raw socket bound with IP_FREEBIND is still refused a route).
    int fd =
        check(
            () ->
                Native.LIBC.socket(
                    family, Native.SOCK_RAW | Native.SOCK_CLOEXEC, Native.IPPROTO_RAW),
            () -> "socket(" + (ipv4 ? "AF_INET" : "AF_INET6") + ", SOCK_RAW, IPPROTO_RAW)");
    return new PeerFin(fd, ipv4);
  }

  /**
   * Sends {@code remote}'s FIN to {@code local}.
   *
   * @param seq the FIN's sequence number: the socket's rcv_nxt before it
   * @param ack what the peer had acknowledged (the socket's snd_una), so the segment acknowledges
   *     nothing new
   * @param window the window field, already scaled down by the peer's shift: the window the socket
   *     had, since the segment updates it
   */
  public void send(InetSocketAddress remote, InetSocketAddress local, int seq, int ack, int window)
      throws SyscallException {
    byte[] src = remote.getAddress().getAddress();
    byte[] dst = local.getAddress().getAddress();
    if (src.length != dst.length || (src.length == 4) != ipv4) {
      throw new IllegalArgumentException(remote + " and " + local + " do not fit this socket");
    }
    ByteBuffer tcp = ByteBuffer.allocate(TCP_HEADER);
    tcp.putShort((short) remote.getPort())
        .putShort((short) local.getPort())
        .putInt(seq)
        .putInt(ack)
        .put((byte) (TCP_HEADER / 4 << 4))
        .put((byte) (FIN | ACK))
        .putShort((short) Math.min(window, 0xffff))
        .putShort((short) 0)
        .putShort((short) 0);
    // No timestamp option: the restored socket has no ts_recent to check it against (PAWS lets a
    // segment without one through), and its RTT estimate must not take a made-up echo.
    tcp.putShort(16, (short) checksum(src, dst, tcp.array()));
    byte[] packet = ipv4 ? ipv4(src, dst, tcp.array()) : ipv6(src, dst, tcp.array());
    // The port of the destination must be 0 for a raw socket; the address picks the route.
    byte[] to = SockAddr.encode(new InetSocketAddress(local.getAddress(), 0));
    check(
        () -> Native.LIBC.sendto(fd, packet, packet.length, 0, to, to.length),
        () -> "sendto(fd=" + fd + ", FIN from " + remote + " to " + local + ")");
  }

  private static byte[] ipv4(byte[] src, byte[] dst, byte[] tcp) {
    // The kernel fills in the total length, the ID and the header checksum (raw(7)).
    ByteBuffer ip = ByteBuffer.allocate(IPV4_HEADER + tcp.length);
    ip.put((byte) 0x45)
        .put((byte) 0)
        .putShort((short) (IPV4_HEADER + tcp.length))
        .putShort((short) 0)
        .putShort((short) 0x4000) // don't fragment
        .put((byte) HOP_LIMIT)
        .put((byte) Native.IPPROTO_TCP)
        .putShort((short) 0)
        .put(src)
        .put(dst)
        .put(tcp);
    return ip.array();
  }

  private static byte[] ipv6(byte[] src, byte[] dst, byte[] tcp) {
    ByteBuffer ip = ByteBuffer.allocate(IPV6_HEADER + tcp.length);
    ip.putInt(0x60000000)
        .putShort((short) tcp.length)
        .put((byte) Native.IPPROTO_TCP)
        .put((byte) HOP_LIMIT)
        .put(src)
        .put(dst)
        .put(tcp);
    return ip.array();
  }

  /**
   * RFC 793 / RFC 8200 section 8.1: the one's complement sum over the pseudo-header and segment.
   */
  static int checksum(byte[] src, byte[] dst, byte[] segment) {
    long sum = 0;
    sum += sum16(src) + sum16(dst);
    sum += Native.IPPROTO_TCP + segment.length;
    sum += sum16(segment);
    while ((sum >> 16) != 0) {
      sum = (sum & 0xffff) + (sum >> 16);
    }
    return (int) (~sum & 0xffff);
  }

  private static long sum16(byte[] b) {
    long sum = 0;
    for (int i = 0; i < b.length; i += 2) {
      int hi = b[i] & 0xff;
      int lo = i + 1 < b.length ? b[i + 1] & 0xff : 0;
      sum += hi << 8 | lo;
    }
    return sum;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      Native.LIBC.close(fd);
    }
  }
}
