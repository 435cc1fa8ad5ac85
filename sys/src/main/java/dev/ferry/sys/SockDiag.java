// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A NETLINK_SOCK_DIAG socket, bound for good to the network namespace it was opened in, that lists
 * the namespace's TCP sockets the way {@code ss -tn} does: one SOCK_DIAG_BY_FAMILY dump per address
 * family, answered in as many parts as the kernel likes and ended by NLMSG_DONE.
 *
 * <p>Unlike /proc/net/tcp it gives the socket's inode (to find the descriptor that holds it) and
 * the queue sizes in binary, and it costs one round trip per family instead of a text table per
 * call.
 *
 * <p><b>IPv4 on an IPv6 socket.</b> A dual-stack AF_INET6 socket that talks IPv4 (a Java server's
 * socket accepted from an IPv4 client, for one) is listed only in the AF_INET6 dump, with the
 * v4-mapped addresses {@code ::ffff:a.b.c.d} the kernel keeps for it. {@link Entry} reports its
 * family as the kernel does ({@link Entry#ipv6Socket()}) but its addresses as {@link
 * java.net.Inet4Address}, as {@code getsockname} through Java or {@link TcpSocket} does, so that a
 * caller compares them with IPv4 addresses directly.
 */
public final class SockDiag implements AutoCloseable {
  // <linux/netlink.h>
  static final int NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH

  // <linux/sock_diag.h>, <linux/inet_diag.h>
  static final int SOCK_DIAG_BY_FAMILY = 20;

  /** struct inet_diag_req_v2: family, protocol, ext, pad, states, then struct inet_diag_sockid. */
  static final int REQ_V2_LEN = 8 + 48;

  /** struct inet_diag_msg: family, state, timer, retrans, sockid, then five u32. */
  static final int MSG_LEN = 4 + 48 + 20;

  // <net/tcp_states.h>: a socket's state; the dump selects states by the bit 1 << state.
  public static final int TCP_ESTABLISHED = 1;
  public static final int TCP_SYN_SENT = 2;
  public static final int TCP_SYN_RECV = 3;
  public static final int TCP_FIN_WAIT1 = 4;
  public static final int TCP_FIN_WAIT2 = 5;
  public static final int TCP_TIME_WAIT = 6;
  public static final int TCP_CLOSE = 7;
  public static final int TCP_CLOSE_WAIT = 8;
  public static final int TCP_LAST_ACK = 9;
  public static final int TCP_LISTEN = 10;
  public static final int TCP_CLOSING = 11;

  // A dump of many sockets arrives in parts of at most 32 KiB (the kernel caps them there).
  private static final int RECEIVE_BUFFER = 32 * 1024;
  private static final int REPLY_TIMEOUT_SECONDS = 5;

  /**
   * One socket of the dump.
   *
   * @param local its address and port, {@link java.net.Inet4Address} for IPv4 even on an AF_INET6
   *     socket (see the class comment)
   * @param remote the peer's; the wildcard address and port 0 for a listener
   * @param state {@link #TCP_ESTABLISHED} etc.
   * @param inode the socket's inode, as {@code /proc/PID/fd/N} links name it: {@code socket:[N]}
   * @param recvQueue idiag_rqueue: bytes received and not yet read (a listener: connections waiting
   *     for accept)
   * @param sendQueue idiag_wqueue: bytes written and not yet acknowledged (a listener: its backlog)
   * @param ipv6Socket whether the socket is AF_INET6, true for IPv4 on a dual-stack socket too
   */
  public record Entry(
      InetSocketAddress local,
      InetSocketAddress remote,
      int state,
      long inode,
      int recvQueue,
      int sendQueue,
      boolean ipv6Socket) {}

  private final int fd;
  private final ByteBuffer in =
      ByteBuffer.allocateDirect(RECEIVE_BUFFER).order(ByteOrder.nativeOrder());
  private int seq;

  private SockDiag(int fd) {
    this.fd = fd;
  }

  /** A socket in the calling thread's network namespace. */
  public static SockDiag open() throws SyscallException {
    int fd =
        check(
            () ->
                Native.LIBC.socket(
                    Native.AF_NETLINK,
                    Native.SOCK_RAW | Native.SOCK_CLOEXEC,
                    Native.NETLINK_SOCK_DIAG),
            () -> "socket(AF_NETLINK, NETLINK_SOCK_DIAG)");
    try {
      // The kernel answers a dump at once; the timeout only keeps a lost answer from blocking a
      // migration forever.
      byte[] timeval =
          ByteBuffer.allocate(16)
              .order(ByteOrder.nativeOrder())
              .putLong(REPLY_TIMEOUT_SECONDS)
              .putLong(0)
              .array();
      check(
          () ->
              Native.LIBC.setsockopt(
                  fd, Native.SOL_SOCKET, Native.SO_RCVTIMEO, timeval, timeval.length),
          () -> "setsockopt(fd=" + fd + ", SO_RCVTIMEO)");
    } catch (SyscallException e) {
      Native.LIBC.close(fd);
      throw e;
    }
    return new SockDiag(fd);
  }

  /** The mask of the given states for {@link #tcp}: {@code states(TCP_ESTABLISHED)}. */
  public static int states(int... states) {
    int mask = 0;
    for (int s : states) {
      if (s < TCP_ESTABLISHED || s > TCP_CLOSING) {
        throw new IllegalArgumentException("not a TCP state: " + s);
      }
      mask |= 1 << s;
    }
    return mask;
  }

  /**
   * The namespace's TCP sockets, IPv4 then IPv6, in the {@code states} mask (see {@link #states})
   * whose local port is in {@code localPorts}, or on any port if it is empty.
   */
  public List<Entry> tcp(int states, Set<Integer> localPorts) throws SyscallException {
    List<Entry> out = new ArrayList<>();
    dump(Native.AF_INET, states, localPorts, out);
    dump(Native.AF_INET6, states, localPorts, out);
    return out;
  }

  private void dump(int family, int states, Set<Integer> localPorts, List<Entry> out)
      throws SyscallException {
    String what =
        "sock_diag(SOCK_DIAG_BY_FAMILY, "
            + (family == Native.AF_INET ? "AF_INET" : "AF_INET6")
            + ", IPPROTO_TCP, states=0x"
            + Integer.toHexString(states)
            + ")";
    int mySeq = ++seq;
    int onlyPort = localPorts.size() == 1 ? localPorts.iterator().next() : 0;
    byte[] req = dumpRequest(family, states, onlyPort, mySeq);
    ByteBuffer out0 = ByteBuffer.wrap(req);
    check(() -> Native.LIBC.send(fd, out0, req.length, 0), () -> "send(" + what + ")");
    boolean done = false;
    while (!done) {
      in.clear();
      // MSG_TRUNC: recv returns the part's real length, so a part too big for the buffer is
      // an error instead of sockets silently missing from the list.
      int n =
          (int)
              check(
                  () -> Native.LIBC.recv(fd, in, in.capacity(), Native.MSG_TRUNC),
                  () -> "recv(" + what + " reply)");
      if (n > in.capacity()) {
        throw new SyscallException(
            "recv(" + what + " reply)",
            Errno.EINVAL,
            "a " + n + "-byte part does not fit the " + in.capacity() + "-byte buffer");
      }
      in.limit(n);
      done = parse(in, mySeq, localPorts, out, what);
    }
  }

  /**
   * A dump request: struct nlmsghdr, then struct inet_diag_req_v2 for TCP in {@code states}. Of the
   * socket id only idiag_sport is set, to {@code localPort} or 0 for any: the dump compares that
   * one field (seen on Linux 6.18; a kernel that ignored it would only send more), so a node with
   * thousands of connections sends one port's worth. {@link #parse} filters again either way.
   */
  static byte[] dumpRequest(int family, int states, int localPort, int seq) {
    int len = RtNetlink.NLMSG_HDRLEN + REQ_V2_LEN;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    b.putInt(len);
    b.putShort((short) SOCK_DIAG_BY_FAMILY);
    b.putShort((short) (RtNetlink.NLM_F_REQUEST | NLM_F_DUMP));
    b.putInt(seq);
    b.putInt(0); // nlmsg_pid: the kernel
    b.put((byte) family); // sdiag_family
    b.put((byte) Native.IPPROTO_TCP); // sdiag_protocol
    b.put((byte) 0); // idiag_ext: no INET_DIAG_* attributes wanted
    b.put((byte) 0); // pad
    b.putInt(states); // idiag_states
    b.put((byte) (localPort >> 8)); // idiag_sport, network order; the rest of the id stays zero
    b.put((byte) localPort);
    return b.array();
  }

  /**
   * Adds the sockets of one received part of the dump to {@code out} and says whether it was the
   * last one (NLMSG_DONE). Messages of other requests are skipped; NLMSG_ERROR, or an error in
   * NLMSG_DONE, becomes a {@link SyscallException} naming {@code what}.
   */
  static boolean parse(
      ByteBuffer in, int seq, Set<Integer> localPorts, List<Entry> out, String what)
      throws SyscallException {
    for (int off = 0; off + RtNetlink.NLMSG_HDRLEN <= in.limit(); ) {
      int len = in.getInt(off);
      int type = in.getShort(off + 4) & 0xffff;
      if (len < RtNetlink.NLMSG_HDRLEN || off + len > in.limit()) {
        throw new SyscallException(what, Errno.EINVAL, "truncated netlink message");
      }
      int body = off + RtNetlink.NLMSG_HDRLEN;
      if (in.getInt(off + 8) == seq) {
        if (type == RtNetlink.NLMSG_DONE) {
          // Since Linux 4.x NLMSG_DONE carries the dump's own result: 0 or a negated errno.
          if (len >= RtNetlink.NLMSG_HDRLEN + 4 && in.getInt(body) < 0) {
            throw new SyscallException(what, -in.getInt(body));
          }
          return true;
        }
        if (type == RtNetlink.NLMSG_ERROR) {
          int error = len >= RtNetlink.NLMSG_HDRLEN + 4 ? in.getInt(body) : -Errno.EINVAL;
          if (error != 0) {
            throw new SyscallException(what, -error);
          }
          return true; // an acknowledgement ends the request as NLMSG_DONE does
        }
        if (type == SOCK_DIAG_BY_FAMILY) {
          if (len < RtNetlink.NLMSG_HDRLEN + MSG_LEN) {
            throw new SyscallException(what, Errno.EINVAL, "short inet_diag_msg (" + len + ")");
          }
          Entry e = entry(in, body);
          if (localPorts.isEmpty() || localPorts.contains(e.local().getPort())) {
            out.add(e);
          }
        }
      }
      off += (len + 3) & ~3;
    }
    return false;
  }

  /**
   * Decodes struct inet_diag_msg at {@code off}. Ports and addresses are in network order, the rest
   * in the host's; an IPv4 socket's address is in the first 4 of the 16 bytes.
   */
  static Entry entry(ByteBuffer b, int off) {
    int family = b.get(off) & 0xff;
    int state = b.get(off + 1) & 0xff;
    // struct inet_diag_sockid at off + 4: sport, dport (__be16), src[16], dst[16], if, cookie[2]
    int sport = port(b, off + 4);
    int dport = port(b, off + 6);
    int addrLen = family == Native.AF_INET ? 4 : 16;
    InetSocketAddress local = new InetSocketAddress(address(b, off + 8, addrLen), sport);
    InetSocketAddress remote = new InetSocketAddress(address(b, off + 24, addrLen), dport);
    int rqueue = b.getInt(off + 56);
    int wqueue = b.getInt(off + 60);
    long inode = Integer.toUnsignedLong(b.getInt(off + 68));
    return new Entry(local, remote, state, inode, rqueue, wqueue, family == Native.AF_INET6);
  }

  /** A __be16, whatever the buffer's order. */
  private static int port(ByteBuffer b, int off) {
    return (b.get(off) & 0xff) << 8 | (b.get(off + 1) & 0xff);
  }

  /** getByAddress turns a v4-mapped IPv6 address into the IPv4 one, as Java's sockets do. */
  private static InetAddress address(ByteBuffer b, int off, int len) {
    byte[] raw = new byte[len];
    b.get(off, raw);
    try {
      return InetAddress.getByAddress(raw);
    } catch (UnknownHostException impossible) {
      throw new AssertionError(impossible);
    }
  }

  @Override
  public void close() {
    Native.LIBC.close(fd);
  }
}
