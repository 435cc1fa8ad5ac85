// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import java.util.Arrays;

/**
 * How the benchmark turns token arrival times into stalls, and stalls into percentiles.
 *
 * <p>A client's stall in a window is the longest gap between two consecutive tokens that spans any
 * part of the window, less the stream's nominal interval (1 s / rate), and never below zero: how
 * much later than due the first token after the pause arrived. Since the server writes a token and
 * then waits one interval, a pause shorter than what was left of that wait is invisible to the
 * client, and shows as 0.
 */
final class Stalls {
  private Stalls() {}

  /**
   * The stall of one client whose token arrivals (consecutive, in order) are {@code arrivals}, over
   * the window [{@code from}, {@code to}]; -1 if no token arrived after {@code to}.
   */
  static long spanning(long[] arrivals, long intervalNanos, long from, long to) {
    if (arrivals.length == 0 || arrivals[arrivals.length - 1] <= to) {
      return -1;
    }
    long worst = 0;
    for (int k = 0; k + 1 < arrivals.length; k++) {
      if (arrivals[k + 1] >= from && arrivals[k] <= to) {
        worst = Math.max(worst, arrivals[k + 1] - arrivals[k] - intervalNanos);
      }
    }
    return worst;
  }

  /**
   * The same measure over gaps that lie wholly inside [{@code from}, {@code to}): the jitter of a
   * stream nothing happens to, the noise floor of the measurement on this machine.
   */
  static long within(long[] arrivals, long intervalNanos, long from, long to) {
    long worst = 0;
    for (int k = 0; k + 1 < arrivals.length; k++) {
      if (arrivals[k] >= from && arrivals[k + 1] < to) {
        worst = Math.max(worst, arrivals[k + 1] - arrivals[k] - intervalNanos);
      }
    }
    return worst;
  }

  /** Nearest-rank percentile of {@code values} (sorted here), q in (0, 1]; NaN if empty. */
  static double percentile(double[] values, double q) {
    if (values.length == 0) {
      return Double.NaN;
    }
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int rank = (int) Math.ceil(q * sorted.length);
    return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
  }

  static double max(double[] values) {
    return values.length == 0 ? Double.NaN : Arrays.stream(values).max().getAsDouble();
  }
}
