// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.api.v1alpha1.ConnectionPhase;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Map;
import java.util.function.Supplier;

/** What the agent tells Prometheus; names as they appear at /q/metrics. */
public final class AgentMetrics {
  private final MeterRegistry registry;

  public AgentMetrics(MeterRegistry registry) {
    this.registry = registry;
  }

  /** ferry_agent_phase_seconds{phase}: one sample per migration per phase on this node. */
  public void phase(String phase, long micros) {
    Timer.builder("ferry.agent.phase")
        .description("How long a migration's phase took on this node")
        .tag("phase", phase)
        .publishPercentileHistogram(false)
        .register(registry)
        .record(Duration.ofNanos(micros * 1000));
  }

  /** ferry_agent_migrations_total{role,call}: migrations this node took part in. */
  public void migration(String role) {
    Counter.builder("ferry.agent.migrations")
        .description("Migrations this node took part in")
        .tag("role", role)
        .register(registry)
        .increment();
  }

  /** ferry_agent_records_set_aside_total: saved migrations that could not be read at start. */
  public void setAside() {
    Counter.builder("ferry.agent.records.set.aside")
        .description("Saved migrations that could not be read at start and were set aside")
        .register(registry)
        .increment();
  }

  /** ferry_agent_callers_refused_total{reason}. */
  public void refused(String reason, String caller) {
    Counter.builder("ferry.agent.callers.refused")
        .description("Callers the API turned away")
        .tag("reason", reason)
        .register(registry)
        .increment();
  }

  /** ferry_agent_connections{phase}: connections of migrations on this node, by phase. */
  public void connections(Supplier<Map<ConnectionPhase, Integer>> byPhase) {
    for (ConnectionPhase phase : ConnectionPhase.values()) {
      if (phase == ConnectionPhase.PHASE_UNSPECIFIED || phase == ConnectionPhase.UNRECOGNIZED) {
        continue;
      }
      Gauge.builder("ferry.agent.connections", () -> byPhase.get().getOrDefault(phase, 0))
          .description("Connections of migrations on this node, by phase")
          .tag("phase", phase.name())
          .register(registry);
    }
  }

  /** ferry_agent_holds_active and ferry_agent_hold_probes_answered. */
  public void holds(Supplier<Integer> active, Supplier<Long> probesAnswered) {
    registry.gauge("ferry.agent.holds.active", Tags.empty(), active, s -> s.get());
    registry
        .more()
        .counter("ferry.agent.hold.probes.answered", Tags.empty(), probesAnswered, s -> s.get());
  }

  /** ferry_agent_interruption_notices_total{kind}: spot notices this node reported. */
  public void interruptionNotice(String kind) {
    registry.counter("ferry.agent.interruption.notices", "kind", kind).increment();
  }

  public MeterRegistry registry() {
    return registry;
  }
}
