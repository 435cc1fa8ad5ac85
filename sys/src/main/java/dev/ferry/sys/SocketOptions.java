// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The socket options an application may set on a TCP socket, read and written one by one with
 * getsockopt and setsockopt on a {@link TcpSocket}: the options that move with a connection.
 *
 * <p>Getters return what the kernel reports, which for the TCP_KEEP* and TCP_NOTSENT_LOWAT options
 * is the effective value (the namespace's sysctl when the application set none), and for SO_SNDBUF
 * and SO_RCVBUF the doubled value the kernel keeps (socket(7)).
 */
public final class SocketOptions {
  /** sk_userlocks bits (include/net/sock.h) that SO_BUF_LOCK reports. */
  public static final int SNDBUF_LOCK = 1;

  public static final int RCVBUF_LOCK = 2;

  /** TCP_CA_NAME_MAX (include/net/tcp.h), the terminating NUL included. */
  private static final int CA_NAME_MAX = 16;

  private final TcpSocket socket;

  public SocketOptions(TcpSocket socket) {
    this.socket = socket;
  }

  /** {@code struct linger} (include/linux/socket.h). */
  public record Linger(boolean on, int seconds) {
    static final int SIZE = 8;

    byte[] encode() {
      return ByteBuffer.allocate(SIZE)
          .order(ByteOrder.nativeOrder())
          .putInt(on ? 1 : 0)
          .putInt(seconds)
          .array();
    }

    static Linger parse(byte[] raw) {
      ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
      return new Linger(b.getInt() != 0, b.getInt());
    }
  }

  public boolean noDelay() throws SyscallException {
    return tcpInt(Native.TCP_NODELAY, "TCP_NODELAY") != 0;
  }

  public void setNoDelay(boolean on) throws SyscallException {
    setTcpInt(Native.TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY");
  }

  public boolean cork() throws SyscallException {
    return tcpInt(Native.TCP_CORK, "TCP_CORK") != 0;
  }

  public void setCork(boolean on) throws SyscallException {
    setTcpInt(Native.TCP_CORK, on ? 1 : 0, "TCP_CORK");
  }

  public boolean keepAlive() throws SyscallException {
    return socketInt(Native.SO_KEEPALIVE, "SO_KEEPALIVE") != 0;
  }

  public void setKeepAlive(boolean on) throws SyscallException {
    setSocketInt(Native.SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE");
  }

  /** TCP_KEEPIDLE, seconds. */
  public int keepIdle() throws SyscallException {
    return tcpInt(Native.TCP_KEEPIDLE, "TCP_KEEPIDLE");
  }

  public void setKeepIdle(int seconds) throws SyscallException {
    setTcpInt(Native.TCP_KEEPIDLE, seconds, "TCP_KEEPIDLE");
  }

  /** TCP_KEEPINTVL, seconds. */
  public int keepInterval() throws SyscallException {
    return tcpInt(Native.TCP_KEEPINTVL, "TCP_KEEPINTVL");
  }

  public void setKeepInterval(int seconds) throws SyscallException {
    setTcpInt(Native.TCP_KEEPINTVL, seconds, "TCP_KEEPINTVL");
  }

  public int keepCount() throws SyscallException {
    return tcpInt(Native.TCP_KEEPCNT, "TCP_KEEPCNT");
  }

  public void setKeepCount(int probes) throws SyscallException {
    setTcpInt(Native.TCP_KEEPCNT, probes, "TCP_KEEPCNT");
  }

  /** TCP_USER_TIMEOUT, ms; 0 is the kernel's default. */
  public int userTimeout() throws SyscallException {
    return tcpInt(Native.TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT");
  }

  public void setUserTimeout(int millis) throws SyscallException {
    setTcpInt(Native.TCP_USER_TIMEOUT, millis, "TCP_USER_TIMEOUT");
  }

  /** TCP_CONGESTION: the congestion control algorithm's name, e.g. {@code cubic}. */
  public String congestion() throws SyscallException {
    byte[] raw =
        socket.getBytes(Native.SOL_TCP, Native.TCP_CONGESTION, CA_NAME_MAX, "TCP_CONGESTION");
    int end = 0;
    while (end < raw.length && raw[end] != 0) {
      end++;
    }
    return new String(raw, 0, end, StandardCharsets.US_ASCII);
  }

  /**
   * Sets the algorithm by name. A name the kernel does not have fails with ENOENT (after the kernel
   * tried to load the module {@code tcp_<name>}, which needs CAP_NET_ADMIN).
   */
  public void setCongestion(String name) throws SyscallException {
    byte[] ascii = name.getBytes(StandardCharsets.US_ASCII);
    if (ascii.length == 0 || ascii.length >= CA_NAME_MAX) {
      throw new IllegalArgumentException(
          "a congestion control name has 1-"
              + (CA_NAME_MAX - 1)
              + " characters, got '"
              + name
              + "'");
    }
    socket.setBytes(Native.SOL_TCP, Native.TCP_CONGESTION, ascii, "TCP_CONGESTION=" + name);
  }

  /** TCP_NOTSENT_LOWAT, bytes; unsigned, so 0xffffffff (-1 here) means no limit. */
  public int notSentLowWatermark() throws SyscallException {
    return tcpInt(Native.TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT");
  }

  public void setNotSentLowWatermark(int bytes) throws SyscallException {
    setTcpInt(Native.TCP_NOTSENT_LOWAT, bytes, "TCP_NOTSENT_LOWAT");
  }

  /** SO_MARK, the fwmark; setting it needs CAP_NET_ADMIN or CAP_NET_RAW. */
  public int mark() throws SyscallException {
    return socketInt(Native.SO_MARK, "SO_MARK");
  }

  public void setMark(int mark) throws SyscallException {
    setSocketInt(Native.SO_MARK, mark, "SO_MARK");
  }

  /** SO_PRIORITY; values above 6 need CAP_NET_ADMIN. */
  public int priority() throws SyscallException {
    return socketInt(Native.SO_PRIORITY, "SO_PRIORITY");
  }

  public void setPriority(int priority) throws SyscallException {
    setSocketInt(Native.SO_PRIORITY, priority, "SO_PRIORITY");
  }

  /** IP_TOS of an IPv4 socket, ECN bits included. */
  public int ipv4Tos() throws SyscallException {
    return socket.getInt(Native.IPPROTO_IP, Native.IP_TOS, "IP_TOS");
  }

  /**
   * Sets IP_TOS. The kernel keeps a TCP socket's own ECN bits and, as a side effect, sets
   * SO_PRIORITY from the TOS: set the priority after this.
   */
  public void setIpv4Tos(int tos) throws SyscallException {
    socket.setInt(Native.IPPROTO_IP, Native.IP_TOS, tos, "IP_TOS");
  }

  /** IPV6_TCLASS of an IPv6 socket, ECN bits included. */
  public int ipv6TrafficClass() throws SyscallException {
    return socket.getInt(Native.IPPROTO_IPV6, Native.IPV6_TCLASS, "IPV6_TCLASS");
  }

  /** Sets IPV6_TCLASS; the kernel keeps a TCP socket's own ECN bits. */
  public void setIpv6TrafficClass(int trafficClass) throws SyscallException {
    socket.setInt(Native.IPPROTO_IPV6, Native.IPV6_TCLASS, trafficClass, "IPV6_TCLASS");
  }

  /**
   * SO_BUF_LOCK: which buffer sizes the application fixed ({@link #SNDBUF_LOCK}, {@link
   * #RCVBUF_LOCK}), turning the kernel's autotuning off for them.
   *
   * @throws SyscallException with ENOPROTOOPT on kernels before 5.14, which cannot say
   */
  public int bufferLocks() throws SyscallException {
    return socketInt(Native.SO_BUF_LOCK, "SO_BUF_LOCK");
  }

  /** SO_SNDBUF as the kernel reports it: twice what was asked for. */
  public int sendBuffer() throws SyscallException {
    return socket.sendBuffer();
  }

  /** SO_RCVBUF as the kernel reports it: twice what was asked for. */
  public int receiveBuffer() throws SyscallException {
    return socket.receiveBuffer();
  }

  /**
   * Gives the send buffer the size {@link #sendBuffer()} reported on another socket, and locks it.
   * SO_SNDBUFFORCE, so that net.core.wmem_max on this node cannot cut it (needs CAP_NET_ADMIN); the
   * kernel doubles what it is given, hence the half.
   */
  public void lockSendBuffer(int reported) throws SyscallException {
    socket.forceSendBuffer(reported / 2);
  }

  /** As {@link #lockSendBuffer}, for the receive buffer (SO_RCVBUFFORCE). */
  public void lockReceiveBuffer(int reported) throws SyscallException {
    socket.forceReceiveBuffer(reported / 2);
  }

  public Linger linger() throws SyscallException {
    byte[] raw = socket.getBytes(Native.SOL_SOCKET, Native.SO_LINGER, Linger.SIZE, "SO_LINGER");
    if (raw.length != Linger.SIZE) {
      throw new IllegalStateException(
          "getsockopt(fd=" + socket.fd() + ", SO_LINGER) returned " + raw.length + " bytes");
    }
    return Linger.parse(raw);
  }

  public void setLinger(Linger linger) throws SyscallException {
    socket.setBytes(Native.SOL_SOCKET, Native.SO_LINGER, linger.encode(), "SO_LINGER=" + linger);
  }

  private int tcpInt(int option, String name) throws SyscallException {
    return socket.getInt(Native.SOL_TCP, option, name);
  }

  private void setTcpInt(int option, int value, String name) throws SyscallException {
    socket.setInt(Native.SOL_TCP, option, value, name + "=" + value);
  }

  private int socketInt(int option, String name) throws SyscallException {
    return socket.getInt(Native.SOL_SOCKET, option, name);
  }

  private void setSocketInt(int option, int value, String name) throws SyscallException {
    socket.setInt(Native.SOL_SOCKET, option, value, name + "=" + value);
  }

  @Override
  public String toString() {
    return "SocketOptions(" + socket + ")";
  }
}
