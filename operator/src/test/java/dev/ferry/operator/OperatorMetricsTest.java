// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.ConnectionCounts;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The operator's meters as Prometheus scrapes them: durations in seconds, a few buckets each. */
class OperatorMetricsTest {
  private final PrometheusMeterRegistry registry =
      new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final OperatorMetrics metrics = new OperatorMetrics(registry);

  @Test
  void durationsAreSecondsHistogramsWithAFewBucketsEach() {
    metrics.ended(ended(Phase.Completed, 4.2, Map.of("Preparing", 35.0, "Moving", 850.0)));
    metrics.ended(ended(Phase.RolledBack, 1800.0, Map.of("Preparing", 12.0, "Moving", 95_000.0)));

    String scrape = registry.scrape();
    Map<String, Integer> buckets = bucketSeries(scrape);

    assertThat(buckets)
        .as("bucket series of each histogram, by name and labels")
        .containsOnlyKeys(
            "ferry_operator_client_pause_seconds{}",
            "ferry_operator_phase_seconds{phase=\"Preparing\"}",
            "ferry_operator_phase_seconds{phase=\"Moving\"}");
    buckets.forEach((series, n) -> assertThat(n).as(series).isBetween(4, 12));
    // 4.2 ms and 1.8 s, in seconds: one under 5 ms, both under +Inf.
    assertThat(scrape)
        .contains("ferry_operator_client_pause_seconds_bucket{le=\"0.005\",} 1.0")
        .contains("ferry_operator_client_pause_seconds_count 2.0")
        .contains("ferry_operator_migrations_total{dry_run=\"false\",phase=\"Completed\",} 1.0")
        .contains("ferry_operator_connections_total{outcome=\"migrated\",} 5.0")
        .doesNotContain("milliseconds");
  }

  @Test
  void theAgentsStepsInPhaseMillisAreNotTheOperatorsPhases() {
    metrics.ended(ended(Phase.Completed, 3.0, Map.of("Moving", 40.0, "agent.source.freeze", 2.0)));

    assertThat(bucketSeries(registry.scrape()))
        .containsOnlyKeys(
            "ferry_operator_client_pause_seconds{}",
            "ferry_operator_phase_seconds{phase=\"Moving\"}");
  }

  @Test
  void aLibrarysPercentileHistogramBecomesAFewBuckets() {
    registry.config().meterFilter(FewBuckets.filter());
    // As JOSDK's MicrometerMetrics times each reconcile.
    Timer reconcile =
        Timer.builder("operator.sdk.controllers.execution.reconcile")
            .tag("controller", "migrationrequest")
            .publishPercentiles(0.3, 0.5, 0.95)
            .publishPercentileHistogram()
            .register(registry);
    reconcile.record(Duration.ofMillis(3));
    reconcile.record(Duration.ofSeconds(2));

    String scrape = registry.scrape();

    assertThat(bucketSeries(scrape))
        .containsOnlyKeys(
            "operator_sdk_controllers_execution_reconcile_seconds{controller=\"migrationrequest\"}")
        .allSatisfy((series, n) -> assertThat(n).as(series).isBetween(4, 12));
    assertThat(scrape).doesNotContain("quantile=");
  }

  private static MigrationRequest ended(Phase end, double pauseMillis, Map<String, Double> phases) {
    MigrationRequest mr = new MigrationRequest();
    mr.setMetadata(new ObjectMetaBuilder().withNamespace("shop").withName("move-1").build());
    mr.setSpec(new MigrationRequestSpec());
    MigrationRequestStatus st = new MigrationRequestStatus();
    st.setPhase(end);
    st.setPauseMillis(pauseMillis);
    st.setPhaseMillis(phases);
    ConnectionCounts counts = new ConnectionCounts();
    counts.setTotal(5);
    counts.setMigrated(end == Phase.Completed ? 5 : 0);
    counts.setRolledBack(end == Phase.Completed ? 0 : 5);
    st.setConnections(counts);
    mr.setStatus(st);
    return mr;
  }

  /** Counts the {@code _bucket} lines of each histogram series in a Prometheus scrape. */
  private static Map<String, Integer> bucketSeries(String scrape) {
    Pattern bucket = Pattern.compile("^(\\w+)_bucket\\{(.*)}\\s", Pattern.MULTILINE);
    Map<String, Integer> count = new TreeMap<>();
    Matcher m = bucket.matcher(scrape);
    while (m.find()) {
      String labels = m.group(2).replaceAll("le=\"[^\"]*\",?", "").replaceAll(",$", "");
      count.merge(m.group(1) + "{" + labels + "}", 1, Integer::sum);
    }
    return count;
  }
}
