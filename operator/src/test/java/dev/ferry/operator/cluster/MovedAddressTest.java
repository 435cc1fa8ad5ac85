// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MovedAddress;
import dev.ferry.api.crd.PodReference;
import dev.ferry.operator.migration.InvalidRequest;
import dev.ferry.operator.migration.Plan;
import dev.ferry.operator.migration.PlanMaker;
import dev.ferry.testbed.MockApi;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Which addresses a pod may move: its own, and those a MovedAddress record (written only by the
 * operator) gives it; never what the pod's owner writes on it.
 */
class MovedAddressTest {
  private static final String NS = "shop";
  @RegisterExtension final MockApi api = MockApi.withExpectations().serving(MovedAddress.class);

  private ClusterView cluster;
  private PlanMaker planner;

  @BeforeEach
  void start() {
    cluster = new ClusterView(api.as("operator"));
    planner = new PlanMaker(cluster, 9443);
    node("node-a", "10.1.0.1");
    node("node-b", "10.1.0.2");
    pod("pod-a", "node-a", "10.0.0.10", Map.of());
    pod("pod-b", "node-b", "10.0.0.20", Map.of());
  }

  @Test
  void anAddressMovedIntoAPodCanBeMovedOnFromIt() throws Exception {
    moved("pod-b", "node-b", "10.0.0.10", "shop/move-1");

    MovedAddress record = api.admin().resources(MovedAddress.class).withName("10.0.0.10").get();
    assertThat(record.getSpec().getPod().getName()).isEqualTo("pod-b");
    assertThat(record.getSpec().getPod().getUid()).isEqualTo(uid("pod-b"));
    assertThat(record.getSpec().getNode()).isEqualTo("node-b");
    assertThat(record.getSpec().getMigrationRequest()).isEqualTo("shop/move-1");
    assertThat(planner.plan(request("pod-b", "pod-a", "10.0.0.10"), null).address())
        .isEqualTo("10.0.0.10/32");
  }

  @Test
  void aPodWithNoAddressOfItsOwnMovesTheOneMovedIntoIt() throws Exception {
    pod("pod-c", "node-b", null, Map.of());
    moved("pod-c", "node-b", "10.0.0.10", "shop/move-1");

    assertThat(cluster.movedInto(api.admin().pods().inNamespace(NS).withName("pod-c").get()))
        .containsExactly("10.0.0.10");
    assertThat(planner.plan(request("pod-c", "pod-a", null), null).address())
        .isEqualTo("10.0.0.10/32");
  }

  @Test
  void anAnnotationOnTheTenantsOwnPodGrantsNoAddress() {
    // The annotation earlier versions trusted; any tenant may write it on their own pod.
    pod("pod-c", "node-b", "10.0.0.30", Map.of("ferry.dev/moved-addresses", "10.0.0.10"));

    assertThatThrownBy(() -> planner.plan(request("pod-c", "pod-a", "10.0.0.10"), null))
        .isInstanceOfSatisfying(
            InvalidRequest.class,
            e -> {
              assertThat(e.field).isEqualTo("spec.address");
              assertThat(e.getMessage())
                  .contains("10.0.0.10 is not an address of pod pod-c (it has 10.0.0.30")
                  .contains("no MovedAddress gives it this one")
                  .contains("leave it out to move the pod's IP");
            });
  }

  @Test
  void anAddressMovedToAnotherPodIsRefusedNamingItsHolder() {
    moved("pod-b", "node-b", "10.0.0.10", "shop/move-1");
    pod("pod-c", "node-b", "10.0.0.30", Map.of());

    assertThatThrownBy(() -> planner.plan(request("pod-c", "pod-a", "10.0.0.10"), null))
        .isInstanceOf(InvalidRequest.class)
        .hasMessageContaining("MovedAddress 10.0.0.10 gives it to pod shop/pod-b");
  }

  @Test
  void aPodMadeAgainUnderTheSameNameHasNoClaimOnTheOldOnesAddress() {
    moved("pod-b", "node-b", "10.0.0.10", "shop/move-1");
    api.admin().pods().inNamespace(NS).withName("pod-b").delete();
    pod("pod-b", "node-b", "10.0.0.21", Map.of());

    assertThatThrownBy(() -> planner.plan(request("pod-b", "pod-a", "10.0.0.10"), null))
        .isInstanceOf(InvalidRequest.class)
        .hasMessageContaining("is not an address of pod pod-b");
  }

