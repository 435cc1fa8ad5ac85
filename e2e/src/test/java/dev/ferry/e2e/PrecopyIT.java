// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A stream whose application state is 1 GiB moves with it, and the state crosses before the freeze:
 * what the pause carries is only what changed since. The demo streamer offers its KV cache ahead of
 * the freeze (handoff protocol version 2), then one append per token.
 */
class PrecopyIT {
  // 8,000 tokens: at 50 a second, the moved stream lasts 160 s, longer than the pre-copy of 1 GiB
  // it streams through (33-50 s on a quiet machine, over 60 s on a busy one). The unmoved reference
  // runs at 2,000 a second: the content does not depend on the rate.
  private static final String STREAM = "/v1/stream?prompt=precopy&tokens=8000";
  private static final int GIB = 1 << 30;
  private static AgentCluster cluster;
  private static String reference;

  @BeforeAll
  static void start() throws Exception {
    cluster = AgentCluster.start();
    // A state of 1 GiB is over the agents' defaults: these agents take 1.5 GiB, wait for the
    // streamer's silence while it encodes its gibibyte, and have the heap for it.
    Map<String, String> bigStates = AgentCluster.agentsForStatesOf(GIB);
    for (AgentCluster.Node n : new AgentCluster.Node[] {cluster.a, cluster.b}) {
      n.killAgent();
      n.startAgent(bigStates);
    }
    Process quick = cluster.a.streamer("--rate", "2000", "--kv-bytes", String.valueOf(GIB));
    try (CurlStream unmoved = cluster.curl(STREAM)) {
      assertThat(unmoved.exitCode(120)).isZero();
      reference = unmoved.output();
    }
    quick.destroy();
    quick.waitFor();
    cluster.a.streamer("--rate", "50", "--kv-bytes", String.valueOf(GIB));
    // Once moved, the stream goes on at 2,000 tokens/s: at 50 its last 6,000 tokens took 120 s.
    cluster.b.streamer(
        "--rate", "50", "--taken-over-rate", "2000", "--kv-bytes", String.valueOf(GIB));
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void aStreamWithAGibibyteOfStateMovesWithOnlyItsLastTokensInThePause() throws Exception {
    try (CurlStream curl = cluster.curl(STREAM, java.time.Duration.ofSeconds(300));
        // The Move returns when the move has ended, a gibibyte's pre-copy included: on a busy
        // machine that took 90 s. The deadline bounds a hang, not the work.
        AgentClient a = cluster.a.client("admin", java.time.Duration.ofMinutes(10))) {
      curl.awaitEvents(100, 60_000);
      MoveOutcome o =
          a.call(
              "Move",
              s -> s.move(cluster.a.moveTo(cluster.b, "big-state").setHoldLimitMs(60_000).build()));
      assertThat(o.getResult()).as(o.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
      ConnectionStatus moved = o.getSource().getConnections(0);
      assertThat(moved.getPhase()).isEqualTo(ConnectionPhase.RELEASED);
      assertThat(moved.getAppStateBytes())
          .as("application state carried inside the pause: the tokens since the pre-copy")
          .isLessThan(64 * 1024);
      assertThat(o.getTarget().getConnections(0).getAppStateBytes())
          .as("the state the target application got, whole (it checks its checksum, or declines)")
          .isGreaterThan(GIB);
      assertThat(curl.exitCode(300)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      System.out.printf(
          "1 GiB pre-copied: pause %.1f ms (the agents' clock), curl's longest gap %.1f ms,"
              + " %d bytes of state in the pause; phases source %s, target %s%n",
          o.getPauseMicros() / 1e3,
          curl.longestGapMillis(),
          moved.getAppStateBytes(),
          o.getSource().getPhaseMicrosMap(),
          o.getTarget().getPhaseMicrosMap());
    }
  }
}
