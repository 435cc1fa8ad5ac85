// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class ConditionsTest {
  private static final Instant T0 = Instant.parse("2026-12-01T10:00:00Z");
  private static final Instant T1 = Instant.parse("2026-12-01T10:00:05Z");

  @Test
  void aConditionKeepsItsTransitionTimeWhileItsStatusAndReasonStay() {
    MigrationRequestStatus st = new MigrationRequestStatus();
    Conditions.set(st, Phase.Moving, "Prepared", "moving", 1L, T0);

    Conditions.set(st, Phase.Moving, "Prepared", "still moving", 1L, T1);

    assertThat(ready(st).getLastTransitionTime()).isEqualTo(T0.toString());
    assertThat(ready(st).getMessage()).isEqualTo("still moving");
  }

  @Test
  void aNewReasonOrStatusIsATransition() {
    MigrationRequestStatus st = new MigrationRequestStatus();
    Conditions.set(st, Phase.Preparing, "Accepted", "accepted", 1L, T0);

    Conditions.set(st, Phase.Completed, "Completed", "done", 1L, T1);

    assertThat(ready(st).getStatus()).isEqualTo("True");
    assertThat(ready(st).getLastTransitionTime()).isEqualTo(T1.toString());
    assertThat(st.getConditions())
        .extracting(Condition::getType)
        .containsExactly("Progressing", "Ready", "RolledBack", "Failed");
  }

  @Test
  void progressingIsTrueUntilTheEndThenFalseWithTheEndsReason() {
    MigrationRequestStatus st = new MigrationRequestStatus();
    Conditions.set(st, Phase.Moving, "Prepared", "moving", 3L, T0);

    assertThat(type(st, "Progressing").getStatus()).isEqualTo("True");
    assertThat(type(st, "Progressing").getReason()).isEqualTo("Prepared");
    assertThat(st.getObservedGeneration()).isEqualTo(3L);

    Conditions.set(st, Phase.RolledBack, "RolledBack", "rolled back", 3L, T1);

    assertThat(type(st, "Progressing").getStatus()).isEqualTo("False");
    assertThat(type(st, "Progressing").getReason()).isEqualTo("RolledBack");
    assertThat(type(st, "Progressing").getLastTransitionTime()).isEqualTo(T1.toString());
    assertThat(type(st, "RolledBack").getStatus()).isEqualTo("True");
  }

  private static Condition type(MigrationRequestStatus st, String type) {
    return st.getConditions().stream().filter(c -> c.getType().equals(type)).findFirst().get();
  }

  private static Condition ready(MigrationRequestStatus st) {
    return st.getConditions().stream().filter(c -> c.getType().equals("Ready")).findFirst().get();
  }
}
