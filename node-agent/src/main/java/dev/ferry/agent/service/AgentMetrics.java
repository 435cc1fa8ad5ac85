// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.api.v1alpha1.ConnectionPhase;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What the agent tells Prometheus; names as they appear at /q/metrics.
 *
 * <p>Every gauge holds its state strongly: Micrometer's {@code registry.gauge(name, obj, fn)} and
 * function counters keep only a weak reference to {@code obj}, so a gauge on a method reference
 * that nothing else holds reads NaN after the next garbage collection.
 */
public final class AgentMetrics {
  /**
   * The buckets of every step's duration: a step takes from under a millisecond (a resume) to
   * seconds (a transfer of large states). A few explicit ones, not Micrometer's percentile
   * histogram, which publishes some 70 buckets for each series.
   */
  static final Duration[] STEP_BUCKETS = {
    Duration.ofMillis(1),
    Duration.ofMillis(5),
    Duration.ofMillis(10),
    Duration.ofMillis(50),
    Duration.ofMillis(100),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofSeconds(5),
    Duration.ofSeconds(30),
  };

  private final MeterRegistry registry;

  public AgentMetrics(MeterRegistry registry) {
    this.registry = registry;
  }

  /**
   * ferry_agent_phase_seconds{phase}: a histogram of how long each step of a move (freeze, export,
   * stage, resume, ...) took on this node, one sample per migration per step.
   */
  public void phase(String phase, long micros) {
    Timer.builder("ferry.agent.phase")
        .description("How long a step of a migration took on this node")
        .tag("phase", phase)
        .serviceLevelObjectives(STEP_BUCKETS)
        .register(registry)
        .record(Duration.ofNanos(micros * 1000));
  }

  /** ferry_agent_migrations_total{role}: migrations this node took part in. */
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

  /**
   * ferry_agent_handoff_refused_total{reason}: ERRORs the agent sent to applications on the handoff
   * socket, and sessions it refused, by the error's name (too-large, too-many-sessions, ...).
   */
  public void handoffRefused(String reason) {
    Counter.builder("ferry.agent.handoff.refused")
        .description(
            "Refusals on the handoff socket: ERRORs sent to applications, sessions refused")
        .tag("reason", reason)
        .register(registry)
        .increment();
  }

  /**
   * ferry_agent_receive_bytes: application state held now for arrivals in progress (bounded by
   * ferry.agent.max-receive-bytes).
   */
  public void receiving(Supplier<Long> held) {
    gauge(
        Gauge.builder("ferry.agent.receive.bytes", held)
            .description("Application state held now for arrivals in progress")
            .baseUnit("bytes"));
  }

  /** ferry_agent_connections{phase}: connections of migrations on this node, by phase. */
  public void connections(Supplier<Map<ConnectionPhase, Integer>> byPhase) {
    for (ConnectionPhase phase : ConnectionPhase.values()) {
      if (phase == ConnectionPhase.PHASE_UNSPECIFIED || phase == ConnectionPhase.UNRECOGNIZED) {
        continue;
      }
      gauge(
          Gauge.builder("ferry.agent.connections", () -> byPhase.get().getOrDefault(phase, 0))
              .description("Connections of migrations on this node, by phase")
              .tag("phase", phase.name()));
    }
  }

  /**
   * ferry_agent_holds_active (connections the hold keeps a client waiting for now) and
   * ferry_agent_hold_probes_answered (keep-alive probes the hold answered for them). The second is
   * a gauge, not a counter: it is a sum over the holds in force, and falls when one is released.
   * Both read -1 when the hold's map cannot be read.
   */
  public void holds(Supplier<Integer> active, Supplier<Long> probesAnswered) {
    gauge(
        Gauge.builder("ferry.agent.holds.active", active)
            .description("Connections whose clients the hold keeps waiting now"));
    gauge(
        Gauge.builder("ferry.agent.hold.probes.answered", probesAnswered)
            .description("Keep-alive probes the hold answered for the connections it holds now"));
  }

  /**
   * ferry_agent_hold_client_segments_total{outcome="kept"|"lost"}: segments with data that held
   * clients sent, which the hold kept for the restored socket, or could not keep (its ring full, a
   * segment too long); a lost one the client sends again after its retransmission timeout. Counted
   * by the programs since they were loaded (an agent restart keeps them); -1 when unreadable.
   */
  private final java.util.List<Supplier<Long>> keptSuppliers =
      new java.util.concurrent.CopyOnWriteArrayList<>();

  public void keptClientSegments(Supplier<Long> kept, Supplier<Long> lost) {
    for (var outcome : Map.of("kept", kept, "lost", lost).entrySet()) {
      io.micrometer.core.instrument.FunctionCounter.builder(
              "ferry.agent.hold.client.segments", outcome.getValue(), s -> s.get().doubleValue())
          .description("Segments with data from held clients, kept for the restored socket or lost")
          .tag("outcome", outcome.getKey())
          .register(registry);
      // A function counter holds its object weakly, and nothing else holds these lambdas.
      keptSuppliers.add(outcome.getValue());
    }
  }

  /** ferry_agent_interruption_notices_total{kind}: spot notices this node reported. */
  public void interruptionNotice(String kind) {
    Counter.builder("ferry.agent.interruption.notices")
        .description("Spot interruption notices and rebalance recommendations this node reported")
        .tag("kind", kind)
        .register(registry)
        .increment();
  }

  public MeterRegistry registry() {
    return registry;
  }

  /** The one way a gauge is registered here: holding its supplier strongly (see the class). */
  private void gauge(Gauge.Builder<?> gauge) {
    gauge.strongReference(true).register(registry);
  }
}
