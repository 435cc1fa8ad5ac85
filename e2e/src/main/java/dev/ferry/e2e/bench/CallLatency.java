// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.e2e.AgentCluster;
import dev.ferry.e2e.ClosedOnExit;
import dev.ferry.e2e.Mains;
import java.util.Arrays;

/**
 * What one trivial call on an agent costs (Status of a migration it does not know: NOT_FOUND), over
 * the API's mutual TLS, as the operator makes it: p50, p99 and max of many calls on a warm channel.
 * {@code make bench-calls}.
 */
public final class CallLatency {
  private CallLatency() {}

  public static void main(String[] args) {
    Mains.exitWith("CallLatency", CallLatency::measure);
  }

  private static int measure() throws Exception {
    int calls = 2000;
    try (ClosedOnExit<AgentCluster> held = ClosedOnExit.of(AgentCluster.start(), "calls");
        AgentClient agent = held.get().a.client("admin")) {
      MigrationRef ref = MigrationRef.newBuilder().setMigrationId("nothing").build();
      long[] micros = new long[calls];
      for (int i = -500; i < calls; i++) { // the first 500 warm the JIT and the channel
        long t = System.nanoTime();
        try {
          agent.call("Status", s -> s.status(ref));
        } catch (AgentClient.Failed e) {
          if (!e.notFound()) {
            throw e;
          }
        }
        if (i >= 0) {
          micros[i] = (System.nanoTime() - t) / 1000;
        }
      }
      Arrays.sort(micros);
      System.out.printf(
          "Status on a warm channel, %d calls: p50 %d µs, p99 %d µs, max %d µs%n",
          calls, micros[calls / 2], micros[calls * 99 / 100], micros[calls - 1]);
    }
    return 0;
  }
}
