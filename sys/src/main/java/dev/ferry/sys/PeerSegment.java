// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.OptionalInt;

/**
 * Hands a restored socket a segment its peer had sent to the original one, from the peer's address,
 * delivered inside this network namespace: the FIN of a half-closed connection, or the last ACK a
 * held client sent after the original socket was read.
 *
 * <p>Repair mode can set a socket's sequence numbers and queues but has no way to say "the peer has
 * closed": a received FIN lives in the socket's state (CLOSE_WAIT, and EOF after the receive
 * queue), not in its queues. Nor can it say "the peer has acknowledged this much": snd_una is the
 * send queue's start, fixed before the queue is filled. The peer will not send either again. So the
 * segment is built by hand (CRIU does the same with libnet for the FIN) and sent through a raw
 * socket to the restored socket's own address; the kernel routes it over loopback, so it never
 * reaches the wire, and the socket takes it as the original would have.
 *
 * <p>Opened in the namespace the restored socket lives in (a raw socket sends in the namespace it
 * was made in), and used after the socket has left repair mode. One serves every socket of its
 * family in that namespace, from any thread.
 */
public final class PeerSegment implements AutoCloseable {
  private static final int IPV4_HEADER = 20;
  private static final int IPV6_HEADER = 40;
  private static final int TCP_HEADER = 20;
  private static final int TIMESTAMP_OPTION = 12; // NOP, NOP, kind 8, length 10, TSval, TSecr
  private static final int FIN = 0x01;
  private static final int ACK = 0x10;
  private static final int HOP_LIMIT = 64;

  private final int fd;
  private final boolean ipv4;
  private boolean closed;

  private PeerSegment(int fd, boolean ipv4) {
    this.fd = fd;
    this.ipv4 = ipv4;
  }

  /** A raw socket for {@code local}'s family; needs CAP_NET_RAW in the calling namespace. */
  public static PeerSegment open(InetSocketAddress local) throws SyscallException {
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
    return new PeerSegment(fd, ipv4);
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
  public void fin(InetSocketAddress remote, InetSocketAddress local, int seq, int ack, int window)
      throws SyscallException {
    // No timestamp option: the restored socket has no ts_recent to check it against (PAWS lets a
    // segment without one through), and its RTT estimate must not take a made-up echo.
    send(remote, local, seq, ack, window, FIN | ACK, OptionalInt.empty(), "FIN");
  }

  /**
   * Sends {@code remote}'s acknowledgment to {@code local}: a pure ACK, as the peer sent it.
   *
   * @param seq the socket's rcv_nxt, so that the segment is in order and carries nothing new
   * @param ack what the peer acknowledged
   * @param window the window field as the peer sent it (in its scale)
   * @param tsval the peer's TSval, for a connection with timestamps: a segment without one, or with
   *     an older one, fails the socket's PAWS check. Its TSecr is 0, which takes no RTT sample: an
   *     echo of ours would be made up.
   */
  public void ack(
      InetSocketAddress remote,
      InetSocketAddress local,
      int seq,
      int ack,
      int window,
      OptionalInt tsval)
      throws SyscallException {
    send(remote, local, seq, ack, window, ACK, tsval, "ACK");
  }

  private void send(
      InetSocketAddress remote,
      InetSocketAddress local,
      int seq,
      int ack,
      int window,
      int flags,
      OptionalInt tsval,
      String what)
      throws SyscallException {
    byte[] src = remote.getAddress().getAddress();
    byte[] dst = local.getAddress().getAddress();
    if (src.length != dst.length || (src.length == 4) != ipv4) {
      throw new IllegalArgumentException(remote + " and " + local + " do not fit this socket");
    }
    int length = TCP_HEADER + (tsval.isPresent() ? TIMESTAMP_OPTION : 0);
    ByteBuffer tcp = ByteBuffer.allocate(length);
    tcp.putShort((short) remote.getPort())
        .putShort((short) local.getPort())
        .putInt(seq)
        .putInt(ack)
        .put((byte) (length / 4 << 4))
        .put((byte) flags)
        .putShort((short) Math.min(window, 0xffff))
        .putShort((short) 0)
        .putShort((short) 0);
    if (tsval.isPresent()) {
      tcp.put((byte) 1).put((byte) 1).put((byte) 8).put((byte) 10);
      tcp.putInt(tsval.getAsInt()).putInt(0);
    }
    tcp.putShort(16, (short) checksum(src, dst, tcp.array()));
    byte[] packet = ipv4 ? ipv4(src, dst, tcp.array()) : ipv6(src, dst, tcp.array());
    // The port of the destination must be 0 for a raw socket; the address picks the route.
    byte[] to = SockAddr.encode(new InetSocketAddress(local.getAddress(), 0));
    check(
        () -> Native.LIBC.sendto(fd, packet, packet.length, 0, to, to.length),
        () -> "sendto(fd=" + fd + ", " + what + " from " + remote + " to " + local + ")");
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
