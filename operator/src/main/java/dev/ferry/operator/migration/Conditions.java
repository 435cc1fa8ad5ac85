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
 * The conditions a request carries: Ready (the connections live where asked), RolledBack and
 * Failed, each with the reason and message of the last step. {@code kubectl wait
 * --for=condition=Ready mr/NAME} works. A condition's lastTransitionTime changes only when its
 * status or reason does.
 */
public final class Conditions {
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
    conditions.add(
        condition(before, READY, phase == Phase.Completed, reason, message, generation, now));
    conditions.add(
        condition(
            before, ROLLED_BACK, phase == Phase.RolledBack, reason, message, generation, now));
    conditions.add(
        condition(before, FAILED, phase == Phase.Failed, reason, message, generation, now));
    st.setConditions(conditions);
    st.setObservedGeneration(generation);
  }

  private static Condition condition(
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
