// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import jnr.ffi.LastError;
import jnr.ffi.LibraryLoader;
import jnr.ffi.LibraryOption;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.Delegate;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.byref.IntByReference;

/**
 * The C functions the agent calls, with their C names and C types, loaded once.
 *
 * <p>Nothing outside this package sees it: the typed wrappers beside it check every return value
 * and turn errno into {@link SyscallException}.
 */
final class Native {
  private Native() {}

  /**
   * glibc; every function saves errno so that {@link #errno()} reads the call's own. Public only
   * because JNR generates its implementation in another class loader.
   */
  public interface LibC {
    int socket(int domain, int type, int protocol);

    int socketpair(int domain, int type, int protocol, @Out int[] sv);

    int bind(int fd, @In byte[] addr, int addrlen);

    int connect(int fd, @In byte[] addr, int addrlen);

    int listen(int fd, int backlog);

    int accept4(int fd, @Out byte[] addr, IntByReference addrlen, int flags);

    int getsockname(int fd, @Out byte[] addr, IntByReference addrlen);

    int getpeername(int fd, @Out byte[] addr, IntByReference addrlen);

    int setsockopt(int fd, int level, int optname, @In byte[] optval, int optlen);

    int getsockopt(int fd, int level, int optname, @Out byte[] optval, IntByReference optlen);

    /** int ioctl(int fd, unsigned long request, int *arg): the SIOC*Q queue-size forms. */
    int ioctl(int fd, long request, @Out IntByReference arg);

    long send(int fd, @In ByteBuffer buf, long len, int flags);

    long sendto(int fd, @In byte[] buf, long len, int flags, @In byte[] destAddr, int addrlen);

    long recv(int fd, @Out ByteBuffer buf, long len, int flags);

    long sendmsg(int fd, Pointer msghdr, int flags);

    long recvmsg(int fd, Pointer msghdr, int flags);

    int shutdown(int fd, int how);

    int close(int fd);

    int dup3(int oldfd, int newfd, int flags);

    int fcntl(int fd, int cmd, int arg);

    int poll(@In @Out byte[] fds, long nfds, int timeout);

    int open(String path, int flags);

    int setns(int fd, int nstype);

    int pidfd_open(int pid, int flags);

    int pidfd_getfd(int pidfd, int targetfd, int flags);

    /** Signal 0 sends nothing: 0 while the process lives, ESRCH once it has exited. */
    int pidfd_send_signal(int pidfd, int sig, Pointer info, int flags);

    String strerror(int errnum);

    int if_nametoindex(String ifname);

    jnr.ffi.Pointer if_indextoname(int ifindex, @jnr.ffi.annotations.Out byte[] ifname);
  }

  /**
   * libbpf 1.x. Functions that return int give a negative errno; those that return a pointer give
   * NULL and set errno.
   */
  public interface LibBpf {
    Pointer bpf_object__open_file(String path, Pointer opts);

    Pointer bpf_object__open_mem(Pointer buf, long size, Pointer opts);

    int bpf_object__load(Pointer obj);

    void bpf_object__close(Pointer obj);

    Pointer bpf_object__next_map(Pointer obj, Pointer prev);

    String bpf_map__name(Pointer map);

    Pointer bpf_object__find_map_by_name(Pointer obj, String name);

    int bpf_map__set_pin_path(Pointer map, String path);

    int bpf_map__fd(Pointer map);

    /** enum bpf_map_type; 26 is BPF_MAP_TYPE_STRUCT_OPS. */
    int bpf_map__type(Pointer map);

    /** Before load only. */
    int bpf_map__set_map_flags(Pointer map, int flags);

    /**
     * Writes a struct_ops map's value, which registers it, or, on a map created with BPF_F_LINK,
     * only makes it ready for {@link #bpf_link_create}. NULL and errno on failure.
     */
    Pointer bpf_map__attach_struct_ops(Pointer map);

    /** The descriptor of a new link, or -errno; for struct_ops, progFd is the map's descriptor. */
    int bpf_link_create(int progFd, int targetFd, int attachType, Pointer opts);

    Pointer bpf_object__find_program_by_name(Pointer obj, String name);

    int bpf_program__fd(Pointer prog);

    int bpf_obj_get(String pathname);

    int bpf_map_update_elem(int fd, @In byte[] key, @In byte[] value, long flags);

    int bpf_map_lookup_elem(int fd, @In byte[] key, @Out byte[] value);

    int bpf_map_delete_elem(int fd, @In byte[] key);

    int bpf_map_get_next_key(int fd, @In byte[] key, @Out byte[] nextKey);

    int bpf_tc_hook_create(Pointer hook);

    int bpf_tc_hook_destroy(Pointer hook);

    int bpf_tc_attach(Pointer hook, Pointer opts);

    int bpf_tc_detach(Pointer hook, Pointer opts);

    int bpf_tc_query(Pointer hook, Pointer opts);

    int bpf_xdp_attach(int ifindex, int progFd, int flags, Pointer opts);

    int bpf_xdp_detach(int ifindex, int flags, Pointer opts);

    int bpf_xdp_query_id(int ifindex, int flags, IntByReference progId);

    int bpf_prog_test_run_opts(int progFd, Pointer opts);

    /** struct ring_buffer *ring_buffer__new(int map_fd, sample_cb, void *ctx, opts). */
    Pointer ring_buffer__new(int mapFd, RingBufferSample sampleCb, Pointer ctx, Pointer opts);

