// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/** Runs one step for many connections at once on the agent's workers. */
public final class Workers {
  private Workers() {}

  public interface Work<T, R> {
    R run(T item) throws Exception;
  }

  /**
   * Runs {@code work} for every item on {@code pool}; the results come back in the items' order.
   * Every item runs to its end even when another fails, so that no finished result is lost; the
   * first failure is then thrown. Steps that must not lose a result report failures as values.
   */
  public static <T, R> List<R> each(ExecutorService pool, Collection<T> items, Work<T, R> work) {
    if (items.size() == 1) {
      // One connection (the common stream): no hop to another thread.
      try {
        return java.util.Collections.singletonList(work.run(items.iterator().next()));
      } catch (Exception e) {
        throw new IllegalStateException(e.getMessage(), e);
      }
    }
    List<Future<R>> futures = new ArrayList<>(items.size());
    for (T item : items) {
      futures.add(pool.submit(() -> work.run(item)));
    }
    List<R> out = new ArrayList<>(items.size());
    RuntimeException first = null;
    for (Future<R> f : futures) {
      try {
        out.add(f.get());
      } catch (ExecutionException e) {
        out.add(null);
        if (first == null) {
          first = new IllegalStateException(e.getCause().getMessage(), e.getCause());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted", e);
      }
    }
    if (first != null) {
      throw first;
    }
    return out;
  }
}
