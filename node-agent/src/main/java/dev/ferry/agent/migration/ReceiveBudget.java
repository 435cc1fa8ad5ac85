// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

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
   * The default: half the agent's heap, and at least two of the largest states (one arriving while
   * another is put back together from its pre-copied parts).
   */
  public static long defaultLimit(long maxStateBytes) {
    return Math.max(2 * maxStateBytes, Runtime.getRuntime().maxMemory() / 2);
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
