// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The conditions a request carries: Progressing (True from Pending to the end, with the reason of
 * the step that led into the phase; False at the end), Ready (the connections live where asked),
 * RolledBack and Failed, each with the reason and message of the last step. {@code kubectl wait
 * --for=condition=Ready mr/NAME} works. A condition's lastTransitionTime changes only when its
 * status or reason does.
 */
public final class Conditions {
  public static final String PROGRESSING = "Progressing";
  public static final String READY = "Ready";
  public static final String ROLLED_BACK = "RolledBack";
  public static final String FAILED = "Failed";

  private Conditions() {}

  /** The conditions of a request that is now in {@code phase}. */
  public static void set(
      MigrationRequestStatus st,
      Phase phase,
      String reason,
      String message,
      Long generation,
      Instant now) {
    List<Condition> before = st.getConditions() == null ? List.of() : st.getConditions();
    List<Condition> conditions = new ArrayList<>();
    for (String type : List.of(PROGRESSING, READY, ROLLED_BACK, FAILED)) {
      conditions.add(condition(before, type, on(type, phase), reason, message, generation, now));
    }
    st.setConditions(conditions);
    st.setObservedGeneration(generation);
  }

  /** The reason the Progressing condition gives now; null when there is none. */
  static String progressingReason(MigrationRequestStatus st) {
    return st.getConditions() == null
        ? null
        : st.getConditions().stream()
            .filter(c -> PROGRESSING.equals(c.getType()))
            .map(Condition::getReason)
            .findFirst()
            .orElse(null);
  }

  /** Whether condition {@code type} is True in {@code phase}. */
  private static boolean on(String type, Phase phase) {
    return switch (type) {
      case PROGRESSING -> !phase.finished();
      case READY -> phase == Phase.Completed;
      case ROLLED_BACK -> phase == Phase.RolledBack;
      default -> phase == Phase.Failed;
    };
  }

  /**
   * One condition, keeping its lastTransitionTime from {@code before} while its status and reason
   * stay; for any status that keeps conditions the same way (MigrationPolicy's Ready, too).
   */
  public static Condition condition(
      List<Condition> before,
      String type,
      boolean on,
      String reason,
      String message,
      Long generation,
      Instant now) {
    String status = on ? "True" : "False";
    String since =
        before.stream()
            .filter(c -> type.equals(c.getType()))
            .filter(c -> status.equals(c.getStatus()) && Objects.equals(reason, c.getReason()))
            .map(Condition::getLastTransitionTime)
            .filter(Objects::nonNull)
            .findFirst()
            .orElse(now.toString());
    return new ConditionBuilder()
        .withType(type)
        .withStatus(status)
        .withReason(reason)
        .withMessage(message)
        .withObservedGeneration(generation)
        .withLastTransitionTime(since)
        .build();
  }
}
