// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What an agent leaves on its node when it stops: with no client held and no migration saved, it
 * removes the hold's programs and pinned maps, as an uninstall needs (a crash, or a stop while
 * clients are held, leaves them for the next agent: AgentRecoveryIT).
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
}
