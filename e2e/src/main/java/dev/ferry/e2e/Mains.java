// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.util.concurrent.Callable;

/**
 * How the e2e commands ({@code make demo}, the benchmarks) end: with the exit code their body
 * returns, or 1 if it throws, always through {@link System#exit} once the body (and with it the
 * teardown of its try-with-resources) is over. A thread left running by a failed body (a Vert.x
 * event loop, a gRPC channel's executor) cannot keep the JVM, and with it {@code make}, waiting.
 */
public final class Mains {
  private Mains() {}

  /** Runs {@code body} and exits with its code: 1 if it threw, after printing why. */
  public static void exitWith(String name, Callable<Integer> body) {
    int code = 1;
    try {
      code = body.call();
    } catch (Throwable t) {
      System.out.flush();
      System.err.println(name + " failed:");
      t.printStackTrace();
    } finally {
      System.out.flush();
      System.err.flush();
      System.exit(code);
    }
  }
}
