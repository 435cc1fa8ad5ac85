// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import dev.ferry.api.crd.MigrationPolicySpec.Triggers;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.Taint;
import java.util.List;
import java.util.Optional;

/**
 * A node's announcement that it is going away, as a policy's triggers read it: a condition its
 * Ferry agent set from the instance metadata or the operator set from the SQS queue, or a drain
 * taint from aws-node-termination-handler or Karpenter.
 *
 * @param kind what announced it: the condition type or the taint key
 * @param since when, as the node tells it; with {@code kind} it names the announcement, so that one
 *     announcement makes one MigrationRequest per pod however often it is reconciled
 */
public record NodeSignal(String node, String kind, String since) {
  /** Condition types the node-agent sets (its NoticeKind), and the queue consumer too. */
  public static final String SPOT_INTERRUPTION = "SpotInterruptionNotice";

  public static final String REBALANCE = "RebalanceRecommendation";

  /**
   * Set by the queue consumer only: EC2 stops or terminates the instance, or AWS Health scheduled a
   * change that will (retirement, maintenance). The {@code spotInterruption} trigger acts on it:
   * like an interruption, the instance is being taken away whatever its capacity type.
   */
  public static final String TERMINATION = "InstanceTerminationNotice";

  /** The announcement on {@code node} that {@code triggers} act on, the most urgent first. */
  public static Optional<NodeSignal> of(Node node, Triggers triggers) {
    String name = node.getMetadata().getName();
    if (triggers.isSpotInterruption()) {
      Optional<NodeSignal> s =
          condition(node, SPOT_INTERRUPTION).or(() -> condition(node, TERMINATION));
      if (s.isPresent()) {
        return s;
      }
    }
    List<Taint> taints = node.getSpec() == null ? null : node.getSpec().getTaints();
    if (taints != null) {
      for (Taint t : taints) {
        if (triggers.getDrainTaints().contains(t.getKey())) {
          return Optional.of(
              new NodeSignal(name, t.getKey(), t.getTimeAdded() == null ? "" : t.getTimeAdded()));
        }
      }
    }
    if (triggers.isRebalanceRecommendation()) {
      return condition(node, REBALANCE);
    }
    return Optional.empty();
  }

  private static Optional<NodeSignal> condition(Node node, String type) {
    List<NodeCondition> conditions =
        node.getStatus() == null ? null : node.getStatus().getConditions();
    if (conditions == null) {
      return Optional.empty();
    }
    return conditions.stream()
        .filter(c -> type.equals(c.getType()) && "True".equals(c.getStatus()))
        .findFirst()
        .map(
            c ->
                new NodeSignal(
                    node.getMetadata().getName(),
                    type,
                    c.getLastTransitionTime() == null ? "" : c.getLastTransitionTime()));
  }

  /** NODE: KIND at SINCE, as the policy's status and Events show it. */
  @Override
  public String toString() {
    return node + ": " + kind + (since.isEmpty() ? "" : " at " + since);
  }
}
