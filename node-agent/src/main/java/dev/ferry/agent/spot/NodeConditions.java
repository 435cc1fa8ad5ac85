// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.NodeConditionBuilder;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** Where a notice goes among a Node's conditions; no I/O, so the rules are tested on their own. */
final class NodeConditions {
  static final String TRUE = "True";

  private NodeConditions() {}

  /**
   * The Node's conditions with the notice's condition set to True, every other condition as it was;
   * empty when the Node already says exactly this, so that nothing is written.
   */
  static Optional<List<NodeCondition>> withNotice(
      List<NodeCondition> current, SpotNotice notice, Instant now) {
    String type = notice.kind().conditionType();
    NodeCondition old =
        current.stream().filter(c -> type.equals(c.getType())).findFirst().orElse(null);
    if (old != null
        && TRUE.equals(old.getStatus())
        && notice.kind().reason().equals(old.getReason())
        && notice.message().equals(old.getMessage())) {
      return Optional.empty();
    }
    String stamp = timestamp(now);
    // lastTransitionTime follows the status only: a new time or action in the notice is news,
    // but the condition has been True since the first one.
    boolean wasTrue = old != null && TRUE.equals(old.getStatus());
    NodeCondition next =
        new NodeConditionBuilder()
            .withType(type)
            .withStatus(TRUE)
            .withReason(notice.kind().reason())
            .withMessage(notice.message())
            .withLastHeartbeatTime(stamp)
            .withLastTransitionTime(wasTrue ? old.getLastTransitionTime() : stamp)
            .build();
    List<NodeCondition> all = new ArrayList<>(current.size() + 1);
    for (NodeCondition c : current) {
      all.add(c == old ? next : c);
    }
    if (old == null) {
      all.add(next);
    }
    return Optional.of(all);
  }

  /** RFC 3339 with whole seconds, as the API server writes metav1.Time. */
  static String timestamp(Instant t) {
    return t.truncatedTo(ChronoUnit.SECONDS).toString();
  }
}
