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
   * Points where a move stalls instead, and for how long: the agent waits there and carries on.
   * source-stalls-after-export: a peer that stops answering, a slow disk. target-stalls-on-header:
   * a target slow to take the header (a cold agent's first plan check and address took 172 ms),
   * well inside the source's wait for its answer (SourceMove.READY_WAIT), so that the source must
   * freeze after it.
   */
  static final java.util.Map<String, java.time.Duration> STALLS =
      java.util.Map.of(
          "source-stalls-after-export", java.time.Duration.ofSeconds(10),
          "target-stalls-on-header", java.time.Duration.ofMillis(600));

  /**
   * A point named with this suffix ("source-after-export/stall") stalls the side that reaches it
   * for {@link #POINT_STALL} instead of stopping it: long enough for the fault suite to kill
   * another process (the peer agent, the operator) at that boundary, which then finds it there.
   */
  static final String STALL_SUFFIX = "/stall";

  static final java.time.Duration POINT_STALL = java.time.Duration.ofSeconds(4);

  /**
   * A point named with this suffix ("source-after-export/oom") makes the side that reaches it fill
   * its heap there, on the move's own thread, until the JVM throws OutOfMemoryError: what a state
   * larger than the agent's memory would do. The agent's JVM options end the process on it
   * (-XX:+ExitOnOutOfMemoryError), so that it restarts and recovers as after a crash; without them
   * the agent would go on with a move half done and its threads in no known state.
   */
  static final String OOM_SUFFIX = "/oom";

  private final boolean enabled;
  private final java.nio.file.Path reached;

  /**
   * @param reached where each point reached is noted before the agent stops: the operator retries a
   *     Move on the restarted agent, and a point must stop a migration once, not on every retry
   */
  public FaultPoints(boolean enabled, java.nio.file.Path reached) {
    this.enabled = enabled;
    this.reached = reached;
  }

  /**
   * Stops the agent if {@code requested} names {@code point}; stalls it there for {@link
   * #POINT_STALL} if it names the point with {@link #STALL_SUFFIX}.
   */
  public void reach(String requested, String point, String migrationId) {
    if (!enabled) {
      return;
    }
    if (point.equals(requested) && firstTime(migrationId, point)) {
      LOG.severe(() -> "fault point " + point + " reached: stopping the agent as a crash would");
      System.err.flush();
      Runtime.getRuntime().halt(86);
    }
    if ((point + OOM_SUFFIX).equals(requested) && firstTime(migrationId, point + "-oom")) {
      LOG.severe(() -> "fault point " + point + " reached: filling the heap");
      fillHeap();
    }
    if ((point + STALL_SUFFIX).equals(requested)) {
      LOG.severe(() -> "fault point " + point + " reached: stalling for " + POINT_STALL);
      try {
        Thread.sleep(POINT_STALL.toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Allocates until the JVM throws OutOfMemoryError, which this does not catch. */
  private static void fillHeap() {
    java.util.List<long[]> kept = new java.util.ArrayList<>();
    for (; ; ) {
      kept.add(new long[1 << 20]); // 8 MiB each
    }
  }

  /** Notes that the migration reached the point; false if it had already. */
  private boolean firstTime(String migrationId, String point) {
    try {
      java.nio.file.Files.createDirectories(reached);
      java.nio.file.Files.createFile(reached.resolve(migrationId + "." + point));
      return true;
    } catch (java.nio.file.FileAlreadyExistsException again) {
      LOG.warning(() -> "fault point " + point + " of " + migrationId + " reached again: passed");
      return false;
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /**
   * Stalls the move here for its time ({@link #STALLS}) if {@code requested} names {@code stall}.
   */
  public void stall(String requested, String stall) throws InterruptedException {
    if (enabled && stall.equals(requested)) {
      java.time.Duration d = STALLS.get(stall);
      LOG.severe(() -> "fault point " + stall + " reached: stalling for " + d);
      Thread.sleep(d.toMillis());
    }
  }

  public static String check(String requested) {
    String point = requested;
    for (String suffix : java.util.List.of(STALL_SUFFIX, OOM_SUFFIX)) {
      if (requested.endsWith(suffix)) {
        point = requested.substring(0, requested.length() - suffix.length());
      }
    }
    if (!requested.isEmpty() && !POINTS.contains(point) && !STALLS.containsKey(requested)) {
      throw new BadRequest(
          "fault: '"
              + requested
              + "' is none of "
              + POINTS
              + " (each may end in "
              + STALL_SUFFIX
              + " or "
              + OOM_SUFFIX
              + ") or "
              + new java.util.TreeSet<>(STALLS.keySet()));
    }
    return requested;
  }
}