    /** Calls sample_cb for every record committed now, without waiting; the count, or -errno. */
    int ring_buffer__consume(Pointer rb);

    void ring_buffer__free(Pointer rb);

    /** The CPUs a per-CPU map has a value for (/sys/devices/system/cpu/possible), or -errno. */
    int libbpf_num_possible_cpus();
  }

  /**
   * libbpf's ring_buffer_sample_fn: int (*)(void *ctx, void *data, size_t size). A negative return
   * stops ring_buffer__consume, which returns it; the record is consumed all the same. The caller
   * keeps the Java object reachable while libbpf may call it: JNR frees the native closure with it.
   */
  public interface RingBufferSample {
    @Delegate
    int call(Pointer ctx, Pointer data, long size);
  }

  /** Loaded on first use, so that a node without libbpf can still move sockets. */
  static final class Bpf {
    static final LibBpf LIB =
        LibraryLoader.create(LibBpf.class)
            .option(LibraryOption.SaveError, true)
            .load("libbpf.so.1");

    private Bpf() {}
  }

  static final LibC LIBC =
      LibraryLoader.create(LibC.class).option(LibraryOption.SaveError, true).load("c");

  static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

  /** The errno of the last call on this thread; read it before any other native call. */
  static int errno() {
    return LastError.getLastError(RUNTIME);
  }

  // <sys/socket.h>, <netinet/in.h>
  static final int AF_UNIX = 1;
  static final int AF_INET = 2;
  static final int AF_INET6 = 10;
  static final int AF_NETLINK = 16;
  static final int AF_PACKET = 17;
  static final int SOCK_STREAM = 1;
  static final int SOCK_DGRAM = 2;
  static final int SOCK_RAW = 3;
  static final int SOCK_NONBLOCK = 0x800;
  static final int SOCK_CLOEXEC = 0x80000;
  static final int SOL_SOCKET = 1;
  static final int SO_REUSEADDR = 2;
  static final int SO_SNDBUF = 7;
  static final int SO_RCVBUF = 8;
  static final int SO_KEEPALIVE = 9;
  static final int SO_PRIORITY = 12;
  static final int SO_LINGER = 13;
  static final int SO_RCVTIMEO = 20;
  static final int SO_SNDTIMEO = 21;
  static final int SO_SNDBUFFORCE = 32;
  static final int SO_RCVBUFFORCE = 33;
  static final int SO_MARK = 36;
  static final int SO_MAX_PACING_RATE = 47;
  // Linux 5.14+: the sk_userlocks bits below, read-only here.
  static final int SO_BUF_LOCK = 72;
  static final int SCM_RIGHTS = 1;
  static final int MSG_PEEK = 0x2;
  static final int MSG_TRUNC = 0x20;
  static final int MSG_DONTWAIT = 0x40;
  static final int MSG_NOSIGNAL = 0x4000;
  static final int MSG_CMSG_CLOEXEC = 0x40000000;
  static final int SHUT_WR = 1;

  // <netinet/in.h>: IPv4 and IPv6 socket options
  static final int IPPROTO_IP = 0;
  static final int IP_TOS = 1;
  static final int IPV6_TCLASS = 67;
  static final int IPPROTO_IPV6 = 41;
  static final int IPPROTO_ICMPV6 = 58;
  // A raw socket of this protocol sends packets whose IP header the caller wrote (IP_HDRINCL).
  static final int IPPROTO_RAW = 255;

  // <linux/netlink.h>, <linux/if_ether.h>
  static final int NETLINK_ROUTE = 0;
  static final int NETLINK_SOCK_DIAG = 4;
  static final int SOL_NETLINK = 270;
  static final int NETLINK_EXT_ACK = 11;
  static final int ETH_P_ARP = 0x0806;

  // <netinet/tcp.h>, <linux/tcp.h>
  static final int IPPROTO_TCP = 6;
  static final int SOL_TCP = 6;
  static final int TCP_NODELAY = 1;
  static final int TCP_MAXSEG = 2;
  static final int TCP_CORK = 3;
  static final int TCP_KEEPIDLE = 4;
  static final int TCP_KEEPINTVL = 5;
  static final int TCP_KEEPCNT = 6;
  static final int TCP_INFO = 11;
  static final int TCP_CONGESTION = 13;
  static final int TCP_USER_TIMEOUT = 18;
  static final int TCP_REPAIR = 19;
  static final int TCP_REPAIR_QUEUE = 20;
  static final int TCP_QUEUE_SEQ = 21;
  static final int TCP_REPAIR_OPTIONS = 22;
  static final int TCP_TIMESTAMP = 24;
  static final int TCP_NOTSENT_LOWAT = 25;
  static final int TCP_REPAIR_WINDOW = 29;

  // <linux/sockios.h>: SIOCINQ is FIONREAD and SIOCOUTQ is TIOCOUTQ on every arch we build.
  static final long SIOCINQ = 0x541B;
  static final long SIOCOUTQ = 0x5411;
  static final long SIOCOUTQNSD = 0x894B;

  // <fcntl.h>, <poll.h>, <sched.h>
  static final int O_RDONLY = 0;
  static final int O_CLOEXEC = 0x80000;
  static final int F_GETFL = 3;
  static final int F_SETFL = 4;
  static final int O_NONBLOCK = 0x800;
  static final short POLLIN = 0x1;
  static final short POLLOUT = 0x4;
  static final int CLONE_NEWNET = 0x40000000;
}
