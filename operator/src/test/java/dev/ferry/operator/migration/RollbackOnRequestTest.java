// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import io.grpc.Status;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** kubectl annotate mr NAME ferry.dev/rollback=VALUE on an ended request. */
class RollbackOnRequestTest {

  @Test
  void aFailedRollbackIsRetriedOnceForEachValueOfTheAnnotation() {
    Rig rig = failedRollback();
    int writes = rig.writes;

    annotate(rig, "1");
    rig.reconcile();
    assertThat(rig.inFlight).as("Rollback sent, off the reconcile's thread").hasSize(1);
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.RolledBack);
    assertThat(rig.mr.getStatus().getRollbackRequest()).isEqualTo("1");
    assertThat(rig.mr.getStatus().getMessage())
        .isEqualTo("rollback asked with ferry.dev/rollback=1");
    assertThat(rig.mr.getStatus().getConnections().getRolledBack()).isEqualTo(2);
    assertThat(rig.writes).isEqualTo(writes + 1);
    assertThat(rig.last.ended()).as("not counted as a second end").isFalse();
    long rollbacks = rig.source.calls.stream().filter("Rollback"::equals).count();

    rig.reconcile();
    rig.reconcile();

    assertThat(rig.source.calls.stream().filter("Rollback"::equals).count())
        .as("the same value is answered once")
        .isEqualTo(rollbacks);
    assertThat(rig.writes).isEqualTo(writes + 1);
  }

  @Test
  void pastTheCommitPointTheAgentRefusesAndTheStatusSaysSo() {
    Rig rig = failedRollback();
    rig.source.rollback =
        () -> {
          throw rig.source.failed(
              "Rollback",
              Status.FAILED_PRECONDITION.withDescription("committed on node-b: past rollback"));
        };

    annotate(rig, "again");
    rig.reconcile();
    rig.answer();
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Failed);
    assertThat(rig.mr.getStatus().getMessage()).contains("committed on node-b: past rollback");
    assertThat(rig.mr.getStatus().getRollbackRequest()).isEqualTo("again");
  }

  @Test
  void aCompletedRequestHasNothingToRollBackAndStaysCompleted() {
    Rig rig = Rig.moveAnswered();
    rig.reconcile();
    assertThat(rig.phase()).isEqualTo(Phase.Completed);

    annotate(rig, "1");
    rig.reconcile();

    assertThat(rig.phase()).isEqualTo(Phase.Completed);
    assertThat(rig.source.calls).doesNotContain("Rollback");
    assertThat(rig.mr.getStatus().getMessage())
        .startsWith("ferry.dev/rollback ignored: the request ended Completed");
  }

  /** A request whose rollback at its deadline failed: the source agent did not answer. */
  private static Rig failedRollback() {
    Rig rig = new Rig();
    rig.source.unreachable = true;
    rig.reconcileTo(Phase.Moving);
    rig.clock.advance(Duration.ofSeconds(61));
    rig.reconcile();
    rig.answer();
    rig.reconcile();
    assertThat(rig.mr.getStatus().getConditions())
        .anySatisfy(c -> assertThat(c.getReason()).isEqualTo(Reasons.ROLLBACK_FAILED));
    rig.source.unreachable = false;
    rig.source.rollback = () -> MigrationMachineTest.status("node-a", ConnectionPhase.ROLLED_BACK);
    return rig;
  }

  private static void annotate(Rig rig, String value) {
    Map<String, String> a = new HashMap<>();
    if (rig.mr.getMetadata().getAnnotations() != null) {
      a.putAll(rig.mr.getMetadata().getAnnotations());
    }
    a.put(MoveStep.ROLLBACK_ANNOTATION, value);
    rig.mr.getMetadata().setAnnotations(a);
  }
}
