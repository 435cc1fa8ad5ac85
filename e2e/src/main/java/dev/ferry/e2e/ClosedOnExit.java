// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Closes what a command built (a cluster: its processes, namespaces, BPF pins) when the command
 * ends, normally or by Ctrl-C: a JVM stopped by a signal leaves its try-with-resources unfinished,
 * and the agents, servers and the bpffs mount under {@code /tmp/ferry-agents-*} would outlive it.
 * Closed once, by whichever comes first: the end of the try block or the shutdown hook.
 */
public final class ClosedOnExit<T extends AutoCloseable> implements AutoCloseable {
  private final T resource;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Thread hook;

  private ClosedOnExit(T resource, String name) {
    this.resource = resource;
    this.hook = new Thread(this::close, name + "-cleanup");
    Runtime.getRuntime().addShutdownHook(hook);
  }

  /** Takes {@code resource} in; {@code name} names the cleanup thread. */
  public static <T extends AutoCloseable> ClosedOnExit<T> of(T resource, String name) {
    return new ClosedOnExit<>(resource, name);
  }

  public T get() {
    return resource;
  }

  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // this is the hook
    }
    try {
      resource.close();
    } catch (Exception e) {
      System.err.println("closing " + hook.getName() + ": " + e);
    }
  }
}
