// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.v1alpha1.ConnectionPhase;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.lang.ref.Reference;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The agent's meters, registered as AgentRuntime registers them, read as Prometheus reads them. */
class AgentMetricsTest {
  private final PrometheusMeterRegistry registry =
      new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final AgentMetrics metrics = new AgentMetrics(registry);

  /** Stands for AgentRuntime and Migrations: alive all along, read through method references. */
  private static final class NodeState {
    int activeHolds() {
      return 3;
    }

    long probesAnswered() {
      return 7;
    }

    long receiveBytes() {
      return 4096;
    }

    Map<ConnectionPhase, Integer> phases() {
      return Map.of(ConnectionPhase.FROZEN, 2);
    }
  }

  @Test
  void everyGaugeReadsANumberAfterAGarbageCollection() {
    NodeState node = new NodeState();
    // As AgentRuntime.start does: the method references are new objects nobody else holds.
    metrics.connections(node::phases);
    metrics.holds(node::activeHolds, node::probesAnswered);
    metrics.keptClientSegments(() -> 12L, () -> 1L);
    metrics.receiving(node::receiveBytes);
    metrics.handoffRefused("too-many-sessions");
    metrics.handoffRefused("too-many-sessions");

    collectGarbage();

    List<Meter> gauges = registry.getMeters().stream().filter(m -> m instanceof Gauge).toList();
    assertThat(gauges)
        .extracting(m -> m.getId().getName())
        .contains(
            "ferry.agent.holds.active",
            "ferry.agent.hold.probes.answered",
            "ferry.agent.connections");
    for (Meter meter : registry.getMeters()) {
      meter
          .measure()
          .forEach(
              m ->
                  assertThat(m.getValue())
                      .as("%s %s", meter.getId().getName(), meter.getId().getTags())
                      .isFinite());
    }
    assertThat(registry.get("ferry.agent.holds.active").gauge().value()).isEqualTo(3);
    assertThat(registry.get("ferry.agent.hold.probes.answered").gauge().value()).isEqualTo(7);
    assertThat(
            registry
                .get("ferry.agent.hold.client.segments")
                .tag("outcome", "kept")
                .functionCounter()
                .count())
        .isEqualTo(12);
    assertThat(registry.scrape())
        .contains("ferry_agent_hold_client_segments_total{outcome=\"lost\",} 1.0");
    assertThat(registry.get("ferry.agent.connections").tag("phase", "FROZEN").gauge().value())
        .isEqualTo(2);
    assertThat(registry.scrape())
        .doesNotContain("NaN")
        .contains("ferry_agent_receive_bytes 4096.0")
        .contains("ferry_agent_handoff_refused_total{reason=\"too-many-sessions\",} 2.0");
    Reference.reachabilityFence(node); // the state stays alive, as the agent's does
  }

  @Test
  void eachStepsHistogramPublishesAFewBuckets() {
    for (String step : List.of("freeze", "export", "stage", "resume", "receive")) {
      metrics.phase(step, 1_500); // 1.5 ms
      metrics.phase(step, 2_000_000); // 2 s
    }

    Map<String, Integer> buckets = bucketSeries(registry.scrape());

    assertThat(buckets)
        .as("bucket series of each histogram, by name and labels")
        .containsKey("ferry_agent_phase_seconds{phase=\"freeze\"}")
        .hasSize(5);
    buckets.forEach((series, n) -> assertThat(n).as(series).isBetween(4, 12));
  }

  /** Counts the {@code _bucket} lines of each histogram series in a Prometheus scrape. */
  static Map<String, Integer> bucketSeries(String scrape) {
    Pattern bucket = Pattern.compile("^(\\w+)_bucket\\{(.*)}\\s", Pattern.MULTILINE);
    Map<String, Integer> count = new TreeMap<>();
    Matcher m = bucket.matcher(scrape);
    while (m.find()) {
      String labels = m.group(2).replaceAll("le=\"[^\"]*\",?", "").replaceAll(",$", "");
      count.merge(m.group(1) + "{" + labels + "}", 1, Integer::sum);
    }
    return count;
  }

  /**
   * Runs the garbage collector until it has cleared a weakly held canary: by then, whatever only a
   * weak reference held is gone too.
   */
  static void collectGarbage() {
    WeakReference<Object> canary = new WeakReference<>(new Object());
    List<byte[]> churn = new ArrayList<>();
    for (int round = 0; canary.get() != null; round++) {
      assertThat(round).as("rounds of System.gc() until the canary is cleared").isLessThan(200);
      System.gc();
      for (int i = 0; i < 64; i++) {
        churn.add(new byte[64 * 1024]);
      }
      churn.clear();
    }
  }
}
