// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jnr.ffi.byref.IntByReference;

/**
 * A kernel TCP socket owned through its file descriptor.
 *
 * <p>Used for sockets the agent creates (restored ones, tests' peers) and for descriptors it
 * receives from applications. Every call checks its return value and names the socket in its error.
 * Not thread-safe: one owner at a time.
 */
public final class TcpSocket implements AutoCloseable {
  private final int fd;
  private boolean closed;

  private TcpSocket(int fd) {
    this.fd = fd;
  }

  /** A new blocking stream socket for the address family of {@code forAddress}. */
  public static TcpSocket open(InetAddress forAddress) throws SyscallException {
    int family = SockAddr.family(forAddress);
    int fd =
        check(
            () -> Native.LIBC.socket(family, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0),
            () -> "socket(" + (family == Native.AF_INET ? "AF_INET" : "AF_INET6") + ")");
    return new TcpSocket(fd);
  }

  /** Takes ownership of a descriptor (one received over SCM_RIGHTS or pidfd_getfd). */
  public static TcpSocket adopt(int fd) {
    if (fd < 0) {
      throw new IllegalArgumentException("fd must be >= 0, got " + fd);
    }
    return new TcpSocket(fd);
  }

  public int fd() {
    return fd;
  }

  public void setReuseAddress() throws SyscallException {
    setInt(Native.SOL_SOCKET, Native.SO_REUSEADDR, 1, "SO_REUSEADDR");
  }

  public void setReceiveBuffer(int bytes) throws SyscallException {
    setInt(Native.SOL_SOCKET, Native.SO_RCVBUF, bytes, "SO_RCVBUF");
  }

  public void setSendBuffer(int bytes) throws SyscallException {
    setInt(Native.SOL_SOCKET, Native.SO_SNDBUF, bytes, "SO_SNDBUF");
  }

  /** SO_SNDBUFFORCE: past net.core.wmem_max, needs CAP_NET_ADMIN. */
  public void forceSendBuffer(int bytes) throws SyscallException {
    setInt(Native.SOL_SOCKET, Native.SO_SNDBUFFORCE, bytes, "SO_SNDBUFFORCE");
  }

  /** SO_RCVBUFFORCE: past net.core.rmem_max, needs CAP_NET_ADMIN. */
  public void forceReceiveBuffer(int bytes) throws SyscallException {
    setInt(Native.SOL_SOCKET, Native.SO_RCVBUFFORCE, bytes, "SO_RCVBUFFORCE");
  }

  /**
   * SO_MAX_PACING_RATE, bytes per second: TCP paces the socket's segments itself (a timer per
   * segment) at no more than this rate, whatever its congestion control.
   */
  public void setMaxPacingRate(int bytesPerSecond) throws SyscallException {
    setInt(Native.SOL_SOCKET, Native.SO_MAX_PACING_RATE, bytesPerSecond, "SO_MAX_PACING_RATE");
  }

  /** TCP_MAXSEG: the user MSS, which caps the MSS the socket settles on when it connects. */
  public void setMaxSegment(int bytes) throws SyscallException {
    setInt(Native.SOL_TCP, Native.TCP_MAXSEG, bytes, "TCP_MAXSEG");
  }

  public int sendBuffer() throws SyscallException {
    return getInt(Native.SOL_SOCKET, Native.SO_SNDBUF, "SO_SNDBUF");
  }

  public int receiveBuffer() throws SyscallException {
    return getInt(Native.SOL_SOCKET, Native.SO_RCVBUF, "SO_RCVBUF");
  }

  public void bind(InetSocketAddress local) throws SyscallException {
    byte[] raw = SockAddr.encode(local);
    check(() -> Native.LIBC.bind(fd, raw, raw.length), () -> "bind(fd=" + fd + ", " + local + ")");
  }

  public void listen(int backlog) throws SyscallException {
    check(() -> Native.LIBC.listen(fd, backlog), () -> "listen(fd=" + fd + ")");
  }

