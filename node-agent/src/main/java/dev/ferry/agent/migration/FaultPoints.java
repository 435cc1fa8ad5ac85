// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import java.util.logging.Logger;

/**
 * Deterministic crashes for the fault suite, as CRIU's {@code --fault} and KubeVirt's forced
 * failures do: a move that names a point stops this agent there, at once, as a crash would (no
 * shutdown hooks, nothing tidied). Honoured only when the agent runs with {@code
 * ferry.agent.fault-points=true}.
 */
public final class FaultPoints {
  private static final Logger LOG = Logger.getLogger(FaultPoints.class.getName());

  /** The points a move passes, in order; the side that reaches each is named first. */
  static final java.util.List<String> POINTS =
      java.util.List.of(
          "source-after-freeze",
          "source-after-export",
          "target-after-stage",
          "source-after-address",
          "source-before-commit",
          "target-after-commit",
          "target-after-resume",
          "source-before-release");

  /**
   * Points where a move stalls instead (a peer that stops answering, a slow disk): the agent waits
   * {@link #STALL} there and carries on.
   */
  public static final java.util.List<String> STALLS =
      java.util.List.of("source-stalls-after-export");

  static final java.time.Duration STALL = java.time.Duration.ofSeconds(10);

  private final boolean enabled;

  public FaultPoints(boolean enabled) {
    this.enabled = enabled;
  }

  /** Stops the agent if {@code requested} names {@code point}. */
  public void reach(String requested, String point) {
    if (enabled && point.equals(requested)) {
      LOG.severe(() -> "fault point " + point + " reached: stopping the agent as a crash would");
      System.err.flush();
      Runtime.getRuntime().halt(86);
    }
  }

  /** Stalls the move here for {@link #STALL} if {@code requested} names {@code stall}. */
  public void stall(String requested, String stall) throws InterruptedException {
    if (enabled && stall.equals(requested)) {
      LOG.severe(() -> "fault point " + stall + " reached: stalling for " + STALL);
      Thread.sleep(STALL.toMillis());
    }
  }

  public static String check(String requested) {
    if (!requested.isEmpty() && !POINTS.contains(requested) && !STALLS.contains(requested)) {
      throw new BadRequest("fault: '" + requested + "' is none of " + POINTS + " or " + STALLS);
    }
    return requested;
  }
}
