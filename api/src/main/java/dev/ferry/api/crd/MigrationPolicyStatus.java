// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Size;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** Whether the policy is usable, and what it has done. */
public class MigrationPolicyStatus {
  @JsonPropertyDescription(
      "Ready: True when the spec is usable (the selectors, ports, taints and holdLimit are valid),"
          + " False with a reason naming the field when not. A map keyed by type.")
  @Size(max = 8)
  private List<Condition> conditions;

  @JsonPropertyDescription("The spec generation the conditions describe.")
  private Long observedGeneration;

  @JsonPropertyDescription("MigrationRequests this policy created.")
  private int requestsCreated;

  @JsonPropertyDescription("The last node signal acted on: NODE: REASON at TIME.")
  private String lastTrigger;

  public List<Condition> getConditions() {
    return conditions;
  }

  public void setConditions(List<Condition> conditions) {
    this.conditions = conditions;
  }

  public Long getObservedGeneration() {
    return observedGeneration;
  }

  public void setObservedGeneration(Long observedGeneration) {
    this.observedGeneration = observedGeneration;
  }

  public int getRequestsCreated() {
    return requestsCreated;
  }

  public void setRequestsCreated(int requestsCreated) {
    this.requestsCreated = requestsCreated;
  }

  public String getLastTrigger() {
    return lastTrigger;
  }

  public void setLastTrigger(String lastTrigger) {
    this.lastTrigger = lastTrigger;
  }
}
