// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import java.time.Duration;

/**
 * What one node's applications may take of the agent through the handoff socket, which any process
 * that mounts it can reach: each session is a thread and a socket, each frame being read is memory.
 *
 * @param maxSessions sessions open at once, in all; the next is refused (ERROR 10) and closed
 * @param maxSessionsPerNamespace sessions open at once from one network namespace (one pod), so
 *     that a pod that opens sessions without end cannot take the others' share
 * @param frameTimeout how long the rest of a frame may take once its first byte has come; a peer
 *     that starts a frame and stalls is answered ERROR 8 and closed
 */
public record HandoffLimits(int maxSessions, int maxSessionsPerNamespace, Duration frameTimeout) {

  /** What the agent uses unless told otherwise (ferry.agent.handoff.*). */
  public static final HandoffLimits DEFAULTS = new HandoffLimits(256, 32, Duration.ofSeconds(10));

  public HandoffLimits {
    if (maxSessions < 1) {
      throw new IllegalArgumentException(
          "ferry.agent.handoff.max-sessions is " + maxSessions + "; it must be 1 or more");
    }
    if (maxSessionsPerNamespace < 1) {
      throw new IllegalArgumentException(
          "ferry.agent.handoff.max-sessions-per-namespace is "
              + maxSessionsPerNamespace
              + "; it must be 1 or more");
    }
    if (frameTimeout.isNegative() || frameTimeout.isZero()) {
      throw new IllegalArgumentException(
          "ferry.agent.handoff.frame-timeout is " + frameTimeout + "; it must be more than 0");
    }
  }
}
