// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * A NETLINK_ROUTE socket, bound for good to the network namespace it was opened in, that adds and
 * removes interface addresses and routes and waits for the kernel's acknowledgement of each
 * request.
 *
 * <p>Every request carries NLM_F_ACK, so the kernel answers with an NLMSG_ERROR message whose error
 * is 0 on success or a negated errno; with NETLINK_EXT_ACK set it also carries the kernel's own
 * text ("ipv4: Address not found"), which becomes the exception's hint.
 */
public final class RtNetlink implements AutoCloseable {
  // <linux/netlink.h>
  static final int NLMSG_HDRLEN = 16;
  static final int NLMSG_ERROR = 2;
  static final int NLMSG_DONE = 3;
  static final int NLM_F_REQUEST = 0x1;
  static final int NLM_F_DUMP = 0x300;
  static final int NLM_F_ACK = 0x4;
  static final int NLM_F_EXCL = 0x200;
  static final int NLM_F_CREATE = 0x400;
  static final int NLM_F_CAPPED = 0x100;
  static final int NLM_F_ACK_TLVS = 0x200;
  static final int NLMSGERR_ATTR_MSG = 1;

  // <linux/rtnetlink.h>, <linux/if_addr.h>, <linux/if_link.h>
  static final int RTM_NEWLINK = 16;
  static final int RTM_GETLINK = 18;
  static final int RTM_NEWADDR = 20;
  static final int RTM_DELADDR = 21;
  static final int RTM_GETADDR = 22;
  static final int RTM_NEWNEIGH = 28;
  static final int RTM_DELNEIGH = 29;
  static final int NDA_DST = 1;
  static final int NTF_PROXY = 0x08;
  static final int NUD_PERMANENT = 0x80;
  static final int NDMSG_LEN = 12;
  static final int RTM_NEWROUTE = 24;
  static final int RTM_DELROUTE = 25;
  static final int IFA_ADDRESS = 1;
  static final int IFA_LOCAL = 2;
  static final int IFA_F_NODAD = 0x02;
  static final int IFLA_ADDRESS = 1;
  static final int IFLA_LINK = 5;
  static final int RT_TABLE_MAIN = 254;
  static final int RTPROT_UNSPEC = 0;
  static final int RTPROT_STATIC = 4;
  static final int RT_SCOPE_UNIVERSE = 0;
  static final int RT_SCOPE_LINK = 253;
  static final int RT_SCOPE_HOST = 254;
  static final int RT_SCOPE_NOWHERE = 255;
  static final int RTN_UNSPEC = 0;
  static final int RTN_UNICAST = 1;
  static final int RTA_DST = 1;
  static final int RTA_OIF = 4;
  static final int IFADDRMSG_LEN = 8;
  static final int IFINFOMSG_LEN = 16;
  static final int RTMSG_LEN = 12;

  private static final int RECEIVE_BUFFER = 32 * 1024;
  private static final int ACK_TIMEOUT_SECONDS = 5;

  private final int fd;
  private final ByteBuffer in =
      ByteBuffer.allocateDirect(RECEIVE_BUFFER).order(ByteOrder.nativeOrder());
  private int seq;

  private RtNetlink(int fd) {
    this.fd = fd;
  }

