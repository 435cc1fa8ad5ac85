// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveOutcome.Result;
import dev.ferry.api.v1alpha1.MoveRequest;
import io.fabric8.kubernetes.api.model.Condition;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** spec.prepareOnly: the phase Prepared, and kubectl annotate mr NAME ferry.dev/proceed=VALUE. */
class PrepareOnlyTest {

  @Test
  void aPrepareOnlyRequestPreCopiesOnceAndWaitsInPreparedUnguardedSayingSoOnce() {
    Rig rig = prepareOnly(new Rig());
    rig.reconcileTo(Phase.Prepared);
    int entering = rig.writes;

    MigrationMachine.Turn sent = rig.reconcile();
    assertThat(sent.writeStatus()).isFalse();
    assertThat(sent.reschedule()).contains(PreparedStep.RECHECK);
    assertThat(rig.inFlight).as("Move sent, off the reconcile's thread").hasSize(1);
    rig.answer();
    assertThat(rig.wakes).as("the answer wakes the request").isEqualTo(1);
    MigrationMachine.Turn precopied = rig.reconcile();
    for (int i = 0; i < 3; i++) {
      assertThat(rig.reconcile().writeStatus()).as("nothing new to say").isFalse();
    }

    assertThat(precopied.writeStatus()).isTrue();
    assertThat(precopied.reschedule()).contains(PreparedStep.RECHECK);
    assertThat(rig.writes).isEqualTo(entering + 1);
    assertThat(rig.phase()).isEqualTo(Phase.Prepared);
    assertThat(rig.source.moves)
        .as("one Move, prepare only")
        .singleElement()
        .extracting(MoveRequest::getPrepareOnly)
        .isEqualTo(true);
    assertThat(rig.guard.calls).as("no eviction guard while nothing moves").isEmpty();
    assertThat(condition(rig, "Progressing").getStatus()).isEqualTo("True");
    assertThat(condition(rig, "Progressing").getReason()).isEqualTo(Reasons.STATE_PRECOPIED);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "the application state is pre-copied to pod-b on node-b and kept up to date; nothing"
                + " is frozen. Move with: kubectl annotate migrationrequest -n shop move-1"
                + " ferry.dev/proceed=now");
    assertThat(rig.mr.getStatus().getPhaseTransitionTimestamps())
        .extracting(t -> t.getPhase())
        .containsExactly(Phase.Pending, Phase.Preparing, Phase.Prepared);
  }

  @Test
  void theProceedAnnotationGuardsThePodAndTheMoveCompletesThroughEveryPhase() {
    Rig rig = precopied(prepareOnly(new Rig()));
    rig.source.move = MigrationMachineTest::completed;

    proceed(rig, "now");
    MigrationMachine.Turn proceeding = rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Moving);
    assertThat(proceeding.reschedule()).contains(Duration.ZERO);
    assertThat(condition(rig, "Progressing").getReason()).isEqualTo(Reasons.PROCEEDING);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("ferry.dev/proceed=now: moving the connections of pod-a to pod-b on node-b");
    assertThat(rig.guard.calls).containsExactly("protect pod-a");

    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.source.moves)
        .extracting(MoveRequest::getPrepareOnly)
        .as("the prepare-only Move, then the one that freezes")
        .containsExactly(true, false);
    assertThat(rig.source.moves.get(1))
        .as("the one that freezes signed ahead, as the proceed entered Moving")
        .isEqualTo(rig.source.signedAhead.get(0));
    assertThat(rig.source.signedAhead).hasSize(1);
    assertThat(rig.guard.calls)
        .containsExactly("protect pod-a", "release move-1", "release waited for");
    assertThat(rig.mr.getStatus().getPhaseTransitionTimestamps())
        .extracting(t -> t.getPhase())
        .containsExactly(
            Phase.Pending, Phase.Preparing, Phase.Prepared, Phase.Moving, Phase.Completed);
    assertThat(rig.mr.getStatus().getPhaseMillis()).containsKeys("Prepared", "Moving");
  }

  @Test
  void aPodThatCannotBeGuardedWhenItProceedsStillMovesAndTheStatusSaysSo() {
    Rig rig = precopied(prepareOnly(new Rig()));
    rig.guard.refusal = "the source pod is not protected from eviction while it moves (403)";

    proceed(rig, "now");
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Moving);
    assertThat(rig.mr.getStatus().getMessage())
        .endsWith("on node-b; the source pod is not protected from eviction while it moves (403)");
  }

  @Test
  void aGuardBegunWhileProceedWasSetIsLiftedWhenTheAnnotationWentBeforePreparingEnded() {
    Rig rig = prepareOnly(new Rig());
    proceed(rig, "spot");
    rig.reconcile();
    assertThat(rig.guard.calls).as("admitted to move at once").containsExactly("protect pod-a");
    rig.mr.getMetadata().getAnnotations().remove(MigrationMachine.PROCEED_ANNOTATION);

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Prepared);
    assertThat(rig.guard.calls)
        .as("no guard while nothing moves")
        .containsExactly("protect pod-a", "release move-1");
  }

  @Test
  void aRequestAnnotatedBeforeItWasPreparedMovesAtOnceAsAnyOther() {
    Rig rig = prepareOnly(new Rig());
    proceed(rig, "spot");

    rig.reconcileTo(Phase.Moving);

    assertThat(rig.guard.calls).containsExactly("protect pod-a");
    assertThat(rig.mr.getStatus().getPhaseTransitionTimestamps())
        .extracting(t -> t.getPhase())
        .doesNotContain(Phase.Prepared);
    rig.reconcile();
    rig.answer();
    assertThat(rig.source.moves)
        .singleElement()
        .extracting(MoveRequest::getPrepareOnly)
        .isEqualTo(false);
  }

  @Test
  void aPreparedAnswerThatArrivesInMovingIsFollowedByTheMoveThatFreezes() {
    Rig rig = prepareOnly(new Rig());
    rig.source.move = MigrationMachineTest::completed;
    rig.reconcileTo(Phase.Prepared);
    rig.reconcile(); // the prepare-only Move is in flight, and does not answer yet

    proceed(rig, "now");
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Moving);
    MigrationMachine.Turn waiting = rig.reconcile();
    assertThat(waiting.writeStatus()).isFalse();
    assertThat(rig.source.moves).as("Moving waits for the Move in flight").isEmpty();

    rig.answer(); // PREPARED
    rig.reconcile();
    rig.answer(); // COMPLETED
    rig.reconcile();

    assertThat(rig.source.moves)
        .extracting(MoveRequest::getPrepareOnly)
        .containsExactly(true, false);
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
  }

  @Test
  void theDeadlineInPreparedRollsBackOnTheSourceWithNoAddressToGiveBack() {
    Rig rig = precopied(prepareOnly(new Rig(true)));
    rig.source.rollback = () -> MigrationMachineTest.status("node-a", ConnectionPhase.ROLLED_BACK);
    int precopied = rig.writes;
    rig.clock.advance(Duration.ofSeconds(61));

    MigrationMachine.Turn rollingBack = rig.reconcile();
    assertThat(rollingBack.writeStatus()).isFalse();
    rig.answer();
    MigrationMachine.Turn end = rig.reconcile();

    assertThat(end.ended()).isTrue();
    assertThat(rig.source.calls).containsExactly("Move prepareOnly", "Rollback");
    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(condition(rig, "RolledBack").getReason()).isEqualTo(Reasons.DEADLINE_PASSED);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "spec.deadline (60s) passed in phase Prepared before ferry.dev/proceed: nothing was"
                + " frozen; rolling back drops the pre-copied state");
    assertThat(rig.fabric.claimed).as("nothing claimed, nothing given back").isEmpty();
    assertThat(rig.guard.calls)
        .as("never guarded; released all the same")
        .containsExactly("release move-1", "release waited for");
    assertThat(rig.writes).isEqualTo(precopied + 1);
  }

  @Test
  void aRollbackThatFailsInPreparedSaysNoClientIsHeld() {
    Rig rig = precopied(prepareOnly(new Rig(true)));
    rig.source.rollback =
        () -> {
          throw rig.source.failed("Rollback", io.grpc.Status.INTERNAL.withDescription("disk full"));
        };
    rig.clock.advance(Duration.ofSeconds(61));

    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(rig.mr.getStatus().getMessage())
        .contains("rolling back failed too")
        .contains("Nothing was frozen, so no client is held")
        .doesNotContain("holds the clients");
  }

  @Test
  void theDeadlineWhileThePreCopyIsInFlightRollsBackToo() {
    Rig rig = prepareOnly(new Rig());
    rig.reconcileTo(Phase.Prepared);
    rig.reconcile(); // the prepare-only Move is in flight, and never answers
    rig.clock.advance(Duration.ofSeconds(61));

    rig.reconcile();
    rig.inFlight.pollLast().run(); // the Rollback answers
    rig.reconcile();

    assertThat(rig.source.calls).containsExactly("Rollback");
    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(condition(rig, "RolledBack").getReason()).isEqualTo(Reasons.DEADLINE_PASSED);
  }

  @Test
  void deletingARequestInPreparedRollsBackOnTheSource() {
    Rig rig = precopied(prepareOnly(new Rig()));

    rig.machine().cleanup(rig.mr);
    rig.answer();

    assertThat(rig.source.calls).containsExactly("Move prepareOnly", "Rollback");
    assertThat(rig.calls.size()).isZero();
    assertThat(rig.guard.calls).containsExactly("release move-1");
    assertThat(rig.sink.events)
        .last()
        .asString()
        .startsWith("Warning Deleted: deleted in Prepared");
  }

  @Test
  void aPrepareTheAgentEndedEndsTheRequestAsAMoveWould() {
    Rig rig = prepareOnly(new Rig());
    rig.source.prepare =
        () ->
            MoveOutcome.newBuilder()
                .setResult(Result.ROLLED_BACK)
                .setMessage("the target's application declined the pre-copy")
                .build();

    rig.reconcileTo(Phase.Prepared);
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(condition(rig, "RolledBack").getReason()).isEqualTo(Reasons.ROLLED_BACK);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("in Prepared: the target's application declined the pre-copy");
  }

  @Test
  void anUnreachableSourceAgentIsAskedToPrepareAgainWithoutAStatusWrite() {
    Rig rig = prepareOnly(new Rig());
    rig.source.unreachable = true;
    rig.reconcileTo(Phase.Prepared);
    int entering = rig.writes;
    rig.reconcile();
    rig.answer();

    MigrationMachine.Turn turn = rig.reconcile();
    assertThat(turn.writeStatus()).isFalse();
    assertThat(turn.reschedule()).contains(MoveStep.RETRY);

    rig.source.unreachable = false;
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.source.moves).hasSize(2).allMatch(MoveRequest::getPrepareOnly);
    assertThat(condition(rig, "Progressing").getReason()).isEqualTo(Reasons.STATE_PRECOPIED);
    assertThat(rig.writes).isEqualTo(entering + 1);
  }

  @Test
  void anOperatorRestartedInPreparedAsksTheAgentAgainWithoutAWriteAndItsMoveJoinsThePreparedOne() {
    Rig rig = precopied(prepareOnly(new Rig()));
    rig.source.move = MigrationMachineTest::completed;
    rig.calls = new MoveCalls(rig.inFlight::add);
    int writes = rig.writes;

    assertThat(rig.reconcile().writeStatus()).isFalse();
    assertThat(rig.inFlight)
        .as("it does not know when the agent last said PREPARED: it asks at once")
        .hasSize(1);
    rig.answer();
    assertThat(rig.reconcile().writeStatus()).as("PREPARED again: nothing to write").isFalse();
    assertThat(rig.inFlight).as("and not again before RECHECK").isEmpty();
    assertThat(rig.writes).isEqualTo(writes);

    proceed(rig, "now");
    rig.reconcile();
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.source.moves)
        .extracting(MoveRequest::getPrepareOnly)
        .containsExactly(true, true, false);
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
  }

  @Test
  void aPreparedMoveTheAgentEndedMeanwhileShowsAtTheNextRecheckAsARollback() {
    Rig rig = precopied(prepareOnly(new Rig(true)));
    int writes = rig.writes;
    int plans = rig.plans;
    rig.clock.advance(PreparedStep.RECHECK.minusSeconds(1));
    assertThat(rig.reconcile().reschedule()).contains(Duration.ofSeconds(1));
    assertThat(rig.source.calls).as("not asked again yet").containsExactly("Move prepareOnly");

    rig.clock.advance(Duration.ofSeconds(1));
    rig.source.prepare =
        () ->
            MoveOutcome.newBuilder()
                .setResult(MoveOutcome.Result.ROLLED_BACK)
                .setMessage(
                    "the stream to the target broke while prepared: UNAVAILABLE; nothing was"
                        + " frozen")
                .build();
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.source.calls).containsExactly("Move prepareOnly", "Move prepareOnly");
    assertThat(rig.plans).as("asked again with the plan it had: no reads").isEqualTo(plans);
    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "in Prepared: the stream to the target broke while prepared: UNAVAILABLE; nothing was"
                + " frozen");
    assertThat(rig.writes).isEqualTo(writes + 1);
  }

  // --- helpers ---

  private static Rig prepareOnly(Rig rig) {
    rig.mr.getSpec().setPrepareOnly(true);
    return rig;
  }

  /** Pending to Prepared, and the prepare-only Move sent, answered PREPARED and read. */
  private static Rig precopied(Rig rig) {
    rig.reconcileTo(Phase.Prepared);
    rig.reconcile();
    rig.answer();
    rig.reconcile();
    assertThat(condition(rig, "Progressing").getReason()).isEqualTo(Reasons.STATE_PRECOPIED);
    return rig;
  }

  private static void proceed(Rig rig, String value) {
    Map<String, String> a = new HashMap<>();
    if (rig.mr.getMetadata().getAnnotations() != null) {
      a.putAll(rig.mr.getMetadata().getAnnotations());
    }
    a.put(MigrationMachine.PROCEED_ANNOTATION, value);
    rig.mr.getMetadata().setAnnotations(a);
  }

  private static Condition condition(Rig rig, String type) {
    return rig.mr.getStatus().getConditions().stream()
        .filter(c -> c.getType().equals(type))
        .findFirst()
        .orElseThrow();
  }
}
