// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.testbed.FakeEc2;
import dev.ferry.testbed.SourceDestinationCheck;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator's AWS path on a LAN laid out and behaving as EC2's VPC (AgentCluster.Layout.ec2,
 * OperatorCluster.behaveAsEc2): each node has the service addresses' {@code no_manage} ENI as eth1,
 * in a subnet of its own, with docs/aws.md's policy route; the agents hold on both interfaces; each
 * ENI drops what is neither from nor to its own addresses; the local EC2 delivers the moved address
 * 30 s after it accepts the Assign, longer than the default hold limit would allow. The agents
 * forward meanwhile, so they commit and resume without waiting for the operator, which claims the
 * address after: the request is Completed while EC2 still shows the address on node-a, the stream
 * goes on through the tunnel between the eth1s, then directly once the VPC switches, every byte in
 * order.
 */
class AwsForwardingIT {
  // A LAN of its own, and a port of its own for the operator: it runs beside the other suites.
  private static final AgentCluster.Layout LAN =
      AgentCluster.Layout.ec2(
          System.getProperty("ferry.aws-forwarding.lan", "198.18.13"),
          System.getProperty("ferry.aws-forwarding.service-subnet", "198.18.113"));

  private static final Duration EC2_DELAY = Duration.ofSeconds(30);

  // 120 s at 100 tokens/s: the move, 30 s in the tunnel, and more after the switch, with room
  // for a busy machine's slow operator.
  private static final String RATE = "100";
  private static final int TOKENS = 12_000;
  private static final String STREAM = "/v1/stream?prompt=vpc&tokens=" + TOKENS;

  private static OperatorCluster cluster;
  private static SourceDestinationCheck vpc;
  private static String reference;

  @BeforeAll
  static void start() throws Exception {
    cluster =
        OperatorCluster.start(
            LAN,
            OperatorCluster::awsEnvBesideOthers,
            Map.of("FERRY_AGENT_FORWARDING_ENABLED", "true"));
    try {
      vpc = cluster.behaveAsEc2();
      // The reference quickly, then the streamers the test moves between.
      reference = cluster.agents.unmovedOutput(STREAM);
      cluster.agents.a.streamer("--rate", RATE);
      cluster.agents.b.streamer("--rate", RATE);
    } catch (Exception | Error e) {
      cluster.close();
      throw e;
    }
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void theRequestCompletesBeforeTheVpcDeliversTheAddressAndTheStreamGoesOnThroughIt()
      throws Exception {
    FakeEc2 ec2 = cluster.ec2;
    ec2.moveDelay(EC2_DELAY);
    String vip = LAN.vip();
    String eniA = OperatorCluster.eni(cluster.agents.a);
    int fromA = cluster.agents.a.logMark();
    int fromB = cluster.agents.b.logMark();
    try (CurlStream curl = cluster.agents.curl(STREAM, Duration.ofSeconds(300))) {
      curl.awaitEvents(50, 30_000);
      // The deadline bounds a hang, not the move: at load 9 the operator took 30 s to send the Move
      // (its event loop blocked), and 57 s in all, against the default's 60 s. At load 10 it lost
      // its Lease and was started again (OperatorCluster does what the kubelet does), 40 s more.
      cluster.request(
          "through-the-tunnel",
          s -> {
            s.setSource(new PodReference("pod-a"));
            s.setTarget(new PodReference("pod-b"));
            s.setAddress(vip);
            s.setDeadline("5m");
          });
      MigrationRequestStatus st = cluster.awaitEnd("through-the-tunnel", 330);

      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      MoveOutcome o = cluster.howTheMoveEnded(st.getMigrationId());
      assertThat(o.getResult())
          .as("Move again: how it ended")
          .isEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(o.getForwarding())
          .as("the agents committed while node-a forwarded, without waiting for the claim")
          .isTrue();
      assertThat(ec2.interfaceOf(vip))
          .as("where EC2 shows the address when the request completed: the VPC has not switched")
          .contains(eniA);
      cluster.agents.a.awaitLine(
          fromA, "forwarding " + vip + " to " + cluster.agents.b.serviceIp + " on eth1");
      int completed = curl.events();
      curl.awaitEvents(completed + 100, 30_000);
      assertThat(ec2.interfaceOf(vip))
          .as("100 tokens later, still before the VPC switched: they came through the tunnel")
          .contains(eniA);
      assertThat(vpc.dropped())
          .as("node-b's direct copies, dropped until the VPC switches: the check has teeth")
          .isPositive();

      assertThat(ec2.awaitSettled(EC2_DELAY.multipliedBy(3))).as("EC2's move shows").isTrue();
      assertThat(ec2.interfaceOf(vip)).contains(OperatorCluster.eni(cluster.agents.b));
      assertThat(curl.exitCode(240)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      System.out.println(
          "aws path with EC2 delivering after "
              + EC2_DELAY.toSeconds()
              + " s: pause "
              + st.getPauseMillis()
              + " ms, phases "
              + st.getPhaseMillis()
              + "; curl's longest gap "
              + curl.longestGapMillis()
              + " ms");
    }
    cluster.agents.b.awaitLine(fromB, "came here directly");
  }
}
