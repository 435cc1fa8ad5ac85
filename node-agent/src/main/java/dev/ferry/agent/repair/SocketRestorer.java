// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.Errno;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.PeerSegment;
import dev.ferry.sys.RepairOptions;
import dev.ferry.sys.RepairSocket;
import dev.ferry.sys.RepairSocket.Queue;
import dev.ferry.sys.RepairWindow;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.time.Duration;
import java.util.Optional;

/**
 * Rebuilds a socket from its {@link SocketState} in repair mode, in the order {@link RepairSocket}
 * documents, with the application's socket options at the steps {@link CarriedOptions} names and,
 * given a {@link CongestionSeed}, the original's congestion window. The result stays silent until
 * {@link RestoredSocket#resume()}.
 */
public final class SocketRestorer {
  private final Optional<CongestionSeed> congestion;

  /** A restorer that leaves every socket the kernel's initial window. */
  public SocketRestorer() {
    this(Optional.empty());
  }

  /**
   * @param congestion seeds the congestion state of the states that carry one
   */
  public SocketRestorer(Optional<CongestionSeed> congestion) {
    this.congestion = congestion;
  }

  /** The kernel refuses a larger TCP_MAXSEG (MAX_TCP_WINDOW); only loopback has one. */
  private static final int MAX_USER_MSS = 32767;

  /** How far apart two nodes' wall clocks may be for the TSval clock to stay monotonic. */
  static final long CLOCK_SKEW_MARGIN_MS = 1000;

  /** Restores inside {@code namespace}; the calling thread returns to its own afterwards. */
  public RestoredSocket restore(SocketState state, NetNamespace namespace) throws RestoreException {
    try {
      return namespace.call(() -> restore(state, namespace.toString()));
    } catch (SyscallException e) {
      throw new RestoreException(state.connection() + ": cannot enter " + namespace, e);
    }
  }

  /**
   * {@link #restore(SocketState, NetNamespace)}, tried again for up to {@code wait} while the
   * connection still exists there ({@link ConnectionStillThere}): a source that rolls back rebuilds
   * a connection whose application was told a moment before that it left, and may not have closed
   * its descriptor of the original yet.
   */
  public RestoredSocket restore(SocketState state, NetNamespace namespace, Duration wait)
      throws RestoreException, InterruptedException {
    long deadline = System.nanoTime() + wait.toNanos();
    while (true) {
      try {
        return restore(state, namespace);
      } catch (ConnectionStillThere e) {
        if (System.nanoTime() - deadline >= 0) {
          throw e;
        }
        Thread.sleep(RETRY_MS);
      }
    }
  }

  private static final long RETRY_MS = 5;

  /** Restores in the calling thread's current network namespace. */
  public RestoredSocket restore(SocketState state) throws RestoreException {
    return restore(state, "the current netns");
  }

