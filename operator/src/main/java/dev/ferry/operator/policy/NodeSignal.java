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
   * aws-node-termination-handler's taint for a rebalance recommendation (a default drain taint).
   */
  public static final String NTH_REBALANCE_TAINT =
      "aws-node-termination-handler/rebalance-recommendation";

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
    List<Taint> taints = node.getSpec() == null ? List.of() : node.getSpec().getTaints();
    if (taints == null) {
      taints = List.of();
    }
    // A taint that says the node goes before one that says it may: whatever their order.
    Optional<NodeSignal> drain = taint(name, taints, triggers, false);
    if (drain.isPresent()) {
      return drain;
    }
    Optional<NodeSignal> rebalanceTaint = taint(name, taints, triggers, true);
    if (rebalanceTaint.isPresent()) {
      return rebalanceTaint;
    }
    if (triggers.isRebalanceRecommendation()) {
      return condition(node, REBALANCE);
    }
    return Optional.empty();
  }

  /**
   * Whether this announcement only says the node may go (an EC2 rebalance recommendation, as the
   * agent or the queue reports it, or as aws-node-termination-handler taints the node): its
   * requests prepare the move and freeze nothing (spec.prepareOnly), and an announcement of the
   * node's end proceeds them.
   */
  public boolean preparesOnly() {
    return REBALANCE.equals(kind) || NTH_REBALANCE_TAINT.equals(kind);
  }

  private static Optional<NodeSignal> taint(
      String node, List<Taint> taints, Triggers triggers, boolean rebalance) {
    return taints.stream()
        .filter(t -> triggers.getDrainTaints().contains(t.getKey()))
        .filter(t -> NTH_REBALANCE_TAINT.equals(t.getKey()) == rebalance)
        .findFirst()
        .map(
            t ->
                new NodeSignal(node, t.getKey(), t.getTimeAdded() == null ? "" : t.getTimeAdded()));
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
