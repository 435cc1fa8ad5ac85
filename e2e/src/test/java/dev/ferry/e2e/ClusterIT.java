// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.testbed.Shell;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The whole one-machine cluster, as a user meets it: the API server and the operator as processes,
 * an agent and an instance metadata service per node, the demo token streamer in the pods and curl
 * on the client. Each scenario ends with the stream's whole output compared with an unmoved run.
 */
class ClusterIT {
  private static final String STREAM = "/v1/stream?prompt=cluster&tokens=3000";
  private static final String RATE = "250";
  private static OperatorCluster cluster;
  private static String reference;
  private static String prefix;

  @BeforeAll
  static void start() throws Exception {
    cluster = OperatorCluster.start();
    prefix = cluster.agents.bed.prefix();
    cluster.agents.a.streamer("--rate", RATE);
    cluster.agents.b.streamer("--rate", RATE);
    try (CurlStream unmoved = cluster.agents.curl(STREAM)) {
      assertThat(unmoved.exitCode(30)).isZero();
      reference = unmoved.output();
    }
  }

  @AfterEach
  void addressBackOnNodeA() throws Exception {
    // Each scenario starts with the address in pod-a.
    String holder = holderOfVip();
    if (!"pod-a".equals(holder)) {
      String name = "home-" + System.nanoTime();
      cluster.request(name, holder, "pod-a", AgentCluster.VIP);
      MigrationRequestStatus st = cluster.awaitEnd(name, 60);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
    }
  }

  @AfterAll
  static void stop() throws Exception {
    if (cluster == null) {
      return;
    }
    cluster.close();
    // Nothing of ours may outlive the cluster: namespaces, processes, BPF programs, pinned maps.
    assertThat(Shell.run("ip", "netns", "list")).as("network namespaces").doesNotContain(prefix);
    assertThat(ProcessHandle.current().descendants().filter(ProcessHandle::isAlive).toList())
        .as("processes the test started")
        .isEmpty();
    assertThat(Shell.run("mount"))
        .as("BPF filesystems")
        .doesNotContain(cluster.agents.bpf.toString());
    assertThat(cluster.agents.dir).as("pinned maps and saved states").doesNotExist();
  }