  private RestoredSocket restore(SocketState state, String where) throws RestoreException {
    TcpSocket socket;
    try {
      socket = TcpSocket.open(state.local().getAddress());
    } catch (SyscallException e) {
      throw new RestoreException(state.connection() + ": " + e.getMessage(), e);
    }
    String step = "enter repair mode";
    try {
      // Its blocking mode is left alone, from here to the resume: it is the application's, which
      // may set it as soon as TAKEOVER hands it the socket (handoff protocol); the queues are
      // filled with MSG_DONTWAIT instead.
      // Repair mode lets bind() share the port with the target application's listener.
      // SO_REUSEADDR must not follow: it would downgrade that forced reuse to the ordinary one.
      RepairSocket repair = RepairSocket.enter(socket);
      step = "set sequence numbers";
      repair.setQueueSequence(Queue.RECV, state.recvQueueSeq());
      // A half-closed socket is rebuilt ESTABLISHED, its sequence numbers those of its data: the
      // FINs come back at resume (MovableState).
      repair.setQueueSequence(Queue.SEND, state.restoredSendQueueSeq());
      if (state.mssClamp() <= MAX_USER_MSS) {
        // connect() computes the sending MSS from the clamp it sees then; TCP_REPAIR_OPTIONS
        // comes too late for that, and the socket would send 536-byte segments.
        step = "set the MSS";
        socket.setMaxSegment(state.mssClamp());
      }
      step = "bind";
      socket.bind(state.local());
      if (state.options().isPresent()) {
        step = "set the socket options connect uses";
        state.options().get().applyBeforeConnect(socket, state.ipv6(), state.connection());
      }
      Optional<String> algorithm = Optional.empty();
      if (congestion.isPresent() && state.congestion().isPresent()) {
        // After TCP_CONGESTION was set: the seed gives way to it and switches back to it.
        step = "seed the congestion state";
        algorithm = congestion.get().arm(socket, state);
      }
      step = "connect";
      socket.connect(state.remote());
      if (algorithm.isPresent()) {
        step = "switch back to congestion control " + algorithm.get();
        congestion.get().switchBack(socket, algorithm.get());
      }
      step = "set options";
      repair.setOptions(
          new RepairOptions(
              state.mssClamp(),
              state.windowScaling(),
              state.sndWscale(),
              state.rcvWscale(),
              state.sack(),
              state.timestamps()));
      if (state.timestamps()) {
        repair.setTimestamp(continuedTimestamp(state, System.currentTimeMillis()));
      }
      step = "fill the receive queue";
      repair.fillQueue(Queue.RECV, state.recvQueue());
      step = "fill the send queue";
      repair.fillQueue(Queue.SEND, state.sendUnacked());
      step = "set the window";
      repair.setWindow(restoredWindow(state));
      if (state.options().isPresent()) {
        step = "set the socket options";
        state.options().get().applyInRepair(socket);
      }
      PeerSegment peerFin = null;
      if (state.tcpState().receivedFin) {
        // Opened here, in the socket's namespace: a raw socket sends in the one it was made in.
        step = "open a raw socket for the peer's FIN";
        peerFin = PeerSegment.open(state.local());
      }
      return new RestoredSocket(repair, state, peerFin);
    } catch (SyscallException | RuntimeException e) {
      // Still in repair mode (or never connected): closing sends nothing to the peer.
      socket.close();
      // bind() refuses an address the namespace lacks; connect() with the port bound refuses four
      // addresses a socket there already has, with the same errno.
      boolean stillThere =
          "connect".equals(step)
              && e instanceof SyscallException s
              && s.errno() == Errno.EADDRNOTAVAIL;
      String message =
          state.connection()
              + ": restore in "
              + where
              + " failed to "
              + step
              + ": "
              + e.getMessage()
              + (stillThere
                  ? "; this connection still exists in "
                      + where
                      + ": a socket there has the same addresses and ports (its application's"
                      + " descriptor of the original, not closed yet?), and it must be closed"
                      + " first"
                  : hint(e, state, where));
      throw stillThere ? new ConnectionStillThere(message, e) : new RestoreException(message, e);
    }
  }

  /**
   * The TSval clock to restore: the exported one, moved on by the time since the export plus a
   * margin for the clock difference between the two nodes. While held, the client saw answers whose
   * TSval kept ticking from the exported value; a restored clock behind the last of them would have
   * every segment dropped by the client's PAWS check. Ahead is harmless.
   *
   * <p>The value's low bit is not part of the clock: since Linux 6.7 it says the connection uses
   * microsecond timestamps (read and written through TCP_TIMESTAMP alike), so it is kept as it was
   * and the clock moves on in that unit.
   */
  static int continuedTimestamp(SocketState state, long nowMillis) {
    long elapsed =
        state.exportedAtMillis() == 0 ? 0 : Math.max(0, nowMillis - state.exportedAtMillis());
    return movedOn(state, elapsed + CLOCK_SKEW_MARGIN_MS);
  }

  /** The exported TSval clock moved on by {@code millis}, in the clock's own unit. */
  static int movedOn(SocketState state, long millis) {
    boolean usec = (state.timestamp() & 1) != 0;
    long ticks = Math.max(0, millis) * (usec ? 1000 : 1);
    int moved = state.timestamp() + (int) Math.min(ticks, Integer.MAX_VALUE / 2);
    return usec ? moved | 1 : moved & ~1;
  }

  /**
   * The exported window, fitted to a socket restored without the peer's FIN: the kernel refuses a
   * rcv_wup after rcv_nxt, and the ACK of that FIN moved rcv_wup past it. rcv_wup goes back to the
   * FIN and rcv_wnd grows by as much, so the right edge the peer was offered stays where it was.
   */
  static RepairWindow restoredWindow(SocketState state) {
    RepairWindow w = state.window();
    int beyond = w.rcvWup() - state.dataRecvSeq();
    if (beyond <= 0) {
      return w;
    }
    return new RepairWindow(
        w.sndWl1(), w.sndWnd(), w.maxWindow(), w.rcvWnd() + beyond, state.dataRecvSeq());
  }

  private static String hint(Exception e, SocketState state, String where) {
    if (!(e instanceof SyscallException s)) {
      return "";
    }
    return switch (s.errno()) {
      case Errno.EADDRNOTAVAIL ->
          "; the address "
              + state.local().getAddress().getHostAddress()
              + " is not on any interface in "
              + where
              + ": add it (without duplicate address detection for IPv6) before restoring";
      case Errno.EADDRINUSE ->
          "; this connection still exists in "
              + where
              + ": the old socket must be closed there first";
      case Errno.EPERM ->
          "; repair mode needs CAP_NET_ADMIN in the target namespace (and a half-closed"
              + " connection CAP_NET_RAW)";
      default -> "";
    };
  }
}
