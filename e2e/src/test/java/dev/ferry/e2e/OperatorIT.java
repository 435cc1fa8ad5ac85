// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.MovedAddress;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.api.v1alpha1.MoveOutcome;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator as a process against an API server (Fabric8's CRUD mock) and two real node-agents
 * over mTLS: a MigrationRequest moves a live curl stream, or fails before anything is frozen with
 * the field named.
 */
class OperatorIT {
  // 12 s of tokens: long enough to outlast a cold operator's first migration on a busy machine.
  private static final String STREAM = "/v1/stream?prompt=operator&tokens=3000";
  private static final String RATE = "250";
  private static OperatorCluster cluster;
  private static String reference;
  private static Process streamerB;

  @BeforeAll
  static void start() throws Exception {
    // One migration at a time out of a node: the limits test below shows the second one wait. A
    // policy's requests kept 2 s after their end (168h by default): the test below sees one go.
    cluster =
        OperatorCluster.start(
            Map.of(
                "FERRY_OPERATOR_LIMITS_PER_NODE",
                "1",
                "FERRY_OPERATOR_POLICY_REQUESTS_KEPT",
                "2s"));
    reference = cluster.agents.unmovedOutput(STREAM); // fast: the tokens do not depend on the rate
    cluster.agents.a.streamer("--rate", RATE);
    streamerB = cluster.agents.b.streamer("--rate", RATE);
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void aMigrationRequestMovesTheStreamFromPendingToCompletedWithEveryStatusFieldFilled()
      throws Exception {
    // Every version of the request the API server stores, as a watch sees them.
    List<Phase> stored = new java.util.concurrent.CopyOnWriteArrayList<>();
    try (CurlStream curl = cluster.agents.curl(STREAM);
        Watch watch =
            cluster
                .kube
                .resources(MigrationRequest.class)
                .inNamespace(OperatorCluster.NAMESPACE)
                .withName("move-to-b")
                .watch(
                    new Watcher<>() {
                      @Override
                      public void eventReceived(Action action, MigrationRequest r) {
                        if (r.getStatus() != null && r.getStatus().getPhase() != null) {
                          stored.add(r.getStatus().getPhase());
                        }
                      }

                      @Override
                      public void onClose(WatcherException e) {}
                    })) {
      curl.awaitEvents(50, 10_000);
      MigrationRequest mr =
          cluster.request("move-to-b", spec -> spec.setTarget(new PodReference("pod-b")));
      MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 60);
      awaitStored(stored, Phase.Completed);
      // The pause lies inside Moving: one status write entered it, the next one ended it.
      assertThat(stored)
          .as("the statuses stored, in order")
          .containsSubsequence(Phase.Preparing, Phase.Moving, Phase.Completed);
      assertThat(stored.stream().filter(Phase.Moving::equals).count())
          .as("status writes while the agents moved the stream: only the one that began it")
          .isEqualTo(1);
      // And the source agent saw no call from anyone while its client was held.
      MoveOutcome o = cluster.howTheMoveEnded(st.getMigrationId());
      assertThat(o.getResult())
          .as("Move again: how it ended")
          .isEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(o.getApiCallsDuringPause())
          .as("operator calls on the source agent between the freeze and the resume")
          .isZero();

      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);

      assertThat(st.getConnections().getTotal()).isEqualTo(1);
      assertThat(st.getConnections().getMigrated()).isEqualTo(1);
      assertThat(st.getConnectionDetails())
          .singleElement()
          .satisfies(d -> assertThat(d.getOutcome()).isEqualTo("Migrated"));
      assertThat(st.getPhaseMillis())
          .containsKeys(
              "Preparing",
              "Moving",
              "agent.source.freeze",
              "agent.source.export",
              "agent.target.stage",
              "agent.target.resume");
      assertThat(st.getPauseMillis()).isPositive();
      assertThat(st.getObservedGeneration()).isNotNull();
      assertThat(st.getSourceNode()).isEqualTo("node-a");
      assertThat(st.getTargetNode()).isEqualTo("node-b");
      assertThat(st.getTargetPod()).isEqualTo("pod-b");
      assertThat(st.getAddress()).isEqualTo(AgentCluster.VIP + "/32");
      assertThat(st.getMigrationId()).isNotBlank();
      assertThat(st.getStartTime()).isNotBlank();
      assertThat(st.getCompletionTime()).isNotBlank();
      assertThat(condition(st, "Ready").getStatus()).isEqualTo("True");
      // Events are written in the background, in order: the last may follow the status.
      awaitEvent(mr, "Completed");
      assertThat(events(mr))
          .extracting(Event::getReason)
          .contains("Preparing", "Moving", "Completed");
      assertThat(
              cluster
                  .kube
                  .resources(MovedAddress.class)
                  .withName(MovedAddress.nameFor(AgentCluster.VIP))
                  .get())
          .as("the target pod is recorded as the address's holder now")
          .extracting(m -> m.getSpec().getPod().getName())
          .isEqualTo("pod-b");
      System.out.println(
          "operator: pause "
              + st.getPauseMillis()
              + " ms, phases "
              + st.getPhaseMillis()
              + "; curl's longest gap "
              + curl.longestGapMillis()
              + " ms");
    }
    // And back to pod-a, by its moved address, so the other tests find the cluster as it was.
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      MigrationRequestStatus st = cluster.moveBack("back-to-a");
      assertThat(curl.exitCode(90)).isZero();
      assertThat(curl.output()).isEqualTo(reference);
      System.out.println(
          "operator, second move: pause "
              + st.getPauseMillis()
              + " ms, phases "
              + st.getPhaseMillis());
    }
  }

  @Test
  void requestsThatCannotBeCarriedOutFailNamingTheFieldAndNothingIsFrozen() throws Exception {
    cluster.pod("pod-a2", cluster.agents.a, null, OperatorCluster.APP_LABEL);
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(20, 10_000);
      Map<String, Consumer<MigrationRequestSpec>> cases = new LinkedHashMap<>();
      cases.put(
          "spec.source.name: no pod nope",
          s -> {
            s.setSource(new PodReference("nope"));
            s.setTarget(new PodReference("pod-b"));
          });
      cases.put(
          "spec.target.name: pod pod-a2 runs on node node-a, like the source",
          s -> s.setTarget(new PodReference("pod-a2")));
      cases.put(
          "spec.address: 198.18.0.77 is not an address of pod pod-a",
          s -> {
            s.setTarget(new PodReference("pod-b"));
            s.setAddress("198.18.0.77");
          });
      cases.put(
          "spec.deadline: 'soon' is not a duration",
          s -> {
            s.setTarget(new PodReference("pod-b"));
            s.setDeadline("soon");
          });
      cases.put(
          "spec.holdLimit: 5m is longer than spec.deadline",
          s -> {
            s.setTarget(new PodReference("pod-b"));
            s.setHoldLimit("5m");
          });
      cases.put(
          "spec.targetSelector: no ready pod labelled app=nothing",
          s -> s.setTargetSelector(Map.of("app", "nothing")));
      int n = 0;
      for (var c : cases.entrySet()) {
        MigrationRequest mr = cluster.request("invalid-" + n++, c.getValue());
        MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 30);
        assertThat(st.getPhase()).as(c.getKey()).isEqualTo(Phase.Failed);
        assertThat(st.getMessage()).as(c.getKey()).contains(c.getKey());
        assertThat(condition(st, "Failed").getReason()).isEqualTo("Invalid");
        assertThat(st.getPhaseMillis() == null ? Map.of() : st.getPhaseMillis())
            .as("nothing frozen")
            .doesNotContainKey("Moving");
        awaitEvent(mr, "Invalid");
        assertThat(events(mr)).extracting(Event::getReason).doesNotContain("Moving");
      }
      assertThat(curl.exitCode(90)).isZero();
      assertThat(curl.output()).as("the stream never paused for a freeze").isEqualTo(reference);
    } finally {
      cluster.kube.pods().inNamespace(OperatorCluster.NAMESPACE).withName("pod-a2").delete();
    }
  }

  @Test
  void aDryRunListsTheConnectionsAndTouchesNothing() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(20, 10_000);
      MigrationRequest mr = dryRunToPodB("dry-run");
      MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 30);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(st.getMessage())
          .contains("dry run: 1 connection(s)")
          .contains("nothing was touched");
      assertThat(st.getConnectionDetails())
          .singleElement()
          .satisfies(d -> assertThat(d.getOutcome()).isEqualTo("WouldMove"));

      // An annotation is no spec change, yet it reaches the operator: a Completed request has
      // nothing to roll back, and says so.
      cluster
          .kube
          .resources(MigrationRequest.class)
          .withName(mr.getMetadata().getName())
          .edit(
              r -> {
                r.getMetadata().getAnnotations().put("ferry.dev/rollback", "1");
                return r;
              });
      MigrationRequestStatus asked = awaitMessage(mr, "ferry.dev/rollback ignored");
      assertThat(asked.getPhase()).isEqualTo(Phase.Completed);
      assertThat(asked.getRollbackRequest()).isEqualTo("1");

      assertThat(curl.exitCode(90)).isZero();
      assertThat(curl.output()).isEqualTo(reference);
    }
  }

  /** Creates the request {@code name}: a dry run from pod-a to pod-b. */
  private static MigrationRequest dryRunToPodB(String name) {
    return cluster.request(
        name,
        s -> {
          s.setTarget(new PodReference("pod-b"));
          s.setDryRun(true);
        });
  }

  @Test
  void aPolicysRequestIsDeletedTheTimeKeptAfterItEndedAndAPersonsStays() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(20, 10_000);
      MigrationRequest mine = dryRunToPodB("dry-run-mine");
      MigrationRequest policys = new MigrationRequest();
      policys.setMetadata(
          new ObjectMetaBuilder()
              .withName("dry-run-policys")
              .withNamespace(mine.getMetadata().getNamespace())
              .withLabels(Map.of(MigrationRequest.POLICY_LABEL, "spot"))
              .build());
      policys.setSpec(mine.getSpec());
      cluster.kube.resource(policys).create();

      MigrationRequestStatus mineEnd = cluster.awaitEnd("dry-run-mine", 30);
      MigrationRequestStatus policysEnd = cluster.awaitEnd("dry-run-policys", 30);
      assertThat(mineEnd.getPhase()).as(mineEnd.getMessage()).isEqualTo(Phase.Completed);
      assertThat(policysEnd.getPhase()).as(policysEnd.getMessage()).isEqualTo(Phase.Completed);

      Instant ended = Instant.parse(policysEnd.getCompletionTime());
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (cluster.kube.resources(MigrationRequest.class).withName("dry-run-policys").get()
              != null
          && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      Instant gone = Instant.now();
      assertThat(cluster.kube.resources(MigrationRequest.class).withName("dry-run-policys").get())
          .as("the policy's request, 2 s after its end")
          .isNull();
      assertThat(gone).as("not before its time").isAfterOrEqualTo(ended.plusSeconds(2));
      assertThat(cluster.kube.resources(MigrationRequest.class).withName("dry-run-mine").get())
          .as("a person's request stays")
          .isNotNull();

      assertThat(curl.exitCode(90)).isZero();
      assertThat(curl.output()).isEqualTo(reference);
    }
  }

  @Test
  void aTargetWithoutItsApplicationIsRefusedBeforeAnythingIsFrozen() throws Exception {
    streamerB.destroyForcibly().waitFor();
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      MigrationRequest mr =
          cluster.request("no-app-on-b", s -> s.setTarget(new PodReference("pod-b")));
      MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 60);

      assertRefusedUntouched(
          mr, st, "spec.target.name: no application on node node-b has registered port 8080");
      assertThat(st.getMessage()).contains("Ferry SDK");
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("the stream never paused for a freeze").isEqualTo(reference);
    } finally {
      streamerB = cluster.agents.b.streamer("--rate", RATE);
    }
  }

  @Test
  void aTargetWhoseAgentIsDownIsRefusedBeforeAnythingIsFrozen() throws Exception {
    cluster.agents.b.killAgent();
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      MigrationRequest mr =
          cluster.request("b-is-down", s -> s.setTarget(new PodReference("pod-b")));
      MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 90);

      assertRefusedUntouched(
          mr, st, "spec.target.name: the Ferry agent of node node-b does not answer");
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).isEqualTo(reference);
    } finally {
      cluster.agents.b.startAgent();
      cluster.agents.b.awaitRegistered(AgentCluster.PORT);
    }
  }

  private static void assertRefusedUntouched(
      MigrationRequest mr, MigrationRequestStatus st, String message) throws InterruptedException {
    assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Failed);
    assertThat(st.getMessage()).contains(message);
    assertThat(condition(st, "Failed").getReason()).isEqualTo("Invalid");
    assertThat(st.getPhaseMillis() == null ? Map.of() : st.getPhaseMillis())
        .as("nothing frozen")
        .doesNotContainKey("Moving");
    awaitEvent(mr, "Invalid");
    assertThat(events(mr)).extracting(Event::getReason).doesNotContain("Moving");
  }

  @Test
  void anEvictionOfTheSourcePodWaitsWhileItMovesThenGoesThrough() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM);
        KubernetesClient drain = cluster.evictor()) {
      curl.awaitEvents(50, 10_000);
      // The move stalls on the source agent for a while: the eviction comes in the middle of it.
      MigrationRequest mr =
          cluster.request(
              "drained", "source-stalls-after-export", s -> s.setTarget(new PodReference("pod-b")));
      assertThat(cluster.awaitPhase(mr.getMetadata().getName(), Phase.Moving))
          .isEqualTo(Phase.Moving);
      Pod guarded = cluster.kube.pods().withName("pod-a").get();
      assertThat(guarded.getMetadata().getAnnotations())
          .containsEntry("karpenter.sh/do-not-disrupt", "true");

      assertThat(drain.pods().withName("pod-a").evict())
          .as("the eviction API answers 429 while the connections move")
          .isFalse();
      assertThat(cluster.kube.pods().withName("pod-a").get()).isNotNull();

      MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 90);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).isEqualTo(reference);

      assertThat(cluster.kube.policy().v1().podDisruptionBudget().list().getItems())
          .as("the budget is gone with the migration")
          .isEmpty();
      assertThat(cluster.kube.pods().withName("pod-a").get().getMetadata().getAnnotations())
          .doesNotContainKey("karpenter.sh/do-not-disrupt");
      assertThat(drain.pods().withName("pod-a").evict()).as("now it goes through").isTrue();
      assertThat(cluster.kube.pods().withName("pod-a").get()).isNull();
    } finally {
      // Its controller would make it again: the next tests need it, with the address back.
      if (cluster.kube.pods().withName("pod-a").get() == null) {
        cluster.pod("pod-a", cluster.agents.a, AgentCluster.VIP, OperatorCluster.APP_LABEL);
      }
      cluster.moveBack("drained-back");
    }
  }

  @Test
  void withOneMigrationPerNodeASecondRequestWaitsInPendingUntilTheFirstEnds() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      MigrationRequest first =
          cluster.request(
              "first", "source-stalls-after-export", s -> s.setTarget(new PodReference("pod-b")));
      cluster.awaitPhase(first.getMetadata().getName(), Phase.Moving);
      MigrationRequest second = dryRunToPodB("second");

      MigrationRequestStatus waiting = awaitMessage(second, "waiting for a migration slot");
      assertThat(waiting.getPhase()).isEqualTo(Phase.Pending);
      assertThat(waiting.getMessage())
          .isEqualTo(
              "waiting for a migration slot: 1 migration(s) out of node "
                  + cluster.agents.a.name
                  + " may be under way at once (ferry.operator.limits.per-node), and that many"
                  + " are");
      assertThat(waiting.getConditions())
          .anySatisfy(c -> assertThat(c.getReason()).isEqualTo("WaitingForSlot"));

      MigrationRequestStatus firstEnd = cluster.awaitEnd(first.getMetadata().getName(), 90);
      MigrationRequestStatus secondEnd = cluster.awaitEnd(second.getMetadata().getName(), 60);
      assertThat(firstEnd.getPhase()).as(firstEnd.getMessage()).isEqualTo(Phase.Completed);
      assertThat(secondEnd.getPhase()).as(secondEnd.getMessage()).isEqualTo(Phase.Completed);
      assertThat(Instant.parse(secondEnd.getCompletionTime()))
          .as("the second ran after the first")
          .isAfterOrEqualTo(Instant.parse(firstEnd.getCompletionTime()));
      assertThat(secondEnd.getPhaseMillis()).containsKey("Preparing");
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).isEqualTo(reference);
    } finally {
      cluster.moveBack("first-back");
    }
  }

  @Test
  void aSecondRequestForAPodWaitsWhileTheFirstMovesItsConnectionsAndThenFindsNoneLeft()
      throws Exception {
    int seen = cluster.operatorLog.size();
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      MigrationRequest first =
          cluster.request(
              "pod-first",
              "source-stalls-after-export",
              s -> s.setTarget(new PodReference("pod-b")));
      cluster.awaitPhase(first.getMetadata().getName(), Phase.Moving);
      // A policy's request beside a person's, say: the same pod, not a dry run.
      MigrationRequest second =
          cluster.request("pod-second", s -> s.setTarget(new PodReference("pod-b")));

      MigrationRequestStatus waiting = awaitMessage(second, "waiting for a migration slot");
      assertThat(waiting.getPhase()).isEqualTo(Phase.Pending);
      assertThat(waiting.getMessage())
          .isEqualTo(
              "waiting for a migration slot: one migration of a pod may be under way at once, and"
                  + " that of pod shop/pod-a (MigrationRequest shop/pod-first) is under way");
      assertThat(cluster.kube.pods().withName("pod-a").get().getMetadata().getLabels())
          .as("the pod's eviction guard is still the first one's")
          .containsEntry("ferry.dev/migration", first.getMetadata().getUid());

      MigrationRequestStatus firstEnd = cluster.awaitEnd(first.getMetadata().getName(), 90);
      assertThat(firstEnd.getPhase()).as(firstEnd.getMessage()).isEqualTo(Phase.Completed);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).isEqualTo(reference);

      // Its turn comes once the first ended: the stream went with the first, and nothing is left
      // to move.
      MigrationRequestStatus secondEnd = cluster.awaitEnd(second.getMetadata().getName(), 60);
      assertThat(secondEnd.getPhase()).as(secondEnd.getMessage()).isEqualTo(Phase.Completed);
      assertThat(secondEnd.getMessage())
          .isEqualTo("every connection that could move lives on " + cluster.agents.b.name);
      assertThat(secondEnd.getConnections().getTotal()).isZero();
      assertThat(Instant.parse(secondEnd.getCompletionTime()))
          .as("the second ran after the first")
          .isAfterOrEqualTo(Instant.parse(firstEnd.getCompletionTime()));
      // Its guard goes up as the first's comes down, on the pod its plan read with the first's
      // marks on it: the patch that no longer applies is made again on the pod read anew.
      assertThat(cluster.operatorLog.stream().skip(seen))
          .as("the second request's pod was guarded while it ran")
          .noneMatch(l -> l.contains("pod-second: the source pod is not protected from eviction"));
      assertThat(cluster.kube.pods().withName("pod-a").get().getMetadata().getLabels())
          .as("no guard left behind")
          .doesNotContainKey("ferry.dev/migration");
    } finally {
      cluster.moveBack("pod-first-back");
    }
  }

  /** Waits until the request's status message starts with {@code prefix}; returns that status. */
  private static MigrationRequestStatus awaitMessage(MigrationRequest mr, String prefix)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      MigrationRequest now =
          cluster.kube.resources(MigrationRequest.class).withName(mr.getMetadata().getName()).get();
      if (now.getStatus() != null
          && now.getStatus().getMessage() != null
          && now.getStatus().getMessage().startsWith(prefix)) {
        return now.getStatus();
      }
      Thread.sleep(20);
    }
    throw new AssertionError(mr.getMetadata().getName() + " never said: " + prefix);
  }

  @Test
  void anOperatorRestartedInTheMiddleOfAMigrationFinishesIt() throws Exception {
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      curl.awaitEvents(50, 10_000);
      int logFrom = cluster.agents.a.logMark();
      // The move stalls on the source agent for a while, so the operator dies in the middle of
      // it for sure; the agents carry on without it.
      MigrationRequest mr =
          cluster.request(
              "restarted",
              "source-stalls-after-export",
              s -> s.setTarget(new PodReference("pod-b")));
      Phase killedIn = cluster.awaitPhase(mr.getMetadata().getName(), Phase.Moving);
      // Moving is written before the operator asks the agents to move: wait for the source to
      // have exported (the stream is then held and cannot end on its own while the operator is
      // away; on a busy machine its restart outlasts the whole stream).
      cluster.agents.a.awaitLine(logFrom, "fault point source-stalls-after-export reached");
      cluster.killOperator();
      System.out.println("killed the operator in " + killedIn);
      assertThat(killedIn).isEqualTo(Phase.Moving);
      cluster.startOperator();

      MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 90);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(st.getConnections().getMigrated()).isEqualTo(1);
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).isEqualTo(reference);
    }
    // Back, with no connection left: the address alone moves.
    cluster.moveBack("restarted-back");
  }

  @Test
  void aSecondOperatorWaitsForTheLeaseAndTakesOverWhenTheLeaderDies() throws Exception {
    List<String> standbyLog = new java.util.concurrent.CopyOnWriteArrayList<>();
    Process standby = cluster.startStandby(standbyLog);
    try {
      Lease lease = lease();
      assertThat(lease.getSpec().getHolderIdentity()).isEqualTo("operator-1");
      MigrationRequest dry = dryRunToPodB("led");
      assertThat(cluster.awaitEnd(dry.getMetadata().getName(), 30).getPhase())
          .isEqualTo(Phase.Completed);

      cluster.killOperator();
      MigrationRequest after = dryRunToPodB("led-by-2");
      MigrationRequestStatus st = cluster.awaitEnd(after.getMetadata().getName(), 60);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(lease().getSpec().getHolderIdentity()).isEqualTo("operator-2");
    } finally {
      standby.destroyForcibly().waitFor();
      cluster.killOperator();
      cluster.startOperator();
      // operator-2 died holding the Lease: operator-1 leads again once it expires.
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (!"operator-1".equals(lease().getSpec().getHolderIdentity())
          && System.nanoTime() < deadline) {
        Thread.sleep(200);
      }
    }
  }

  /**
   * A rolling update of the operator's Deployment, or a drain of its node, stops it with SIGTERM:
   * it must end then, not hang until the kubelet kills it at the end of its grace period (JOSDK's
   * own exit on stopping leading blocked the JVM's shutdown for good), and come back leading.
   */
  @Test
  void anOperatorStoppedAsTheKubeletStopsItEndsAndLeadsAgainOnceStarted() throws Exception {
    int seen = cluster.operatorLog.size();
    try {
      // Fails if it has not ended 60 s after SIGTERM.
      cluster.stopOperator();
      // It let its Lease go on the way out: a standby would lead at once, not once it expires.
      assertThat(lease().getSpec().getHolderIdentity())
          .as("the Lease's holder once the stopped operator ended")
          .isNull();
      awaitOperatorLine(seen, "let go; a standby may lead at once");
      awaitOperatorLine(seen, "ferry-operator stopped in");
    } finally {
      cluster.startOperator();
    }
    MigrationRequest dry = dryRunToPodB("after-stop");
    assertThat(cluster.awaitEnd(dry.getMetadata().getName(), 60).getPhase())
        .isEqualTo(Phase.Completed);
  }

  /**
   * A rolling update of the operator's Deployment with two replicas: the leader, stopped, lets its
   * Lease go, the standby leads at once and drives what comes meanwhile; stopped in turn, it lets
   * the Lease go back.
   */
  @Test
  void aStandbyLeadsAtOnceWhenTheLeaderIsStopped() throws Exception {
    List<String> standbyLog = new java.util.concurrent.CopyOnWriteArrayList<>();
    Process standby = cluster.startStandby(standbyLog);
    try {
      assertThat(lease().getSpec().getHolderIdentity()).isEqualTo("operator-1");

      cluster.stopOperator();
      // Without the Lease let go, operator-1 would still hold it here, for its 15 s.
      assertThat(lease().getSpec().getHolderIdentity())
          .as("the Lease's holder once the stopped leader ended")
          .isIn(null, "operator-2");
      MigrationRequest after = dryRunToPodB("led-by-2-at-once");
      MigrationRequestStatus st = cluster.awaitEnd(after.getMetadata().getName(), 60);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
      assertThat(lease().getSpec().getHolderIdentity()).isEqualTo("operator-2");

      standby.toHandle().destroy(); // SIGTERM, as the kubelet stops it
      assertThat(standby.waitFor(60, TimeUnit.SECONDS)).as("the standby ended on SIGTERM").isTrue();
      assertThat(lease().getSpec().getHolderIdentity())
          .as("the Lease's holder once the stopped standby ended")
          .isNull();
    } finally {
      standby.destroyForcibly().waitFor();
      cluster.startOperator();
    }
    MigrationRequest back = dryRunToPodB("led-by-1-again");
    assertThat(cluster.awaitEnd(back.getMetadata().getName(), 60).getPhase())
        .isEqualTo(Phase.Completed);
    assertThat(lease().getSpec().getHolderIdentity()).isEqualTo("operator-1");
  }

  /**
   * A leader whose Lease another holder has taken (its renewals failed for longer than the renew
   * deadline, say, and a standby took over) must take no further step: it ends at once, and,
   * started again as the kubelet would, waits as a standby until the Lease is free, then leads
   * again.
   */
  @Test
  void anOperatorThatLosesItsLeaseEndsAtOnceAndLeadsAgainOnceTheLeaseIsFree() throws Exception {
    int seen = cluster.operatorLog.size();
    takeLease("operator-elsewhere");
    awaitOperatorLine(seen, "the Lease was lost; ending now");
    awaitOperatorLine(seen, "the operator exited with 1 unasked");
    // The taker renews nothing: once its Lease expires, the restarted operator takes it.
    MigrationRequest dry = dryRunToPodB("after-lost-lease");
    assertThat(cluster.awaitEnd(dry.getMetadata().getName(), 90).getPhase())
        .isEqualTo(Phase.Completed);
    assertThat(lease().getSpec().getHolderIdentity()).isEqualTo("operator-1");
  }

  /**
   * Makes {@code holder} the Lease's holder, as another candidate taking it would: read, write with
   * the version read, and again on a conflict, which the leader's own renewal between the two
   * causes (it renews every few seconds).
   */
  private static void takeLease(String holder) {
    for (int attempt = 1; ; attempt++) {
      try {
        cluster
            .kube
            .leases()
            .inNamespace(OperatorCluster.NAMESPACE)
            .withName("ferry-operator-leader")
            .edit(
                l -> {
                  l.getSpec().setHolderIdentity(holder);
                  l.getSpec().setRenewTime(java.time.ZonedDateTime.now(java.time.ZoneOffset.UTC));
                  return l;
                });
        return;
      } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
        if (e.getCode() != 409 || attempt == 5) {
          throw e;
        }
      }
    }
  }

  /**
   * Waits up to 60 s for a line with {@code text} among the operator's after the first {@code
   * seen}.
   */
  private static void awaitOperatorLine(int seen, String text) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (cluster.operatorLog.stream().skip(seen).noneMatch(l -> l.contains(text))) {
      assertThat(System.nanoTime())
          .as("the operator logged no '%s' within 60 s", text)
          .isLessThan(deadline);
      Thread.sleep(100);
    }
  }

  private static Lease lease() {
    return cluster
        .kube
        .leases()
        .inNamespace(OperatorCluster.NAMESPACE)
        .withName("ferry-operator-leader")
        .get();
  }

  private static Condition condition(MigrationRequestStatus st, String type) {
    return st.getConditions().stream()
        .filter(c -> c.getType().equals(type))
        .findFirst()
        .orElseThrow();
  }

  private static void awaitStored(List<Phase> stored, Phase phase) throws InterruptedException {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
    while (!stored.contains(phase) && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
  }

  private static void awaitEvent(MigrationRequest mr, String reason) throws InterruptedException {
    for (int i = 0;
        i < 100 && events(mr).stream().noneMatch(e -> reason.equals(e.getReason()));
        i++) {
      Thread.sleep(50);
    }
  }

  private static List<Event> events(MigrationRequest mr) {
    return cluster
        .kube
        .v1()
        .events()
        .inNamespace(OperatorCluster.NAMESPACE)
        .list()
        .getItems()
        .stream()
        .filter(e -> e.getInvolvedObject().getName().equals(mr.getMetadata().getName()))
        .toList();
  }
}
