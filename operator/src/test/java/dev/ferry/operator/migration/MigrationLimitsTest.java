// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.fabric8.kubernetes.api.model.Condition;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Pending's migration slots, and the eviction guard around Moving. */
class MigrationLimitsTest {

  @Test
  void aRequestBeyondThePerNodeLimitWaitsInPendingSayingWhyWithOneWrite() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    MigrationRequest first = other(rig, "move-0", "00", Phase.Moving, "node-a");

    MigrationMachine.Turn turn = rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "waiting for a migration slot: 1 migration(s) out of node node-a may be under way at"
                + " once (ferry.operator.limits.per-node), and that many are");
    assertThat(rig.mr.getStatus().getSourceNode()).isEqualTo("node-a");
    assertThat(ready(rig).getReason()).isEqualTo(Reasons.WAITING_FOR_SLOT);
    assertThat(ready(rig).getStatus()).isEqualTo("False");
    assertThat(turn.writeStatus()).isTrue();
    assertThat(turn.reschedule()).contains(PendingStep.RECHECK);

    assertThat(rig.reconcile().writeStatus()).as("nothing changed, nothing written").isFalse();
    assertThat(rig.target.calls).as("nothing touched while waiting").isEmpty();
    assertThat(rig.source.connects + rig.target.connects)
        .as("no connection made for a request that may wait long")
        .isZero();

    first.getStatus().setPhase(Phase.Completed);
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    assertThat(rig.target.calls)
        .as("admitted: Preparing's check asked ahead")
        .containsExactly("ListConnections");
  }

  @Test
  void aSecondRequestForAPodWaitsWhileAMigrationOfItIsUnderWayAndIsWokenAtItsEnd() {
    Rig rig = new Rig(); // no limit on the cluster or the node
    MigrationRequest first = samePod(rig, "move-0", "00", Phase.Moving, "2026-12-01T09:00:00Z");

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "waiting for a migration slot: one migration of a pod may be under way at once, and"
                + " that of pod shop/pod-a (MigrationRequest shop/move-0) is under way");
    assertThat(ready(rig).getReason()).isEqualTo(Reasons.WAITING_FOR_SLOT);
    assertThat(rig.guard.calls).as("the first one's guard is left alone").isEmpty();
    assertThat(rig.source.connects + rig.target.connects).isZero();

    rig.slots.release(first); // its end begins: the cache still says Moving

    assertThat(rig.slots.next()).containsExactly(rig.mr);
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
  }

  @Test
  void aRequestForAPodUnderWayNamesThatMigrationEvenWhenItsNodesLimitIsReachedToo() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    samePod(rig, "move-0", "00", Phase.Moving, "2026-12-01T09:00:00Z");

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "waiting for a migration slot: one migration of a pod may be under way at once, and"
                + " that of pod shop/pod-a (MigrationRequest shop/move-0) is under way");
  }

  @Test
  void ofTwoRequestsWaitingForOnePodTheFirstComeGoesFirst() {
    Rig rig = new Rig();
    MigrationRequest moving = samePod(rig, "move-0", "00", Phase.Moving, "2026-12-01T09:00:00Z");
    MigrationRequest earlier = samePod(rig, "move-3", "03", Phase.Pending, "2026-12-01T09:30:00Z");
    MigrationRequest elsewhere = other(rig, "move-4", "04", Phase.Pending, "node-a");
    rig.reconcile();

    rig.slots.release(moving);

    assertThat(rig.slots.next())
        .as("the pod's earlier request, and the other pod's; not the pod's second")
        .containsExactlyInAnyOrder(earlier, elsewhere);
    rig.reconcile(); // it looks before the earlier one does
    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "waiting for a migration slot: one migration of a pod may be under way at once, and"
                + " that of pod shop/pod-a (MigrationRequest shop/move-3) came first and waits"
                + " too");
  }

  @Test
  void aDryRunIsNotHeldBackByAMigrationOfItsPod() {
    Rig rig = new Rig();
    rig.mr.getSpec().setDryRun(true);
    samePod(rig, "move-0", "00", Phase.Moving, "2026-12-01T09:00:00Z");

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
  }

  @Test
  void aPreparedRequestHoldsItsSlotWhileItWaitsToProceed() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    MigrationRequest prepared = other(rig, "move-0", "00", Phase.Prepared, "node-a");

    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Pending);

    prepared.getStatus().setPhase(Phase.RolledBack);
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
  }

  @Test
  void aRequestBeyondTheClusterLimitWaitsAndSaysWhichLimit() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(2, 2);
    other(rig, "move-c", "0c", Phase.Moving, "node-c");
    other(rig, "move-d", "0d", Phase.Preparing, "node-d");

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "waiting for a migration slot: 2 migration(s) may be under way at once in the cluster"
                + " (ferry.operator.limits.per-cluster), and that many are");
  }

  @Test
  void requestsFromOneNodeGoInTheOrderTheyWereMade() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    MigrationRequest earlier = other(rig, "move-0", "00", Phase.Pending, "node-a");
    earlier.getMetadata().setCreationTimestamp("2026-12-01T09:58:00Z");
    MigrationRequest later = other(rig, "move-2", "02", Phase.Pending, "node-a");
    later.getMetadata().setCreationTimestamp("2026-12-01T09:59:30Z");

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(rig.mr.getStatus().getMessage())
        .endsWith("(ferry.operator.limits.per-node), and earlier requests from that node wait too");
    assertThat(rig.slots.admit(earlier, "node-a")).as("the first made goes first").isEmpty();
    assertThat(rig.slots.admit(later, "node-a")).isPresent();
  }

  @Test
  void anAdmissionCountsBeforeTheCacheShowsIt() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    // The cache has not seen the status just written: it still shows no phase.
    MigrationRequestStatus written = rig.mr.getStatus();
    rig.mr.setStatus(null);
    MigrationRequest second = other(rig, "move-2", "02", Phase.Pending, null);

    assertThat(rig.slots.admit(second, "node-a"))
        .hasValueSatisfying(m -> assertThat(m).endsWith("and that many are"));
    assertThat(rig.slots.admit(rig.mr, "node-a")).as("admitted again, idempotent").isEmpty();

    rig.mr.setStatus(written);
    written.setPhase(Phase.Failed);
    assertThat(rig.slots.admit(second, "node-a")).as("the slot came free").isEmpty();
  }

  @Test
  void anEndedMigrationsSlotIsFreeBeforeTheCacheShowsTheEndAndWakesTheNextInOrder() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    MigrationRequest moving = other(rig, "move-0", "00", Phase.Moving, "node-a");
    MigrationRequest later = other(rig, "move-3", "03", Phase.Pending, "node-a");
    later.getMetadata().setCreationTimestamp("2026-12-01T10:30:00Z");
    MigrationRequest elsewhere = other(rig, "move-4", "04", Phase.Pending, "node-e");
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(rig.slots.next()).as("node-e has room").containsExactly(elsewhere);

    rig.slots.release(moving); // its end is not written yet: the cache still says Moving

    assertThat(rig.slots.next())
        .as("in the order they were made: node-e's, then the first made on node-a")
        .containsExactly(elsewhere, rig.mr);
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
  }

  @Test
  void aRequestRefusedJustBeforeASlotCameFreeIsWokenForItBeforeTheCacheShowsItWaiting() {
    // A reclaim's requests come in a burst: one is refused while a migration is under way, and
    // that migration ends before the cache shows the status that says the request waits. Woken
    // by no one, it would look again only at its recheck, a minute later, the slot idle meanwhile.
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(1, 1);
    MigrationRequest moving = other(rig, "move-0", "00", Phase.Moving, "node-a");
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    MigrationRequestStatus written = rig.mr.getStatus();
    rig.mr.setStatus(null); // the cache has not seen it yet
    MigrationRequest later = waiting(rig, "move-9", "09", "node-a", "2026-12-01T10:30:00Z");

    rig.slots.release(moving);

    assertThat(rig.slots.next()).as("the first come, refused a moment ago").containsExactly(rig.mr);
    assertThat(rig.slots.admit(later, "node-a"))
        .as("a later request that looks first still lets it go first")
        .hasValueSatisfying(
            m -> assertThat(m).endsWith("earlier requests from that node wait too"));
    rig.mr.setStatus(written);
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    assertThat(rig.slots.next()).as("nothing more to wake: the one slot is taken").isEmpty();
  }

  @Test
  void aRefusalIsForgottenWhenTheRequestIsGoneOrEnded() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(1, 1);
    MigrationRequest moving = other(rig, "move-0", "00", Phase.Moving, "node-a");
    MigrationRequest deleted = request("move-8", "08", "2026-12-01T09:10:00Z");
    assertThat(rig.slots().admit(deleted, "node-a")).isPresent();
    MigrationRequest failed = other(rig, "move-7", "07", Phase.Pending, null);
    assertThat(rig.slots.admit(failed, "node-a")).isPresent();
    failed.getStatus().setPhase(Phase.Failed); // its deadline passed while it waited
    MigrationRequest expired = other(rig, "move-6", "06", Phase.Pending, null);
    assertThat(rig.slots.admit(expired, "node-a")).isPresent();
    rig.slots.release(expired); // the same, its end not written yet

    rig.slots.release(moving);

    assertThat(rig.slots.next()).as("none is woken: one is gone, two ended").isEmpty();
    assertThat(rig.slots.kept()).as("only move-0's end, until the cache shows it").isEqualTo(1);
  }

  @Test
  void aSlotFreedWhileTheCacheStillListsItsMigrationUnderWayWakesTheNextOne() {
    // The operator's cache was seen holding a request's new object (Completed) while its index
    // still listed it under way (make bench-operator, 200 requests one at a time: a slot idle for
    // the one-minute recheck). Here the objects change in place while the indexes stay as put.
    IndexedCache cache = new IndexedCache();
    MigrationSlots slots = new MigrationSlots(new MigrationSlots.Limits(1, 1), cache);
    MigrationRequest moving = inPhase("move-0", "00", Phase.Moving, "node-a");
    MigrationRequest next = inPhase("move-1", "01", Phase.Pending, "node-b");
    MigrationRequest late = request("move-2", "02", "2026-12-01T09:00:02Z");
    cache.put(moving, next, late);
    assertThat(slots.admit(late, "node-c")).as("refused: the slot is taken").isPresent();
    late.setStatus(inPhase("move-2", "02", Phase.Pending, "node-c").getStatus());

    slots.release(moving);
    moving.getStatus().setPhase(Phase.Completed);

    assertThat(slots.next()).as("the index still lists move-0 under way").containsExactly(next);
    assertThat(slots.admit(next, "node-b")).isEmpty();
    cache.put(moving); // the watch event of its end
    slots.release(next);
    next.getStatus().setPhase(Phase.Completed);
    assertThat(slots.next())
        .as("the index does not list move-2 waiting yet, but it was refused a moment ago")
        .containsExactly(late);
  }

  @Test
  void afterARestartTheRequestsAnEarlierOperatorRefusedStillGoFirst() {
    // This operator refused neither: its cache shows both waiting from its first look.
    IndexedCache cache = new IndexedCache();
    MigrationSlots slots = new MigrationSlots(new MigrationSlots.Limits(1, 5), cache);
    MigrationRequest earlier = inPhase("move-1", "01", Phase.Pending, "node-a");
    MigrationRequest later = inPhase("move-2", "02", Phase.Pending, "node-b");
    cache.put(earlier, later);

    assertThat(slots.admit(later, "node-b"))
        .hasValueSatisfying(m -> assertThat(m).endsWith("and earlier requests wait too"));
    assertThat(slots.next()).containsExactly(earlier);
  }

  @Test
  void aRequestThatEndedWhileWaitingIsForgottenWhenTheSlotsMeetIt() {
    IndexedCache cache = new IndexedCache();
    MigrationSlots slots = new MigrationSlots(new MigrationSlots.Limits(1, 1), cache);
    MigrationRequest moving = inPhase("move-0", "00", Phase.Moving, "node-m");
    cache.put(moving);
    List<MigrationRequest> waiting = new ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      MigrationRequest r = request("move-" + i, "0" + i, "2026-12-01T09:00:0" + i + "Z");
      assertThat(slots.admit(r, "node-" + i)).as("refused: the one slot is taken").isPresent();
      r.setStatus(inPhase("move-" + i, "0" + i, Phase.Pending, "node-" + i).getStatus());
      cache.put(r);
      waiting.add(r);
    }
    waiting.get(0).getStatus().setPhase(Phase.Failed); // its deadline passed while it waited
    cache.put(waiting.get(0));
    assertThat(slots.ordered()).isEqualTo(3);

    slots.release(moving);
    moving.getStatus().setPhase(Phase.Completed);
    cache.put(moving);

    assertThat(slots.next()).as("the first that still waits").containsExactly(waiting.get(1));
    assertThat(slots.ordered()).as("the one that ended is forgotten").isEqualTo(2);
    assertThat(slots.admit(waiting.get(1), "node-2")).isEmpty();
    assertThat(slots.admit(waiting.get(2), "node-3")).isPresent();
    slots.release(waiting.get(1));
    assertThat(slots.ordered()).as("nor is one that ends kept").isEqualTo(1);
  }

  /**
   * The operator's cache with indexes that can lag its objects: computed when an object is put, so
   * that an object changed in place afterwards is still listed where it was.
   */
  private static final class IndexedCache implements MigrationSlots.Requests {
    private final Map<String, MigrationRequest> byUid = new LinkedHashMap<>();
    private final Set<String> underWay = new HashSet<>();
    private final Set<String> waiting = new HashSet<>();
    private final Map<String, String> nodes = new HashMap<>();

    void put(MigrationRequest... requests) {
      for (MigrationRequest r : requests) {
        String uid = r.getMetadata().getUid();
        byUid.put(uid, r);
        underWay.remove(uid);
        waiting.remove(uid);
        if (MigrationSlots.isUnderWay(r)) {
          underWay.add(uid);
        }
        if (MigrationSlots.isWaiting(r)) {
          waiting.add(uid);
          nodes.put(uid, r.getStatus().getSourceNode());
        }
      }
    }

    @Override
    public Collection<MigrationRequest> underWay() {
      return underWay.stream().map(byUid::get).toList();
    }

    @Override
    public Collection<MigrationRequest> waiting() {
      return waiting.stream().map(byUid::get).toList();
    }

    @Override
    public Collection<MigrationRequest> waitingFrom(String node) {
      return waiting.stream().filter(u -> node.equals(nodes.get(u))).map(byUid::get).toList();
    }

    @Override
    public MigrationRequest byUid(String uid) {
      return byUid.get(uid);
    }
  }

  private static MigrationRequest inPhase(String name, String uid, Phase phase, String node) {
    MigrationRequest r = request(name, uid, "2026-12-01T09:00:0" + uid.charAt(1) + "Z");
    MigrationRequestStatus st = new MigrationRequestStatus();
    st.setPhase(phase);
    st.setSourceNode(node);
    r.setStatus(st);
    return r;
  }

  @Test
  void theFreeSlotsWakeTheFirstComeWhoseNodeHasRoomOnePerNodeAtMost() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(4, 1);
    other(rig, "move-m", "0m", Phase.Moving, "node-m");
    MigrationRequest a1 = waiting(rig, "move-a1", "a1", "node-a", "2026-12-01T09:00:01Z");
    waiting(rig, "move-a2", "a2", "node-a", "2026-12-01T09:00:02Z");
    MigrationRequest b1 = waiting(rig, "move-b1", "b1", "node-b", "2026-12-01T09:00:03Z");
    waiting(rig, "move-m2", "m2", "node-m", "2026-12-01T09:00:00Z");
    MigrationRequest c1 = waiting(rig, "move-c1", "c1", "node-c", "2026-12-01T09:00:04Z");
    waiting(rig, "move-d1", "d1", "node-d", "2026-12-01T09:00:05Z");

    assertThat(rig.slots().next())
        .as("3 slots free: node-m's is full, node-a's second waits for its first, then in order")
        .containsExactly(a1, b1, c1);
  }

  @Test
  void whatTheSlotsKeepIsForgottenOnceTheCacheShowsTheEnd() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    MigrationRequest moving = other(rig, "move-0", "00", Phase.Moving, "node-a");
    rig.reconcile(); // waits behind it
    rig.slots.release(moving); // ended here; the cache still says Moving
    assertThat(rig.slots.next()).containsExactly(rig.mr);
    assertThat(rig.slots.kept()).as("the end, until the cache shows it").isEqualTo(1);

    moving.getStatus().setPhase(Phase.Completed);
    rig.reconcile(); // admitted: kept until the cache shows it under way, and then ended
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    assertThat(rig.slots.kept()).as("the admission; the end is forgotten").isEqualTo(1);

    rig.mr.getStatus().setPhase(Phase.Completed);
    rig.slots.next();
    assertThat(rig.slots.kept()).as("nothing once the cache shows both ended").isZero();
  }

  @Test
  void aWaitingRequestIsNotPlannedAgainEachTimeItLooks() {
    Rig rig = waitingBehindAMoveFromItsNode();
    rig.invalid = new InvalidRequest("spec.source.name", "planning again");

    rig.reconcile();

    assertThat(rig.phase()).as("the recorded source node sufficed").isEqualTo(Phase.Pending);
  }

  @Test
  void theDeadlineCanPassWhileWaiting() {
    Rig rig = waitingBehindAMoveFromItsNode();
    rig.clock.advance(Duration.ofSeconds(61));

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "spec.deadline (60s) passed while the request waited in Pending for a migration slot");
  }

  @Test
  void aWaitingRequestLooksAgainJustPastItsDeadlineWhenThatComesBeforeTheRecheck() {
    Rig rig = waitingBehindAMoveFromItsNode();
    rig.clock.advance(Duration.ofSeconds(50)); // spec.deadline is 60s

    MigrationMachine.Turn waits = rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    assertThat(waits.reschedule()).contains(Duration.ofMillis(10_100));
    rig.clock.advance(waits.reschedule().orElseThrow());
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Failed);
  }

  @Test
  void theSourcePodIsGuardedFromPreparingToTheEndOfMoving() {
    Rig rig = new Rig();
    rig.source.move = MigrationMachineTest::completed;
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    assertThat(rig.guard.calls)
        .as("begun as the request was admitted, beside the status write that enters Preparing")
        .containsExactly("protect pod-a");

    rig.reconcileTo(Phase.Moving);
    assertThat(rig.guard.calls).as("once").containsExactly("protect pod-a");

    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.guard.calls)
        .containsExactly("protect pod-a", "release move-1", "release waited for");
  }

  @Test
  void theGuardIsLiftedBesideTheAddressRecordAndBothEndBeforeTheStatusDoes() {
    Rig rig = Rig.moveAnswered();
    rig.sink.onAddressMoved = () -> rig.guard.calls.add("address recorded");

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.guard.calls)
        .as("begun before the record, waited for before the turn that ends the request returns")
        .containsExactly(
            "protect pod-a", "release move-1", "address recorded", "release waited for");
  }

  @Test
  void aRecordTheApiServerRefusesFailsTheTurnWithTheReleaseEndedAndTheNextTurnEnds() {
    Rig rig = Rig.moveAnswered();
    rig.sink.addressRefusal = new IllegalStateException("409 from the API server");

    assertThatThrownBy(rig::reconcile).hasMessage("409 from the API server");
    assertThat(rig.guard.calls)
        .as("nothing left running behind the failed turn")
        .endsWith("release move-1", "release waited for");
    assertThat(rig.phase()).as("not ended: the turn is tried again").isEqualTo(Phase.Moving);

    rig.reconcile(); // Move again: the agent answers how it ended
    rig.answer();
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.sink.addressMoves).containsExactly(Rig.plan());
  }

  @Test
  void aPodThatCannotBeGuardedStillMovesAndTheStatusSaysSo() {
    Rig rig = new Rig();
    rig.guard.refusal = "the source pod is not protected from eviction while it moves (403)";

    rig.reconcileTo(Phase.Moving);

    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "moving the connections of pod-a to pod-b on node-b; the source pod is not protected"
                + " from eviction while it moves (403)");
  }

  @Test
  void aDryRunIsNeverGuardedAndAFailureInPreparingLiftsTheGuard() {
    Rig dry = new Rig();
    dry.mr.getSpec().setDryRun(true);
    dry.reconcileTo(Phase.Completed);
    Rig refused = new Rig();
    refused.target.registeredPorts = List.of();
    refused.reconcileTo(Phase.Failed);

    assertThat(dry.guard.calls).isEmpty();
    assertThat(refused.guard.calls)
        .containsExactly("protect pod-a", "release move-1", "release waited for");
  }

  @Test
  void aRequestDeletedInPreparingLiftsItsGuardAndOneDeletedWhileItWaitsTouchesNothing() {
    Rig preparing = new Rig();
    preparing.reconcile();
    assertThat(preparing.phase()).isEqualTo(Phase.Preparing);
    Rig waiting = new Rig();
    waiting.limits = new MigrationSlots.Limits(1, 1);
    other(waiting, "move-0", "00", Phase.Moving, "node-c");
    waiting.reconcile();
    assertThat(waiting.phase()).isEqualTo(Phase.Pending);

    preparing.machine().cleanup(preparing.mr);
    waiting.machine().cleanup(waiting.mr);

    assertThat(preparing.guard.calls).containsExactly("protect pod-a", "release move-1");
    assertThat(waiting.guard.calls).isEmpty();
  }

  @Test
  void anOperatorRestartedInPreparingRaisesTheGuardItselfBeforeMoving() {
    Rig rig = new Rig();
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    rig.calls = new MoveCalls(rig.inFlight::add); // what was begun ahead died with the operator

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Moving);
    assertThat(rig.guard.calls)
        .as("the guard may not have landed before the restart: raised again, idempotent")
        .containsExactly("protect pod-a", "protect pod-a");
  }

  /** Another request in the operator's cache, in {@code phase}, leaving {@code node}. */
  /** A request waiting in Pending: a migration out of its node is under way, the limit one. */
  private static Rig waitingBehindAMoveFromItsNode() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    other(rig, "move-0", "00", Phase.Moving, "node-a");
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Pending);
    return rig;
  }

  private static MigrationRequest waiting(
      Rig rig, String name, String uid, String node, String created) {
    MigrationRequest r = other(rig, name, uid, Phase.Pending, node);
    r.getMetadata().setCreationTimestamp(created);
    return r;
  }

  @Test
  void theEndFreesTheSlotAndWakesTheNextBeforeItsOwnWrites() {
    Rig rig = new Rig();
    rig.limits = new MigrationSlots.Limits(5, 1);
    rig.source.move = MigrationMachineTest::completed;
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();
    MigrationRequest second = other(rig, "move-2", "02", Phase.Pending, "node-a");
    assertThat(rig.slots.admit(second, "node-a"))
        .as("refused while node-a's slot is taken")
        .isPresent();
    List<String> atTheRecord = new ArrayList<>();
    rig.sink.onAddressMoved =
        () -> {
          atTheRecord.add("woken " + rig.slotsFreed);
          rig.slots.next().forEach(r -> atTheRecord.add("next " + r.getMetadata().getName()));
        };

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(atTheRecord)
        .as("while the end still writes the address's record, the next request may start")
        .containsExactly("woken 1", "next move-2");
    assertThat(rig.slotsFreed).isEqualTo(1);
  }

  /**
   * A request like {@link Rig#request}, but out of a pod of its own ({@code pod-of-NAME}): the
   * tests of the limits are not held back by the one migration of a pod at a time.
   */
  private static MigrationRequest request(String name, String uid, String created) {
    MigrationRequest r = Rig.request(name, uid, created);
    r.getSpec().getSource().setName("pod-of-" + name);
    return r;
  }

  /** Another request in the cache, in {@code phase}, out of the same pod as the rig's own. */
  private static MigrationRequest samePod(
      Rig rig, String name, String uid, Phase phase, String created) {
    MigrationRequest r = Rig.request(name, uid, created);
    MigrationRequestStatus st = new MigrationRequestStatus();
    st.setPhase(phase);
    st.setSourceNode("node-a");
    r.setStatus(st);
    rig.others.add(r);
    return r;
  }

  private static MigrationRequest other(
      Rig rig, String name, String uid, Phase phase, String node) {
    MigrationRequest r = request(name, uid, "2026-12-01T09:00:00Z");
    MigrationRequestStatus st = new MigrationRequestStatus();
    st.setPhase(phase);
    st.setSourceNode(node);
    r.setStatus(st);
    rig.others.add(r);
    return r;
  }

  private static Condition ready(Rig rig) {
    return new ArrayList<>(rig.mr.getStatus().getConditions())
        .stream().filter(c -> c.getType().equals("Ready")).findFirst().orElseThrow();
  }
}
