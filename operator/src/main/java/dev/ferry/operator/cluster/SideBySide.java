// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * API requests that depend on nothing of each other, made at once: a migration then waits for the
 * slowest of them, not for their sum. Each is a round trip to the API server (10–18 ms each on the
 * test server under load, a few on a real one), and the operator's time per migration is mostly a
 * chain of them (e2e/BENCHMARK.md, "The operator at scale").
 */
public final class SideBySide {
  private SideBySide() {}

  /** At most this many requests run beside their callers at once; more run on their callers. */
  static final int MOST = 32;

  /**
   * Daemon threads, made as needed and kept a minute: a request's thread waits on the network, not
   * on a core. Bounded: past {@link #MOST} a request runs on its caller's thread, one after the
   * other as before, so a burst of reconciles cannot make a thread each.
   */
  private static final ExecutorService POOL =
      new ThreadPoolExecutor(
          0,
          MOST,
          60,
          TimeUnit.SECONDS,
          new SynchronousQueue<>(),
          r -> {
            Thread t = new Thread(r, "api-side-by-side");
            t.setDaemon(true);
            return t;
          },
          new ThreadPoolExecutor.CallerRunsPolicy());

  /**
   * Runs {@code other} on another thread while this one runs {@code first}, and returns when both
   * have ended. A failure of either is thrown once both have ended ({@code first}'s if both fail):
   * nothing is left running behind the caller's back.
   */
  public static void run(Runnable first, Runnable other) {
    CompletableFuture<Void> beside = start(other);
    try {
      first.run();
    } catch (RuntimeException | Error e) {
      beside.handle((ok, alsoFailed) -> null).join();
      throw e;
    }
    join(beside);
  }

  /** Starts {@code work} on another thread; {@link #join} waits for it. */
  public static CompletableFuture<Void> start(Runnable work) {
    return CompletableFuture.runAsync(work, POOL);
  }

  /** Starts {@code read} on another thread; {@link #join} waits for its answer. */
  public static <T> CompletableFuture<T> read(java.util.function.Supplier<T> read) {
    return CompletableFuture.supplyAsync(read, POOL);
  }

  /** Waits for {@code started} to end, and returns or throws what it did, as it did. */
  public static <T> T join(CompletableFuture<T> started) {
    try {
      return started.join();
    } catch (CompletionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      if (cause instanceof Error err) {
        throw err;
      }
      throw e;
    }
  }
}
