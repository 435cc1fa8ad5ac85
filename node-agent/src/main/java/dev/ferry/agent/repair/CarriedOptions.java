// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.Errno;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.SocketOptions.Linger;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.util.logging.Logger;

/**
 * The socket options an application set on a connection, read on the source and set again on the
 * restored socket, each at the step of the restore where the kernel needs it: before connect and in
 * repair mode here, SO_KEEPALIVE and TCP_NOTSENT_LOWAT once out of repair mode in {@link
 * RestoredSocket#resume()}.
 *
 * @param keepIdle TCP_KEEPIDLE, seconds: the effective value, the sysctl's if the application set
 *     none (likewise keepInterval, keepCount and notSentLowWatermark)
 * @param userTimeout TCP_USER_TIMEOUT, ms
 * @param congestion TCP_CONGESTION, the algorithm's name
 * @param notSentLowWatermark TCP_NOTSENT_LOWAT, unsigned (-1: no limit)
 * @param trafficClass IP_TOS for IPv4, IPV6_TCLASS for IPv6, without the ECN bits
 * @param lockedSendBuffer SO_SNDBUF as reported (doubled) if the application locked it, else 0
 * @param lockedReceiveBuffer SO_RCVBUF likewise
 * @param lingerSeconds SO_LINGER's l_linger, meaningful when {@code linger}
 */
