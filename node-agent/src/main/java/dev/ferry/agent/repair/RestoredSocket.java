// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.PeerSegment;
import dev.ferry.sys.RepairSocket;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpInfo;
import dev.ferry.sys.TcpSocket;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Logger;

/**
 * A rebuilt socket still in repair mode: it sends nothing until {@link #resume()}. Closing it
 * before then discards it silently, which is how a staged restore is rolled back.
 */
public final class RestoredSocket implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(RestoredSocket.class.getName());
  private static final int MAX_GROWTH = 8;
  private static final int NO_LIMIT = -1;
  private static final long PEER_FIN_WAIT_NANOS = 2_000_000_000L;

  private final RepairSocket repair;
  private final SocketState state;
  private final byte[] unsent;
  private final Optional<CarriedOptions> options;
  private final PeerSegment peerFin; // null unless the peer had sent its FIN
  // What the two late options were when the socket was staged: a different value at resume
  // means the target application set its own (the handoff protocol lets it, between TAKEOVER
  // and TAKEN), and the application's choice wins over the carried one.
  private final boolean stagedKeepAlive;
  private final int stagedNotSentLowWatermark;
  private boolean resumed;
  private ClientAck clientAck; // what the held client acknowledged after the export, if anything

  RestoredSocket(RepairSocket repair, SocketState state, PeerSegment peerFin)
      throws SyscallException {
    this.repair = repair;
    this.state = state;
    this.unsent = state.sendUnsent();
    this.options = state.options();
    this.peerFin = peerFin;
    SocketOptions o = new SocketOptions(repair.socket());
    this.stagedKeepAlive = o.keepAlive();
    this.stagedNotSentLowWatermark = o.notSentLowWatermark();
  }

  public TcpSocket socket() {
    return repair.socket();
  }

  /**
   * How long COMMIT may take from the source to this agent for the clock {@link #continueClock}
   * sets to be ahead of every answer the source's hold gave: that time is not in {@code
   * millisSinceExport}. Beyond it (a badly overloaded node), the client's PAWS check drops the
   * restored socket's first segments for the difference, and its duplicate ACKs have them sent
   * again. Each millisecond of it is a millisecond more in RTT samples taken from ACKs that echo
   * the source's timestamps, which is harmless at this size.
   */
  static final long COMMIT_TRANSIT_MARGIN_MS = 50;

  /**
   * Sets the TSval clock again before the resume, now that the time since the export is known on
   * one clock: {@code millisSinceExport} is what the source measured, from the start of its first
   * export, when it sent COMMIT, plus the time since COMMIT arrived here. The source's hold answers
   * with a TSval that ticks from the same export (from its own, later, start), so this clock is
   * ahead of every answer the client saw while COMMIT took less than {@link
   * #COMMIT_TRANSIT_MARGIN_MS} to arrive. The restore set the clock a second ahead instead ({@link
   * SocketRestorer#CLOCK_SKEW_MARGIN_MS}, worked out from two nodes' wall clocks); kept, that lead
   * turns an ACK that echoes a TSval of the source's into an RTT sample a second too long, and BBR
   * paces the connection from its first sample for many round trips ({@code make bench-link}: its
   * slow runs were those whose first sample was 1.02-1.04 s). Call it before anything of the
   * client's can reach the socket.
   */
  public void continueClock(long millisSinceExport) throws SyscallException {
    if (state.timestamps()) {
      repair.setTimestamp(
          SocketRestorer.movedOn(state, millisSinceExport + COMMIT_TRANSIT_MARGIN_MS));
    }
  }

  /**
   * What the client acknowledged while held, after the original socket was read: {@link
   * #resume(byte[], PeerSegment)} hands it to the socket as the client's segment, right after the
   * socket leaves repair mode. Without it the socket counts the data the client had acknowledged as
   * in flight; when that data fills most of its congestion window (a bulk transfer, carried window)
   * it sends little until the client answers its window probe, a round trip after the resume, where
   * the original would have gone on at once ({@code make bench-link}: 2.3 round trips back to its
   * rate instead of 1.2, in the runs where the data in flight at the freeze had filled the window
   * and the hold outlasted the client's ACKs of it).
   *
   * <p>Taken only when it acknowledges data the socket has in flight and no more, and, on a
   * connection with timestamps, carries the client's TSval; never for a half-closed connection,
   * whose FINs the resume replays with their own acknowledgments.
   *
   * @return whether the resume will hand it on
   */
  public boolean clientAcknowledged(ClientAck ack) {
    clientAck = takes(state, ack) ? ack : null;
    return clientAck != null;
  }

  /** Whether a socket restored from {@code state} takes {@code ack}: see clientAcknowledged. */
  static boolean takes(SocketState state, ClientAck ack) {
    int acked = ack.ack() - state.sendQueueSeq(); // in sequence space: wraps at 2^32
    return !state.tcpState().sentFin
        && !state.tcpState().receivedFin
        && acked > 0
        && acked <= state.sendUnacked().length
        && (!state.timestamps() || ack.tsval() != 0);
  }

  /** Whether the resume will hand the socket an acknowledgment of its client's. */
  public boolean hasClientAck() {
    return clientAck != null;
  }

  /** {@link #resume(byte[])} with nothing kept from the client. */
  public TcpSocket resume() throws SyscallException {
    return resume(new byte[0]);
  }

  /** {@link #resume(byte[], PeerSegment)} without handing on the client's acknowledgment. */
  public TcpSocket resume(byte[] keptClientBytes) throws SyscallException {
    return resume(keptClientBytes, null);
  }

  /** {@link #receiveKept} of {@code keptClientBytes}, then {@link #resume(PeerSegment)}. */
  public TcpSocket resume(byte[] keptClientBytes, PeerSegment peer) throws SyscallException {
    receiveKept(keptClientBytes);
    return resume(peer);
  }

  /**
   * Leaves repair mode, which makes the kernel send a window update that wakes the peer (its ACK
   * covers the bytes {@link #receiveKept} appended, so the client need not send them again), then
   * queues the bytes the original socket had never sent, ahead of anything the application writes
   * next, replays the FINs of a half-closed connection, and sets the socket options that had to
   * wait for these steps. Returns the socket, now owned by the caller, in the blocking mode the
   * application set (between TAKEOVER and TAKEN, as the handoff protocol allows), blocking if it
   * set none: every write here is {@code MSG_DONTWAIT} and leaves the mode alone.
   *
   * @param peer where the client's acknowledgment ({@link #clientAcknowledged}) is sent from, a raw
   *     socket in this socket's namespace; null to leave it out
   */
  public TcpSocket resume(PeerSegment peer) throws SyscallException {
    TcpSocket socket = repair.socket();
    boolean handOn = clientAck != null && peer != null;
    int rcvNxt = handOn ? receivedUpTo() : 0;
    repair.leave();
    resumed = true;
    if (handOn) {
      handOnClientAck(peer, rcvNxt);
    }
    // Repair mode left the socket with forced address reuse; an accepted socket has the
    // ordinary kind. Without this, its TIME_WAIT blocks the application from binding a new
    // listener on the port, even with SO_REUSEADDR.
    socket.setReuseAddress();
    SocketOptions o = new SocketOptions(socket);
    // SO_KEEPALIVE only now: on a connected socket it arms the keep-alive timer, and nothing
    // makes that timer respect repair mode; a staged socket may wait for the commit longer than
    // a short TCP_KEEPIDLE, and must send nothing before it.
    if (options.isPresent() && options.get().keepAlive() && o.keepAlive() == stagedKeepAlive) {
      o.setKeepAlive(true);
    }
    // TCP_NOTSENT_LOWAT only after the bytes never sent are queued: a low mark makes the kernel
    // refuse all but the first of them to a non-blocking write, though the original held them all.
    int lowat = o.notSentLowWatermark();
    int wantedLowat =
        options.isPresent() && lowat == stagedNotSentLowWatermark
            ? options.get().notSentLowWatermark()
            : lowat;
    if (unsent.length > 0) {
      o.setNotSentLowWatermark(NO_LIMIT);
    }
    int off = 0;
    int grown = 0;
    while (off < unsent.length) {
      int n = socket.writeNow(unsent, off, unsent.length - off);
      if (n > 0) {
        off += n;
      } else if (grown++ < MAX_GROWTH) {
        // The original socket held these bytes, so this one must take them without waiting.
        socket.forceSendBuffer(Math.max(socket.sendBuffer(), unsent.length) * 2);
      } else {
        throw new IllegalStateException(
            socket + ": send buffer refuses " + (unsent.length - off) + " unsent bytes");
      }
    }
    if (unsent.length > 0 || wantedLowat != lowat) {
      o.setNotSentLowWatermark(wantedLowat);
    }
    replayFins(socket);
    return socket;
  }

  /**
   * Sends the client's acknowledgment to the socket, in order ({@code rcvNxt}), before the unsent
   * bytes are queued: they leave at once into the window it frees. Best effort: the socket is live
   * already, and without it the client's answer to the window probe does the same a round trip
   * later.
   */
  private void handOnClientAck(PeerSegment peer, int rcvNxt) {
    try {
      peer.ack(
          state.remote(),
          state.local(),
          rcvNxt,
          clientAck.ack(),
          clientAck.window(),
          state.timestamps() ? OptionalInt.of(clientAck.tsval()) : OptionalInt.empty());
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              state.connection()
                  + ": the client's acknowledgment from the hold was not handed on; the socket"
                  + " waits for its answer to the resume: "
                  + e.getMessage());
    }
  }

  /** rcv_nxt now: past the exported queue once the socket takes bytes from the client itself. */
  public int receivedUpTo() throws SyscallException {
    return repair.queueSequence(RepairSocket.Queue.RECV);
  }

  /**
   * Appends what the client sent while held (the caller checked that it continues the exported
   * receive queue: the client sent it while held, and a hold kept it) to the receive queue, as
   * received, less what the socket has taken from the client itself since it was staged. The look
   * at rcv_nxt and the write are two calls, and the kernel queues the write at rcv_nxt as it is
   * then: a client segment reaching the socket between them would be queued twice. So the client
   * must not reach the socket until this is done: on an agent, the target's hold drops its segments
   * until then ({@code StagedClient}); the subtraction covers a hold past its deadline.
   */
  public void receiveKept(byte[] kept) throws SyscallException {
    if (kept.length == 0) {
      return;
    }
    long taken = receivedUpTo() - state.dataRecvSeq();
    if (taken < 0 || taken >= kept.length) {
      return; // it has them all (a negative distance cannot be: rcv_nxt only moves on)
    }
    repair.fillQueue(
        RepairSocket.Queue.RECV, java.util.Arrays.copyOfRange(kept, (int) taken, kept.length));
  }

  /**
   * The FINs after the window probe: the kernel sends the probe that wakes the client only from
   * ESTABLISHED, so the socket left repair mode in it. The peer's FIN first, as it came first in
   * every state that has both but CLOSING, where the order only decides which end keeps TIME_WAIT.
   * Ours after the unsent bytes, behind which shutdown queues it; a FIN the peer had acknowledged
   * already (FIN_WAIT2) goes once more and draws a duplicate ACK, nothing else.
   */
  private void replayFins(TcpSocket socket) throws SyscallException {
    if (peerFin != null) {
      try {
        // The window field updates the socket's send window (its snd_wl1 is behind the FIN
        // now), so it carries the exported one, in the peer's scale.
        peerFin.fin(
            state.remote(),
            state.local(),
            state.dataRecvSeq(),
            state.restoredSendQueueSeq(),
            state.window().sndWnd() >>> state.sndWscale());
      } finally {
        peerFin.close();
      }
      awaitPeerFin(socket);
    }
    if (state.tcpState().sentFin) {
      socket.shutdownOutput();
    }
  }

  /**
   * The FIN goes through loopback, which delivers it from a softirq, maybe not yet when sendto
   * returns; shutdown before it would make the socket FIN_WAIT1 instead of LAST_ACK.
   */
  private void awaitPeerFin(TcpSocket socket) throws SyscallException {
    long deadline = System.nanoTime() + PEER_FIN_WAIT_NANOS;
    while (socket.info().state() == TcpInfo.ESTABLISHED) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            socket
                + ": the peer's FIN, handed over on loopback, did not arrive within "
                + PEER_FIN_WAIT_NANOS / 1_000_000
                + " ms");
      }
      LockSupport.parkNanos(100_000);
    }
  }

  /** Discards the socket without a trace on the wire if it was not resumed. */
  @Override
  public void close() {
    if (!resumed) {
      repair.socket().close();
      if (peerFin != null) {
        peerFin.close();
      }
    }
  }
}
