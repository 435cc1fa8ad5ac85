// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicySpec;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** What the default triggers act on, and what they leave alone. */
class NodeSignalTest {
  private static final MigrationPolicySpec.Triggers DEFAULTS = new MigrationPolicySpec.Triggers();

  private static Node tainted(String key) {
    return new NodeBuilder()
        .withNewMetadata()
        .withName("node-a")
        .endMetadata()
        .withNewSpec()
        .addNewTaint()
        .withKey(key)
        .withEffect("NoSchedule")
        .withTimeAdded("2026-11-23T10:00:00Z")
        .endTaint()
        .endSpec()
        .build();
  }

  @Test
  void aCordonAloneMovesNothingByDefault() {
    Node cordoned = tainted("node.kubernetes.io/unschedulable");
    cordoned.getSpec().setUnschedulable(true);
    assertThat(NodeSignal.of(cordoned, DEFAULTS)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "aws-node-termination-handler/spot-itn",
        "aws-node-termination-handler/rebalance-recommendation",
        "aws-node-termination-handler/asg-lifecycle-termination",
        "aws-node-termination-handler/scheduled-maintenance",
        "karpenter.sh/disrupted"
      })
  void theTaintsOfTerminationHandlerAndKarpenterAreDefaultTriggers(String key) {
    assertThat(NodeSignal.of(tainted(key), DEFAULTS))
        .hasValueSatisfying(s -> assertThat(s.kind()).isEqualTo(key));
  }

  @Test
  void terminationHandlersRebalanceTaintOnlyPreparesAndATaintOfTheNodesEndComesFirst() {
    Node n = tainted(NodeSignal.NTH_REBALANCE_TAINT);
    assertThat(NodeSignal.of(n, DEFAULTS))
        .hasValueSatisfying(s -> assertThat(s.preparesOnly()).as(s.toString()).isTrue());
    // The spot interruption's taint added after it: listed second, it still wins.
    n.getSpec()
        .getTaints()
        .add(tainted("aws-node-termination-handler/spot-itn").getSpec().getTaints().get(0));
    assertThat(NodeSignal.of(n, DEFAULTS))
        .hasValueSatisfying(
            s -> {
              assertThat(s.kind()).isEqualTo("aws-node-termination-handler/spot-itn");
              assertThat(s.preparesOnly()).isFalse();
            });
  }

  @Test
  void anInstanceTerminationNoticeFromTheQueueActsAsASpotInterruption() {
    Node n =
        new NodeBuilder()
            .withNewMetadata()
            .withName("node-a")
            .endMetadata()
            .withNewStatus()
            .addNewCondition()
            .withType(NodeSignal.TERMINATION)
            .withStatus("True")
            .withLastTransitionTime("2026-11-23T10:00:00Z")
            .endCondition()
            .endStatus()
            .build();
    assertThat(NodeSignal.of(n, DEFAULTS))
        .hasValueSatisfying(s -> assertThat(s.kind()).isEqualTo(NodeSignal.TERMINATION));
    MigrationPolicySpec.Triggers off = new MigrationPolicySpec.Triggers();
    off.setSpotInterruption(false);
    assertThat(NodeSignal.of(n, off)).isEmpty();
  }
}
