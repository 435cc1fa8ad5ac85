// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicySpec;
import dev.ferry.api.crd.MigrationPolicyStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PolicyReadinessTest {
  private static final Instant T0 = Instant.parse("2026-12-01T10:00:00Z");
  private static final Instant T1 = Instant.parse("2026-12-01T10:00:05Z");

  @Test
  void aUsablePolicyIsReadyAndSaysSoOnce() {
    MigrationPolicy policy = policy(Map.of("app", "web"));
    MigrationPolicyStatus st = new MigrationPolicyStatus();

    assertThat(PolicyReadiness.update(policy, st, T0)).isTrue();
    assertThat(st.getConditions())
        .singleElement()
        .satisfies(
            c -> {
              assertThat(c.getType()).isEqualTo("Ready");
              assertThat(c.getStatus()).isEqualTo("True");
              assertThat(c.getReason()).isEqualTo("Valid");
            });
    assertThat(st.getObservedGeneration()).isEqualTo(2L);
    // Nothing changed: nothing to write, and the transition time stays.
    assertThat(PolicyReadiness.update(policy, st, T1)).isFalse();
    assertThat(st.getConditions().get(0).getLastTransitionTime()).isEqualTo(T0.toString());
  }

  @Test
  void aBadLabelValueIsNotReadyWithTheFieldNamed() {
    MigrationPolicy policy = policy(Map.of("app", "web server"));
    MigrationPolicyStatus st = new MigrationPolicyStatus();

    PolicyReadiness.update(policy, st, T0);

    assertThat(st.getConditions().get(0).getStatus()).isEqualTo("False");
    assertThat(st.getConditions().get(0).getReason()).isEqualTo("InvalidSpec");
    assertThat(st.getConditions().get(0).getMessage())
        .startsWith("spec.selector.app value 'web server' is not a label value");
  }

  @Test
  void aBadTaintKeyOrHoldLimitIsNamed() {
    MigrationPolicySpec spec = policy(Map.of("app", "web")).getSpec();
    spec.getTriggers().setDrainTaints(List.of("karpenter.sh/disrupted", "bad key/"));
    assertThat(PolicyReadiness.problem(spec))
        .hasValueSatisfying(
            p -> assertThat(p).startsWith("spec.triggers.drainTaints has 'bad key/'"));

    spec.getTriggers().setDrainTaints(List.of("aws-node-termination-handler/spot-itn"));
    spec.setHoldLimit("soon");
    assertThat(PolicyReadiness.problem(spec))
        .hasValueSatisfying(p -> assertThat(p).startsWith("spec.holdLimit 'soon'"));

    spec.setHoldLimit("45s");
    assertThat(PolicyReadiness.problem(spec)).isEmpty();
  }

  private static MigrationPolicy policy(Map<String, String> selector) {
    MigrationPolicy p = new MigrationPolicy();
    p.setMetadata(
        new ObjectMetaBuilder().withName("web").withNamespace("shop").withGeneration(2L).build());
    MigrationPolicySpec spec = new MigrationPolicySpec();
    spec.setSelector(selector);
    p.setSpec(spec);
    return p;
  }
}
