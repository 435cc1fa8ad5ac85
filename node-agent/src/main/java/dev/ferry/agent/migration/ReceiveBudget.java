// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The application state this node holds for arrivals in progress (the Arrive streams: pre-copied
 * parts and the states of a move), node-wide. Each state is bounded by itself (max-state-bytes);
 * this bounds their sum, so that many arrivals at once, or a peer that announces state without end,
 * cannot take the agent's heap. A stream counts a state's bytes as they are announced or arrive,
 * and gives them all back when it ends, however it ends.
 */
public final class ReceiveBudget {
  private final long limit;
  private final AtomicLong held = new AtomicLong();

  public ReceiveBudget(long limit) {
    if (limit < 1) {
      throw new IllegalArgumentException(
          "ferry.agent.max-receive-bytes is " + limit + "; it must be 1 or more");
    }
    this.limit = limit;
  }

  /**
   * The node's budget: {@code configured} (ferry.agent.max-receive-bytes), else half of {@code
   * heapBytes}, so that a pre-copied state put back together whole (its parts and the whole at
   * once, twice its size for a moment) still fits in the heap. Refuses a budget smaller than one
   * state of {@code maxStateBytes}: such a state could never arrive, and raising the budget past
   * half the heap instead (as the default did before, to hold two of the largest) let two large
   * arrivals take a small agent's whole heap.
   *
   * @throws IllegalArgumentException naming both settings and the fix
   */
  public static ReceiveBudget of(Optional<Long> configured, long maxStateBytes, long heapBytes) {
    long limit = configured.orElse(heapBytes / 2);
    if (limit < maxStateBytes) {
      throw new IllegalArgumentException(
          "ferry.agent.max-state-bytes is "
              + maxStateBytes
              + " but this agent holds at most "
              + limit
              + " bytes of state for arrivals ("
              + (configured.isPresent()
                  ? "ferry.agent.max-receive-bytes"
                  : "ferry.agent.max-receive-bytes not set: half the heap of " + heapBytes)
              + "), so no state that large could arrive: give the agent more memory (the chart's"
              + " agent.resources.limits.memory; agent.javaOpts sets the heap's share of it),"
              + " or lower max-state-bytes (agent.maxStateBytes)");
    }
    return new ReceiveBudget(limit);
  }

  /** Counts {@code n} more bytes, or refuses them if the node would hold more than its limit. */
  void take(long n, String what) {
    while (true) {
      long now = held.get();
      if (n > limit - now) {
        throw new Exhausted(
            what
                + ": "
                + n
                + " bytes more would make the state held for arrivals on this node "
                + (now + n)
                + " bytes, over its limit of "
                + limit
                + " (ferry.agent.max-receive-bytes): retry when the migrations in progress end,"
                + " or raise the limit with the agent's heap");
      }
      if (held.compareAndSet(now, now + n)) {
        return;
      }
    }
  }

  void give(long n) {
    held.addAndGet(-n);
  }

  /** The bytes held now. */
  public long held() {
    return held.get();
  }

  public long limit() {
    return limit;
  }

  /** An arrival would take the node over its limit: RESOURCE_EXHAUSTED to the caller. */
  public static final class Exhausted extends RuntimeException {
    Exhausted(String message) {
      super(message);
    }
  }
}