  @Test
  void anAddressMovedBackHomeLeavesNoRecord() {
    moved("pod-b", "node-b", "10.0.0.10", "shop/move-1");
    moved("pod-a", "node-a", "10.0.0.10", "shop/move-back");

    assertThat(api.admin().resources(MovedAddress.class).list().getItems()).isEmpty();
  }

  @Test
  void anIpv6AddressIsOneRecordHoweverItIsSpelled() throws Exception {
    moved("pod-b", "node-b", "fd42::5", "shop/move-1");
    moved("pod-b", "node-b", "fd42:0:0::5", "shop/move-2");

    assertThat(api.admin().resources(MovedAddress.class).list().getItems()).hasSize(1);
    assertThat(planner.plan(request("pod-b", "pod-a", "FD42::0:5"), null).address())
        .isEqualTo("fd42:0:0::5/128");
  }

  @Test
  void anAddressThatIsNotOneIsRefusedNamingTheField() {
    assertThatThrownBy(() -> planner.plan(request("pod-b", "pod-a", "shop.example"), null))
        .isInstanceOfSatisfying(
            InvalidRequest.class,
            e -> {
              assertThat(e.field).isEqualTo("spec.address");
              assertThat(e.getMessage()).contains("shop.example is not an IP address");
            });
  }

  @Test
  void recordingAMoveTakesTheHolderFromThePlanWithoutReadingIt() throws Exception {
    Plan there = planner.plan(request("pod-a", "pod-b", null), null);
    calls();
    cluster.recordMove(
        there.target(), there.targetAddresses(), "node-b", "10.0.0.10", "shop/move-1");
    assertThat(calls()).noneMatch(c -> c.startsWith("GET /api/v1/namespaces/shop/pods"));
    MovedAddress record = api.admin().resources(MovedAddress.class).withName("10.0.0.10").get();
    assertThat(record.getSpec().getPod().getUid()).isEqualTo(uid("pod-b"));
    assertThat(record.getMetadata().getLabels())
        .containsEntry(ClusterView.HOLDER_LABEL, uid("pod-b"));

    Plan back = planner.plan(request("pod-b", "pod-a", "10.0.0.10"), null);
    calls();
    cluster.recordMove(back.target(), back.targetAddresses(), "node-a", "10.0.0.10", "shop/back");
    assertThat(calls()).noneMatch(c -> c.startsWith("GET /api/v1/namespaces/shop/pods"));
    assertThat(api.admin().resources(MovedAddress.class).list().getItems()).isEmpty();
  }

  /** The requests the API server received since the last call, as "METHOD PATH". */
  private List<String> calls() throws InterruptedException {
    return ApiRequests.since(api.server());
  }

  /** As the end of a move records it: with the holder as a plan read it. */
  private void moved(String holder, String node, String address, String migrationRequest) {
    Pod pod = api.admin().pods().inNamespace(NS).withName(holder).get();
    cluster.recordMove(
        ClusterView.ref(pod), ClusterView.ownAddresses(pod), node, address, migrationRequest);
  }

  private MigrationRequest request(String source, String target, String address) {
    MigrationRequest mr = new MigrationRequest();
    mr.getMetadata().setNamespace(NS);
    mr.getMetadata().setName("move");
    mr.getMetadata().setUid(UUID.randomUUID().toString());
    MigrationRequestSpec spec = new MigrationRequestSpec();
    spec.setSource(new PodReference(source));
    spec.setTarget(new PodReference(target));
    spec.setAddress(address);
    spec.setPorts(List.of(8080));
    mr.setSpec(spec);
    return mr;
  }

  private String uid(String pod) {
    return api.admin().pods().inNamespace(NS).withName(pod).get().getMetadata().getUid();
  }

  private void node(String name, String internalIp) {
    KubeletObjects.node(api.admin(), name, internalIp);
  }

  private void pod(String name, String node, String ip, Map<String, String> annotations) {
    KubeletObjects.runningPod(api.admin(), NS, name, node, ip, annotations);
  }
}