  /** Blocks until a connection arrives; the new socket is blocking and close-on-exec. */
  public TcpSocket accept() throws SyscallException {
    byte[] raw = new byte[SockAddr.MAX_LENGTH];
    IntByReference len = new IntByReference(raw.length);
    int client =
        check(
            () -> Native.LIBC.accept4(fd, raw, len, Native.SOCK_CLOEXEC),
            () -> "accept4(fd=" + fd + ")");
    return new TcpSocket(client);
  }

  public void connect(InetSocketAddress remote) throws SyscallException {
    byte[] raw = SockAddr.encode(remote);
    check(
        () -> Native.LIBC.connect(fd, raw, raw.length),
        () -> "connect(fd=" + fd + ", " + remote + ")");
  }

  public InetSocketAddress localAddress() throws SyscallException {
    byte[] raw = new byte[SockAddr.MAX_LENGTH];
    IntByReference len = new IntByReference(raw.length);
    check(() -> Native.LIBC.getsockname(fd, raw, len), () -> "getsockname(fd=" + fd + ")");
    return SockAddr.decode(raw, len.intValue());
  }

  public InetSocketAddress remoteAddress() throws SyscallException {
    byte[] raw = new byte[SockAddr.MAX_LENGTH];
    IntByReference len = new IntByReference(raw.length);
    check(() -> Native.LIBC.getpeername(fd, raw, len), () -> "getpeername(fd=" + fd + ")");
    return SockAddr.decode(raw, len.intValue());
  }

  public TcpInfo info() throws SyscallException {
    byte[] raw = getBytes(Native.SOL_TCP, Native.TCP_INFO, 256, "TCP_INFO");
    if (raw.length < TcpInfo.MIN_LENGTH) {
      throw new IllegalStateException(
          "getsockopt(fd=" + fd + ", TCP_INFO) returned only " + raw.length + " bytes");
    }
    return TcpInfo.parse(raw);
  }

  /**
   * Reads up to {@code len} bytes; blocks on a blocking socket.
   *
   * @return the count read, -1 at end of stream, 0 when a non-blocking socket has nothing
   */
  public int read(byte[] buf, int off, int len) throws SyscallException {
    ByteBuffer view = ByteBuffer.wrap(buf, off, len).slice();
    long n = recv(view, len, 0);
    if (n == WOULD_BLOCK) {
      return 0;
    }
    return n == 0 && len > 0 ? -1 : (int) n;
  }

  /** Writes what the socket takes now: all of it when blocking, maybe 0 when not. */
  public int write(byte[] buf, int off, int len) throws SyscallException {
    return write(buf, off, len, Native.MSG_NOSIGNAL);
  }

  /**
   * Writes what the socket takes now, maybe 0, whatever its blocking mode ({@code MSG_DONTWAIT}):
   * for a socket whose mode belongs to someone else, as a restored one's does to the application it
   * is handed to.
   */
  public int writeNow(byte[] buf, int off, int len) throws SyscallException {
    return write(buf, off, len, Native.MSG_NOSIGNAL | Native.MSG_DONTWAIT);
  }

  private int write(byte[] buf, int off, int len, int flags) throws SyscallException {
    return (int) send(ByteBuffer.wrap(buf, off, len).slice(), len, flags);
  }

  public void writeFully(byte[] buf) throws SyscallException {
    int off = 0;
    while (off < buf.length) {
      int n = write(buf, off, buf.length - off);
      if (n == 0) {
        awaitWritable(-1);
      }
      off += n;
    }
  }

  /** send(2); EAGAIN on a non-blocking socket returns 0. */
  long send(ByteBuffer buf, int len, int flags) throws SyscallException {
    while (true) {
      long n = Native.LIBC.send(fd, buf, len, flags);
      if (n >= 0) {
        return n;
      }
      int errno = Native.errno();
      if (errno == Errno.EAGAIN) {
        return 0;
      }
      if (errno != Errno.EINTR) {
        throw new SyscallException("send(fd=" + fd + ", " + len + " bytes)", errno);
      }
    }
  }

  /** What {@link #recv} returns when a non-blocking socket has nothing to read. */
  static final long WOULD_BLOCK = -1;

