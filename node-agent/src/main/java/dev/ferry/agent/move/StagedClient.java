// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.sys.PeerSegment;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.util.logging.Logger;

/**
 * The client of a connection arriving on this node (a target, or the source rolling back), held at
 * this node's hold from the moment its socket is restored until that socket has taken everything
 * kept of the client's. The resume appends the kept bytes past the socket's rcv_nxt, which takes a
 * look and a write; a client segment reaching the socket between the two would be queued twice, and
 * the application would read those bytes twice. Where the address reaches this node before the
 * resume (the AWS path claims it first), the client's retransmissions come here meanwhile: the hold
 * drops them, keeps their payload, and the resume adds that to what the source kept.
 */
public final class StagedClient {
  private static final Logger LOG = Logger.getLogger(StagedClient.class.getName());

  private final ConnectionHold hold;
  private final HeldClientBytes keptHere; // null when kept bytes are not used (to compare)
  private final SocketState state;
  private final long deadlineNanos;

  private StagedClient(
      ConnectionHold hold, HeldClientBytes keptHere, SocketState state, long deadlineNanos) {
    this.hold = hold;
    this.keptHere = keptHere;
    this.state = state;
    this.deadlineNanos = deadlineNanos;
  }

  /**
   * Stops {@code state}'s client at this node's hold until {@link #resume}, or until {@code
   * deadlineNanos} ({@link System#nanoTime}), when the hold steps aside. Once the socket is
   * restored: a segment the socket took before this is older than the resume's look at rcv_nxt,
   * which counts it.
   *
   * @param keptHere what this node's hold keeps; null to use only what the source kept
   */
  public static StagedClient hold(
      ConnectionHold hold, HeldClientBytes keptHere, SocketState state, long deadlineNanos)
      throws SyscallException {
    hold.stage(state, deadlineNanos);
    return new StagedClient(hold, keptHere, state, deadlineNanos);
  }

  /**
   * Appends to {@code socket}'s receive queue what the client sent while held ({@code
   * keptBySource}, with what this node's hold kept meanwhile), only then lets the client's segments
   * reach the socket, and takes it out of repair mode ({@link RestoredSocket#resume(PeerSegment)}).
   * The hold entry stays, for the window probe, until {@link #release}.
   */
  public TcpSocket resume(RestoredSocket socket, byte[] keptBySource, PeerSegment peer)
      throws SyscallException {
    socket.receiveKept(withKeptHere(keptBySource));
    hold.wake(state, deadlineNanos);
    return socket.resume(peer);
  }

  /**
   * Best effort: a ring that cannot be read leaves what the source kept, and the client sends the
   * rest again after the resume, as it would have without a hold here.
   */
  private byte[] withKeptHere(byte[] keptBySource) {
    if (keptHere == null) {
      return keptBySource;
    }
    try {
      return keptHere.withKeptHere(state, keptBySource);
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              state.connection()
                  + ": what the hold here kept of the client's cannot be read ("
                  + e.getMessage()
                  + "); the client sends it again after the resume");
      return keptBySource;
    }
  }

  /** Ends this node's hold of the client: the socket is live, or gone. */
  public void release() throws SyscallException {
    hold.release(new HoldKey(state.local(), state.remote()));
  }
}