  /** A socket in the calling thread's network namespace. */
  public static RtNetlink open() throws SyscallException {
    int fd =
        check(
            () ->
                Native.LIBC.socket(
                    Native.AF_NETLINK, Native.SOCK_RAW | Native.SOCK_CLOEXEC, Native.NETLINK_ROUTE),
            () -> "socket(AF_NETLINK, NETLINK_ROUTE)");
    try {
      byte[] one = ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(1).array();
      // Best effort: without it errors still arrive, only without the kernel's text.
      Native.LIBC.setsockopt(fd, Native.SOL_NETLINK, Native.NETLINK_EXT_ACK, one, one.length);
      // The kernel acknowledges rtnetlink requests before send() returns; the timeout only
      // keeps a lost answer from blocking a migration forever.
      byte[] timeval =
          ByteBuffer.allocate(16)
              .order(ByteOrder.nativeOrder())
              .putLong(ACK_TIMEOUT_SECONDS)
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
    return new RtNetlink(fd);
  }

  /**
   * Adds {@code address/prefixLength} to the interface (RTM_NEWADDR with NLM_F_EXCL, so an address
   * already there fails with EEXIST). IPv6 addresses skip duplicate address detection: the address
   * is moving, not new, and a tentative address could neither receive nor announce.
   */
  public void addAddress(String ifname, InetAddress address, int prefixLength)
      throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    byte[] req =
        addressRequest(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            ++seq,
            index,
            address,
            prefixLength);
    transact(req, "RTM_NEWADDR(" + describe(address, prefixLength) + " dev " + ifname + ")");
  }

