// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicySpec;
import dev.ferry.api.crd.MigrationPolicyStatus;
import dev.ferry.operator.migration.Conditions;
import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A policy's Ready condition: True when its spec can be acted on, False with a reason and a message
 * naming the field and the fix when not (what the CRD's schema cannot check: label and taint
 * syntax). A policy that is not ready creates no request.
 */
final class PolicyReadiness {
  static final String READY = "Ready";
  static final String VALID = "Valid";
  static final String INVALID_SPEC = "InvalidSpec";

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?");
  private static final Pattern PREFIX =
      Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  private static final Pattern DURATION = Pattern.compile("([0-9]+(ms|s|m|h))+");

  private PolicyReadiness() {}

  /** What is wrong with the spec, naming the field; empty when nothing is. */
  static Optional<String> problem(MigrationPolicySpec spec) {
    if (spec.getSelector().isEmpty()) {
      return Optional.of("spec.selector is empty: name at least one label of the pods to protect");
    }
    // In this order: the target selector defaults to the selector, whose name the user wrote.
    for (var labels :
        List.of(
            Map.entry("spec.selector", spec.getSelector()),
            Map.entry("spec.targetSelector", spec.getTargetSelector()))) {
      for (var label : labels.getValue().entrySet()) {
        if (!labelKey(label.getKey())) {
          return Optional.of(
              labels.getKey() + " key '" + label.getKey() + "' is not a label key: " + KEY_RULE);
        }
        if (!label.getValue().isEmpty()
            && !(label.getValue().length() <= 63 && NAME.matcher(label.getValue()).matches())) {
          return Optional.of(
              labels.getKey()
                  + "."
                  + label.getKey()
                  + " value '"
                  + label.getValue()
                  + "' is not a label value: up to 63 letters, digits, '-', '_' or '.', starting"
                  + " and ending with a letter or digit");
        }
      }
    }
    for (int port : spec.getPorts()) {
      if (port < 1 || port > 65535) {
        return Optional.of("spec.ports has " + port + ": ports are 1..65535");
      }
    }
    if (spec.getHoldLimit() == null || !DURATION.matcher(spec.getHoldLimit()).matches()) {
      return Optional.of(
          "spec.holdLimit '" + spec.getHoldLimit() + "' is not a duration: write one such as 30s");
    }
    List<String> taints =
        spec.getTriggers() == null ? List.of() : spec.getTriggers().getDrainTaints();
    for (String taint : taints == null ? List.<String>of() : taints) {
      if (!labelKey(taint)) {
        return Optional.of(
            "spec.triggers.drainTaints has '" + taint + "', not a taint key: " + KEY_RULE);
      }
    }
    return Optional.empty();
  }

  private static final String KEY_RULE =
      "an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.'";

  private static boolean labelKey(String key) {
    if (key == null) {
      return false;
    }
    int slash = key.indexOf('/');
    String name = slash < 0 ? key : key.substring(slash + 1);
    if (slash >= 0) {
      String prefix = key.substring(0, slash);
      if (prefix.isEmpty() || prefix.length() > 253 || !PREFIX.matcher(prefix).matches()) {
        return false;
      }
    }
    return !name.isEmpty() && name.length() <= 63 && NAME.matcher(name).matches();
  }

  /**
   * Sets the Ready condition and observedGeneration on {@code st} for {@code policy}; true when
   * anything a person reads changed (the status must be written).
   */
  static boolean update(MigrationPolicy policy, MigrationPolicyStatus st, Instant now) {
    Optional<String> problem = problem(policy.getSpec());
    List<Condition> before = st.getConditions() == null ? List.of() : st.getConditions();
    Long generation = policy.getMetadata().getGeneration();
    Condition ready =
        Conditions.condition(
            before,
            READY,
            problem.isEmpty(),
            problem.isEmpty() ? VALID : INVALID_SPEC,
            problem.orElse("watching the nodes for the protected pods"),
            generation,
            now);
    boolean changed =
        before.size() != 1
            || !Objects.equals(before.get(0), ready)
            || !Objects.equals(st.getObservedGeneration(), generation);
    st.setConditions(List.of(ready));
    st.setObservedGeneration(generation);
    return changed;
  }
}
