// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.NodeConditionBuilder;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How a notice changes a Node's conditions, following the Kubernetes condition conventions. */
class NodeConditionsTest {
  private static final Instant T0 = Instant.parse("2026-11-23T09:58:00.123Z");
  private static final Instant T1 = Instant.parse("2026-11-23T09:59:00Z");
  private static final NodeCondition READY =
      new NodeConditionBuilder().withType("Ready").withStatus("True").build();
  private static final SpotNotice TERMINATE =
      new SpotNotice(
          NoticeKind.INTERRUPTION, "terminate", Instant.parse("2026-11-23T10:00:00Z"), true);

  @Test
  void noticeAddsItsConditionAndKeepsTheOthers() {
    List<NodeCondition> next =
        NodeConditions.withNotice(List.of(READY), TERMINATE, T0).orElseThrow();

    assertThat(next).hasSize(2);
    assertThat(next.get(0)).isSameAs(READY);
    NodeCondition c = next.get(1);
    assertThat(c.getType()).isEqualTo("SpotInterruptionNotice");
    assertThat(c.getStatus()).isEqualTo("True");
    assertThat(c.getReason()).isEqualTo("SpotInterruption");
    assertThat(c.getLastTransitionTime()).isEqualTo("2026-11-23T09:58:00Z");
  }

  @Test
  void sameNoticeAgainWritesNothing() {
    List<NodeCondition> once =
        NodeConditions.withNotice(List.of(READY), TERMINATE, T0).orElseThrow();

    assertThat(NodeConditions.withNotice(once, TERMINATE, T1)).isEmpty();
  }

  @Test
  void changedNoticeKeepsTheTransitionTime() {
    List<NodeCondition> once =
        NodeConditions.withNotice(List.of(READY), TERMINATE, T0).orElseThrow();
    SpotNotice stop =
        new SpotNotice(
            NoticeKind.INTERRUPTION, "stop", Instant.parse("2026-11-23T10:00:00Z"), true);

    NodeCondition c = NodeConditions.withNotice(once, stop, T1).orElseThrow().get(1);

    assertThat(c.getMessage()).contains("stop");
    assertThat(c.getLastTransitionTime()).isEqualTo("2026-11-23T09:58:00Z");
    assertThat(c.getLastHeartbeatTime()).isEqualTo("2026-11-23T09:59:00Z");
  }

  @Test
  void conditionThatWasFalseTransitionsNow() {
    NodeCondition cleared =
        new NodeConditionBuilder()
            .withType("SpotInterruptionNotice")
            .withStatus("False")
            .withLastTransitionTime("2026-11-01T00:00:00Z")
            .build();

    List<NodeCondition> next =
        NodeConditions.withNotice(List.of(READY, cleared), TERMINATE, T1).orElseThrow();

    assertThat(next).hasSize(2);
    assertThat(next.get(1).getStatus()).isEqualTo("True");
    assertThat(next.get(1).getLastTransitionTime()).isEqualTo("2026-11-23T09:59:00Z");
  }
}