  /**
   * Adds {@code address} as a /32 or /128 of host scope: the kernel never picks it as the source of
   * a packet that leaves the host, yet the interface counts as having an address. Fails with EEXIST
   * when it is there already.
   */
  public void addHostScopedAddress(String ifname, InetAddress address) throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    int full = address.getAddress().length * 8;
    byte[] req =
        addressRequest(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            ++seq,
            index,
            address,
            full,
            RT_SCOPE_HOST);
    transact(req, "RTM_NEWADDR(" + describe(address, full) + " scope host dev " + ifname + ")");
  }

  /** Removes {@code address/prefixLength} from the interface (RTM_DELADDR). */
  public void removeAddress(String ifname, InetAddress address, int prefixLength)
      throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    byte[] req =
        addressRequest(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, ++seq, index, address, prefixLength);
    transact(req, "RTM_DELADDR(" + describe(address, prefixLength) + " dev " + ifname + ")");
  }

  /**
   * Routes {@code dst/prefixLength} out of the interface, link scope, in the main table, as {@code
   * ip route add DST/LEN dev IFNAME scope link proto static} would: how a node reaches a pod's
   * address through the pod's veth (the AWS VPC CNI's route). A route to the same destination
   * already in the table fails with EEXIST, whatever interface it goes out of (NLM_F_EXCL).
   */
  public void addRoute(String ifname, InetAddress dst, int prefixLength) throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    byte[] req =
        routeRequest(
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            ++seq,
            index,
            dst,
            prefixLength);
    transact(req, "RTM_NEWROUTE(" + describe(dst, prefixLength) + " dev " + ifname + ")");
  }

  /**
   * Removes the route to {@code dst/prefixLength} out of the interface, whoever added it (the
   * request leaves protocol, scope and type open, as {@code ip route del} does). None there, or one
   * out of another interface only, fails with ESRCH.
   */
  public void removeRoute(String ifname, InetAddress dst, int prefixLength)
      throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    byte[] req =
        routeRequest(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, ++seq, index, dst, prefixLength);
    transact(req, "RTM_DELROUTE(" + describe(dst, prefixLength) + " dev " + ifname + ")");
  }

  /** One address on an interface, as RTM_NEWADDR reports it: 10.0.1.5/24 scope universe. */
  public record Assigned(InetAddress address, int prefixLength, int scope) {
    /** Whether {@code ip} lies in this address's prefix (same family, same leading bits). */
    public boolean covers(InetAddress ip) {
      byte[] mine = address.getAddress();
      byte[] other = ip.getAddress();
      if (mine.length != other.length) {
        return false;
      }
      for (int bit = 0; bit < prefixLength; bit++) {
        int mask = 0x80 >>> (bit % 8);
        if ((mine[bit / 8] & mask) != (other[bit / 8] & mask)) {
          return false;
        }
      }
      return true;
    }

    /** Link scope: an IPv6 fe80::/64 address, or an IPv4 one added with {@code scope link}. */
    public boolean linkScoped() {
      return scope == RT_SCOPE_LINK;
    }

    @Override
    public String toString() {
      return describe(address, prefixLength);
    }
  }

  /**
   * Every address on the interface, both families (an RTM_GETADDR dump, filtered by index here:
   * without NETLINK_GET_STRICT_CHK the kernel dumps every interface's).
   */
  public List<Assigned> addresses(String ifname) throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    String what = "RTM_GETADDR(dev " + ifname + ")";
    int mySeq = ++seq;
    send(dumpAddressesRequest(mySeq), what);
    List<Assigned> found = new ArrayList<>();
    while (true) {
      receive(what);
      for (int off = 0; off + NLMSG_HDRLEN <= in.limit(); ) {
        int len = in.getInt(off);
        int type = in.getShort(off + 4) & 0xffff;
        if (len < NLMSG_HDRLEN || off + len > in.limit()) {
          throw new SyscallException(what, Errno.EINVAL, "truncated netlink message");
        }
        if (in.getInt(off + 8) == mySeq) {
          if (type == NLMSG_DONE) {
            return found;
          }
          if (type == NLMSG_ERROR) {
            checkAck(off, len, what);
            return found;
          }
          if (type == RTM_NEWADDR && len >= NLMSG_HDRLEN + IFADDRMSG_LEN) {
            int msg = off + NLMSG_HDRLEN;
            if (in.getInt(msg + 4) == index) {
              // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on point-to-point links.
              byte[] raw = attribute(msg + IFADDRMSG_LEN, off + len, IFA_LOCAL);
              if (raw == null) {
                raw = attribute(msg + IFADDRMSG_LEN, off + len, IFA_ADDRESS);
              }
              if (raw != null && (raw.length == 4 || raw.length == 16)) {
                try {
                  found.add(
                      new Assigned(
                          InetAddress.getByAddress(raw),
                          in.get(msg + 1) & 0xff,
                          in.get(msg + 3) & 0xff));
                } catch (java.net.UnknownHostException impossible) {
                  throw new AssertionError(impossible);
                }
              }
            }
          }
        }
        off += align(len);
      }
    }
  }

  /** An RTM_GETADDR dump request of every family: struct nlmsghdr, struct ifaddrmsg. */
  static byte[] dumpAddressesRequest(int seq) {
    int len = NLMSG_HDRLEN + IFADDRMSG_LEN;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    header(b, len, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
    b.putLong(0); // ifa_family AF_UNSPEC, prefixlen, flags, scope, index: no filter
    return b.array();
  }

  /**
   * Has the kernel answer neighbour solicitations for the IPv6 address {@code ip} on the interface
   * with the interface's MAC (a proxy entry, NTF_PROXY, as {@code ip -6 neigh add proxy IP dev
   * IFNAME}); Linux answers only while the interface forwards and has proxy_ndp on. One already
   * there is updated in place: the kernel never answers EEXIST for a proxy entry.
   */
  public void addProxyNeighbour(String ifname, InetAddress ip) throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    byte[] req =
        proxyNeighbourRequest(
            RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ++seq, index, ip);
    transact(req, "RTM_NEWNEIGH(proxy " + ip.getHostAddress() + " dev " + ifname + ")");
  }

  /** Removes the proxy entry {@link #addProxyNeighbour} made; none there fails with ENOENT. */
  public void removeProxyNeighbour(String ifname, InetAddress ip) throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    byte[] req = proxyNeighbourRequest(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK, ++seq, index, ip);
    transact(req, "RTM_DELNEIGH(proxy " + ip.getHostAddress() + " dev " + ifname + ")");
  }

  /**
   * An RTM_NEWNEIGH or RTM_DELNEIGH request for a proxy entry: struct nlmsghdr, struct ndmsg
   * (linux/neighbour.h: family, 3 bytes of padding, ifindex, state, flags, type), NDA_DST.
   */
  static byte[] proxyNeighbourRequest(int type, int flags, int seq, int ifindex, InetAddress ip) {
    byte[] raw = ip.getAddress();
    int len = NLMSG_HDRLEN + NDMSG_LEN + align(4 + raw.length);
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    header(b, len, type, flags, seq);
    b.put((byte) (ip instanceof Inet4Address ? Native.AF_INET : Native.AF_INET6)); // ndm_family
    b.put((byte) 0); // ndm_pad1
    b.putShort((short) 0); // ndm_pad2
    b.putInt(ifindex); // ndm_ifindex
    b.putShort((short) NUD_PERMANENT); // ndm_state
    b.put((byte) NTF_PROXY); // ndm_flags
    b.put((byte) 0); // ndm_type
    b.putShort((short) (4 + raw.length)); // struct rtattr: rta_len, rta_type
    b.putShort((short) NDA_DST);
    b.put(raw);
    return b.array();
  }

  /** The interface's link-layer address (IFLA_ADDRESS of RTM_GETLINK), e.g. its 6-byte MAC. */
  public byte[] hardwareAddress(String ifname) throws SyscallException {
    return linkAttribute(ifname, IFLA_ADDRESS);
  }

  /**
   * The index of the other end of a veth (IFLA_LINK), in the namespace that end lives in: how a
   * pod's eth0 leads to its veth on the node.
   */
  public int peerIndex(String ifname) throws SyscallException {
    byte[] link = linkAttribute(ifname, IFLA_LINK);
    return ByteBuffer.wrap(link).order(ByteOrder.nativeOrder()).getInt();
  }

  /** The name of interface {@code index} in the calling thread's namespace. */
  public static String interfaceName(int index) throws SyscallException {
    byte[] name = new byte[16]; // IF_NAMESIZE
    if (Native.LIBC.if_indextoname(index, name) == null) {
      throw new SyscallException("if_indextoname(" + index + ")", Native.errno());
    }
    int end = 0;
    while (end < name.length && name[end] != 0) {
      end++;
    }
    return new String(name, 0, end, StandardCharsets.US_ASCII);
  }

  private byte[] linkAttribute(String ifname, int attribute) throws SyscallException {
    int index = Bpf.interfaceIndex(ifname);
    String what = "RTM_GETLINK(dev " + ifname + ")";
    int mySeq = ++seq;
    send(linkRequest(mySeq, index), what);
    byte[] found = null;
    while (true) {
      receive(what);
      for (int off = 0; off + NLMSG_HDRLEN <= in.limit(); ) {
        int len = in.getInt(off);
        int type = in.getShort(off + 4) & 0xffff;
        if (len < NLMSG_HDRLEN || off + len > in.limit()) {
          throw new SyscallException(what, Errno.EINVAL, "truncated netlink message");
        }
        if (in.getInt(off + 8) == mySeq) {
          if (type == NLMSG_ERROR) {
            checkAck(off, len, what);
            if (found == null) {
              throw new SyscallException(what, Errno.ENOENT, "link has no attribute " + attribute);
            }
            return found;
          }
          if (type == RTM_NEWLINK) {
            found = attribute(off + NLMSG_HDRLEN + IFINFOMSG_LEN, off + len, attribute);
          }
        }
        off += align(len);
      }
    }
  }

  private void transact(byte[] req, String what) throws SyscallException {
    int mySeq = ByteBuffer.wrap(req).order(ByteOrder.nativeOrder()).getInt(8);
    send(req, what);
    while (true) {
      receive(what);
      for (int off = 0; off + NLMSG_HDRLEN <= in.limit(); ) {
        int len = in.getInt(off);
        if (len < NLMSG_HDRLEN || off + len > in.limit()) {
          throw new SyscallException(what, Errno.EINVAL, "truncated netlink message");
        }
        if ((in.getShort(off + 4) & 0xffff) == NLMSG_ERROR && in.getInt(off + 8) == mySeq) {
          checkAck(off, len, what);
          return;
        }
        off += align(len);
      }
    }
  }

  private void send(byte[] req, String what) throws SyscallException {
    ByteBuffer out = ByteBuffer.wrap(req);
    check(() -> Native.LIBC.send(fd, out, req.length, 0), () -> "send(" + what + ")");
  }

  private void receive(String what) throws SyscallException {
    in.clear();
    int n =
        (int)
            check(
                () -> Native.LIBC.recv(fd, in, in.capacity(), 0),
                () -> "recv(" + what + " acknowledgement)");
    in.limit(n);
  }

  /**
   * Throws if the NLMSG_ERROR message at {@code off} reports a failure. Its payload is struct
   * nlmsgerr (int error, then the request's header, or the whole request unless NLM_F_CAPPED),
   * followed by NLMSGERR_ATTR_* attributes when NLM_F_ACK_TLVS is set.
   */
  private void checkAck(int off, int len, String what) throws SyscallException {
    int error = in.getInt(off + NLMSG_HDRLEN);
    if (error == 0) {
      return;
    }
    int flags = in.getShort(off + 6) & 0xffff;
    String hint = null;
    if ((flags & NLM_F_ACK_TLVS) != 0) {
      int request = in.getInt(off + NLMSG_HDRLEN + 4);
      int tlvs =
          off + NLMSG_HDRLEN + 4 + ((flags & NLM_F_CAPPED) != 0 ? NLMSG_HDRLEN : align(request));
      byte[] msg = attribute(tlvs, off + len, NLMSGERR_ATTR_MSG);
      if (msg != null) {
        int end = 0;
        while (end < msg.length && msg[end] != 0) {
          end++;
        }
        hint = new String(msg, 0, end, StandardCharsets.UTF_8);
      }
    }
    throw new SyscallException(what, -error, hint);
  }

  /** The payload of the first attribute of {@code type} in [from, to) of the receive buffer. */
  private byte[] attribute(int from, int to, int type) {
    for (int off = from; off + 4 <= to; ) {
      int len = in.getShort(off) & 0xffff;
      if (len < 4 || off + len > to) {
        return null;
      }
      if ((in.getShort(off + 2) & 0x3fff) == type) {
        byte[] out = new byte[len - 4];
        in.get(off + 4, out);
        return out;
      }
      off += align(len);
    }
    return null;
  }

  /**
   * An RTM_NEWADDR or RTM_DELADDR request: struct nlmsghdr, struct ifaddrmsg (linux/if_addr.h),
   * then IFA_LOCAL and IFA_ADDRESS, both the address itself, as iproute2 sends them for an address
   * without a peer.
   */
  static byte[] addressRequest(
      int type, int flags, int seq, int ifindex, InetAddress address, int prefixLength) {
    return addressRequest(type, flags, seq, ifindex, address, prefixLength, RT_SCOPE_UNIVERSE);
  }

  static byte[] addressRequest(
      int type, int flags, int seq, int ifindex, InetAddress address, int prefixLength, int scope) {
    byte[] raw = address.getAddress();
    int max = raw.length * 8;
    if (prefixLength < 0 || prefixLength > max) {
      throw new IllegalArgumentException(
          "prefix length " + prefixLength + " out of range for " + address.getHostAddress());
    }
    boolean v4 = address instanceof Inet4Address;
    int attr = align(4 + raw.length);
    int len = NLMSG_HDRLEN + IFADDRMSG_LEN + 2 * attr;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    header(b, len, type, flags, seq);
    b.put((byte) (v4 ? Native.AF_INET : Native.AF_INET6)); // ifa_family
    b.put((byte) prefixLength); // ifa_prefixlen
    b.put((byte) (v4 ? 0 : IFA_F_NODAD)); // ifa_flags
    b.put((byte) scope); // ifa_scope
    b.putInt(ifindex); // ifa_index
    for (int t : new int[] {IFA_LOCAL, IFA_ADDRESS}) {
      b.putShort((short) (4 + raw.length)); // struct rtattr: rta_len, rta_type
      b.putShort((short) t);
      b.put(raw);
      b.position(b.position() + attr - 4 - raw.length);
    }
    return b.array();
  }

  /**
   * An RTM_NEWROUTE or RTM_DELROUTE request: struct nlmsghdr, struct rtmsg (linux/rtnetlink.h),
   * RTA_DST, RTA_OIF. A new route is a static unicast link-scope one; a deletion leaves protocol,
   * scope and type open, because the kernel deletes only a route that matches every field given.
   */
  static byte[] routeRequest(
      int type, int flags, int seq, int ifindex, InetAddress dst, int prefixLength) {
    byte[] raw = dst.getAddress();
    if (prefixLength < 0 || prefixLength > raw.length * 8) {
      throw new IllegalArgumentException(
          "prefix length " + prefixLength + " out of range for " + dst.getHostAddress());
    }
    boolean add = type == RTM_NEWROUTE;
    int dstAttr = align(4 + raw.length);
    int len = NLMSG_HDRLEN + RTMSG_LEN + dstAttr + 8;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    header(b, len, type, flags, seq);
    b.put((byte) (dst instanceof Inet4Address ? Native.AF_INET : Native.AF_INET6)); // rtm_family
    b.put((byte) prefixLength); // rtm_dst_len
    b.put((byte) 0); // rtm_src_len
    b.put((byte) 0); // rtm_tos
    b.put((byte) RT_TABLE_MAIN); // rtm_table
    b.put((byte) (add ? RTPROT_STATIC : RTPROT_UNSPEC)); // rtm_protocol
    b.put((byte) (add ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE)); // rtm_scope
    b.put((byte) (add ? RTN_UNICAST : RTN_UNSPEC)); // rtm_type
    b.putInt(0); // rtm_flags
    b.putShort((short) (4 + raw.length)); // struct rtattr: rta_len, rta_type
    b.putShort((short) RTA_DST);
    b.put(raw);
    b.position(NLMSG_HDRLEN + RTMSG_LEN + dstAttr);
    b.putShort((short) 8);
    b.putShort((short) RTA_OIF);
    b.putInt(ifindex);
    return b.array();
  }

  /** An RTM_GETLINK request for one interface: struct nlmsghdr, struct ifinfomsg (if_link.h). */
  static byte[] linkRequest(int seq, int ifindex) {
    int len = NLMSG_HDRLEN + IFINFOMSG_LEN;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    // NLM_F_ACK: a plain get is answered by the RTM_NEWLINK alone; the ack marks its end.
    header(b, len, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    b.put((byte) 0); // ifi_family: AF_UNSPEC
    b.put((byte) 0); // padding
    b.putShort((short) 0); // ifi_type
    b.putInt(ifindex); // ifi_index
    b.putInt(0); // ifi_flags
    b.putInt(0); // ifi_change
    return b.array();
  }

  /** struct nlmsghdr; the kernel fills nlmsg_pid for requests with pid 0. */
  private static void header(ByteBuffer b, int len, int type, int flags, int seq) {
    b.putInt(len);
    b.putShort((short) type);
    b.putShort((short) flags);
    b.putInt(seq);
    b.putInt(0);
  }

  private static int align(int len) {
    return (len + 3) & ~3;
  }

  private static String describe(InetAddress address, int prefixLength) {
    return address.getHostAddress() + "/" + prefixLength;
  }

  /** A MAC as {@code 02:00:5e:00:53:01}. */
  public static String formatMac(byte[] mac) {
    return HexFormat.ofDelimiter(":").formatHex(mac);
  }

  @Override
  public void close() {
    Native.LIBC.close(fd);
  }
}
