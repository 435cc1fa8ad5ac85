// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicySpec;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.operator.OperatorMetrics;
import dev.ferry.operator.migration.MigrationMachine;
import dev.ferry.testbed.MockApi;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A rebalance recommendation, then the node's interruption, against Fabric8's mock API server in
 * CRUD mode: the interruption proceeds the request the recommendation prepared.
 */
class NodeEvacuatorTest {
  private static final String NS = "shop";
  private static final String REBALANCE_AT = "2026-11-23T09:50:00Z";
  private static final String INTERRUPTION_AT = "2026-11-23T09:55:00Z";

  @RegisterExtension
  final MockApi api = MockApi.crud().serving(MigrationRequest.class, MigrationPolicy.class);

  private NodeEvacuator evacuator;
  private MigrationPolicy policy;

  @BeforeEach
  void start() {
    pod("pod-a", "node-a");
    pod("pod-b", "node-b");
    MigrationPolicySpec spec = new MigrationPolicySpec();
    spec.setSelector(Map.of("app", "streamer"));
    spec.getTriggers().setRebalanceRecommendation(true);
    policy = new MigrationPolicy();
    policy.getMetadata().setName("keep-streams");
    policy.getMetadata().setNamespace(NS);
    policy.setSpec(spec);
    policy = api.admin().resource(policy).create();
    evacuator =
        new NodeEvacuator(api.as("operator"), new OperatorMetrics(new SimpleMeterRegistry()));
  }

  @Test
  void anInterruptionAfterARebalanceRecommendationProceedsThePreparedRequestAndMakesNoOther() {
    NodeEvacuator.Outcome recommended = evacuator.evacuate(policy, nodes(rebalanced()));
    assertThat(recommended.created()).isEqualTo(1);
    MigrationRequest prepared = requests().get(0);
    assertThat(prepared.getSpec().isPrepareOnly()).isTrue();
    assertThat(prepared.getSpec().getDeadline()).isEqualTo("9m");
    assertThat(prepared.getSpec().getSource().getName()).isEqualTo("pod-a");

    NodeEvacuator.Outcome interrupted = evacuator.evacuate(policy, nodes(interrupted()));

    assertThat(interrupted.created()).isZero();
    assertThat(interrupted.proceeded()).isEqualTo(1);
    assertThat(interrupted.following()).as("looked at again until it ends").contains("node-a");
    assertThat(requests())
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.getMetadata().getName()).isEqualTo(prepared.getMetadata().getName());
              assertThat(r.getMetadata().getAnnotations())
                  .containsEntry(
                      MigrationMachine.PROCEED_ANNOTATION,
                      "node-a: SpotInterruptionNotice at " + INTERRUPTION_AT);
            });
    assertThat(policyNow().getStatus().getRequestsCreated()).isEqualTo(1);
    assertThat(policyNow().getStatus().getLastTrigger())
        .isEqualTo("node-a: SpotInterruptionNotice at " + INTERRUPTION_AT);

    setPhase(requests().get(0), Phase.Completed);
    NodeEvacuator.Outcome again = evacuator.evacuate(policy, nodes(interrupted()));

    assertThat(again.created()).as("the move went ahead for this signal already").isZero();
    assertThat(again.proceeded()).as("nor is it annotated a second time").isZero();
    assertThat(again.following()).isEmpty();
    assertThat(requests()).hasSize(1);
  }

  @Test
  void aProceededRequestThatRolledBackIsFollowedByAnOrdinaryRequestForTheSameSignal() {
    evacuator.evacuate(policy, nodes(rebalanced()));
    evacuator.evacuate(policy, nodes(interrupted()));
    MigrationRequest proceeded = requests().get(0);
    setPhase(proceeded, Phase.RolledBack); // its prepared move broke: nothing was frozen

    NodeEvacuator.Outcome next = evacuator.evacuate(policy, nodes(interrupted()));

    assertThat(next.created()).isEqualTo(1);
    assertThat(requests())
        .hasSize(2)
        .filteredOn(r -> !r.getMetadata().getName().equals(proceeded.getMetadata().getName()))
        .singleElement()
        .satisfies(r -> assertThat(r.getSpec().isPrepareOnly()).isFalse());
    assertThat(evacuator.evacuate(policy, nodes(interrupted())).created())
        .as("made once for the announcement")
        .isZero();
  }

  @Test
  void aPreparedRequestThatEndedAtItsDeadlineLeavesTheInterruptionToANewRequest() {
    evacuator.evacuate(policy, nodes(rebalanced()));
    MigrationRequest prepared = requests().get(0);
    setPhase(prepared, Phase.RolledBack);

    NodeEvacuator.Outcome interrupted = evacuator.evacuate(policy, nodes(interrupted()));

    assertThat(interrupted.created()).isEqualTo(1);
    assertThat(interrupted.proceeded()).isZero();
    assertThat(requests())
        .hasSize(2)
        .filteredOn(r -> !r.getMetadata().getName().equals(prepared.getMetadata().getName()))
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.getSpec().isPrepareOnly()).isFalse();
              assertThat(r.getSpec().getSource().getName()).isEqualTo("pod-a");
            });
    assertThat(
            api.admin()
                .resources(MigrationRequest.class)
                .inNamespace(NS)
                .withName(prepared.getMetadata().getName())
                .get()
                .getMetadata()
                .getAnnotations())
        .as("the ended one is left as it ended")
        .doesNotContainKey(MigrationMachine.PROCEED_ANNOTATION);
  }

  private List<Node> nodes(Node signalled) {
    return List.of(signalled, node("node-b").build());
  }

  /** node-a with EC2's rebalance recommendation. */
  private static Node rebalanced() {
    return node("node-a")
        .editStatus()
        .addNewCondition()
        .withType(NodeSignal.REBALANCE)
        .withStatus("True")
        .withLastTransitionTime(REBALANCE_AT)
        .endCondition()
        .endStatus()
        .build();
  }

  /** node-a with the recommendation, and then the interruption notice. */
  private static Node interrupted() {
    return new NodeBuilder(rebalanced())
        .editStatus()
        .addNewCondition()
        .withType(NodeSignal.SPOT_INTERRUPTION)
        .withStatus("True")
        .withLastTransitionTime(INTERRUPTION_AT)
        .endCondition()
        .endStatus()
        .build();
  }

  private static NodeBuilder node(String name) {
    return new NodeBuilder()
        .withNewMetadata()
        .withName(name)
        .endMetadata()
        .withNewSpec()
        .endSpec()
        .withNewStatus()
        .addNewCondition()
        .withType("Ready")
        .withStatus("True")
        .endCondition()
        .endStatus();
  }

  private void pod(String name, String node) {
    api.admin()
        .pods()
        .inNamespace(NS)
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(NS)
                .withUid(UUID.randomUUID().toString())
                .withLabels(Map.of("app", "streamer"))
                .endMetadata()
                .withNewSpec()
                .withNodeName(node)
                .endSpec()
                .withNewStatus()
                .withPhase("Running")
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  /** What the request's reconciler would write: the request reached {@code phase}. */
  private void setPhase(MigrationRequest r, Phase phase) {
    MigrationRequestStatus st = new MigrationRequestStatus();
    st.setPhase(phase);
    r.setStatus(st);
    api.admin().resource(r).updateStatus();
  }

  private List<MigrationRequest> requests() {
    return api.admin().resources(MigrationRequest.class).inNamespace(NS).list().getItems();
  }

  private MigrationPolicy policyNow() {
    return api.admin()
        .resources(MigrationPolicy.class)
        .inNamespace(NS)
        .withName(policy.getMetadata().getName())
        .get();
  }
}
