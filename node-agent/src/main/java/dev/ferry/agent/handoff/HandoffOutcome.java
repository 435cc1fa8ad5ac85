// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import dev.ferry.sys.TcpSocket;

/** How an application answered the agent about one connection. */
public sealed interface HandoffOutcome {
  /**
   * It handed the connection over (freeze): its socket and its state. Once the socket is exported,
   * call {@link Session#released}; if the move stops before that, {@link Session#returned}.
   *
   * @param appendsToPrecopy true if {@code state} is only what changed since the state offered
   *     through {@link HandoffServer#precopy}, to be appended to it; false if it is the whole state
   */
  record Frozen(
      Session session, long requestId, TcpSocket socket, byte[] state, boolean appendsToPrecopy)
      implements HandoffOutcome {}

  /** It took the connection over (takeover); call {@link Session#resumed} once it is live. */
  record Taken(Session session, long requestId) implements HandoffOutcome {}

  /** It said no, and keeps the connection (freeze) or leaves it (takeover). */
  record Declined(String reason) implements HandoffOutcome {}

  /** It went silent for too long: on a freeze the connection stays where it is, untouched. */
  record NotAnswered(String why) implements HandoffOutcome {}

  /** No application in the connection's pod (its network namespace) has registered its port. */
  record NoApplication(int port) implements HandoffOutcome {}
}