  /** recv(2): the count, 0 at end of stream, {@link #WOULD_BLOCK} on EAGAIN. */
  long recv(ByteBuffer buf, int len, int flags) throws SyscallException {
    while (true) {
      long n = Native.LIBC.recv(fd, buf, len, flags);
      if (n >= 0) {
        return n;
      }
      int errno = Native.errno();
      if (errno == Errno.EAGAIN) {
        return WOULD_BLOCK;
      }
      if (errno != Errno.EINTR) {
        throw new SyscallException("recv(fd=" + fd + ", " + len + " bytes)", errno);
      }
    }
  }

  /** Sends FIN after the queued data; reading stays open. */
  public void shutdownOutput() throws SyscallException {
    check(() -> Native.LIBC.shutdown(fd, Native.SHUT_WR), () -> "shutdown(fd=" + fd + ", SHUT_WR)");
  }

  /** Whether the socket's open file is in blocking mode (no {@code O_NONBLOCK}). */
  public boolean blocking() throws SyscallException {
    return (statusFlags() & Native.O_NONBLOCK) == 0;
  }

  public void setBlocking(boolean blocking) throws SyscallException {
    int flags = statusFlags();
    int wanted = blocking ? flags & ~Native.O_NONBLOCK : flags | Native.O_NONBLOCK;
    if (wanted != flags) {
      check(
          () -> Native.LIBC.fcntl(fd, Native.F_SETFL, wanted),
          () -> "fcntl(fd=" + fd + ", F_SETFL)");
    }
  }

  /** The open file's status flags (F_GETFL): O_NONBLOCK among them, shared by every dup. */
  private int statusFlags() throws SyscallException {
    return check(() -> Native.LIBC.fcntl(fd, Native.F_GETFL, 0), () -> "fcntl(F_GETFL)");
  }

  /** Waits until the socket can take more data; -1 waits for ever. */
  public boolean awaitWritable(int timeoutMillis) throws SyscallException {
    return poll(Native.POLLOUT, timeoutMillis);
  }

  public boolean awaitReadable(int timeoutMillis) throws SyscallException {
    return poll(Native.POLLIN, timeoutMillis);
  }

  private boolean poll(short events, int timeoutMillis) throws SyscallException {
    return Descriptors.poll(fd, events, timeoutMillis);
  }

  void setInt(int level, int option, int value, String name) throws SyscallException {
    byte[] raw = ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(value).array();
    setBytes(level, option, raw, name);
  }

  void setBytes(int level, int option, byte[] raw, String name) throws SyscallException {
    check(
        () -> Native.LIBC.setsockopt(fd, level, option, raw, raw.length),
        () -> "setsockopt(fd=" + fd + ", " + name + ")");
  }

  int getInt(int level, int option, String name) throws SyscallException {
    byte[] raw = getBytes(level, option, 4, name);
    return ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder()).getInt();
  }

  byte[] getBytes(int level, int option, int size, String name) throws SyscallException {
    byte[] raw = new byte[size];
    IntByReference len = new IntByReference(size);
    check(
        () -> Native.LIBC.getsockopt(fd, level, option, raw, len),
        () -> "getsockopt(fd=" + fd + ", " + name + ")");
    int got = len.intValue();
    if (got == size) {
      return raw;
    }
    byte[] out = new byte[got];
    System.arraycopy(raw, 0, out, 0, got);
    return out;
  }

  int ioctlInt(long request, String name) throws SyscallException {
    IntByReference value = new IntByReference();
    check(() -> Native.LIBC.ioctl(fd, request, value), () -> "ioctl(fd=" + fd + ", " + name + ")");
    return value.intValue();
  }

  /** Closes the descriptor. A socket in repair mode closes silently: no FIN, no RST. */
  @Override
  public void close() {
    if (!closed) {
      closed = true;
      // close(2) must not be retried on EINTR: the descriptor is gone either way.
      Native.LIBC.close(fd);
    }
  }

  @Override
  public String toString() {
    return "TcpSocket(fd=" + fd + ")";
  }
}
