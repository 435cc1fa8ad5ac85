// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.Map;

/**
 * The operator's own figures on /q/metrics, beside JOSDK's reconcile counters: how migrations end,
 * the pause clients saw, how long each phase took, and the requests policies made. Durations are in
 * seconds, as histograms with a few explicit buckets each: Micrometer's percentile histogram would
 * publish up to 276 bucket series per meter.
 */
@ApplicationScoped
public class OperatorMetrics {
  /** The pause a client sees: a few milliseconds when all goes well, the hold limit at worst. */
  static final Duration[] PAUSE_BUCKETS = {
    Duration.ofMillis(1),
    Duration.ofMillis(5),
    Duration.ofMillis(10),
    Duration.ofMillis(25),
    Duration.ofMillis(50),
    Duration.ofMillis(100),
    Duration.ofMillis(250),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofSeconds(5),
  };

  /**
   * A phase: from milliseconds (Pending) to minutes (Moving with large states, or waiting; Prepared
   * waits up to its deadline, 9m for a policy's rebalance requests).
   */
  static final Duration[] PHASE_BUCKETS = {
    Duration.ofMillis(10),
    Duration.ofMillis(50),
    Duration.ofMillis(100),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofSeconds(5),
    Duration.ofSeconds(10),
    Duration.ofSeconds(30),
    Duration.ofMinutes(1),
    Duration.ofMinutes(5),
    Duration.ofMinutes(10),
  };

  private final MeterRegistry registry;

  public OperatorMetrics(MeterRegistry registry) {
    this.registry = registry;
  }

  /** A request reached its end (Completed, Failed or RolledBack). */
  public void ended(MigrationRequest mr) {
    MigrationRequestStatus st = mr.getStatus();
    Counter.builder("ferry.operator.migrations")
        .description("MigrationRequests that reached an end, by phase")
        .tag("phase", st.getPhase().name())
        .tag("dry_run", Boolean.toString(mr.getSpec().isDryRun()))
        .register(registry)
        .increment();
    if (st.getConnections() != null) {
      for (Map.Entry<String, Integer> e :
          Map.of(
                  "migrated", st.getConnections().getMigrated(),
                  "kept", st.getConnections().getKept(),
                  "failed", st.getConnections().getFailed(),
                  "rolled_back", st.getConnections().getRolledBack())
              .entrySet()) {
        Counter.builder("ferry.operator.connections")
            .description("Connections of ended requests, by outcome")
            .tag("outcome", e.getKey())
            .register(registry)
            .increment(e.getValue());
      }
    }
    if (st.getPauseMillis() != null) {
      Timer.builder("ferry.operator.client.pause")
          .description("The longest pause a client saw in a completed migration")
          .serviceLevelObjectives(PAUSE_BUCKETS)
          .register(registry)
          .record(millis(st.getPauseMillis()));
    }
    if (st.getPhaseMillis() != null) {
      // Only the request's own phases: the agents' steps (agent.source.freeze, ...) beside them in
      // phaseMillis are each agent's ferry_agent_phase_seconds already.
      for (Phase phase : Phase.values()) {
        Double ms = st.getPhaseMillis().get(phase.name());
        if (ms != null) {
          Timer.builder("ferry.operator.phase")
              .description("How long each phase of a migration took")
              .tag("phase", phase.name())
              .serviceLevelObjectives(PHASE_BUCKETS)
              .register(registry)
              .record(millis(ms));
        }
      }
    }
  }

  /** A policy created a request for a node's announcement. */
  public void requestCreated(MigrationPolicy policy, String trigger) {
    Counter.builder("ferry.operator.policy.requests")
        .description("MigrationRequests created by policies, by trigger")
        .tag("trigger", trigger)
        .register(registry)
        .increment();
  }

  private static Duration millis(double ms) {
    return Duration.ofNanos(Math.round(ms * 1_000_000));
  }
}
