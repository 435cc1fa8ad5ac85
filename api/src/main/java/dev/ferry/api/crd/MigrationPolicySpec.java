// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.List;
import java.util.Map;

/**
 * The pods to protect, where their connections may go, and what sets a migration off. Every string,
 * list and map has a bound, as in {@link MigrationRequestSpec}.
 */
@ValidationRule(
    value = "size(self.selector) > 0",
    message = "selector must name at least one label: an empty one would protect every pod",
    fieldPath = ".selector")
@ValidationRule(
    value = "!has(self.ports) || self.ports.all(p, p >= 1 && p <= 65535)",
    message = "ports must be 1..65535",
    fieldPath = ".ports")
@ValidationRule(
    value = "!has(self.holdLimit) || duration(self.holdLimit) <= duration('60s')",
    message =
        "holdLimit must not be longer than 60s, the deadline of the MigrationRequests a policy"
            + " creates",
    fieldPath = ".holdLimit")
public class MigrationPolicySpec {
  @Required
  @Size(max = MigrationRequestSpec.LABELS)
  @JsonPropertyDescription("Labels of the pods whose connections are protected.")
  private Map<String, @Size(max = MigrationRequestSpec.LABEL_VALUE_LENGTH) String> selector;

  @Size(max = MigrationRequestSpec.PORTS)
  @JsonPropertyDescription("The ports whose connections move. Empty: every established one.")
  private List<Integer> ports;

  @Size(max = MigrationRequestSpec.LABELS)
  @JsonPropertyDescription(
      "Labels of the pods that may take connections over. Default: the selector itself (another"
          + " replica of the same workload).")
  private Map<String, @Size(max = MigrationRequestSpec.LABEL_VALUE_LENGTH) String> targetSelector;

  @JsonPropertyDescription("What sets a migration off.")
  private Triggers triggers = new Triggers();

  @Pattern(MigrationRequestSpec.DURATION)
  @Size(max = MigrationRequestSpec.DURATION_LENGTH)
  @JsonPropertyDescription(
      "The hold limit of the requests this policy creates (e.g. 30s); at most their deadline, 60s.")
  private String holdLimit = "30s";

  public Map<String, String> getSelector() {
    return selector == null ? Map.of() : selector;
  }

  public void setSelector(Map<String, String> selector) {
    this.selector = selector;
  }

  public List<Integer> getPorts() {
    return ports == null ? List.of() : ports;
  }

  public void setPorts(List<Integer> ports) {
    this.ports = ports;
  }

  public Map<String, String> getTargetSelector() {
    return targetSelector == null || targetSelector.isEmpty() ? getSelector() : targetSelector;
  }

  public void setTargetSelector(Map<String, String> targetSelector) {
    this.targetSelector = targetSelector;
  }

  public Triggers getTriggers() {
    return triggers;
  }

  public void setTriggers(Triggers triggers) {
    this.triggers = triggers;
  }

  public String getHoldLimit() {
    return holdLimit;
  }

  public void setHoldLimit(String holdLimit) {
    this.holdLimit = holdLimit;
  }

  /** The node signals that move connections off a node. */
  public static class Triggers {
    @JsonPropertyDescription(
        "EC2 is taking the instance away: a spot interruption notice (from the node's agent, or the"
            + " SQS queue in queue mode), or, from the queue only, the instance stopping or"
            + " terminating and an AWS Health scheduled change.")
    private boolean spotInterruption = true;

    @JsonPropertyDescription(
        "A rebalance recommendation reported by the node's agent or the SQS queue (usually"
            + " minutes ahead of an interruption).")
    private boolean rebalanceRecommendation;

    @JsonPropertyDescription(
        "Taint keys that mean the node is going away, as aws-node-termination-handler and"
            + " Karpenter set them. A cordon alone (node.kubernetes.io/unschedulable) is not one by"
            + " default: it moves connections on every kubectl cordon.")
    @Size(max = 32)
    private List<@Size(max = 317) String> drainTaints =
        List.of(
            "aws-node-termination-handler/spot-itn",
            "aws-node-termination-handler/rebalance-recommendation",
            "aws-node-termination-handler/asg-lifecycle-termination",
            "aws-node-termination-handler/scheduled-maintenance",
            "karpenter.sh/disrupted");

    public boolean isSpotInterruption() {
      return spotInterruption;
    }

    public void setSpotInterruption(boolean spotInterruption) {
      this.spotInterruption = spotInterruption;
    }

    public boolean isRebalanceRecommendation() {
      return rebalanceRecommendation;
    }

    public void setRebalanceRecommendation(boolean rebalanceRecommendation) {
      this.rebalanceRecommendation = rebalanceRecommendation;
    }

    public List<String> getDrainTaints() {
      return drainTaints;
    }

    public void setDrainTaints(List<String> drainTaints) {
      this.drainTaints = drainTaints;
    }
  }
}
