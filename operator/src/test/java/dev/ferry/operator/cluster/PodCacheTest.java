// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.migration.Plan;
import dev.ferry.operator.migration.PlanMaker;
import dev.ferry.testbed.MockApi;
import io.fabric8.kubernetes.api.model.ContainerPortBuilder;
import io.fabric8.kubernetes.api.model.ManagedFieldsEntryBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodIP;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A migration reads its pods from the operator's pod cache, on Fabric8's mock API server in CRUD
 * mode; from the API server while the cache does not have them.
 */
class PodCacheTest {
  private static final String NS = TwoPods.NS;
  private static final String PODS = "/api/v1/namespaces/shop/pods/";

  @RegisterExtension final MockApi api = MockApi.crud();

  private final PodCache cache = new PodCache();
  private InformerEventSource<Pod, MigrationRequest> informer;

  @BeforeEach
  void start() {
    TwoPods.make(api.admin());
    informer = PodInformers.of(api.as("operator"), cache);
  }

  @AfterEach
  void stop() {
    if (informer.isRunning()) {
      informer.stop();
    }
  }

  @Test
  void aPlanReadsBothPodsFromTheCacheNotTheApiServer() throws Exception {
    informer.start();
    PodInformers.await(cache, NS, "pod-a", p -> true);
    PodInformers.await(cache, NS, "pod-b", p -> true);
    calls();

    Plan plan = planner().plan(TwoPods.move(), null);

    assertThat(plan.source().getName()).isEqualTo("pod-a");
    assertThat(plan.target().getName()).isEqualTo("pod-b");
    assertThat(plan.sourceAgent()).isEqualTo("10.1.0.1:9443");
    assertThat(plan.targetAgent()).isEqualTo("10.1.0.2:9443");
    assertThat(calls()).noneMatch(c -> c.startsWith("GET " + PODS));
  }

  @Test
  void untilTheInformerHasStartedAPlanReadsThePodsFromTheApiServer() throws Exception {
    calls();

    Plan plan = planner().plan(TwoPods.move(), null);

    assertThat(plan.target().getName()).isEqualTo("pod-b");
    assertThat(calls())
        .filteredOn(c -> c.startsWith("GET " + PODS))
        .containsExactlyInAnyOrder("GET " + PODS + "pod-a", "GET " + PODS + "pod-b");
  }

  @Test
  void theCacheKeepsWhatTheOperatorReadsOfAPodAndNothingElse() throws Exception {
    Pod full =
        new PodBuilder(api.admin().pods().inNamespace(NS).withName("pod-a").get())
            .editMetadata()
            .addToLabels("app", "shop")
            .addToAnnotations("ferry.dev/netns", "/run/netns/a")
            .addToManagedFields(new ManagedFieldsEntryBuilder().withManager("kubelet").build())
            .endMetadata()
            .editSpec()
            .addNewContainer()
            .withName("server")
            .withImage("registry.example/server:1")
            .addNewEnv()
            .withName("MODEL")
            .withValue("large")
            .endEnv()
            .withPorts(new ContainerPortBuilder().withContainerPort(8080).build())
            .endContainer()
            .addNewVolume()
            .withName("data")
            .withNewEmptyDir()
            .endEmptyDir()
            .endVolume()
            .endSpec()
            .editStatus()
            .withPodIPs(new PodIP("10.0.0.10"), new PodIP("fd00::10"))
            .addNewContainerStatus()
            .withName("server")
            .withReady(true)
            .endContainerStatus()
            .endStatus()
            .build();
    api.admin().pods().inNamespace(NS).resource(full).update();
    informer.start();

    Pod cached = PodInformers.await(cache, NS, "pod-a", p -> p.getMetadata().getLabels() != null);

    assertThat(cached.getMetadata().getUid()).isEqualTo(full.getMetadata().getUid());
    assertThat(cached.getMetadata().getResourceVersion()).isNotBlank();
    assertThat(cached.getMetadata().getLabels()).containsEntry("app", "shop");
    assertThat(ClusterView.ref(cached).getNetns()).isEqualTo("/run/netns/a");
    assertThat(ClusterView.nodeOf(cached)).isEqualTo("node-a");
    assertThat(ClusterView.ready(cached)).isTrue();
    assertThat(ClusterView.ownAddresses(cached)).containsExactly("10.0.0.10", "fd00::10");
    assertThat(cached.getSpec().getContainers())
        .singleElement()
        .satisfies(
            c -> {
              assertThat(c.getName()).isEqualTo("server");
              assertThat(c.getPorts().get(0).getContainerPort()).isEqualTo(8080);
              assertThat(c.getImage()).isNull();
              assertThat(c.getEnv()).isEmpty();
            });
    assertThat(cached.getMetadata().getManagedFields()).isEmpty();
    assertThat(cached.getSpec().getVolumes()).isEmpty();
    assertThat(cached.getStatus().getContainerStatuses()).isEmpty();
  }

  @Test
  void aRequestWithoutPortsTakesThePortsTheCachedSourcePodDeclares() throws Exception {
    Pod withPorts =
        new PodBuilder(api.admin().pods().inNamespace(NS).withName("pod-a").get())
            .editSpec()
            .addNewContainer()
            .withName("server")
            .withPorts(
                new ContainerPortBuilder().withContainerPort(8080).build(),
                new ContainerPortBuilder().withContainerPort(5353).withProtocol("UDP").build())
            .endContainer()
            .endSpec()
            .build();
    api.admin().pods().inNamespace(NS).resource(withPorts).update();
    informer.start();
    PodInformers.await(cache, NS, "pod-a", p -> true);
    PodInformers.await(cache, NS, "pod-b", p -> true);
    MigrationRequest mr = TwoPods.move();
    mr.getSpec().setPorts(List.of());
    calls();

    Plan plan = planner().plan(mr, null);

    assertThat(plan.ports()).containsExactly(8080);
    assertThat(calls()).noneMatch(c -> c.startsWith("GET " + PODS));
  }

  @Test
  void aPodReadFromTheCacheIsTheCallersToChange() throws Exception {
    informer.start();
    Pod first = PodInformers.await(cache, NS, "pod-a", p -> true);

    first.getMetadata().setLabels(Map.of("changed", "by the caller"));
    first.getSpec().setNodeName("elsewhere");

    Pod again = cache.pod(NS, "pod-a").orElseThrow();
    assertThat(again.getMetadata().getLabels()).doesNotContainKey("changed");
    assertThat(ClusterView.nodeOf(again)).isEqualTo("node-a");
  }

  private PlanMaker planner() {
    return new PlanMaker(new ClusterView(api.as("operator"), new NodeCache(), cache), 9443);
  }

  private List<String> calls() throws InterruptedException {
    return ApiRequests.since(api.server());
  }
}
