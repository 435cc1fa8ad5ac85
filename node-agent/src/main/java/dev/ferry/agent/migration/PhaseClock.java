// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BiConsumer;

/** How long each of a migration's phases took on this node, for its status and the metrics. */
public final class PhaseClock {
  private final Map<String, Long> micros = new LinkedHashMap<>();
  private final BiConsumer<String, Long> record;

  public PhaseClock(BiConsumer<String, Long> record) {
    this.record = record;
  }

  /** Runs {@code work} as {@code phase}; a phase run again (a retried call) adds its time. */
  public <T> T time(String phase, java.util.function.Supplier<T> work) {
    long start = System.nanoTime();
    try {
      return work.get();
    } finally {
      long took = (System.nanoTime() - start) / 1000;
      synchronized (this) {
        micros.merge(phase, took, Long::sum);
      }
      record.accept(phase, took);
    }
  }

  /** Adds {@code micros} to {@code phase}, timed by the caller. */
  public void add(String phase, long micros) {
    synchronized (this) {
      this.micros.merge(phase, micros, Long::sum);
    }
    record.accept(phase, micros);
  }

  public synchronized Map<String, Long> snapshot() {
    return Map.copyOf(micros);
  }
}
