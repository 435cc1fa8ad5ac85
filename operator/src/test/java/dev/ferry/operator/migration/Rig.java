// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.api.v1alpha1.PodRef;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A MigrationMachine with fake agents, network, cluster and clock, and the calls it puts in flight
 * held until the test lets them run. Counts the status writes the reconciler would make.
 */
final class Rig {
  static final String ID = "move-1-0a1b2c3d";

  final FakeAgent source = new FakeAgent("node-a");
  final FakeAgent target = new FakeAgent("node-b");
  final FakeFabric fabric;
  final FakeSink sink = new FakeSink();
  final Deque<Runnable> inFlight = new ArrayDeque<>();
  MoveCalls calls = new MoveCalls(inFlight::add);
  final TestClock clock = new TestClock();

  /** ferry.operator.policy-requests-kept; zero, as by default here: every ended request stays. */
  Duration policyRequestsKept = Duration.ZERO;

  /** The nodes known to be gone from the cluster. */
  final Set<String> nodesGone = new HashSet<>();

  final MigrationRequest mr = request();

  /** The requests the operator's cache holds besides {@link #mr}, which it always holds. */
  final List<MigrationRequest> others = new ArrayList<>();

  MigrationSlots.Limits limits = MigrationSlots.Limits.NONE;
  MigrationSlots slots;
  final FakeGuard guard = new FakeGuard();
  InvalidRequest invalid;
  String fabricSetting = "l2";
  int writes;
  int wakes;

  /** How often the machine said a slot came free, so that the waiting requests look again. */
  int slotsFreed;

  /** How often the machine planned (read the pods and nodes, in the operator). */
  int plans;

  MigrationMachine.Turn last;

  Rig(boolean awsFabric) {
    fabric = new FakeFabric(awsFabric);
  }

  Rig() {
    this(false);
  }

  MigrationMachine machine() {
    return new MigrationMachine(
        (m, chosen) -> {
          plans++;
          if (invalid != null) {
            throw invalid;
          }
          return plan();
        },
        hostPort -> hostPort.startsWith("10.0.0.1:") ? source : target,
        () -> {
          if (!fabricSetting.equals("l2")) {
            throw new IllegalStateException(
                "ferry.operator.address-mover must be l2 or aws, got " + fabricSetting);
          }
          return fabric;
        },
        calls,
        sink,
        slots(),
        guard,
        new EndedRequests(policyRequestsKept, nodesGone::contains, clock),
        clock,
        Duration.ofSeconds(30),
        () -> slotsFreed++);
  }

  /** One admission ledger for the rig's life, as the operator keeps one for its own. */
  MigrationSlots slots() {
    if (slots == null) {
      slots =
          new MigrationSlots(
              limits,
              MigrationSlots.Requests.filtering(
                  () -> {
                    List<MigrationRequest> all = new ArrayList<>(others);
                    all.add(mr);
                    return all;
                  }));
    }
    return slots;
  }

  /** One reconcile, as the reconciler makes it: the turn's write counted. */
  MigrationMachine.Turn reconcile() {
    last = machine().reconcile(mr, () -> wakes++);
    if (last.writeStatus()) {
      writes++;
    }
    return last;
  }

  /** Reconciles until the request is in {@code phase}, at most five times. */
  void reconcileTo(Phase phase) {
    for (int i = 0; i < 5 && (mr.getStatus() == null || mr.getStatus().getPhase() != phase); i++) {
      reconcile();
    }
    assertThat(mr.getStatus().getPhase()).isEqualTo(phase);
  }

  /** A request whose Move the source agent answered COMPLETED: the next turn ends it. */
  static Rig moveAnswered() {
    Rig rig = new Rig();
    rig.source.move = MigrationMachineTest::completed;
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();
    return rig;
  }

  /** The agents answer every call in flight. */
  void answer() {
    while (!inFlight.isEmpty()) {
      inFlight.poll().run();
    }
  }

  Phase phase() {
    return mr.getStatus().getPhase();
  }

  static Plan plan() {
    return new Plan(
        ID,
        PodRef.newBuilder().setNamespace("shop").setName("pod-a").setUid("uid-a").build(),
        "node-a",
        "10.0.0.1:9443",
        PodRef.newBuilder().setNamespace("shop").setName("pod-b").setUid("uid-b").build(),
        "node-b",
        "10.0.0.2:9443",
        List.of(8080),
        "10.0.0.100/32",
        Duration.ofSeconds(60),
        Duration.ofSeconds(30),
        List.of("10.0.0.20"),
        null);
  }

  private static MigrationRequest request() {
    return request("move-1", "0a1b2c3d-0000", "2026-12-01T09:59:00Z");
  }

  /** A request like {@link #mr}, made at {@code created}, with no status yet. */
  static MigrationRequest request(String name, String uid, String created) {
    MigrationRequest mr = new MigrationRequest();
    mr.setMetadata(
        new ObjectMetaBuilder()
            .withNamespace("shop")
            .withName(name)
            .withUid(uid)
            .withGeneration(1L)
            .withCreationTimestamp(created)
            .build());
    MigrationRequestSpec spec = new MigrationRequestSpec();
    PodReference source = new PodReference();
    source.setName("pod-a");
    spec.setSource(source);
    PodReference target = new PodReference();
    target.setName("pod-b");
    spec.setTarget(target);
    mr.setSpec(spec);
    return mr;
  }

  /** A clock that moves only when told. */
  static final class TestClock extends Clock {
    Instant now = Instant.parse("2026-12-01T10:00:00Z");

    void advance(Duration d) {
      now = now.plus(d);
    }

    @Override
    public Instant instant() {
      return now;
    }

    @Override
    public ZoneOffset getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }
  }
}
