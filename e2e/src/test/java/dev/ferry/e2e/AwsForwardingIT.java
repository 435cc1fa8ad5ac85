// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.testbed.FakeEc2;
import dev.ferry.testbed.SourceDestinationCheck;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator's AWS path on a LAN that behaves as EC2's VPC (OperatorCluster.behaveAsEc2): the
 * local EC2 delivers the moved address 30 s after it accepts the Assign, longer than the default
 * hold limit would allow. The agents forward meanwhile, so the operator commits once EC2 has
 * accepted the claim: the request is Completed while EC2 still shows the address on node-a, the
 * stream goes on through the tunnel, then directly once the VPC switches, every byte in order.
 */
class AwsForwardingIT {
  // A LAN of its own, and a port of its own for the operator: it runs beside the other suites.
  private static final AgentCluster.Layout LAN =
      new AgentCluster.Layout(
          System.getProperty("ferry.aws-forwarding.lan", "198.18.13"), null, null);

  private static final Duration EC2_DELAY = Duration.ofSeconds(30);

  // 60 s at 200 tokens/s: the move, 30 s in the tunnel, and more after the switch.
  private static final String RATE = "200";
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
            Map.of("QUARKUS_HTTP_PORT", "0"),
            Map.of("FERRY_AGENT_FORWARDING_ENABLED", "true"));
    try {
      // Again with the AWS mover, whose environment names this cluster's EC2.
      cluster.killOperator();
      cluster.startOperator(withAws(cluster));
      vpc = cluster.behaveAsEc2();
      cluster.agents.a.streamer("--rate", RATE);
      cluster.agents.b.streamer("--rate", RATE);
      try (CurlStream unmoved = cluster.agents.curl(STREAM)) {
        assertThat(unmoved.exitCode(120)).isZero();
        reference = unmoved.output();
      }
    } catch (Exception | Error e) {
      cluster.close();
      throw e;
    }
  }

  /** The operator's environment for the AWS mover, with a port of its own. */
  private static Map<String, String> withAws(OperatorCluster c) {
    Map<String, String> env = new HashMap<>(c.awsEnv());
    env.put("QUARKUS_HTTP_PORT", "0");
    return env;
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
    int fromB = cluster.agents.b.logMark();
    try (CurlStream curl = cluster.agents.curl(STREAM, Duration.ofSeconds(300))) {
      curl.awaitEvents(50, 30_000);
      cluster.request("through-the-tunnel", "pod-a", "pod-b", vip);
      // Bounds a hang: at load 9 the operator took 30 s to send the Move (its event loop blocked).
      MigrationRequestStatus st = cluster.awaitEnd("through-the-tunnel", 180);

      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(ec2.interfaceOf(vip))
          .as("where EC2 shows the address when the request completed: the VPC has not switched")
          .contains(eniA);
      int completed = curl.events();
      curl.awaitEvents(completed + 400, 60_000);
      assertThat(ec2.interfaceOf(vip))
          .as("400 tokens later, still before the VPC switched: they came through the tunnel")
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
