// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What an agent leaves on its node when it stops: with no client held and no migration saved, it
 * removes the hold's programs and pinned maps, as an uninstall needs (a crash, or a stop while
 * clients are held, leaves them for the next agent: AgentRecoveryIT); and an agent whose settings
 * cannot work ends at start before it touches the node.
 */
class AgentLifecycleIT {
  private static AgentCluster cluster;

  @BeforeAll
  static void start() throws Exception {
    cluster = AgentCluster.start();
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void anAgentStoppedWithNothingHeldLeavesNoProgramOrPinBehind() throws Exception {
    AgentCluster.Node a = cluster.a;
    assertThat(a.host.run("tc", "filter", "show", "dev", "eth0", "egress"))
        .as("the hold is attached while the agent runs")
        .isNotBlank();

    a.stopAgent();

    assertThat(a.host.run("tc", "filter", "show", "dev", "eth0", "egress")).isBlank();
    assertThat(a.host.run("ip", "-d", "link", "show", "dev", "eth0")).doesNotContain("xdp");
    if (Files.exists(a.pinDir)) {
      try (Stream<?> pins = Files.list(a.pinDir)) {
        assertThat(pins).as("pinned maps under " + a.pinDir).isEmpty();
      }
    }

    a.startAgent(); // and a new agent installs the hold again
    assertThat(a.host.run("tc", "filter", "show", "dev", "eth0", "egress")).isNotBlank();
  }

  @Test
  void anAgentWhoseLargestStateCouldNeverArriveRefusesToStartAndTouchesNothing() throws Exception {
    AgentCluster.Node b = cluster.b;
    b.stopAgent();
    Files.deleteIfExists(b.handoffSocket); // the stopped agent's; a new one makes it again

    // The chart's heap (768 MiB, as AgentCluster gives): half of it, the budget for arriving
    // states, cannot take one state of 512 MiB.
    long tooLarge = 512L << 20;
    assertThatThrownBy(
            () -> b.startAgent(Map.of("FERRY_AGENT_MAX_STATE_BYTES", String.valueOf(tooLarge))))
        .as("the agent ends instead of coming up");
    assertThat(String.join("\n", b.log))
        .contains("ferry.agent.max-state-bytes is " + tooLarge + " but this agent holds at most")
        .contains("agent.resources.limits.memory")
        .contains("agent.maxStateBytes");
    assertThat(b.host.run("tc", "filter", "show", "dev", "eth0", "egress"))
        .as("no hold attached")
        .isBlank();
    assertThat(b.host.run("ip", "-d", "link", "show", "dev", "eth0")).doesNotContain("xdp");
    assertThat(Files.exists(b.handoffSocket)).as("no handoff socket made").isFalse();

    b.startAgent(); // the chart's defaults start
    assertThat(b.host.run("tc", "filter", "show", "dev", "eth0", "egress")).isNotBlank();
  }
}
