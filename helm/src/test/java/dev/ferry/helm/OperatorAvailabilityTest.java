// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.kubernetes.api.model.Affinity;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.PodAffinityTerm;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The operator stays available through the disruptions of a real cluster: a drain evicts at most
 * one replica at a time (a PodDisruptionBudget), replicas run on different nodes (a pod
 * anti-affinity beside the node affinity of the values), and neither it nor the agents are the pods
 * preempted first (priority classes).
 */
class OperatorAvailabilityTest {

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void aDrainEvictsOneReplicaAtATime(ValueSet set) {
    Manifests m = HelmChart.render(set);
    PodDisruptionBudget pdb = m.one(PodDisruptionBudget.class, "ferry-operator");
    assertThat(pdb.getSpec().getMaxUnavailable()).isEqualTo(new IntOrString(1));
    assertThat(pdb.getSpec().getMinAvailable()).isNull();
    Deployment d = m.one(Deployment.class, "ferry-operator");
    assertThat(pdb.getSpec().getSelector().getMatchLabels())
        .as("it selects exactly the operator's pods")
        .isEqualTo(d.getSpec().getSelector().getMatchLabels());
    assertThat(d.getSpec().getTemplate().getMetadata().getLabels())
        .containsAllEntriesOf(pdb.getSpec().getSelector().getMatchLabels());
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1})
  void oneReplicaHasNoBudgetThatWouldBlockItsNodesDrain(int replicas) {
    Manifests m = HelmChart.renderWith("operator: {replicas: %d}".formatted(replicas));
    assertThat(m.all(PodDisruptionBudget.class)).isEmpty();
  }

  @Test
  void theBudgetCanBeWidenedOrLeftOut() {
    Manifests wide =
        HelmChart.renderWith(
            "operator: {replicas: 4, podDisruptionBudget: {enabled: true, maxUnavailable: 50%}}");
    assertThat(wide.one(PodDisruptionBudget.class).getSpec().getMaxUnavailable())
        .isEqualTo(new IntOrString("50%"));
    assertThat(
            HelmChart.renderWith("operator: {podDisruptionBudget: {enabled: false}}")
                .all(PodDisruptionBudget.class))
        .isEmpty();
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void replicasPreferDifferentNodesBesideTheNodeAffinity(ValueSet set) {
    Deployment d = HelmChart.render(set).one(Deployment.class, "ferry-operator");
    Affinity affinity = d.getSpec().getTemplate().getSpec().getAffinity();
    assertThat(affinity.getNodeAffinity().getPreferredDuringSchedulingIgnoredDuringExecution())
        .as("the values' node affinity (on-demand nodes first) is kept")
        .extracting(t -> t.getPreference().getMatchExpressions().get(0).getKey())
        .containsExactly("eks.amazonaws.com/capacityType", "karpenter.sh/capacity-type");
    assertThat(affinity.getPodAntiAffinity().getRequiredDuringSchedulingIgnoredDuringExecution())
        .as("preferred only: a one-node cluster still runs every replica")
        .isEmpty();
    assertThat(affinity.getPodAntiAffinity().getPreferredDuringSchedulingIgnoredDuringExecution())
        .singleElement()
        .satisfies(
            w -> {
              assertThat(w.getWeight()).isEqualTo(100);
              assertSpreadsTheOperatorOverNodes(d, w.getPodAffinityTerm());
            });
  }

  @Test
  void replicasCanBeRequiredOnDifferentNodes() {
    Deployment d =
        HelmChart.renderWith("operator: {podAntiAffinity: required}")
            .one(Deployment.class, "ferry-operator");
    Affinity affinity = d.getSpec().getTemplate().getSpec().getAffinity();
    assertThat(affinity.getPodAntiAffinity().getPreferredDuringSchedulingIgnoredDuringExecution())
        .isEmpty();
    assertThat(affinity.getPodAntiAffinity().getRequiredDuringSchedulingIgnoredDuringExecution())
        .singleElement()
        .satisfies(t -> assertSpreadsTheOperatorOverNodes(d, t));
    assertThat(affinity.getNodeAffinity()).isNotNull();
  }

  @Test
  void anAntiAffinityOfYourOwnReplacesTheDefaultAndNoneLeavesItOut() {
    Affinity own =
        HelmChart.renderWith(
                """
                operator:
                  affinity:
                    podAntiAffinity:
                      requiredDuringSchedulingIgnoredDuringExecution:
                        - topologyKey: topology.kubernetes.io/zone
                          labelSelector: {matchLabels: {app.kubernetes.io/component: operator}}
                """)
            .one(Deployment.class, "ferry-operator")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getAffinity();
    assertThat(own.getNodeAffinity()).as("Helm merges the maps: the default stays").isNotNull();
    assertThat(own.getPodAntiAffinity().getRequiredDuringSchedulingIgnoredDuringExecution())
        .singleElement()
        .satisfies(t -> assertThat(t.getTopologyKey()).isEqualTo("topology.kubernetes.io/zone"));
    assertThat(own.getPodAntiAffinity().getPreferredDuringSchedulingIgnoredDuringExecution())
        .isEmpty();

    Affinity none =
        HelmChart.renderWith("operator: {podAntiAffinity: none}")
            .one(Deployment.class, "ferry-operator")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getAffinity();
    assertThat(none.getPodAntiAffinity()).isNull();
    assertThat(none.getNodeAffinity()).isNotNull();
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theOperatorAndTheAgentsRunWithCriticalPriority(ValueSet set) {
    Manifests m = HelmChart.render(set);
    assertThat(operatorPriority(m)).isEqualTo("system-cluster-critical");
    // Higher still: an agent holds its node's connections and is the one pod there that moves them.
    assertThat(agentPriority(m)).isEqualTo("system-node-critical");
  }

  @Test
  void priorityClassesCanBeChangedOrLeftOut() {
    Manifests m =
        HelmChart.renderWith(
            "operator: {priorityClassName: ferry-high}\nagent: {priorityClassName: ferry-higher}");
    assertThat(operatorPriority(m)).isEqualTo("ferry-high");
    assertThat(agentPriority(m)).isEqualTo("ferry-higher");
    Manifests none =
        HelmChart.renderWith("operator: {priorityClassName: ''}\nagent: {priorityClassName: ''}");
    assertThat(operatorPriority(none)).isNull();
    assertThat(agentPriority(none)).isNull();
  }

  private static void assertSpreadsTheOperatorOverNodes(Deployment d, PodAffinityTerm term) {
    assertThat(term.getTopologyKey()).isEqualTo("kubernetes.io/hostname");
    assertThat(term.getLabelSelector().getMatchLabels())
        .as("selects the operator's own pods, and only them")
        .isEqualTo(d.getSpec().getSelector().getMatchLabels())
        .containsEntry("app.kubernetes.io/component", "operator");
  }

  private static String operatorPriority(Manifests m) {
    return m.one(Deployment.class, "ferry-operator")
        .getSpec()
        .getTemplate()
        .getSpec()
        .getPriorityClassName();
  }

  private static String agentPriority(Manifests m) {
    return m.one(DaemonSet.class, "ferry-node-agent")
        .getSpec()
        .getTemplate()
        .getSpec()
        .getPriorityClassName();
  }
}
