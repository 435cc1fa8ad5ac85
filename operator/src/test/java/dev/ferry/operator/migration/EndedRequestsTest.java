// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.Phase;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** ferry.operator.policy-requests-kept: a policy's ended requests go after a while. */
class EndedRequestsTest {
  private static final Duration WEEK = Duration.ofDays(7);

  @Test
  void aPolicysRequestIsDeletedOnceItHasBeenEndedForTheTimeKept() {
    Rig rig = new Rig();
    rig.policyRequestsKept = WEEK;
    rig.mr.getMetadata().setLabels(Map.of(MigrationRequest.POLICY_LABEL, "spot"));
    rig.source.move = MigrationMachineTest::completed;
    rig.reconcileTo(Phase.Moving);
    rig.reconcile();
    rig.answer();

    MigrationMachine.Turn end = rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(end.reschedule()).as("looked at again when it is due").contains(WEEK);
    assertThat(end.delete()).isFalse();

    rig.clock.advance(Duration.ofDays(3));
    MigrationMachine.Turn meanwhile = rig.reconcile();
    assertThat(meanwhile.delete()).isFalse();
    assertThat(meanwhile.writeStatus()).isFalse();
    assertThat(meanwhile.reschedule()).contains(Duration.ofDays(4));

    rig.clock.advance(Duration.ofDays(4));
    MigrationMachine.Turn due = rig.reconcile();
    assertThat(due.delete()).isTrue();
    assertThat(due.writeStatus()).as("nothing written to an object about to go").isFalse();
  }

  @Test
  void aPolicysRequestStaysWhileTheNodeItEvacuatedIsInTheCluster() {
    Rig rig = Rig.moveAnswered();
    rig.policyRequestsKept = WEEK;
    rig.mr
        .getMetadata()
        .setLabels(
            Map.of(
                MigrationRequest.POLICY_LABEL, "spot",
                MigrationRequest.EVACUATED_NODE_LABEL, "node-a"));
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Completed);

    rig.clock.advance(Duration.ofDays(8));
    MigrationMachine.Turn nodeThere = rig.reconcile();
    assertThat(nodeThere.delete())
        .as("its announcement may still be on the node: the policy would make it again")
        .isFalse();
    assertThat(nodeThere.reschedule()).contains(Duration.ofHours(1));

    rig.nodesGone.add("node-a");
    rig.clock.advance(Duration.ofHours(1));
    assertThat(rig.reconcile().delete()).as("the node reclaimed").isTrue();
  }

  @Test
  void aRequestAPersonMadeIsKeptAndSoIsEveryOneWhenTheTimeIsZero() {
    Rig person = Rig.moveAnswered();
    person.policyRequestsKept = WEEK;
    person.reconcile();
    person.clock.advance(Duration.ofDays(30));
    MigrationMachine.Turn later = person.reconcile();
    assertThat(person.phase()).isEqualTo(Phase.Completed);
    assertThat(later.delete()).isFalse();
    assertThat(later.reschedule()).isEmpty();

    Rig policy = Rig.moveAnswered();
    policy.mr.getMetadata().setLabels(Map.of(MigrationRequest.POLICY_LABEL, "spot"));
    policy.reconcile();
    policy.clock.advance(Duration.ofDays(30));
    assertThat(policy.reconcile().delete()).as("0: kept").isFalse();
  }

  @Test
  void anEndTimeThatCannotBeReadKeepsTheRequest() {
    Rig rig = Rig.moveAnswered();
    rig.mr.getMetadata().setLabels(Map.of(MigrationRequest.POLICY_LABEL, "spot"));
    rig.reconcile();
    rig.mr.getStatus().setCompletionTime("yesterday");
    assertThat(new EndedRequests(WEEK, n -> true, rig.clock).untilDeleted(rig.mr))
        .isEqualTo(Optional.empty());
  }

  @Test
  void theTimeIsWrittenAsTheSettingIs() {
    assertThat(new EndedRequests(WEEK, n -> true, new Rig().clock).keptAsWritten())
        .isEqualTo("168h");
    assertThat(
            new EndedRequests(Duration.ofSeconds(90), n -> true, new Rig().clock).keptAsWritten())
        .isEqualTo("90s");
  }

  @Test
  void aNegativeTimeIsRefusedNamingTheSetting() {
    assertThatThrownBy(() -> new EndedRequests(Duration.ofHours(-1), n -> true, new Rig().clock))
        .hasMessageContaining("ferry.operator.policy-requests-kept");
  }
}
