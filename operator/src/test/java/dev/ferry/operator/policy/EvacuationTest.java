// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicySpec;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.operator.migration.MigrationMachine;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class EvacuationTest {
  private static final Map<String, String> APP = Map.of("app", "streamer");

  @Test
  void onlyTheProtectedPodsOnTheLeavingNodeGetRequestsWithTargetsOnStayingNodes() {
    MigrationPolicy policy = policy();
    NodeSignal signal = new NodeSignal("node-a", "SpotInterruptionNotice", "2026-11-23T10:00:00Z");
    List<Pod> pods =
        List.of(
            pod("s-1", "node-a", APP, true),
            pod("s-2", "node-a", APP, true),
            pod("other", "node-a", Map.of("app", "db"), true),
            pod("s-3", "node-b", APP, true),
            pod("s-4", "node-c", APP, true),
            pod("s-5", "node-d", APP, true),
            pod("s-6", "node-e", APP, false));

    List<Evacuation.Move> moves =
        Evacuation.plan(policy, signal, pods, Set.of("node-a", "node-d"), List.of());

    assertThat(moves)
        .extracting(m -> m.source().getMetadata().getName())
        .containsExactly("s-1", "s-2");
    assertThat(moves)
        .allSatisfy(m -> assertThat(m).isInstanceOf(Evacuation.Request.class))
        .extracting(m -> ((Evacuation.Request) m).request().getSpec().getTarget().getName())
        .as("round robin over ready pods on nodes that stay (not node-d, not the unready s-6)")
        .containsExactly("s-3", "s-4");
    var first = ((Evacuation.Request) moves.get(0)).request();
    assertThat(first.getMetadata().getNamespace()).isEqualTo("shop");
    assertThat(first.getMetadata().getLabels())
        .containsEntry(Evacuation.POLICY_LABEL, "keep-streams")
        .containsEntry(Evacuation.NODE_LABEL, "node-a");
    assertThat(first.getSpec().getSource().getName()).isEqualTo("s-1");
    assertThat(first.getSpec().getPorts()).containsExactly(8080);
    assertThat(first.getSpec().getHoldLimit()).isEqualTo("20s");
    assertThat(first.getSpec().isAllowPartial())
        .as("the node is going away: what can move, moves")
        .isTrue();
  }

  @Test
  void aRebalanceRecommendationOnlyPreparesForNineMinutesAndAnInterruptionMovesAtOnce() {
    List<Pod> pods = List.of(pod("s-1", "node-a", APP, true), pod("s-3", "node-b", APP, true));

    MigrationRequest rebalance = onlyRequest(plan(REBALANCE, pods, List.of()));
    MigrationRequest interruption = onlyRequest(plan(INTERRUPTION, pods, List.of()));

    assertThat(rebalance.getSpec().isPrepareOnly()).isTrue();
    assertThat(rebalance.getSpec().getDeadline()).isEqualTo("9m");
    assertThat(interruption.getSpec().isPrepareOnly()).isFalse();
    assertThat(interruption.getSpec().getDeadline()).as("the default").isEqualTo("60s");
  }

  @Test
  void anInterruptionProceedsTheRequestThatPreparedThePodsMoveEvenWithNoTargetLeft() {
    List<Pod> pods = List.of(pod("s-1", "node-a", APP, true), pod("s-3", "node-b", APP, true));
    MigrationRequest prepared = onlyRequest(plan(REBALANCE, pods, List.of()));

    List<Evacuation.Move> moves =
        plan(INTERRUPTION, List.of(pod("s-1", "node-a", APP, true)), List.of(prepared));

    assertThat(moves)
        .singleElement()
        .isEqualTo(
            new Evacuation.Proceed(
                pod("s-1", "node-a", APP, true),
                prepared,
                "node-a: SpotInterruptionNotice at 2026-11-23T10:05:00Z"));
  }

  @Test
  void aRequestThatProceededForThisSignalIsDoneWithWhateverItsPhase() {
    List<Pod> pods = List.of(pod("s-1", "node-a", APP, true), pod("s-3", "node-b", APP, true));
    MigrationRequest prepared = proceededForTheInterruption(pods);
    prepared.setStatus(status(Phase.Completed));

    assertThat(plan(INTERRUPTION, pods, List.of(prepared)))
        .singleElement()
        .isInstanceOf(Evacuation.Proceeding.class);
  }

  @Test
  void aRequestThatProceededForThisSignalAndRolledBackLeavesItToAnOrdinaryRequest() {
    List<Pod> pods = List.of(pod("s-1", "node-a", APP, true), pod("s-3", "node-b", APP, true));
    MigrationRequest prepared = proceededForTheInterruption(pods);
    prepared.setStatus(status(Phase.RolledBack));

    MigrationRequest created = onlyRequest(plan(INTERRUPTION, pods, List.of(prepared)));

    assertThat(created.getSpec().isPrepareOnly()).isFalse();
    assertThat(created.getMetadata().getName()).isNotEqualTo(prepared.getMetadata().getName());
    prepared.setStatus(status(Phase.Failed));
    assertThat(plan(INTERRUPTION, pods, List.of(prepared)))
        .as("a Failed one may still hold clients: no second move of them")
        .singleElement()
        .isInstanceOf(Evacuation.Proceeding.class);
  }

  @Test
  void aPreparedRequestThatEndedUnproceededLeavesTheInterruptionToANewRequest() {
    List<Pod> pods = List.of(pod("s-1", "node-a", APP, true), pod("s-3", "node-b", APP, true));
    MigrationRequest prepared = onlyRequest(plan(REBALANCE, pods, List.of()));
    prepared.setStatus(status(Phase.RolledBack));

    MigrationRequest created = onlyRequest(plan(INTERRUPTION, pods, List.of(prepared)));

    assertThat(created.getSpec().isPrepareOnly()).isFalse();
    assertThat(created.getMetadata().getName()).isNotEqualTo(prepared.getMetadata().getName());
  }

  @Test
  void oneAnnouncementNamesOneRequestPerPodAndALaterOneANewRequest() {
    Pod p = pod("s-1", "node-a", APP, true);
    NodeSignal first = new NodeSignal("node-a", "SpotInterruptionNotice", "2026-11-23T10:00:00Z");
    NodeSignal again = new NodeSignal("node-a", "SpotInterruptionNotice", "2026-11-23T10:00:00Z");
    NodeSignal later = new NodeSignal("node-a", "SpotInterruptionNotice", "2026-11-24T09:00:00Z");
    assertThat(Evacuation.name(p, first)).isEqualTo(Evacuation.name(p, again)).startsWith("s-1-");
    assertThat(Evacuation.name(p, later)).isNotEqualTo(Evacuation.name(p, first));
  }

  @Test
  void withNoPodToTakeOverTheMoveWaitsAndSaysWhy() {
    List<Evacuation.Move> moves =
        Evacuation.plan(
            policy(),
            new NodeSignal("node-a", "karpenter.sh/disrupted", ""),
            List.of(pod("s-1", "node-a", APP, true)),
            Set.of("node-a"),
            List.of());
    assertThat(moves).singleElement().isInstanceOf(Evacuation.NoTarget.class);
    assertThat(((Evacuation.NoTarget) moves.get(0)).why())
        .contains("app=streamer")
        .contains("staying");
  }

  @Test
  void theNodeSignalsFollowThePolicysTriggers() {
    MigrationPolicySpec.Triggers defaults = new MigrationPolicySpec.Triggers();
    Node spot =
        node("n1")
            .editStatus()
            .addNewCondition()
            .withType("SpotInterruptionNotice")
            .withStatus("True")
            .withLastTransitionTime("2026-11-23T10:00:00Z")
            .endCondition()
            .endStatus()
            .build();
    Node rebalance =
        node("n2")
            .editStatus()
            .addNewCondition()
            .withType("RebalanceRecommendation")
            .withStatus("True")
            .endCondition()
            .endStatus()
            .build();
    Node cleared =
        node("n3")
            .editStatus()
            .addNewCondition()
            .withType("SpotInterruptionNotice")
            .withStatus("False")
            .endCondition()
            .endStatus()
            .build();
    Node tainted =
        node("n4")
            .editSpec()
            .addNewTaint()
            .withKey("karpenter.sh/disrupted")
            .withEffect("NoSchedule")
            .endTaint()
            .endSpec()
            .build();
    Node otherTaint =
        node("n5")
            .editSpec()
            .addNewTaint()
            .withKey("dedicated")
            .withEffect("NoSchedule")
            .endTaint()
            .endSpec()
            .build();

    assertThat(NodeSignal.of(spot, defaults))
        .get()
        .hasToString("n1: SpotInterruptionNotice at 2026-11-23T10:00:00Z");
    assertThat(NodeSignal.of(rebalance, defaults)).as("rebalance is off by default").isEmpty();
    assertThat(NodeSignal.of(cleared, defaults)).isEmpty();
    assertThat(NodeSignal.of(tainted, defaults))
        .get()
        .extracting(NodeSignal::kind)
        .isEqualTo("karpenter.sh/disrupted");
    assertThat(NodeSignal.of(otherTaint, defaults)).isEmpty();

    MigrationPolicySpec.Triggers onlyRebalance = new MigrationPolicySpec.Triggers();
    onlyRebalance.setSpotInterruption(false);
    onlyRebalance.setRebalanceRecommendation(true);
    onlyRebalance.setDrainTaints(List.of());
    assertThat(NodeSignal.of(spot, onlyRebalance)).isEmpty();
    assertThat(NodeSignal.of(tainted, onlyRebalance)).isEmpty();
    assertThat(NodeSignal.of(rebalance, onlyRebalance)).isPresent();
  }

  private static final NodeSignal REBALANCE =
      new NodeSignal("node-a", NodeSignal.REBALANCE, "2026-11-23T10:00:00Z");
  private static final NodeSignal INTERRUPTION =
      new NodeSignal("node-a", NodeSignal.SPOT_INTERRUPTION, "2026-11-23T10:05:00Z");

  private static List<Evacuation.Move> plan(
      NodeSignal signal, List<Pod> pods, List<MigrationRequest> made) {
    return Evacuation.plan(policy(), signal, pods, Set.of("node-a"), made);
  }

  private static MigrationRequest onlyRequest(List<Evacuation.Move> moves) {
    assertThat(moves).singleElement().isInstanceOf(Evacuation.Request.class);
    return ((Evacuation.Request) moves.get(0)).request();
  }

  /** The request a rebalance recommendation made, annotated to proceed for INTERRUPTION. */
  private static MigrationRequest proceededForTheInterruption(List<Pod> pods) {
    MigrationRequest prepared = onlyRequest(plan(REBALANCE, pods, List.of()));
    prepared
        .getMetadata()
        .setAnnotations(Map.of(MigrationMachine.PROCEED_ANNOTATION, INTERRUPTION.toString()));
    return prepared;
  }

  private static MigrationRequestStatus status(Phase phase) {
    MigrationRequestStatus st = new MigrationRequestStatus();
    st.setPhase(phase);
    return st;
  }

  private static MigrationPolicy policy() {
    MigrationPolicySpec spec = new MigrationPolicySpec();
    spec.setSelector(APP);
    spec.setPorts(List.of(8080));
    spec.setHoldLimit("20s");
    MigrationPolicy p = new MigrationPolicy();
    p.setMetadata(new ObjectMetaBuilder().withName("keep-streams").withNamespace("shop").build());
    p.setSpec(spec);
    return p;
  }

  private static NodeBuilder node(String name) {
    return new NodeBuilder()
        .withNewMetadata()
        .withName(name)
        .endMetadata()
        .withNewSpec()
        .endSpec()
        .withNewStatus()
        .endStatus();
  }

  private static Pod pod(String name, String node, Map<String, String> labels, boolean ready) {
    return new PodBuilder()
        .withNewMetadata()
        .withName(name)
        .withNamespace("shop")
        .withUid("uid-" + name)
        .withLabels(labels)
        .endMetadata()
        .withNewSpec()
        .withNodeName(node)
        .endSpec()
        .withNewStatus()
        .withPhase("Running")
        .addNewCondition()
        .withType("Ready")
        .withStatus(ready ? "True" : "False")
        .endCondition()
        .endStatus()
        .build();
  }
}
