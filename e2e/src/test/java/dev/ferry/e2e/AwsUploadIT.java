// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.testbed.FakeEc2;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * An upload moved by the operator's AWS path without forwarding: the operator claims the address
 * and the target resumes only once EC2 shows it there, which here is seconds after the VPC switched
 * (FakeEc2.describeLag), so the client's retransmissions can reach the target while its socket is
 * staged. The target's hold stops them there and keeps what they carry (a segment the staged socket
 * took itself could be read twice by the application); the server counts every byte of the upload,
 * in order, once. The LAN is laid out and behaves as EC2's VPC (AgentCluster.Layout.ec2,
 * OperatorCluster.behaveAsEc2).
 */
class AwsUploadIT {
  // A LAN of its own, and a port of its own for the operator: it runs beside the other suites.
  private static final AgentCluster.Layout LAN =
      AgentCluster.Layout.ec2(
          System.getProperty("ferry.aws-upload.lan", "198.18.17"),
          System.getProperty("ferry.aws-upload.service-subnet", "198.18.117"));

  // The VPC switches soon after the Assign, and Describe shows it seconds later: time for the
  // client's retransmission timer (200 ms, doubling from the freeze) to fire while the target's
  // socket waits, in some runs (two of four here).
  private static final Duration EC2_DELAY = Duration.ofMillis(300);
  private static final Duration DESCRIBE_LAG = Duration.ofSeconds(5);
  // 2 MiB/s for 20 s, paced by the client's kernel: segments are in flight at most moments.
  private static final long PACING = 2L << 20;
  private static final long BYTES = 20 * PACING;
  private static final long MOVE_AFTER = 4L << 20;

  @Test
  void anUploadMovedThroughEc2ArrivesWholeInOrderAndOnce() throws Exception {
    try (OperatorCluster cluster =
        OperatorCluster.start(LAN, OperatorCluster::awsEnvBesideOthers, Map.of())) {
      cluster.behaveAsEc2();
      cluster.agents.a.pythonStreamer();
      cluster.agents.b.pythonStreamer();
      FakeEc2 ec2 = cluster.ec2;
      ec2.moveDelay(EC2_DELAY);
      ec2.describeLag(DESCRIBE_LAG);
      Path samples = cluster.agents.dir.resolve("aws-upload-acks.txt");
      try (ByteClient upload =
          cluster.agents.upload("/v1/upload?name=aws-upload", BYTES, PACING, samples)) {
        upload.awaitReceived(MOVE_AFTER, 60_000);
        cluster.request("aws-upload", "pod-a", "pod-b", null);
        MigrationRequestStatus st = cluster.awaitEnd("aws-upload", 120);

        assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
        assertThat(ec2.interfaceOf(LAN.vip())).contains(OperatorCluster.eni(cluster.agents.b));
        assertThat(upload.exitCode(BYTES / PACING + 120))
            .as("the server counted every byte, in order, once: " + upload.lines())
            .isZero();
        // Whether a retransmission fell between the VPC's switch and the resume depends on the
        // client's backed-off timer against the operator's pace: said, not asserted (two runs of
        // four saw none). StagedClientIT is the deterministic test of that case.
        System.out.println(
            "upload over the aws path: pause "
                + st.getPauseMillis()
                + " ms; segments with data the holds kept: node-a's "
                + keptSegments(cluster.agents.a)
                + ", node-b's (before the resume) "
                + keptSegments(cluster.agents.b)
                + "; phases "
                + st.getPhaseMillis());
      } finally {
        Files.deleteIfExists(samples);
      }
    }
  }

  /** ferry_agent_hold_client_segments_total{outcome="kept"} on {@code node}'s agent. */
  private static double keptSegments(AgentCluster.Node node) {
    String metrics = node.host.run("curl", "-s", "http://" + node.ip + ":9400/q/metrics");
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile(
                "(?m)^ferry_agent_hold_client_segments_total\\{[^}]*outcome=\"kept\"[^}]*\\} (\\S+)$")
            .matcher(metrics);
    if (!m.find()) {
      throw new AssertionError(
          "no kept-segments counter in " + node.name + "'s metrics: " + metrics);
    }
    return Double.parseDouble(m.group(1));
  }
}
