// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.List;
import java.util.Map;

/**
 * What to move, and where. The spec cannot change once the request exists.
 *
 * <p>Every string, list and map here has a bound: {@code self == oldSelf} reads the whole spec, and
 * the API server refuses a CRD whose rules it cannot bound within its cost budget.
 */
@ValidationRule(
    value = "self == oldSelf",
    message = "a MigrationRequest's spec cannot change: delete it and create a new one")
@ValidationRule(
    value = "!(has(self.target) && has(self.targetSelector) && size(self.targetSelector) > 0)",
    message = "set target or targetSelector, not both")
@ValidationRule(
    value = "!(has(self.dryRun) && self.dryRun && has(self.prepareOnly) && self.prepareOnly)",
    message = "set dryRun or prepareOnly, not both: a dry run touches nothing",
    fieldPath = ".prepareOnly")
@ValidationRule(
    value = "!has(self.ports) || self.ports.all(p, p >= 1 && p <= 65535)",
    message = "ports must be 1..65535",
    fieldPath = ".ports")
@ValidationRule(
    value = "!has(self.target) || self.target.name != self.source.name",
    message =
        "target.name must name another pod than source.name: the connections move to a pod on"
            + " another node",
    fieldPath = ".target.name")
@ValidationRule(
    value =
        "!has(self.holdLimit) || !has(self.deadline) || duration(self.holdLimit) <="
            + " duration(self.deadline)",
    message =
        "holdLimit must not be longer than deadline: the migration is rolled back at its deadline",
    fieldPath = ".holdLimit")
public class MigrationRequestSpec {
  /** The Go-style duration Kubernetes users write: 90s, 2m, 1m30s, 500ms. */
  static final String DURATION = "^([0-9]+(ms|s|m|h))+$";

  /** Longest duration text: room for 1h30m15s500ms and more, bounded for the rules' cost. */
  static final int DURATION_LENGTH = 32;

  /** How many ports a request or a policy may name. */
  static final int PORTS = 64;

  /** How many labels a selector may name. */
  static final int LABELS = 32;

  /** A label value's limit in Kubernetes. */
  static final int LABEL_VALUE_LENGTH = 63;

  @Required
  @JsonPropertyDescription("The pod whose connections move.")
  private PodReference source;

  @JsonPropertyDescription(
      "The pod that takes the connections over, on another node. Leave it out to let the"
          + " operator choose one from targetSelector.")
  private PodReference target;

  @JsonPropertyDescription(
      "Labels of the pods the operator may choose a target from: ready, on another node, with"
          + " the application registered with Ferry for the ports.")
  @Size(max = LABELS)
  private Map<String, @Size(max = LABEL_VALUE_LENGTH) String> targetSelector;

  @JsonPropertyDescription(
      "The local ports whose connections move. Empty: every established connection on the"
          + " address.")
  @Size(max = PORTS)
  private List<Integer> ports;

  @JsonPropertyDescription(
      "The address the clients talk to, which moves with the connections. Default: the source"
          + " pod's IP.")
  @Size(max = 45) // the longest IPv6 text
  private String address;

  @Default("60s")
  @Pattern(DURATION)
  @Size(max = DURATION_LENGTH)
  @JsonPropertyDescription(
      "How long the whole migration may take before it is rolled back (e.g. 60s, 2m).")
  private String deadline = "60s";

  @Default("30s")
  @Pattern(DURATION)
  @Size(max = DURATION_LENGTH)
  @JsonPropertyDescription(
      "How long a client may be held while its connection moves; past it the source agent lets"
          + " the connection go back to its application.")
  private String holdLimit = "30s";

  @JsonPropertyDescription("Validate and list the connections that would move; touch nothing.")
  private boolean dryRun;

  @JsonPropertyDescription(
      "Move the connections that could be frozen even when others stay with their application"
          + " (it declined, or did not answer in time). Those others lose their address when it"
          + " moves, and are reported Failed: for a node that is going away anyway. Default:"
          + " every connection moves or none does.")
  private boolean allowPartial;

  @JsonPropertyDescription(
      "Prepare the move and wait: choose the target, check both agents, and pre-copy each"
          + " application's state to the target (kept up to date as it changes), freezing nothing;"
          + " the request then waits in phase Prepared. Annotate it ferry.dev/proceed=ANY-VALUE to"
          + " move (only what changed since the pre-copy crosses in the pause); at spec.deadline"
          + " it is rolled back, having held nobody. For a node that may go away soon (an EC2"
          + " rebalance recommendation).")
  private boolean prepareOnly;

  public PodReference getSource() {
    return source;
  }

  public void setSource(PodReference source) {
    this.source = source;
  }

  public PodReference getTarget() {
    return target;
  }

  public void setTarget(PodReference target) {
    this.target = target;
  }

  public Map<String, String> getTargetSelector() {
    return targetSelector == null ? Map.of() : targetSelector;
  }

  public void setTargetSelector(Map<String, String> targetSelector) {
    this.targetSelector = targetSelector;
  }

  public List<Integer> getPorts() {
    return ports == null ? List.of() : ports;
  }

  public void setPorts(List<Integer> ports) {
    this.ports = ports;
  }

  public String getAddress() {
    return address;
  }

  public void setAddress(String address) {
    this.address = address;
  }

  public String getDeadline() {
    return deadline;
  }

  public void setDeadline(String deadline) {
    this.deadline = deadline;
  }

  public String getHoldLimit() {
    return holdLimit;
  }

  public void setHoldLimit(String holdLimit) {
    this.holdLimit = holdLimit;
  }

  public boolean isDryRun() {
    return dryRun;
  }

  public void setDryRun(boolean dryRun) {
    this.dryRun = dryRun;
  }

  public boolean isPrepareOnly() {
    return prepareOnly;
  }

  public void setPrepareOnly(boolean prepareOnly) {
    this.prepareOnly = prepareOnly;
  }

  public boolean isAllowPartial() {
    return allowPartial;
  }

  public void setAllowPartial(boolean allowPartial) {
    this.allowPartial = allowPartial;
  }
}
