// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.io.IOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.byref.IntByReference;

/**
 * A Unix stream socket that carries descriptors with its bytes ({@code SCM_RIGHTS}), the way
 * applications hand connections to the agent.
 */
public final class UnixSocket implements AutoCloseable {
  /** The kernel's limit on descriptors in one message (SCM_MAX_FD). */
  public static final int MAX_FDS = 253;

  // 64-bit layouts: struct msghdr (56 bytes), struct iovec (16), struct cmsghdr (16 + data).
  private static final int MSGHDR_SIZE = 56;
  private static final int MSG_IOV = 16;
  private static final int MSG_IOVLEN = 24;
  private static final int MSG_CONTROL = 32;
  private static final int MSG_CONTROLLEN = 40;
  private static final int MSG_FLAGS = 48;
  private static final int IOVEC_SIZE = 16;
  private static final int CMSG_HEADER = 16;
  private static final int MSG_CTRUNC = 0x8;
  private static final int SO_PEERCRED = 17;
  private static final int SO_PEERPIDFD = 77; // Linux 6.5

  /**
   * A handle on the process at the other end, as the kernel saw it connect (SO_PEERPIDFD): its pid
   * is {@code pid}, from {@link #peerCredentials()}.
   */
  public Pidfd peerPidfd(int pid) throws SyscallException {
    byte[] raw = new byte[4];
    IntByReference len = new IntByReference(raw.length);
    check(
        () -> Native.LIBC.getsockopt(fd, Native.SOL_SOCKET, SO_PEERPIDFD, raw, len),
        () -> "getsockopt(fd=" + fd + ", SO_PEERPIDFD)");
    return Pidfd.adopt(ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder()).getInt(0), pid);
  }

  private static final int SHUT_RDWR = 2;

  static {
    if (Native.RUNTIME.addressSize() != 8) {
      throw new ExceptionInInitializerError("UnixSocket supports 64-bit Linux only");
    }
  }

  private final int fd;

  /**
   * Closed here: every later call fails without touching {@link #fd}, whose number the kernel may
   * already have given to another descriptor (a frame written there could reach someone else).
   */
  private volatile boolean closed;

  private UnixSocket(int fd) {
    this.fd = fd;
  }

  public static UnixSocket adopt(int fd) {
    return new UnixSocket(fd);
  }

  /** Two connected sockets (socketpair(AF_UNIX, SOCK_STREAM)). */
  public static UnixSocket[] pair() throws SyscallException {
    int[] sv = new int[2];
    check(
        () ->
            Native.LIBC.socketpair(Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0, sv),
        () -> "socketpair(AF_UNIX)");
    return new UnixSocket[] {new UnixSocket(sv[0]), new UnixSocket(sv[1])};
  }

  public int fd() {
    return fd;
  }

  /** A listening socket at {@code path}, replacing a stale socket file left there. */
  public static UnixSocket listen(Path path, int backlog) throws SyscallException {
    byte[] addr = address(path);
    int fd = open();
    try {
      Files.deleteIfExists(path);
    } catch (IOException e) {
      Native.LIBC.close(fd);
      throw new SyscallException("unlink(" + path + ")", Errno.EACCES, e.getMessage());
    }
    try {
      check(() -> Native.LIBC.bind(fd, addr, addr.length), () -> "bind(" + path + ")");
      check(() -> Native.LIBC.listen(fd, backlog), () -> "listen(" + path + ")");
    } catch (SyscallException e) {
      Native.LIBC.close(fd);
      throw e;
    }
    return new UnixSocket(fd);
  }

  /** Connects to the listening socket at {@code path}. */
  public static UnixSocket connect(Path path) throws SyscallException {
    byte[] addr = address(path);
    int fd = open();
    try {
      check(() -> Native.LIBC.connect(fd, addr, addr.length), () -> "connect(" + path + ")");
    } catch (SyscallException e) {
      Native.LIBC.close(fd);
      throw e;
    }
    return new UnixSocket(fd);
  }

  /** Blocks until a peer connects. */
  public UnixSocket accept() throws SyscallException {
    int client =
        check(
            () -> Native.LIBC.accept4(fd, null, null, Native.SOCK_CLOEXEC),
            () -> "accept4(fd=" + fd + ")");
    return new UnixSocket(client);
  }

  /** Who is at the other end, as the kernel saw it connect (SO_PEERCRED). */
  public record Credentials(int pid, int uid, int gid) {}

  public Credentials peerCredentials() throws SyscallException {
    byte[] raw = new byte[12]; // struct ucred {pid_t pid; uid_t uid; gid_t gid;}
    IntByReference len = new IntByReference(raw.length);
    check(
        () -> Native.LIBC.getsockopt(fd, Native.SOL_SOCKET, SO_PEERCRED, raw, len),
        () -> "getsockopt(fd=" + fd + ", SO_PEERCRED)");
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    return new Credentials(b.getInt(0), b.getInt(4), b.getInt(8));
  }

  /**
   * Drops whatever has arrived and not been read, without waiting. Closing a Unix socket with
   * unread input makes the peer's next read fail with ECONNRESET, even if a reply was queued for it
   * first: drain before closing when the peer should still read that reply.
   */
  public void discardPendingInput() {
    java.nio.ByteBuffer sink = java.nio.ByteBuffer.allocateDirect(65536);
    while (Native.LIBC.recv(fd, sink, sink.capacity(), Native.MSG_DONTWAIT) > 0) {
      sink.clear();
    }
    // The last recv writes into sink, which is not used after it: a direct buffer is freed once
    // unreachable, and the kernel must not write into freed memory.
    Reference.reachabilityFence(sink);
  }

  /** Waits up to {@code timeoutMillis} for something to read; false if nothing came. */
  public boolean awaitReadable(int timeoutMillis) throws SyscallException {
    return Descriptors.poll(fd, Native.POLLIN, timeoutMillis);
  }

  /**
   * Makes a send that cannot make progress for {@code millis} fail with EAGAIN (SO_SNDTIMEO), so
   * that a peer that stops reading cannot block the sender forever. 0: block without limit.
   */
  public void setSendTimeout(long millis) throws SyscallException {
    // struct timeval { time_t tv_sec; suseconds_t tv_usec; } (sys/time.h), 64-bit
    byte[] timeval =
        ByteBuffer.allocate(16)
            .order(ByteOrder.nativeOrder())
            .putLong(millis / 1000)
            .putLong((millis % 1000) * 1000)
            .array();
    check(
        () ->
            Native.LIBC.setsockopt(
                fd, Native.SOL_SOCKET, Native.SO_SNDTIMEO, timeval, timeval.length),
        () -> "setsockopt(fd=" + fd + ", SO_SNDTIMEO)");
  }

  /** Shuts both directions, waking a thread blocked in {@link #receive} or {@link #accept}. */
  public void shutdown() {
    Native.LIBC.shutdown(fd, SHUT_RDWR);
  }

  private static int open() throws SyscallException {
    return check(
        () -> Native.LIBC.socket(Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0),
        () -> "socket(AF_UNIX)");
  }

  /** struct sockaddr_un: sa_family_t, then a NUL-terminated path of at most 107 bytes. */
  private static byte[] address(Path path) {
    byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
    if (name.length > 107) {
      throw new IllegalArgumentException("Unix socket path longer than 107 bytes: " + path);
    }
    byte[] addr = new byte[2 + name.length + 1];
    addr[0] = (byte) Native.AF_UNIX;
    System.arraycopy(name, 0, addr, 2, name.length);
    return addr;
  }

  /** Sends {@code data} (at least one byte) with {@code fds} attached; returns bytes sent. */
  public int send(byte[] data, int... fds) throws SyscallException {
    refuseIfClosed("sendmsg");
    if (data.length == 0) {
      throw new IllegalArgumentException("descriptors travel with at least one data byte");
    }
    if (fds.length > MAX_FDS) {
      throw new IllegalArgumentException("at most " + MAX_FDS + " descriptors per message");
    }
    int controlLen = fds.length == 0 ? 0 : cmsgSpace(fds.length * 4);
    Message msg = Message.forThisThread(data.length, controlLen);
    msg.data.put(0, data, 0, data.length);
    if (controlLen > 0) {
      msg.control.putLong(0, CMSG_HEADER + fds.length * 4L);
      msg.control.putInt(8, Native.SOL_SOCKET);
      msg.control.putInt(12, Native.SCM_RIGHTS);
      for (int i = 0; i < fds.length; i++) {
        msg.control.putInt(CMSG_HEADER + i * 4L, fds[i]);
      }
    }
    try {
      return (int)
          check(
              () -> Native.LIBC.sendmsg(fd, msg.header, Native.MSG_NOSIGNAL),
              () -> "sendmsg(fd=" + fd + ", " + fds.length + " fds)");
    } finally {
      msg.done();
    }
  }

  /** What one {@link #receive} call got. An empty {@code data} means end of stream. */
  public record Received(byte[] data, int[] fds) {}

  /**
   * Receives up to {@code maxBytes} and up to {@code maxFds} descriptors (close-on-exec).
   *
   * @throws SyscallException with EMFILE semantics if descriptors were cut off: those that did
   *     arrive are closed first, so nothing leaks
   */
  public Received receive(int maxBytes, int maxFds) throws SyscallException {
    refuseIfClosed("recvmsg");
    int controlLen = cmsgSpace(Math.max(1, maxFds) * 4);
    if (controlLen > CONTROL_SIZE) {
      throw new IllegalArgumentException("at most " + MAX_FDS + " descriptors per message");
    }
    Message msg = Message.forThisThread(maxBytes, controlLen);
    try {
      int n =
          (int)
              check(
                  () -> Native.LIBC.recvmsg(fd, msg.header, Native.MSG_CMSG_CLOEXEC),
                  () -> "recvmsg(fd=" + fd + ")");
      int[] fds = descriptors(msg.control, msg.header.getLong(MSG_CONTROLLEN));
      // CMSG alignment leaves room for one descriptor more than asked: refuse that one too.
      if ((msg.header.getInt(MSG_FLAGS) & MSG_CTRUNC) != 0 || fds.length > maxFds) {
        Arrays.stream(fds).forEach(Native.LIBC::close);
        throw new SyscallException(
            "recvmsg(fd=" + fd + ")",
            Errno.EMFILE,
            "more than " + maxFds + " descriptors were sent");
      }
      byte[] data = new byte[n];
      msg.data.get(0, data, 0, n);
      return new Received(data, fds);
    } finally {
      msg.done();
    }
  }

  private static int[] descriptors(Pointer control, long controlLen) {
    int[] out = new int[0];
    long off = 0;
    while (off + CMSG_HEADER <= controlLen) {
      long len = control.getLong(off);
      if (len < CMSG_HEADER || off + len > controlLen) {
        break;
      }
      if (control.getInt(off + 8) == Native.SOL_SOCKET
          && control.getInt(off + 12) == Native.SCM_RIGHTS) {
        int count = (int) (len - CMSG_HEADER) / 4;
        int base = out.length;
        out = Arrays.copyOf(out, base + count);
        for (int i = 0; i < count; i++) {
          out[base + i] = control.getInt(off + CMSG_HEADER + i * 4L);
        }
      }
      off += cmsgSpace((int) len - CMSG_HEADER);
    }
    return out;
  }

  /** Room for MAX_FDS descriptors: every control message either call makes fits. */
  private static final int CONTROL_SIZE = CMSG_HEADER + MAX_FDS * 4 + 4;

  /** Bytes a thread's own buffer holds; a larger message gets a buffer of its own for the call. */
  private static final int SCRATCH_DATA = 64 << 10;

  private static final ThreadLocal<Message> MESSAGE = ThreadLocal.withInitial(Message::new);

  /**
   * A struct msghdr with one iovec, its control buffer and a data buffer, in native memory that
   * each thread allocates once and uses for all its calls. Allocated per call, as before, a move of
   * 1,000 connections made tens of thousands of native blocks that only a garbage collection frees
   * (jnr frees them through reference queues): in the benchmark the applications' frame reader
   * spent a tenth of their CPU in the pause zeroing fresh pages for them (perf, 2026-12-05). A
   * thread makes one call at a time, so its buffers are never in use twice.
   */
  private static final class Message {
    final Pointer header;
    final Pointer iov;
    final Pointer control;
    private final Pointer scratch;

    /** The data buffer of the call under way: {@link #scratch}, or one of its own if larger. */
    private Pointer data;

    private Message() {
      header = Memory.allocateDirect(Native.RUNTIME, MSGHDR_SIZE, true);
      iov = Memory.allocateDirect(Native.RUNTIME, IOVEC_SIZE, true);
      control = Memory.allocateDirect(Native.RUNTIME, CONTROL_SIZE, true);
      scratch = Memory.allocateDirect(Native.RUNTIME, SCRATCH_DATA);
    }

    /**
     * This thread's message, its header filled in for {@code length} bytes of data and {@code
     * controlLen} of control: the caller puts what it sends in {@link #data} and {@link #control}.
     */
    static Message forThisThread(int length, int controlLen) {
      Message m = MESSAGE.get();
      m.data = length <= SCRATCH_DATA ? m.scratch : Memory.allocateDirect(Native.RUNTIME, length);
      m.prepare(length, controlLen);
      return m;
    }

    private void prepare(int length, int controlLen) {
      iov.putAddress(0, data.address());
      iov.putLong(8, length);
      header.putLong(0, 0); // msg_name: none
      header.putInt(8, 0); // msg_namelen
      header.putAddress(MSG_IOV, iov.address());
      header.putLong(MSG_IOVLEN, 1);
      if (controlLen > 0) {
        header.putAddress(MSG_CONTROL, control.address());
      } else {
        header.putLong(MSG_CONTROL, 0);
      }
      header.putLong(MSG_CONTROLLEN, controlLen);
      header.putInt(MSG_FLAGS, 0);
    }

    /**
     * Ends the call, after the data was copied: a buffer of the call's own stays reachable until
     * here, then is left to jnr, which frees it through a reference queue once nothing refers to
     * it. Let go before the copy, a collection could free it under the copy: most likely what once
     * crashed the demo streamer's JVM there (SIGSEGV 4 ms after a collection, while it read a
     * handoff frame with 1,000 connections moving on a loaded machine).
     */
    void done() {
      Reference.reachabilityFence(data);
      data = null;
    }
  }

  private static int cmsgSpace(int dataLen) {
    return CMSG_HEADER + ((dataLen + 7) & ~7);
  }

  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    Native.LIBC.close(fd);
  }

  private void refuseIfClosed(String call) throws SyscallException {
    if (closed) {
      throw new SyscallException(
          call + "(fd=" + fd + ")", Errno.EBADF, "the socket was closed here");
    }
  }
}
