// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.plan.PlanSigner;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.testbed.SourceDestinationCheck;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * A move on a LAN that behaves as EC2's VPC: each node's cable drops what is neither from nor to an
 * address assigned to it, and the client reaches the service address through whichever node the
 * "VPC" delivers it to, which switches only when the test says so, long after the agents have
 * resumed the stream on node-b. Meanwhile node-a forwards the address's packets to node-b in the
 * agents' tunnel, and node-b's replies come back through it: the stream goes on before the VPC
 * switches, and after it, every byte in order and no reset; the forwarding ends on its own.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class) // the rollback leaves the address on node-a
class ForwardingIT {
  // A LAN of its own (FaultMatrixIT has 198.18.9, the other clusters 198.18.0).
  private static final AgentCluster.Layout LAYOUT =
      new AgentCluster.Layout(System.getProperty("ferry.forwarding.lan", "198.18.12"), null, null);

  // 20 s at 100 tokens/s: warm-up, the move, a stretch through the tunnel and one direct.
  private static final int TOKENS = 2000;
  private static final String STREAM = "/v1/stream?prompt=forwarded&tokens=" + TOKENS;

  /** Tokens that must arrive through the tunnel before the VPC switches. */
  private static final int THROUGH_THE_TUNNEL = 200;

  /** EC2 instances take 9001-byte frames: room for the tunnel's 20 bytes (docs/aws.md). */
  private static final int JUMBO = 9001;

  private static AgentCluster cluster;
  private static SourceDestinationCheck vpc;
  private static String reference;

  @BeforeAll
  static void start() throws Exception {
    cluster = AgentCluster.create(LAYOUT);
    try {
      cluster.bed.mtu(cluster.a.host, JUMBO);
      cluster.bed.mtu(cluster.b.host, JUMBO);
      vpc = cluster.bed.sourceDestinationCheck();
      vpc.enforce(cluster.a.host, cluster.a.ip, LAYOUT.vip());
      vpc.enforce(cluster.b.host, cluster.b.ip);
      cluster.client.setNeighbour(LAYOUT.vip(), cluster.a.host.mac());
      Map<String, String> forwarding =
          Map.of(
              "FERRY_AGENT_FORWARDING_ENABLED", "true",
              // Short, so that the test sees the source's forwarding end at its limit too.
              "FERRY_AGENT_FORWARDING_LIMIT", "PT45S");
      cluster.a.startAgent(forwarding);
      cluster.b.startAgent(forwarding);
      // The reference quickly, then the streamers the test moves between.
      reference = cluster.unmovedOutput(STREAM);
      cluster.a.streamer("--rate", "100");
      cluster.b.streamer("--rate", "100");
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

  /** A claim that fails rolls back: node-a has the stream again, and forwards nothing more. */
  @Test
  @Order(1)
  void aRollbackAfterTheAddressLeftEndsTheForwardingAndTheSourceServesAgain() throws Exception {
    int fromA = cluster.a.logMark();
    try (AgentClient a = cluster.a.client("admin");
        CurlStream curl = cluster.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      stagedWithForwarding(a, "not-claimed");

      // EC2 refused the claim: the operator rolls back on the source agent.
      MigrationStatus back = a.call("Rollback", s -> s.rollback(ref("not-claimed")));
      assertThat(back.getConnectionsList())
          .allSatisfy(c -> assertThat(c.getPhase()).isEqualTo(ConnectionPhase.ROLLED_BACK));
      assertThat(forwardingEnded(cluster.a, fromA)).contains("rolled back");

      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output, from node-a").isEqualTo(reference);
    }
  }

  @Test
  @Order(2)
  void theStreamGoesOnThroughTheTunnelUntilTheVpcSwitchesThenDirect() throws Exception {
    String vip = LAYOUT.vip();
    int fromA = cluster.a.logMark();
    int fromB = cluster.b.logMark();
    try (AgentClient a = cluster.a.client("admin");
        CurlStream curl = cluster.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      stagedWithForwarding(a, "forwarded");

      // EC2 accepted the claim; its VPC has not switched: Commit now, as the operator does.
      MoveOutcome moved = a.call("Commit", s -> s.commit(ref("forwarded")));
      assertThat(moved.getResult()).as(moved.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
      cluster.a.awaitLine(fromA, "forwarding " + vip + " to " + cluster.b.ip);
      cluster.b.awaitLine(fromB, "taking " + vip + "'s packets from " + cluster.a.ip);

      // Only the tunnel carries the stream now: the VPC still delivers the address to node-a,
      // which no longer has it, and drops what node-b sends from it.
      int resumed = curl.events();
      curl.awaitEvents(resumed + THROUGH_THE_TUNNEL, 60_000);
      assertThat(vpc.dropped())
          .as("node-b's direct copies, dropped until the VPC switches: the check has teeth")
          .isPositive();

      // The VPC switches: EC2's assignment takes effect, and clients reach node-b directly.
      vpc.unassign(cluster.a.host, vip);
      vpc.assign(cluster.b.host, vip);
      cluster.client.setNeighbour(vip, cluster.b.host.mac());
      int switched = curl.events();

      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      assertThat(curl.events() - switched).as("tokens after the switch").isPositive();
      System.out.println(
          "forwarded move: pause "
              + moved.getPauseMicros()
              + " µs; curl's longest gap "
              + curl.longestGapMillis()
              + " ms; "
              + (switched - resumed)
              + " tokens through the tunnel");
    }
    // The first direct segment ended node-b's part; node-a's ends at the forwarding limit.
    assertThat(forwardingEnded(cluster.b, fromB)).contains("came here directly");
    assertThat(forwardingEnded(cluster.a, fromA)).contains("the forwarding limit passed");
  }

  /**
   * Move as the operator asks it on AWS: the agents stop once everything is staged on node-b, for
   * the caller to claim the address from EC2 and then commit; node-a forwards meanwhile.
   */
  private static void stagedWithForwarding(AgentClient a, String id) {
    MoveOutcome staged = a.call("Move", s -> s.move(signed(claimed(id))));
    assertThat(staged.getResult())
        .as(staged.getMessage())
        .isEqualTo(MoveOutcome.Result.AWAITING_ADDRESS);
    assertThat(staged.getForwarding()).as("node-a forwards until the VPC switches").isTrue();
  }

  /** A Move whose address the caller claims, which nobody announces. */
  private static MoveRequest claimed(String id) {
    MoveRequest.Builder move = cluster.a.moveTo(cluster.b, id);
    return move.setAddress(
            move.getAddress().toBuilder().setAnnounce(false).setClaimedByCaller(true).build())
        .build();
  }

  private static MoveRequest signed(MoveRequest move) {
    return new PlanSigner(TlsFiles.inDirectory(cluster.certs, "admin")).signed(move);
  }

  private static MigrationRef ref(String id) {
    return MigrationRef.newBuilder().setMigrationId(id).build();
  }

  /** The node's agent's line saying the address's forwarding ended, once it has logged it. */
  private static String forwardingEnded(AgentCluster.Node node, int from)
      throws InterruptedException {
    String text = "forwarding of " + LAYOUT.vip() + " ended";
    node.awaitLine(from, text);
    List<String> log = List.copyOf(node.log);
    return log.subList(from, log.size()).stream()
        .filter(l -> l.contains(text))
        .findFirst()
        .orElseThrow();
  }
}
