// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.Map;

/**
 * The operator's own figures on /q/metrics, beside JOSDK's reconcile counters: how migrations end,
 * the pause clients saw, how long each phase took, and the requests policies made.
 */
@ApplicationScoped
public class OperatorMetrics {
  private final MeterRegistry registry;

  public OperatorMetrics(MeterRegistry registry) {
    this.registry = registry;
  }

  /** A request reached its end (Completed, Failed or RolledBack). */
  public void ended(MigrationRequest mr) {
    MigrationRequestStatus st = mr.getStatus();
    Counter.builder("ferry_operator_migrations")
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
        Counter.builder("ferry_operator_connections")
            .description("Connections of ended requests, by outcome")
            .tag("outcome", e.getKey())
            .register(registry)
            .increment(e.getValue());
      }
    }
    if (st.getPauseMillis() != null) {
      DistributionSummary.builder("ferry_operator_client_pause_milliseconds")
          .description("The longest pause a client saw in a completed migration")
          .publishPercentileHistogram()
          .register(registry)
          .record(st.getPauseMillis());
    }
    if (st.getPhaseMillis() != null) {
      st.getPhaseMillis()
          .forEach(
              (phase, ms) ->
                  DistributionSummary.builder("ferry_operator_phase_milliseconds")
                      .description("How long each phase of a migration took")
                      .tag("phase", phase)
                      .register(registry)
                      .record(ms));
    }
  }

  /** A policy created a request for a node's announcement. */
  public void requestCreated(MigrationPolicy policy, String trigger) {
    Counter.builder("ferry_operator_policy_requests")
        .description("MigrationRequests created by policies, by trigger")
        .tag("trigger", trigger)
        .register(registry)
        .increment();
  }
}