  @Test
  void theExampleRequestAppliedLikeKubectlMovesTheStreamUntouched() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      cluster.apply(AgentCluster.repoFile("e2e/examples/migrationrequest.yaml"));
      MigrationRequestStatus st = cluster.awaitEnd("move-pod-a", 60);

      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(st.getConnections().getMigrated()).isEqualTo(1);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      System.out.println(
          "example request: pause " + st.getPauseMillis() + " ms, phases " + st.getPhaseMillis());
    }
  }

  @Test
  void aSpotInterruptionOnNodeAMovesOnlyTheProtectedPodsStreamWithNoUserAction() throws Exception {
    // A pod on node-a the policy does not protect: it must not be touched.
    cluster.pod("cache-a", cluster.agents.a, null, "cache");
    cluster.apply(AgentCluster.repoFile("e2e/examples/migrationpolicy.yaml"));
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      cluster.imdsA.instanceAction(
          "{\"action\": \"terminate\", \"time\": \"2026-11-23T10:02:00Z\"}");
      long announced = System.nanoTime();

      MigrationRequest made = awaitPolicyRequest(30);
      MigrationRequestStatus st = cluster.awaitEnd(made.getMetadata().getName(), 60);
      long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - announced);

      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(made.getSpec().getSource().getName()).isEqualTo("pod-a");
      assertThat(made.getSpec().getTarget().getName()).isEqualTo("pod-b");
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      assertThat(seconds)
          .as("s from the notice to Completed, of the 120 s EC2 gives")
          .isLessThan(30);
      assertThat(policyRequests())
          .as("one request, for the protected pod only")
          .singleElement()
          .satisfies(r -> assertThat(r.getSpec().getSource().getName()).isEqualTo("pod-a"));
      MigrationPolicy policy =
          cluster.kube.resources(MigrationPolicy.class).withName("keep-streams").get();
      assertThat(policy.getStatus().getRequestsCreated()).isEqualTo(1);
      assertThat(policy.getStatus().getLastTrigger()).startsWith("node-a: SpotInterruptionNotice");
      System.out.println(
          "spot interruption: Completed "
              + seconds
              + " s after the notice; pause "
              + st.getPauseMillis()
              + " ms");
    } finally {
      cluster.kube.resources(MigrationPolicy.class).withName("keep-streams").delete();
      cluster.kube.pods().withName("cache-a").delete();
      cluster.imdsA.announceNothing();
      // A replaced instance comes back without the notice; here the same node stays.
      cluster
          .kube
          .nodes()
          .withName("node-a")
          .editStatus(
              n -> {
                n.getStatus()
                    .getConditions()
                    .removeIf(c -> c.getType().equals("SpotInterruptionNotice"));
                return n;
              });
    }
  }

  @Test
  void aTargetAgentKilledMidTransferLeavesTheStreamLiveOnTheSource() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      cluster.request("b-dies", "pod-a", "pod-b", null);
      Phase killedIn = cluster.awaitPhase("b-dies", Phase.Transferring);
      cluster.agents.b.killAgent();
      assertThat(killedIn).isEqualTo(Phase.Transferring);

      MigrationRequestStatus st = cluster.awaitEnd("b-dies", 90);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.RolledBack);
      assertThat(st.getMessage()).contains("in Transferring");
      assertThat(st.getConnections().getRolledBack()).isEqualTo(1);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("the stream went on from pod-a").isEqualTo(reference);
    } finally {
      cluster.agents.b.startAgent();
    }
  }

  @Test
  void aHoldPastItsLimitGivesTheStreamBackToTheSourceAndTheRequestRollsBack() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      MigrationRequest mr = new MigrationRequest();
      mr.getMetadata().setName("held-too-long");
      mr.getMetadata().setNamespace(OperatorCluster.NAMESPACE);
      mr.setSpec(new dev.ferry.api.crd.MigrationRequestSpec());
      mr.getSpec().setSource(new dev.ferry.api.crd.PodReference("pod-a"));
      mr.getSpec().setTarget(new dev.ferry.api.crd.PodReference("pod-b"));
      mr.getSpec().setHoldLimit("2s");
      cluster.kube.resource(mr).create();
      // The operator goes away with the clients held, and stays away past the hold limit.
      Phase killedIn =
          cluster.awaitPhase("held-too-long", Phase.Exporting, Phase.Transferring, Phase.Restoring);
      cluster.killOperator();
      assertThat(killedIn.finished()).as("killed in " + killedIn).isFalse();
      int before = curl.events();
      Thread.sleep(4_000);
      assertThat(curl.events())
          .as("tokens after the hold limit, with no operator: the source has the stream again")
          .isGreaterThan(before + 100);
      cluster.startOperator();

      MigrationRequestStatus st = cluster.awaitEnd("held-too-long", 60);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.RolledBack);
      assertThat(st.getMessage()).contains("hold limit");
      assertThat(st.getConnections().getRolledBack()).isEqualTo(1);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("the stream went on from pod-a").isEqualTo(reference);
    }
  }

  private static MigrationRequest awaitPolicyRequest(int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      List<MigrationRequest> made = policyRequests();
      if (!made.isEmpty()) {
        return made.get(0);
      }
      Thread.sleep(50);
    }
    throw new AssertionError("no MigrationRequest from the policy within " + seconds + " s");
  }

  private static List<MigrationRequest> policyRequests() {
    return cluster
        .kube
        .resources(MigrationRequest.class)
        .withLabel("ferry.dev/policy", "keep-streams")
        .list()
        .getItems();
  }

  /** The pod that holds the service address now, as the operator recorded it. */
  private static String holderOfVip() {
    return cluster.kube.pods().list().getItems().stream()
        .filter(
            p ->
                p.getMetadata().getAnnotations() != null
                    && AgentCluster.VIP.equals(
                        p.getMetadata().getAnnotations().get("ferry.dev/moved-addresses")))
        .map(p -> p.getMetadata().getName())
        .findFirst()
        .orElse("pod-a");
  }
}
