// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import java.util.Optional;

/**
 * The TCP states a connection can move in, and which FINs each has behind it: the FIN accounting of
 * an export and a restore.
 *
 * <p>The kernel counts a FIN as one sequence number: once this side's FIN is queued, write_seq (and
 * SIOCOUTQ until the peer acknowledges it, SIOCOUTQNSD until it is sent) includes it; once the
 * peer's FIN has arrived, rcv_nxt includes it (SIOCINQ does not). Neither FIN is a byte of a queue,
 * so a restore rebuilds the socket ESTABLISHED with the sequence numbers of its data only, then
 * replays the FINs: the peer's by handing the socket the segment again ({@code PeerSegment}), this
 * side's with {@code shutdown(SHUT_WR)}, which the kernel sends after every queued byte.
 */
public enum MovableState {
  ESTABLISHED(1, false, false, false),
  /** We sent FIN, not yet acknowledged; the peer may still send. */
  FIN_WAIT1(4, true, false, false),
  /** Our FIN is acknowledged; the peer may still send. */
  FIN_WAIT2(5, true, true, false),
  /** The peer sent FIN; we may still send. */
  CLOSE_WAIT(8, false, false, true),
  /** The peer sent FIN, then we did; ours is not acknowledged. */
  LAST_ACK(9, true, false, true),
  /** Both sent FIN at once; ours is not acknowledged. */
  CLOSING(11, true, false, true);

  /** The number in tcp_info and sock_diag (net/tcp_states.h). */
  public final int kernelState;

  /** Our FIN is queued: write_seq counts it. */
  public final boolean sentFin;

  /** The peer acknowledged our FIN: SIOCOUTQ no longer counts it. */
  public final boolean finAcknowledged;

  /** The peer's FIN arrived: rcv_nxt counts it. */
  public final boolean receivedFin;

  MovableState(int kernelState, boolean sentFin, boolean finAcknowledged, boolean receivedFin) {
    this.kernelState = kernelState;
    this.sentFin = sentFin;
    this.finAcknowledged = finAcknowledged;
    this.receivedFin = receivedFin;
  }

  /** The state for a kernel state number, empty for one Ferry cannot move. */
  public static Optional<MovableState> of(int kernelState) {
    for (MovableState s : values()) {
      if (s.kernelState == kernelState) {
        return Optional.of(s);
      }
    }
    return Optional.empty();
  }

  /** Our FIN is in the send queue's sequence space, sent or not, but not acknowledged. */
  public boolean finInSendQueue() {
    return sentFin && !finAcknowledged;
  }
}
