// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testbed.Shell;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The source agent dies in the middle of a transfer: the clients stay held by the pinned BPF
 * programs, the restarted agent finds the saved states, and a rollback puts every connection back
 * in its pod, streaming on. Driven with the ferry-agent CLI, as a person debugging would.
 */
class AgentRecoveryIT {
  private static final int STREAMS = 4;
  // Big states make the transfer long enough to kill the agent in the middle of it.
  private static final String KV_BYTES = Integer.toString(64 << 20);
  // Long enough that every stream is still going when it is frozen, after the pre-copy of its
  // 64 MiB state (13 s for the four at load 6, seen here, where 15 s of tokens ran out first): 40
  // s.
  private static final String STREAM = "/v1/stream?prompt=crash%20test&tokens=8000";
  private AgentCluster cluster;
  private String reference;

  @BeforeEach
  void start() throws Exception {
    cluster = AgentCluster.start();
    reference = cluster.unmovedOutput(STREAM, "--kv-bytes", KV_BYTES);
    // A stream that comes back goes on at 2,000 tokens/s: it need not crawl to its end.
    for (AgentCluster.Node n : new AgentCluster.Node[] {cluster.a, cluster.b}) {
      n.streamer("--rate", "200", "--taken-over-rate", "2000", "--kv-bytes", KV_BYTES);
    }
  }

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void aSourceAgentThatDiesAfterExportingRollsEveryConnectionBackAfterItsRestart()
      throws Exception {
    List<CurlStream> curls = new ArrayList<>();
    try {
      for (int i = 0; i < STREAMS; i++) {
        curls.add(cluster.curl(STREAM));
      }
      for (CurlStream c : curls) {
        c.awaitEvents(30, 20_000);
      }

      AgentCluster.CliRun migrate =
          cluster.cli(
              "migrate",
              "--id",
              "crash-1",
              "--from",
              cluster.a.api(),
              "--from-pod",
              cluster.a.pod.netns(),
              "--to",
              cluster.b.api(),
              "--to-pod",
              cluster.b.pod.netns(),
              "--from-node",
              cluster.a.name,
              "--to-node",
              cluster.b.name,
              "--port",
              String.valueOf(AgentCluster.PORT),
              "--address",
              AgentCluster.VIP + "/32",
              "--from-host-interface",
              cluster.a.pod.podPort(),
              "--to-host-interface",
              cluster.b.pod.podPort(),
              // The agent stops right after it saved the states and closed the sockets: the
              // states exist nowhere else (the target has not received them).
              "--fault",
              "source-after-export");

      assertThat(migrate.exitCode(120)).as("the CLI reports the failure").isEqualTo(1);
      assertThat(migrate.output()).contains("ferry-agent rollback --id crash-1");
      cluster.a.awaitAgentExit();
      cluster.b.awaitLine(0, "migration crash-1: the stream broke off");
      assertThat(cluster.b.log)
          .as("the target never staged anything")
          .noneMatch(l -> l.contains("stage") && l.contains("crash-1"));

      cluster.a.startAgent();
      assertThat(cluster.a.log)
          .anyMatch(
              l ->
                  l.contains("recovered source migration crash-1")
                      && l.contains(STREAMS + " saved connections"));

      AgentCluster.CliRun rollback =
          cluster.cli(
              "rollback",
              "--id",
              "crash-1",
              "--agent",
              cluster.b.api(),
              "--agent",
              cluster.a.api());
      assertThat(rollback.exitCode(120)).as(rollback.output()).isZero();
      assertThat(rollback.output().lines().filter(l -> l.contains(" ROLLED_BACK ")).count())
          .as("every connection is back on node-a")
          .isEqualTo(STREAMS);

      for (int i = 0; i < STREAMS; i++) {
        CurlStream c = curls.get(i);
        assertThat(c.exitCode(120)).as("stream %d: curl's exit code (56 is a reset)", i).isZero();
        assertThat(c.output()).as("stream %d: curl's whole output", i).isEqualTo(reference);
      }
      assertThat(Shell.run("ls", cluster.a.stateDir.resolve("migrations").toString()).strip())
          .as("no saved state is left once every connection is back")
          .isEmpty();
    } finally {
      curls.forEach(CurlStream::close);
    }
  }
}