public record CarriedOptions(
    boolean noDelay,
    boolean cork,
    boolean keepAlive,
    int keepIdle,
    int keepInterval,
    int keepCount,
    int userTimeout,
    String congestion,
    int notSentLowWatermark,
    int mark,
    int priority,
    int trafficClass,
    int lockedSendBuffer,
    int lockedReceiveBuffer,
    boolean linger,
    int lingerSeconds) {

  private static final Logger LOG = Logger.getLogger(CarriedOptions.class.getName());

  // Bounds the kernel enforces (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT).
  static final int MAX_KEEP_SECONDS = 32767;
  static final int MAX_KEEP_COUNT = 127;
  private static final int ECN_MASK = 3;
  private static final int MAX_CONGESTION_NAME = 15;

  public CarriedOptions {
    check("keep_idle_s", keepIdle, 1, MAX_KEEP_SECONDS);
    check("keep_interval_s", keepInterval, 1, MAX_KEEP_SECONDS);
    check("keep_count", keepCount, 1, MAX_KEEP_COUNT);
    check("user_timeout_ms", userTimeout, 0, Integer.MAX_VALUE);
    check("traffic_class", trafficClass, 0, 0xff);
    check("locked_send_buffer", lockedSendBuffer, 0, Integer.MAX_VALUE);
    check("locked_receive_buffer", lockedReceiveBuffer, 0, Integer.MAX_VALUE);
    check("linger_s", lingerSeconds, 0, Integer.MAX_VALUE);
    if (congestion == null
        || congestion.isEmpty()
        || congestion.length() > MAX_CONGESTION_NAME
        || !congestion.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
      throw new IllegalArgumentException(
          "congestion must be an algorithm's name of 1-"
              + MAX_CONGESTION_NAME
              + " printable ASCII characters, got '"
              + congestion
              + "'");
    }
  }

  private static void check(String field, int value, int min, int max) {
    if (value < min || value > max) {
      throw new IllegalArgumentException(
          field + " must be " + min + "-" + max + ", got " + Integer.toUnsignedString(value));
    }
  }

  /** Reads the options of a live socket (repair mode changes none of them). */
  public static CarriedOptions read(TcpSocket socket, boolean ipv6) throws SyscallException {
    SocketOptions o = new SocketOptions(socket);
    int locks = bufferLocks(o);
    Linger linger = o.linger();
    return new CarriedOptions(
        o.noDelay(),
        o.cork(),
        o.keepAlive(),
        o.keepIdle(),
        o.keepInterval(),
        o.keepCount(),
        o.userTimeout(),
        o.congestion(),
        o.notSentLowWatermark(),
        o.mark(),
        o.priority(),
        // The ECN bits are the connection's, set by TCP itself; the kernel ignores them on set.
        (ipv6 ? o.ipv6TrafficClass() : o.ipv4Tos()) & ~ECN_MASK & 0xff,
        (locks & SocketOptions.SNDBUF_LOCK) != 0 ? o.sendBuffer() : 0,
        (locks & SocketOptions.RCVBUF_LOCK) != 0 ? o.receiveBuffer() : 0,
        linger.on(),
        linger.seconds());
  }

  private static int bufferLocks(SocketOptions o) throws SyscallException {
    try {
      return o.bufferLocks();
    } catch (SyscallException e) {
      if (e.errno() != Errno.ENOPROTOOPT) {
        throw e;
      }
      // Before Linux 5.14 nothing says whether a size was locked. Carrying an autotuned size
      // would freeze it on the target, so sizes are carried only where the kernel can tell.
      return 0;
    }
  }

  /**
   * Step 1, in repair mode before {@code connect}, which looks up and caches the route and sizes
   * the receive window from what it finds set:
   *
   * <ul>
   *   <li>SO_MARK and IP_TOS/IPV6_TCLASS: policy routing may select on either, and connect's route
   *       lookup should already see them, as the original's did.
   *   <li>SO_PRIORITY after IP_TOS, because setting IP_TOS overwrites the priority.
   *   <li>Locked buffer sizes: connect derives the window clamp from SO_RCVBUF, and the queues are
   *       filled into these buffers next, as they had fitted in the original's.
   *   <li>TCP_CONGESTION: the algorithm is then initialised once, at connect, as for a socket whose
   *       application chose it before connecting. A kernel without it keeps its default.
   *   <li>The keep-alive timings: they arm nothing while SO_KEEPALIVE is off, and that waits for
   *       {@link RestoredSocket#resume()}.
   * </ul>
   */
  void applyBeforeConnect(TcpSocket socket, boolean ipv6, String connection)
      throws SyscallException {
    SocketOptions o = new SocketOptions(socket);
    o.setMark(mark);
    if (ipv6) {
      o.setIpv6TrafficClass(trafficClass);
    } else {
      o.setIpv4Tos(trafficClass);
    }
    o.setPriority(priority);
    if (lockedSendBuffer > 0) {
      o.lockSendBuffer(lockedSendBuffer);
    }
    if (lockedReceiveBuffer > 0) {
      o.lockReceiveBuffer(lockedReceiveBuffer);
    }
    setCongestion(o, connection);
    o.setKeepIdle(keepIdle);
    o.setKeepInterval(keepInterval);
    o.setKeepCount(keepCount);
  }

  private void setCongestion(SocketOptions o, String connection) throws SyscallException {
    try {
      o.setCongestion(congestion);
    } catch (SyscallException e) {
      if (e.errno() != Errno.ENOENT) {
        throw e;
      }
      LOG.warning(
          connection
              + ": this node's kernel has no congestion control '"
              + congestion
              + "'; the restored connection uses the default, "
              + o.congestion());
    }
  }

  /**
   * Step 2, still in repair mode, after the queues and the window are in place:
   *
   * <ul>
   *   <li>TCP_NODELAY and TCP_CORK before the bytes the original never sent are written after
   *       repair mode, so that those go out, or wait corked, as they would have on the source. Not
   *       before the send queue is filled: TCP_NODELAY pushes pending frames when set.
   *   <li>TCP_USER_TIMEOUT before the first retransmission of the restored in-flight bytes.
   *   <li>SO_LINGER: a socket closed in repair mode (a rollback) ignores it and sends nothing.
   * </ul>
   */
  void applyInRepair(TcpSocket socket) throws SyscallException {
    SocketOptions o = new SocketOptions(socket);
    o.setNoDelay(noDelay);
    o.setCork(cork);
    o.setUserTimeout(userTimeout);
    o.setLinger(new Linger(linger, lingerSeconds));
  }
}
