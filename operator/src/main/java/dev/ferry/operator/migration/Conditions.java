// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The conditions a finished request carries: Ready (the connections live where asked), and
 * RolledBack or Failed with the reason. {@code kubectl wait --for=condition=Ready mr/NAME} works.
 */
public final class Conditions {
  private Conditions() {}

  public static void set(
      MigrationRequestStatus st, Phase end, String reason, String message, Long generation) {
    List<Condition> conditions = new ArrayList<>();
    String now = Instant.now().toString();
    conditions.add(condition("Ready", end == Phase.Completed, reason, message, generation, now));
    conditions.add(
        condition("RolledBack", end == Phase.RolledBack, reason, message, generation, now));
    conditions.add(condition("Failed", end == Phase.Failed, reason, message, generation, now));
    st.setConditions(conditions);
    st.setObservedGeneration(generation);
  }

  private static Condition condition(
      String type, boolean on, String reason, String message, Long generation, String now) {
    return new ConditionBuilder()
        .withType(type)
        .withStatus(on ? "True" : "False")
        .withReason(reason)
        .withMessage(message)
        .withObservedGeneration(generation)
        .withLastTransitionTime(now)
        .build();
  }
}
