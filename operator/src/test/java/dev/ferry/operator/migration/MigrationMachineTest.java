// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.Endpoint;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveOutcome.Result;
import dev.ferry.api.v1alpha1.MoveRequest;
import io.fabric8.kubernetes.api.model.Condition;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MigrationMachineTest {

  // --- Pending and Preparing ---

  @Test
  void aNewRequestIsAcceptedWithOneWriteAndComesBackAtOnce() {
    Rig rig = new Rig();

    MigrationMachine.Turn turn = rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    assertThat(rig.writes).isEqualTo(1);
    assertThat(turn.reschedule()).contains(Duration.ZERO);
    assertThat(rig.mr.getStatus().getStartTime()).isEqualTo("2026-12-01T10:00:00Z");
    assertThat(condition(rig, "Ready").getReason()).isEqualTo(Reasons.ACCEPTED);
    assertThat(rig.source.calls).isEmpty();
    assertThat(rig.target.calls)
        .as("Preparing's check, read only, asked as the request is admitted")
        .containsExactly("ListConnections");
  }

  @Test
  void preparingChecksTheTargetAgentThenEntersMovingWithThePlanRecordedAndNothingSent() {
    Rig rig = new Rig();
    rig.reconcile();
    rig.clock.advance(Duration.ofMillis(40));

    MigrationMachine.Turn turn = rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Moving);
    assertThat(rig.writes).isEqualTo(2);
    assertThat(turn.reschedule()).contains(Duration.ZERO);
    assertThat(rig.target.calls).containsExactly("ListConnections");
    assertThat(rig.source.calls).isEmpty();
    assertThat(rig.mr.getStatus().getMigrationId()).isEqualTo(Rig.ID);
    assertThat(rig.mr.getStatus().getTargetPod()).isEqualTo("pod-b");
    assertThat(rig.mr.getStatus().getTargetNode()).isEqualTo("node-b");
    assertThat(rig.mr.getStatus().getAddress()).isEqualTo("10.0.0.100/32");
    assertThat(rig.mr.getStatus().getPhaseMillis()).containsEntry("Preparing", 40.0);
    assertThat(rig.sink.events).anyMatch(e -> e.startsWith("Normal Moving: moving the conn"));
  }

  @Test
  void aTargetWithoutTheApplicationRegisteredIsRefusedBeforeAnythingIsFrozen() {
    Rig rig = new Rig();
    rig.target.registeredPorts = List.of();

    rig.reconcileTo(Phase.Failed);

    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "spec.target.name: no application on node node-b has registered port 8080 with Ferry;"
                + " start pod-b's server with the Ferry SDK (it registers through the agent's"
                + " handoff socket), or choose another target");
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.INVALID);
    assertThat(rig.source.calls).isEmpty();
    assertThat(rig.writes).isEqualTo(2);
  }

  @Test
  void aTargetWhoseAgentDoesNotAnswerIsRefused() {
    Rig rig = new Rig();
    rig.target.unreachable = true;

    rig.reconcileTo(Phase.Failed);

    assertThat(rig.mr.getStatus().getMessage())
        .startsWith("spec.target.name: the Ferry agent of node node-b does not answer (")
        .endsWith("); check its pod, or choose a target on another node");
    assertThat(rig.target.calls)
        .as("asked once, as the request was admitted: not again for a second timeout")
        .containsExactly("ListConnections");
  }

  @Test
  void anInvalidRequestFailsWithTheFieldAndTheFix() {
    Rig rig = new Rig();
    rig.invalid = new InvalidRequest("spec.source.name", "no pod pod-a in namespace shop");

    rig.reconcileTo(Phase.Failed);

    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("spec.source.name: no pod pod-a in namespace shop");
    assertThat(rig.mr.getStatus().getCompletionTime()).isNotNull();
    assertThat(rig.last.ended()).isTrue();
  }

  @Test
  void anUnknownAddressMoverFailsTheRequestWithTheSettingsName() {
    Rig rig = new Rig();
    rig.fabricSetting = "gcp";

    rig.reconcileTo(Phase.Failed);

    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.MISCONFIGURED);
    assertThat(rig.mr.getStatus().getMessage()).contains("ferry.operator.address-mover");
  }

  @Test
  void aDryRunListsTheConnectionsAndEndsInPreparing() {
    Rig rig = new Rig();
    rig.mr.getSpec().setDryRun(true);
    rig.source.connections =
        List.of(
            ListedConnection.newBuilder().setId(id(40001)).build(),
            ListedConnection.newBuilder().setId(id(40002)).build());

    rig.reconcileTo(Phase.Completed);

    assertThat(condition(rig, "Ready").getReason()).isEqualTo(Reasons.DRY_RUN);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "dry run: 2 connection(s) on ports [8080] would move to pod-b on node-b; nothing was"
                + " touched");
    assertThat(rig.mr.getStatus().getConnections().getTotal()).isEqualTo(2);
    assertThat(rig.mr.getStatus().getConnectionDetails())
        .extracting(d -> d.getOutcome())
        .containsOnly("WouldMove");
    assertThat(rig.source.moves).isEmpty();
    assertThat(rig.source.connects).as("once admitted, for the listing").isEqualTo(1);
    assertThat(rig.source.signedAhead).isEmpty();
  }

  @Test
  void aDeadlinePassedInPreparingFails() {
    Rig rig = new Rig();
    rig.reconcile();
    rig.clock.advance(Duration.ofSeconds(61));

    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.DEADLINE_PASSED);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("spec.deadline (60s) passed in phase Preparing");
    assertThat(rig.target.calls).as("asked ahead only").containsExactly("ListConnections");
  }

  // --- Moving ---

  @Test
  void movingSendsOneMoveAndWritesNothingUntilItEnds() {
    Rig rig = new Rig();
    rig.source.move = () -> completed();
    rig.reconcileTo(Phase.Moving);
    int writesEnteringMoving = rig.writes;

    for (int i = 0; i < 3; i++) {
      MigrationMachine.Turn turn = rig.reconcile();
      assertThat(turn.writeStatus()).isFalse();
      assertThat(turn.reschedule()).contains(MoveStep.POLL);
    }
    assertThat(rig.inFlight).hasSize(1);
    assertThat(rig.wakes).isZero();

    rig.answer();
    assertThat(rig.wakes).as("the answer wakes the request").isEqualTo(1);
    assertThat(rig.writes).isEqualTo(writesEnteringMoving);

    MigrationMachine.Turn end = rig.reconcile();

    assertThat(rig.source.moves).hasSize(1);
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(end.ended()).isTrue();
    assertThat(end.reschedule()).isEmpty();
    assertThat(rig.writes).isEqualTo(writesEnteringMoving + 1);
    assertThat(rig.calls.size()).isZero();
  }

  @Test
  void progressingIsTrueWhileTheMigrationRunsWithEachPhasesReasonAndFalseAtItsEnd() {
    Rig rig = new Rig();
    rig.source.move = () -> completed();

    rig.reconcile();
    assertThat(condition(rig, "Progressing").getStatus()).isEqualTo("True");
    assertThat(condition(rig, "Progressing").getReason()).isEqualTo(Reasons.ACCEPTED);
    rig.reconcileTo(Phase.Moving);
    assertThat(condition(rig, "Progressing").getStatus()).isEqualTo("True");
    assertThat(condition(rig, "Progressing").getReason()).isEqualTo(Reasons.PREPARED);
    assertThat(condition(rig, "Ready").getStatus()).isEqualTo("False");
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(condition(rig, "Progressing").getStatus()).isEqualTo("False");
    assertThat(condition(rig, "Progressing").getReason()).isEqualTo(Reasons.COMPLETED);
    assertThat(condition(rig, "Ready").getStatus()).isEqualTo("True");
    assertThat(rig.mr.getStatus().getObservedGeneration()).isEqualTo(1L);
    assertThat(rig.mr.getStatus().getConditions())
        .allSatisfy(c -> assertThat(c.getObservedGeneration()).isEqualTo(1L));
  }

  @Test
  void everyPhaseChangeIsTimestampedInOrder() {
    Rig rig = new Rig();
    rig.source.move = () -> completed();
    rig.reconcile();
    rig.clock.advance(Duration.ofMillis(40));
    rig.reconcile();
    rig.clock.advance(Duration.ofMillis(60));
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.mr.getStatus().getPhaseTransitionTimestamps())
        .extracting(t -> t.getPhase() + " " + t.getTime())
        .containsExactly(
            "Pending 2026-12-01T10:00:00Z",
            "Preparing 2026-12-01T10:00:00Z",
            "Moving 2026-12-01T10:00:00.040Z",
            "Completed 2026-12-01T10:00:00.100Z");
  }

  @Test
  void tenThousandConnectionsAreCountedAllButListedBoundedWithTheFailedOnesFirst()
      throws Exception {
    Rig rig = new Rig();
    MigrationStatus.Builder source = MigrationStatus.newBuilder().setNode("node-a");
    MigrationStatus.Builder target = MigrationStatus.newBuilder().setNode("node-b");
    for (int port = 10_000; port < 20_000; port++) {
      source.addConnections(conn(port, ConnectionPhase.RELEASED, ""));
      // A few near the end failed on the target: they must still be listed.
      boolean fails = port >= 19_990;
      target.addConnections(
          conn(
              port,
              fails ? ConnectionPhase.FAILED : ConnectionPhase.RESUMED,
              fails ? "restore failed: " + "x".repeat(1_000) : ""));
    }
    rig.source.move =
        () ->
            MoveOutcome.newBuilder()
                .setResult(Result.COMPLETED)
                .setCommitted(true)
                .setSource(source)
                .setTarget(target)
                .build();
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    var st = rig.mr.getStatus();
    assertThat(st.getConnections().getTotal()).isEqualTo(10_000);
    assertThat(st.getConnections().getFailed()).isEqualTo(10);
    assertThat(st.getConnections().getMigrated()).isEqualTo(9_990);
    assertThat(st.getConnectionDetails()).hasSize(MigrationRequestStatus.MAX_CONNECTION_DETAILS);
    assertThat(st.getConnectionDetailsOmitted()).isEqualTo(9_900);
    assertThat(st.getConnectionDetails().subList(0, 10))
        .allSatisfy(d -> assertThat(d.getOutcome()).isEqualTo("Failed"))
        .extracting(d -> d.getConnection())
        .contains("10.0.0.100:8080 <- 192.0.2.7:19990", "10.0.0.100:8080 <- 192.0.2.7:19999");
    assertThat(st.getConnectionDetails().get(0).getReason()).hasSizeLessThanOrEqualTo(256);
    // What etcd stores: the whole object, far below its 1.5 MB limit.
    int bytes =
        io.fabric8.kubernetes.client.utils.Serialization.asJson(rig.mr)
            .getBytes(java.nio.charset.StandardCharsets.UTF_8)
            .length;
    assertThat(bytes).isLessThan(64 * 1024);
  }

  @Test
  void aCompletedMoveReportsConnectionsPauseAndTheAgentsPhases() {
    Rig rig = new Rig();
    rig.source.move = () -> completed();
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();

    rig.reconcile();

    var st = rig.mr.getStatus();
    assertThat(st.getMessage()).isEqualTo("every connection that could move lives on node-b");
    assertThat(condition(rig, "Ready").getStatus()).isEqualTo("True");
    assertThat(st.getConnections().getTotal()).isEqualTo(2);
    assertThat(st.getConnections().getMigrated()).isEqualTo(2);
    assertThat(st.getPauseMillis()).isEqualTo(41.2);
    assertThat(st.getPhaseMillis())
        .containsEntry("agent.source.freeze", 3.5)
        .containsEntry("agent.target.stage", 12.0)
        .containsKeys("Preparing", "Moving");
    assertThat(rig.sink.addressMoves).containsExactly(Rig.plan());
    assertThat(rig.sink.events)
        .last()
        .asString()
        .startsWith("Normal Completed: every connection")
        .endsWith("(2 of 2 migrated)");
  }

  @Test
  void theMoveRequestCarriesThePlanAndTheL2AddressMove() {
    Rig rig = new Rig();
    rig.mr.getSpec().setAllowPartial(true);
    rig.mr.getSpec().setHoldLimit("30s");
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();

    MoveRequest r = rig.source.moves.get(0);
    assertThat(r.getMigrationId()).isEqualTo(Rig.ID);
    assertThat(r.getSourcePod().getName()).isEqualTo("pod-a");
    assertThat(r.getTargetPod().getName()).isEqualTo("pod-b");
    assertThat(r.getPortsList()).containsExactly(8080);
    assertThat(r.getTargetAgent()).isEqualTo("10.0.0.2:9443");
    assertThat(r.getHoldLimitMs()).isEqualTo(30_000);
    assertThat(r.getAllowPartial()).isTrue();
    assertThat(r.getAddress())
        .isEqualTo(
            MoveAddressPlan.newBuilder()
                .setCidr("10.0.0.100/32")
                .setHostRoute(true)
                .setAnnounce(true)
                .setClaimedByCaller(false)
                .build());
  }

  @Test
  void anAdmittedRequestAsksTheTargetAndConnectsToTheSourceAheadAndItsMoveIsSentSignedAhead() {
    Rig rig = new Rig();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Preparing);
    assertThat(rig.source.connects).as("connected ahead, as Preparing is entered").isEqualTo(1);
    assertThat(rig.target.calls)
        .as("Preparing's check asked ahead, as Preparing is entered")
        .containsExactly("ListConnections");
    int plans = rig.plans;

    rig.reconcileTo(Phase.Moving);

    assertThat(rig.target.calls).as("its answer read, not asked again").hasSize(1);
    assertThat(rig.plans).as("Preparing took the plan made as it was admitted").isEqualTo(plans);
    assertThat(rig.source.connects).as("once").isEqualTo(1);
    assertThat(rig.source.calls).as("but nothing called").isEmpty();
    assertThat(rig.source.signedAhead).hasSize(1);

    rig.reconcile();
    rig.answer();

    MoveRequest sent = rig.source.moves.get(0);
    assertThat(sent).isEqualTo(rig.source.signedAhead.get(0));
    assertThat(sent.getPlan().getSignature().toStringUtf8()).isEqualTo(FakeAgent.SIGNED_AHEAD);
  }

  @Test
  void aMoveSignedAheadIsNotSentWhenItIsOldOrNoLongerTheRequestMovingMakes() {
    Rig old = new Rig();
    old.reconcileTo(Phase.Moving);
    old.clock.advance(MoveStep.SIGNED_AHEAD_FOR.plusSeconds(1));
    old.reconcile();
    old.answer();
    assertThat(old.source.moves.get(0).hasPlan())
        .as("long after Preparing: left to the agent client, which signs as it sends")
        .isFalse();

    Rig changed = new Rig();
    changed.reconcileTo(Phase.Moving);
    changed.mr.getMetadata().setAnnotations(Map.of(MoveStep.FAULT_ANNOTATION, "after-export"));
    changed.reconcile();
    changed.answer();
    MoveRequest sent = changed.source.moves.get(0);
    assertThat(sent.getFault()).isEqualTo("after-export");
    assertThat(sent.hasPlan()).as("the request signed ahead was another").isFalse();
  }

  @Test
  void onAwsTheCallerClaimsTheAddressAndNothingIsAnnounced() {
    Rig rig = new Rig(true);
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();

    MoveAddressPlan a = rig.source.moves.get(0).getAddress();
    assertThat(a.getClaimedByCaller()).isTrue();
    assertThat(a.getAnnounce()).isFalse();
    assertThat(a.getCidr()).isEqualTo("10.0.0.100/32");
  }

  @Test
  void anAgentThatRolledBackEndsRolledBack() {
    Rig rig = new Rig();
    rig.source.move =
        () ->
            MoveOutcome.newBuilder()
                .setResult(Result.ROLLED_BACK)
                .setMessage("the target's application declined 1 connection")
                .setSource(status("node-a", ConnectionPhase.ROLLED_BACK))
                .build();

    runMove(rig);

    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(condition(rig, "RolledBack").getStatus()).isEqualTo("True");
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("in Moving: the target's application declined 1 connection");
    assertThat(rig.mr.getStatus().getConnections().getRolledBack()).isEqualTo(2);
    assertThat(rig.sink.addressMoves).isEmpty();
  }

  @Test
  void nothingToMoveFailsAsNothingFrozen() {
    Rig rig = new Rig();
    rig.source.move =
        () ->
            MoveOutcome.newBuilder()
                .setResult(Result.NOTHING_TO_MOVE)
                .setSource(status("node-a", ConnectionPhase.STAYED))
                .build();

    runMove(rig);

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.NOTHING_FROZEN);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "no connection could be frozen: each is kept by its application; the address stays"
                + " (see connectionDetails)");
    assertThat(rig.mr.getStatus().getConnections().getKept()).isEqualTo(2);
  }

  @Test
  void aPodWithNoConnectionToMoveFailsSayingSoWithoutPointingAtDetails() {
    Rig rig = new Rig();
    rig.source.move =
        () ->
            MoveOutcome.newBuilder()
                .setResult(Result.NOTHING_TO_MOVE)
                .setMessage("no connection on ports [8080] of the pod")
                .setSource(MigrationStatus.newBuilder().setMigrationId(Rig.ID).setNode("node-a"))
                .build();

    runMove(rig);

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.NOTHING_FROZEN);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("no connection on ports [8080] of the pod; the address stays");
    assertThat(rig.mr.getStatus().getConnections().getTotal()).isZero();
  }

  @Test
  void aFailedMoveSaysWhatTheAgentSaidAndWhichConnectionsFailed() {
    Rig rig = new Rig();
    rig.source.move =
        () ->
            MoveOutcome.newBuilder()
                .setResult(Result.FAILED)
                .setMessage("resume on node-b failed for 1 connection")
                .setCommitted(true)
                .setSource(status("node-a", ConnectionPhase.RELEASED))
                .setTarget(
                    MigrationStatus.newBuilder()
                        .setNode("node-b")
                        .addConnections(conn(40001, ConnectionPhase.RESUMED, ""))
                        .addConnections(conn(40002, ConnectionPhase.FAILED, "EADDRNOTAVAIL")))
                .build();

    runMove(rig);

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.MOVE_FAILED);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "resume on node-b failed for 1 connection: 10.0.0.100:8080 <- 192.0.2.7:40002 on"
                + " node-b: EADDRNOTAVAIL");
    assertThat(rig.mr.getStatus().getConnections().getMigrated()).isEqualTo(1);
    assertThat(rig.mr.getStatus().getConnections().getFailed()).isEqualTo(1);
  }

  @Test
  void awaitingAddressClaimsItForTheTargetNodeThenCommits() {
    Rig rig = new Rig(true);
    rig.source.move = () -> MoveOutcome.newBuilder().setResult(Result.AWAITING_ADDRESS).build();
    rig.source.commit = () -> completed();
    rig.reconcileTo(Phase.Moving);
    int entering = rig.writes;
    rig.reconcile();
    rig.answer();

    MigrationMachine.Turn claiming = rig.reconcile();
    assertThat(claiming.writeStatus()).isFalse();
    assertThat(rig.phase()).isEqualTo(Phase.Moving);
    rig.answer();
    rig.reconcile();

    assertThat(rig.fabric.claimed).containsExactly("10.0.0.100->node-b");
    assertThat(rig.source.calls).containsExactly("Move", "Commit");
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.writes).isEqualTo(entering + 1);
    assertThat(rig.wakes).isEqualTo(2);
  }

  @Test
  void onAwsAClaimThatCannotBeMadeFailsInPreparingBeforeAnythingIsFrozen() {
    Rig rig = new Rig(true);
    rig.fabric.checkRefusedFor = "node-b";

    rig.reconcileTo(Phase.Failed);

    assertThat(rig.fabric.checked).containsExactly("10.0.0.100->node-b");
    assertThat(rig.fabric.claimed).isEmpty();
    assertThat(rig.source.calls).isEmpty();
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.ADDRESS_CLAIM_FAILED);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo(
            "in Preparing, checking the claim of 10.0.0.100/32 for node-b: node-b (i-0b) has no"
                + " network interface in subnet-1, where 10.0.0.100 is (on eni-0a); nothing was"
                + " frozen");
  }

  @Test
  void onAwsTheClaimIsCheckedBeforeTheMove() {
    Rig rig = new Rig(true);
    rig.reconcileTo(Phase.Moving);

    assertThat(rig.fabric.checked).containsExactly("10.0.0.100->node-b");
    assertThat(rig.fabric.claimed).isEmpty();
  }

  @Test
  void onAwsTheAgentsMayCommitBeforeTheClaimWhenTheSourceForwards() {
    Rig rig = new Rig(true);
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();

    assertThat(rig.source.moves.get(0).getAddress().getClaimAfterForwardedCommit()).isTrue();
  }

  @Test
  void aForwardedCommitIsClaimedAfterTheResumeWithoutCommit() {
    Rig rig = new Rig(true);
    rig.source.move = () -> forwardedCommit();
    rig.reconcileTo(Phase.Moving);
    int entering = rig.writes;
    rig.reconcile();
    rig.answer();

    MigrationMachine.Turn claiming = rig.reconcile();
    assertThat(claiming.writeStatus()).isFalse();
    assertThat(rig.phase()).isEqualTo(Phase.Moving);
    assertThat(rig.fabric.claimed).isEmpty();
    rig.answer();
    rig.reconcile();

    assertThat(rig.fabric.claimed).containsExactly("10.0.0.100->node-b");
    assertThat(rig.source.calls).containsExactly("Move");
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.mr.getStatus().getConnections().getMigrated()).isEqualTo(2);
    assertThat(rig.writes).isEqualTo(entering + 1);
  }

  @Test
  void aClaimThatFailsAfterAForwardedCommitIsMadeAgainAndNothingRollsBack() {
    Rig rig = new Rig(true);
    rig.source.move = () -> forwardedCommit();
    rig.fabric.refuseFor = "node-b";
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();
    rig.reconcile(); // the claim
    rig.answer();

    MigrationMachine.Turn failed = rig.reconcile();
    assertThat(failed.writeStatus()).isFalse();
    assertThat(failed.reschedule()).contains(MoveStep.RETRY);
    assertThat(rig.phase()).isEqualTo(Phase.Moving);

    rig.fabric.refuseFor = null; // the role is fixed
    for (int i = 0; i < 2; i++) {
      rig.reconcile();
      rig.answer();
    }
    rig.reconcile();

    assertThat(rig.source.calls).containsExactly("Move", "Move");
    assertThat(rig.fabric.claimed).containsExactly("10.0.0.100->node-b", "10.0.0.100->node-b");
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
  }

  @Test
  void pastTheDeadlineAClaimThatFailsAfterTheCommitFailsSayingWhereTheConnectionsLive() {
    Rig rig = new Rig(true);
    rig.source.move = () -> forwardedCommit();
    rig.fabric.refuseFor = "node-b";
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();
    rig.reconcile(); // the claim
    rig.clock.advance(Duration.ofSeconds(61));
    rig.answer();
    rig.reconcile();

    assertThat(rig.source.calls).containsExactly("Move");
    assertThat(rig.fabric.claimed).containsExactly("10.0.0.100->node-b");
    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.ADDRESS_CLAIM_FAILED);
    assertThat(rig.mr.getStatus().getMessage())
        .startsWith(
            "the connections live on node-b (committed), reached through node-a, which forwards"
                + " 10.0.0.100's packets there until its forwarding limit; claiming the"
                + " address for node-b failed: AssignPrivateIpAddresses on eni-0b failed")
        .contains("move the address to node-b's interface before the forwarding ends");
    assertThat(rig.mr.getStatus().getConnections().getMigrated()).isEqualTo(2);
    assertThat(rig.mr.getStatus().getConnections().getRolledBack()).isZero();
  }

  /** The agents committed while the source forwards: the claim is the operator's to make. */
  private static MoveOutcome forwardedCommit() {
    return completed().toBuilder().setForwarding(true).build();
  }

  @Test
  void aClaimEc2TurnedDownRollsBackWithNoAddressToGiveBack() {
    Rig rig = new Rig(true);
    rig.fabric.refuseFor = "node-b";

    claimFailsAndTheMoveRollsBack(rig);

    assertThat(rig.source.calls).containsExactly("Move", "Rollback");
    // EC2 assigned nothing: no claim-back, which the same missing permission would refuse too.
    assertThat(rig.fabric.claimed).containsExactly("10.0.0.100->node-b");
    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(condition(rig, "RolledBack").getReason()).isEqualTo(Reasons.ADDRESS_CLAIM_FAILED);
    assertThat(rig.mr.getStatus().getMessage())
        .startsWith("in Moving: AssignPrivateIpAddresses on eni-0b failed")
        .contains("ec2:AssignPrivateIpAddresses");
    assertThat(rig.mr.getStatus().getConnections().getRolledBack()).isEqualTo(2);
  }

  @Test
  void aClaimThatMayStillLandRollsBackAndClaimsTheAddressBack() {
    Rig rig = new Rig(true);
    rig.fabric.unsettledFor = "node-b";

    claimFailsAndTheMoveRollsBack(rig);

    assertThat(rig.source.calls).containsExactly("Move", "Rollback");
    // A claim-back, not a claim: the claim for node-b was accepted and may still land.
    assertThat(rig.fabric.claimed)
        .containsExactly("10.0.0.100->node-b", "10.0.0.100->node-a (back)");
    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(condition(rig, "RolledBack").getReason()).isEqualTo(Reasons.ADDRESS_CLAIM_FAILED);
  }

  /** Move answers AWAITING_ADDRESS, the operator's claim for node-b fails, and it rolls back. */
  private static void claimFailsAndTheMoveRollsBack(Rig rig) {
    rig.source.move = () -> MoveOutcome.newBuilder().setResult(Result.AWAITING_ADDRESS).build();
    rig.source.rollback = () -> status("node-a", ConnectionPhase.ROLLED_BACK);
    rig.reconcileTo(Phase.Moving);
    for (int i = 0; i < 3; i++) {
      rig.reconcile();
      rig.answer();
    }
    rig.reconcile();
  }

  @Test
  void anOperatorRestartedInMovingCallsMoveAgainAndReadsItsOutcome() {
    Rig rig = new Rig();
    rig.reconcileTo(Phase.Moving);
    rig.reconcile(); // Move sent; the agent gets it, then the operator restarts
    rig.answer();
    rig.calls = new MoveCalls(rig.inFlight::add);
    rig.source.move = () -> completed();

    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.source.moves).hasSize(2);
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
  }

  @Test
  void anUnreachableSourceAgentIsCalledAgainWithoutAStatusWrite() {
    Rig rig = new Rig();
    rig.source.unreachable = true;
    rig.reconcileTo(Phase.Moving);
    int entering = rig.writes;
    rig.reconcile();
    rig.answer();

    MigrationMachine.Turn turn = rig.reconcile();
    assertThat(turn.writeStatus()).isFalse();
    assertThat(turn.reschedule()).contains(MoveStep.RETRY);

    rig.source.unreachable = false;
    rig.source.move = () -> completed();
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.source.moves).hasSize(2);
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.writes).isEqualTo(entering + 1);
  }

  @Test
  void aMoveTheAgentRefusesFails() {
    Rig rig = new Rig();
    rig.source.move =
        () -> {
          throw rig.source.failed("Move", Status.UNIMPLEMENTED.withDescription("Move"));
        };

    runMove(rig);

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.AGENT_REFUSED);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("Move on the agent at node-a:9443 failed: UNIMPLEMENTED: Move");
  }

  @Test
  void aDeadlinePassedInMovingRollsBackOnTheSource() {
    Rig rig = new Rig();
    rig.source.rollback = () -> status("node-a", ConnectionPhase.ROLLED_BACK);
    rig.reconcileTo(Phase.Moving);
    int entering = rig.writes;
    rig.reconcile(); // Move in flight, and it does not end
    rig.clock.advance(Duration.ofSeconds(61));

    MigrationMachine.Turn turn = rig.reconcile();
    assertThat(turn.writeStatus()).isFalse();
    rig.inFlight.pollLast().run(); // the Rollback answers; the Move never does
    rig.reconcile();

    assertThat(rig.source.calls).containsExactly("Rollback");
    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(condition(rig, "RolledBack").getReason()).isEqualTo(Reasons.DEADLINE_PASSED);
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("spec.deadline (60s) passed in phase Moving");
    assertThat(rig.writes).isEqualTo(entering + 1);
  }

  @Test
  void onAwsADeadlineRollbackClaimsTheAddressBackThoughThisOperatorClaimedNothing() {
    Rig rig = new Rig(true);
    rig.source.rollback = () -> status("node-a", ConnectionPhase.ROLLED_BACK);
    rig.reconcileTo(Phase.Moving);
    rig.reconcile(); // Move in flight: an operator before a restart may have claimed already
    rig.clock.advance(Duration.ofSeconds(61));

    rig.reconcile();
    rig.inFlight.pollLast().run();
    rig.reconcile();

    assertThat(rig.source.calls).containsExactly("Rollback");
    assertThat(rig.fabric.claimed).containsExactly("10.0.0.100->node-a (back)");
    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
  }

  @Test
  void anAgentPastItsCommitPointRefusesTheRollbackAndTheMoveIsSeenToItsEnd() {
    Rig rig = new Rig();
    rig.source.rollback =
        () -> {
          throw rig.source.failed(
              "Rollback",
              Status.FAILED_PRECONDITION.withDescription("committed on node-b: past rollback"));
        };
    rig.source.move = () -> completed();
    rig.reconcileTo(Phase.Moving);
    rig.clock.advance(Duration.ofSeconds(61));

    for (int i = 0; i < 3; i++) {
      rig.reconcile();
      rig.answer();
    }

    assertThat(rig.source.calls).containsExactly("Rollback", "Move");
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.mr.getStatus().getMessage())
        .startsWith("every connection that could move lives on node-b (spec.deadline (60s)")
        .contains("would not roll back: Rollback on the agent at node-a:9443 failed:")
        .contains("past rollback");
  }

  @Test
  void aDeadlinePassedWhileTheAddressIsClaimedWaitsForTheClaimAndCommit() {
    Rig rig = new Rig(true);
    rig.source.move = () -> MoveOutcome.newBuilder().setResult(Result.AWAITING_ADDRESS).build();
    rig.source.commit = () -> completed();
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();
    rig.reconcile(); // the claim and Commit are in flight
    rig.clock.advance(Duration.ofSeconds(61));

    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.source.calls).containsExactly("Move", "Commit");
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
  }

  @Test
  void aRollbackThatFailsSaysHowToRetryIt() {
    Rig rig = new Rig();
    rig.source.unreachable = true;
    rig.reconcileTo(Phase.Moving);
    rig.clock.advance(Duration.ofSeconds(61));
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(condition(rig, "Failed").getReason()).isEqualTo(Reasons.ROLLBACK_FAILED);
    assertThat(rig.mr.getStatus().getMessage())
        .endsWith(
            "retry with: kubectl annotate migrationrequest -n shop move-1 ferry.dev/rollback=$(date"
                + " +%s) --overwrite");
  }

  @Test
  void aFinishedRequestIsLeftAlone() {
    Rig rig = new Rig();
    rig.source.move = () -> completed();
    runMove(rig);
    int writes = rig.writes;

    MigrationMachine.Turn turn = rig.reconcile();

    assertThat(turn.writeStatus()).isFalse();
    assertThat(turn.reschedule()).isEmpty();
    assertThat(rig.writes).isEqualTo(writes);
  }

  // --- deletion ---

  @Test
  void deletingARequestInMovingRollsBackOnTheSource() {
    Rig rig = new Rig();
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.inFlight.clear();

    rig.machine().cleanup(rig.mr);
    rig.answer();

    assertThat(rig.source.calls).containsExactly("Rollback");
    assertThat(rig.calls.size()).isZero();
    assertThat(rig.sink.events).last().asString().startsWith("Warning Deleted: deleted in Moving");
  }

  @Test
  void deletingARequestInPreparingLeavesNothingOnTheAgentsAndLiftsTheGuard() {
    Rig rig = new Rig();
    rig.reconcileTo(Phase.Preparing);

    rig.machine().cleanup(rig.mr);
    rig.answer();

    assertThat(rig.source.calls).isEmpty();
    assertThat(rig.target.calls)
        .as("the check asked ahead alone")
        .containsExactly("ListConnections");
    assertThat(rig.guard.calls).containsExactly("protect pod-a", "release move-1");
  }

  // --- helpers ---

  /** Pending to Moving, the Move sent and answered, and the reconcile that reads the answer. */
  private static void runMove(Rig rig) {
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();
    rig.reconcile();
  }

  private static Condition condition(Rig rig, String type) {
    return rig.mr.getStatus().getConditions().stream()
        .filter(c -> c.getType().equals(type))
        .findFirst()
        .orElseThrow();
  }

  static MoveOutcome completed() {
    return MoveOutcome.newBuilder()
        .setResult(Result.COMPLETED)
        .setCommitted(true)
        .setPauseMicros(41_234)
        .setSource(
            status("node-a", ConnectionPhase.RELEASED).toBuilder()
                .putAllPhaseMicros(Map.of("freeze", 3_456L)))
        .setTarget(
            status("node-b", ConnectionPhase.RESUMED).toBuilder()
                .putAllPhaseMicros(Map.of("stage", 12_000L)))
        .build();
  }

  static MigrationStatus status(String node, ConnectionPhase phase) {
    return MigrationStatus.newBuilder()
        .setMigrationId(Rig.ID)
        .setNode(node)
        .addConnections(conn(40001, phase, ""))
        .addConnections(conn(40002, phase, ""))
        .build();
  }

  static ConnectionStatus conn(int clientPort, ConnectionPhase phase, String reason) {
    return ConnectionStatus.newBuilder()
        .setId(id(clientPort))
        .setPhase(phase)
        .setReason(reason)
        .build();
  }

  static ConnectionId id(int clientPort) {
    return ConnectionId.newBuilder()
        .setLocal(endpoint(new byte[] {10, 0, 0, 100}, 8080))
        .setRemote(endpoint(new byte[] {(byte) 192, 0, 2, 7}, clientPort))
        .build();
  }

  private static Endpoint endpoint(byte[] ip, int port) {
    return Endpoint.newBuilder().setIp(ByteString.copyFrom(ip)).setPort(port).build();
  }
}
