// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.MovedAddress;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PhaseTransition;
import dev.ferry.api.crd.PodReference;
import dev.ferry.testbed.FakeEc2;
import dev.ferry.testbed.FakeEc2Request;
import dev.ferry.testbed.FakeSqs;
import dev.ferry.testbed.Shell;
import java.io.InputStream;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.Map;
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
  private static Process streamerB;

  @BeforeAll
  static void start() throws Exception {
    cluster = OperatorCluster.start();
    prefix = cluster.agents.bed.prefix();
    reference = cluster.agents.unmovedOutput(STREAM); // fast: the tokens do not depend on the rate
    cluster.agents.a.streamer("--rate", RATE);
    streamerB = cluster.agents.b.streamer("--rate", RATE);
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
      cluster.apply(Builds.repoFile("e2e/examples/migrationrequest.yaml"));
      MigrationRequestStatus st = cluster.awaitEnd("move-pod-a", 60);

      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(st.getConnections().getMigrated()).isEqualTo(1);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      System.out.println(
          "example request: pause " + st.getPauseMillis() + " ms, phases " + st.getPhaseMillis());
      // The operator's figures, where Prometheus scrapes them.
      String metrics =
          Shell.run("curl", "-sf", "http://127.0.0.1:" + OperatorCluster.HTTP_PORT + "/q/metrics");
      assertThat(metrics)
          .contains("ferry_operator_migrations_total{dry_run=\"false\",phase=\"Completed\"}")
          .contains("ferry_operator_client_pause_seconds_count")
          .contains("ferry_operator_phase_seconds_count{phase=\"Moving\"}")
          .contains("ferry_operator_connections_total{outcome=\"migrated\"}");
    }
  }

  @Test
  void aSpotInterruptionOnNodeAMovesOnlyTheProtectedPodsStreamWithNoUserAction() throws Exception {
    // A pod on node-a the policy does not protect: it must not be touched.
    cluster.pod("cache-a", cluster.agents.a, null, "cache");
    cluster.apply(Builds.repoFile("e2e/examples/migrationpolicy.yaml"));
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
      cluster.kube.pods().withName("cache-a").delete();
      cluster.imdsA.announceNothing();
      forgetPolicyAndNotice();
    }
  }

  /**
   * A rebalance recommendation (EC2's early warning that a spot instance is at risk) prepares the
   * move and freezes nothing: the request waits in Prepared with the state pre-copied while the
   * stream goes on. The interruption notice that follows proceeds that same request, and the stream
   * moves intact.
   */
  @Test
  void aRebalanceRecommendationPreparesTheMoveAndTheInterruptionThatFollowsMovesTheStream()
      throws Exception {
    MigrationPolicy policy;
    try (InputStream in =
        Files.newInputStream(Builds.repoFile("e2e/examples/migrationpolicy.yaml"))) {
      policy = cluster.kube.resources(MigrationPolicy.class).load(in).item();
    }
    policy.getSpec().getTriggers().setRebalanceRecommendation(true);
    cluster.kube.resource(policy).create();
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      cluster.imdsA.rebalance("{\"noticeTime\": \"2026-12-05T10:00:00Z\"}");

      MigrationRequest made = awaitPolicyRequest(30);
      String name = made.getMetadata().getName();
      MigrationRequestStatus prepared = awaitPrecopied(name, 60);

      assertThat(made.getSpec().isPrepareOnly()).isTrue();
      assertThat(prepared.getPhase()).as(prepared.getMessage()).isEqualTo(Phase.Prepared);
      assertThat(prepared.getMessage()).contains("nothing is frozen");
      int before = curl.events();
      curl.awaitEvents(before + 250, 30_000); // a second of tokens: the client is not held

      cluster.imdsA.instanceAction(
          "{\"action\": \"terminate\", \"time\": \"2026-12-05T10:02:00Z\"}");
      MigrationRequestStatus st = cluster.awaitEnd(name, 60);

      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(st.getPhaseTransitionTimestamps())
          .extracting(PhaseTransition::getPhase)
          .containsExactly(
              Phase.Pending, Phase.Preparing, Phase.Prepared, Phase.Moving, Phase.Completed);
      assertThat(policyRequests())
          .as("the interruption moved the prepared request; it made no second one")
          .singleElement()
          .satisfies(
              r ->
                  assertThat(r.getMetadata().getAnnotations().get("ferry.dev/proceed"))
                      .startsWith("node-a: SpotInterruptionNotice"));
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      System.out.println(
          "rebalance, then interruption: pause "
              + st.getPauseMillis()
              + " ms, phases "
              + st.getPhaseMillis());
    } finally {
      cluster.imdsA.announceNothing();
      forgetPolicyAndNotice();
    }
  }

  /** Waits until request {@code name} says its state is pre-copied; returns its status. */
  private static MigrationRequestStatus awaitPrecopied(String name, int seconds)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    MigrationRequestStatus st = null;
    while (System.nanoTime() < deadline) {
      MigrationRequest r = cluster.kube.resources(MigrationRequest.class).withName(name).get();
      st = r == null ? null : r.getStatus();
      if (st != null && st.getPhase() != null && st.getPhase().finished()) {
        break;
      }
      if (st != null
          && st.getConditions() != null
          && st.getConditions().stream()
              .anyMatch(
                  c ->
                      c.getType().equals("Progressing")
                          && "StatePrecopied".equals(c.getReason()))) {
        return st;
      }
      Thread.sleep(50);
    }
    throw new AssertionError(
        name
            + " did not report its state pre-copied within "
            + seconds
            + " s: "
            + (st == null ? "no status" : st.getPhase() + ", " + st.getMessage()));
  }

  /**
   * The policy, the requests it made and node-a's notice go, so that the next test starts without
   * them: a replaced instance comes back without the notice; here the same node stays.
   */
  private static void forgetPolicyAndNotice() {
    cluster.kube.resources(MigrationPolicy.class).withName("keep-streams").delete();
    cluster
        .kube
        .resources(MigrationRequest.class)
        .withLabel("ferry.dev/policy", "keep-streams")
        .delete();
    cluster
        .kube
        .nodes()
        .withName("node-a")
        .editStatus(
            n -> {
              n.getStatus()
                  .getConditions()
                  .removeIf(
                      c ->
                          c.getType().equals("SpotInterruptionNotice")
                              || c.getType().equals("RebalanceRecommendation"));
              return n;
            });
  }

  @Test
  void anSqsInterruptionMessageForNodeAsInstanceMovesItsProtectedPodsStreamAndIsDeletedAfterwards()
      throws Exception {
    String instance = OperatorCluster.instanceId(cluster.agents.a);
    String message =
        """
        {"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e",
         "detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2",
         "account":"123456789012","time":"2026-11-23T10:00:00Z","region":"us-east-1",
         "resources":["arn:aws:ec2:us-east-1a:instance/%s"],
         "detail":{"instance-id":"%s","instance-action":"terminate"}}"""
            .formatted(instance, instance);
    withOperator(
        cluster.queueEnv(),
        () -> {
          cluster.apply(Builds.repoFile("e2e/examples/migrationpolicy.yaml"));
          try (CurlStream curl = cluster.agents.curl(STREAM)) {
            curl.awaitEvents(50, 10_000);
            List<String> before =
                policyRequests().stream().map(r -> r.getMetadata().getName()).toList();
            // Nothing from node-a's metadata service: the queue alone announces the interruption.
            cluster.sqs.send(OperatorCluster.QUEUE, message);

            // Fails if the queue is ever seen empty while the request does not exist yet.
            MigrationRequest made = awaitNewPolicyRequestWhileTheMessageStays(before, 30);
            MigrationRequestStatus st = cluster.awaitEnd(made.getMetadata().getName(), 60);

            assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
            assertThat(made.getSpec().getSource().getName()).isEqualTo("pod-a");
            assertThat(made.getSpec().getTarget().getName()).isEqualTo("pod-b");
            assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
            assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
            awaitQueueEmpty(30);
            assertThat(cluster.sqs.calls())
                .as("received, then deleted")
                .extracting(FakeSqs.Call::action)
                .contains(FakeSqs.RECEIVE, FakeSqs.DELETE);
            assertThat(cluster.kube.nodes().withName("node-a").get().getStatus().getConditions())
                .anyMatch(
                    c ->
                        c.getType().equals("SpotInterruptionNotice")
                            && c.getMessage().contains("SQS"));
          } finally {
            forgetPolicyAndNotice();
          }
        });
  }

  /**
   * The first request of the policy not in {@code before}. The queue is looked at before the
   * requests each time: an empty queue followed by no new request means the message went first.
   */
  private static MigrationRequest awaitNewPolicyRequestWhileTheMessageStays(
      List<String> before, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      boolean queueEmpty = cluster.sqs.bodies(OperatorCluster.QUEUE).isEmpty();
      for (MigrationRequest r : policyRequests()) {
        if (!before.contains(r.getMetadata().getName())) {
          return r;
        }
      }
      assertThat(queueEmpty).as("the message was deleted before the request existed").isFalse();
      Thread.sleep(20);
    }
    throw new AssertionError("no new MigrationRequest from the policy within " + seconds + " s");
  }

  private static void awaitQueueEmpty(int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!cluster.sqs.bodies(OperatorCluster.QUEUE).isEmpty()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("the message is still in the queue after " + seconds + " s");
      }
      Thread.sleep(50);
    }
  }

  @Test
  void aTargetAgentThatDiesAfterStagingLeavesTheStreamLiveOnTheSource() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      // The target agent stops right after staging, before any commit: as a crash there would.
      cluster.request("b-dies", "target-after-stage", s -> s.setTarget(new PodReference("pod-b")));
      cluster.agents.b.awaitAgentExit();

      MigrationRequestStatus st = cluster.awaitEnd("b-dies", 90);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.RolledBack);
      assertThat(st.getMessage()).contains("went back to node-a");
      assertThat(st.getConnections().getRolledBack()).isEqualTo(1);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("the stream went on from pod-a").isEqualTo(reference);
    } finally {
      cluster.agents.b.startAgent();
      // The next test needs pod-b's server registered again, which it does on its own, later.
      cluster.agents.b.awaitRegistered(AgentCluster.PORT);
    }
  }

  @Test
  void aTargetApplicationThatDeclinesTheTakeoverLeavesTheStreamLiveOnTheSource() throws Exception {
    streamerB.destroyForcibly().waitFor();
    streamerB = cluster.agents.b.streamer("--rate", RATE, "--decline-takeover");
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      cluster.request("b-app-declines", s -> s.setTarget(new PodReference("pod-b")));

      MigrationRequestStatus st = cluster.awaitEnd("b-app-declines", 90);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.RolledBack);
      assertThat(st.getMessage()).contains("staging on node-b failed").contains("declined");
      assertThat(st.getConnections().getRolledBack()).isEqualTo(1);
      assertThat(st.getConnectionDetails())
          .singleElement()
          .satisfies(d -> assertThat(d.getOutcome()).isEqualTo("RolledBack"));
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("the stream went on from pod-a").isEqualTo(reference);
    } finally {
      streamerB.destroyForcibly().waitFor();
      streamerB = cluster.agents.b.streamer("--rate", RATE);
    }
  }

  @Test
  void aConnectionItsApplicationKeepsStopsTheMoveUnlessTheRequestAllowsAPartialOne()
      throws Exception {
    // A second server in pod-a that never hands a connection over, and its peer in pod-b.
    Process keeper =
        cluster.agents.a.streamer("--rate", RATE, "--listen", "0.0.0.0:8081", "--ignore-freeze");
    Process peer = cluster.agents.b.streamer("--rate", RATE, "--listen", "0.0.0.0:8081");
    try {
      try (CurlStream moving = cluster.agents.curl(STREAM);
          CurlStream kept = curl(8081)) {
        moving.awaitEvents(50, 10_000);
        kept.awaitEvents(50, 10_000);
        request("all-or-nothing", false);
        MigrationRequestStatus st = cluster.awaitEnd("all-or-nothing", 60);

        assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.RolledBack);
        assertThat(st.getMessage())
            .contains("1 connection(s) stayed with their application")
            .contains("spec.allowPartial");
        assertThat(moving.exitCode(90)).isZero();
        assertThat(moving.output()).as("8080, frozen, then back").isEqualTo(reference);
        assertThat(kept.exitCode(90)).isZero();
        assertThat(kept.output()).as("8081, never frozen").isEqualTo(reference);
      }
      try (CurlStream moving = cluster.agents.curl(STREAM);
          CurlStream kept = curl(8081)) {
        moving.awaitEvents(50, 10_000);
        kept.awaitEvents(50, 10_000);
        request("partial", true);
        MigrationRequestStatus st = cluster.awaitEnd("partial", 60);

        assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
        assertThat(st.getConnections().getMigrated()).isEqualTo(1);
        assertThat(st.getConnections().getFailed()).isEqualTo(1);
        assertThat(st.getConnectionDetails())
            .filteredOn(d -> d.getOutcome().equals("Failed"))
            .singleElement()
            .satisfies(d -> assertThat(d.getReason()).contains("lost its address"));
        assertThat(moving.exitCode(90)).isZero();
        assertThat(moving.output()).isEqualTo(reference);
        assertThat(kept.exitCode(90))
            .as("the kept connection, cut off as the status says")
            .isNotZero();
      }
    } finally {
      keeper.destroyForcibly().waitFor();
      peer.destroyForcibly().waitFor();
    }
  }

  private static void request(String name, boolean allowPartial) {
    cluster.request(
        name,
        s -> {
          s.setTarget(new PodReference("pod-b"));
          s.setPorts(List.of(AgentCluster.PORT, 8081));
          s.setAllowPartial(allowPartial);
        });
  }

  private static CurlStream curl(int port) throws java.io.IOException {
    return new CurlStream(
        cluster
            .agents
            .client
            .process(
                "curl",
                "-sSN",
                "--max-time",
                "120",
                "http://" + AgentCluster.VIP + ":" + port + STREAM)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start());
  }

  @Test
  void aHoldPastItsLimitGivesTheStreamBackToTheSourceAndTheRequestRollsBack() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      int logFrom = cluster.agents.a.logMark();
      // The source agent stalls after exporting (a slow peer would do the same), and the
      // operator goes away with the clients held, and stays away past the hold limit.
      cluster.request(
          "held-too-long",
          "source-stalls-after-export",
          s -> {
            s.setTarget(new PodReference("pod-b"));
            s.setHoldLimit("2s");
          });
      Phase killedIn = cluster.awaitPhase("held-too-long", Phase.Moving);
      // Moving is written before the operator asks the source to move: the clients are held
      // once the source has exported.
      cluster.agents.a.awaitLine(logFrom, "fault point source-stalls-after-export reached");
      cluster.killOperator();
      assertThat(killedIn).isEqualTo(Phase.Moving);
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

  @Test
  void theAwsMoverMovesTheAddressThroughEc2AndTheStreamGoesOn() throws Exception {
    FakeEc2 ec2 = cluster.ec2;
    ec2.moveDelay(Duration.ofMillis(200));
    withOperator(
        cluster.awsEnv(),
        () -> {
          try (CurlStream curl = cluster.agents.curl(STREAM)) {
            curl.awaitEvents(50, 10_000);
            cluster.request("aws-to-b", "pod-a", "pod-b", null);
            MigrationRequestStatus st = cluster.awaitEnd("aws-to-b", 60);

            assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
            assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
            assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
            FakeEc2Request assign = last(ec2.requests(FakeEc2.ASSIGN));
            assertThat(assign.param("NetworkInterfaceId"))
                .as("node-b's interface tagged no_manage")
                .isEqualTo(OperatorCluster.eni(cluster.agents.b));
            assertThat(assign.list("PrivateIpAddress")).containsExactly(AgentCluster.VIP);
            assertThat(assign.param("AllowReassignment")).isEqualTo("true");
            assertThat(ec2.addresses(OperatorCluster.eni(cluster.agents.b)))
                .contains(AgentCluster.VIP);
            System.out.println(
                "aws mover: pause " + st.getPauseMillis() + " ms, phases " + st.getPhaseMillis());
          }
          // And back over EC2: the cluster's other scenarios start from pod-a. The finished
          // stream's socket must be gone first, or the move would be of a closing connection.
          awaitNoConnections(cluster.agents.b);
          cluster.request("aws-to-a", "pod-b", "pod-a", AgentCluster.VIP);
          MigrationRequestStatus back = cluster.awaitEnd("aws-to-a", 60);
          assertThat(back.getPhase()).as(back.getMessage()).isEqualTo(Phase.Completed);
          assertThat(ec2.addresses(OperatorCluster.eni(cluster.agents.a)))
              .contains(AgentCluster.VIP);
        });
  }

  @Test
  void anEc2ThatRefusesTheMoveRollsTheRequestBackNamingThePermission() throws Exception {
    FakeEc2 ec2 = cluster.ec2;
    ec2.deny(FakeEc2.ASSIGN);
    int assignsBefore = ec2.requests(FakeEc2.ASSIGN).size();
    try {
      withOperator(
          cluster.awsEnv(),
          () -> {
            try (CurlStream curl = cluster.agents.curl(STREAM)) {
              curl.awaitEvents(50, 10_000);
              cluster.request("aws-denied", "pod-a", "pod-b", null);
              MigrationRequestStatus st = cluster.awaitEnd("aws-denied", 60);

              assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.RolledBack);
              assertThat(st.getMessage())
                  .contains("ec2:AssignPrivateIpAddresses")
                  .contains("UnauthorizedOperation")
                  .contains("in Moving");
              assertThat(st.getConnections().getRolledBack()).isEqualTo(1);
              assertThat(ec2.requests(FakeEc2.ASSIGN).size() - assignsBefore)
                  .as("an authorization error is not retried")
                  .isEqualTo(1);
              assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
              assertThat(curl.output()).as("the stream went on from pod-a").isEqualTo(reference);
            }
          });
    } finally {
      ec2.allow(FakeEc2.ASSIGN);
    }
  }

  /** Runs {@code body} with the operator restarted with {@code env}; then restarts it as it was. */
  private static void withOperator(Map<String, String> env, ThrowingRunnable body)
      throws Exception {
    cluster.killOperator();
    cluster.startOperator(env);
    try {
      body.run();
    } finally {
      cluster.killOperator();
      cluster.startOperator(Map.of());
    }
  }

  private interface ThrowingRunnable {
    void run() throws Exception;
  }

  private static void awaitNoConnections(AgentCluster.Node node) throws InterruptedException {
    for (int i = 0; i < 100; i++) {
      String established =
          node.pod.run(
              "ss", "-Htn", "state", "established", "( sport = :" + AgentCluster.PORT + " )");
      if (established.isBlank()) {
        return;
      }
      Thread.sleep(50);
    }
    throw new AssertionError(node.name + "'s pod still has connections on " + AgentCluster.PORT);
  }

  private static <T> T last(List<T> list) {
    assertThat(list).isNotEmpty();
    return list.get(list.size() - 1);
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
    MovedAddress moved =
        cluster
            .kube
            .resources(MovedAddress.class)
            .withName(MovedAddress.nameFor(AgentCluster.VIP))
            .get();
    return moved == null ? "pod-a" : moved.getSpec().getPod().getName();
  }
}
