// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.distribution.DistributionStatisticConfig;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Arrays;

/**
 * Replaces the percentile histograms that libraries ask for (JOSDK's reconcile timers publish one,
 * some 70 bucket series each, and percentiles computed in the process that Prometheus cannot add
 * up) with a few explicit buckets. Quarkus applies every MeterFilter bean to its registries.
 */
@Singleton
public class FewBuckets {
  /** A reconcile, or any other call the operator times: milliseconds to seconds. */
  static final Duration[] TIMER_BUCKETS = {
    Duration.ofMillis(5),
    Duration.ofMillis(10),
    Duration.ofMillis(25),
    Duration.ofMillis(50),
    Duration.ofMillis(100),
    Duration.ofMillis(250),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofSeconds(5),
    Duration.ofSeconds(10),
  };

  @Produces
  @Singleton
  MeterFilter fewBuckets() {
    return filter();
  }

  /** The filter itself, for a registry made outside CDI. */
  static MeterFilter filter() {
    return new MeterFilter() {
      @Override
      public DistributionStatisticConfig configure(
          Meter.Id id, DistributionStatisticConfig config) {
        if (!Boolean.TRUE.equals(config.isPercentileHistogram())) {
          return config;
        }
        DistributionStatisticConfig.Builder few =
            DistributionStatisticConfig.builder().percentilesHistogram(false).percentiles();
        if (id.getType() == Meter.Type.TIMER) {
          // A timer's buckets are in its base unit, nanoseconds.
          few.serviceLevelObjectives(
              Arrays.stream(TIMER_BUCKETS).mapToDouble(d -> (double) d.toNanos()).toArray());
        }
        return few.build().merge(config);
      }
    };
  }
}
