// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The tests' API server: a patch it cannot apply, and objects found by name. */
class ApiServerCrudTest {
  private final KubernetesMockServer api = MockApiServer.crud();

  @AfterEach
  void stop() {
    api.destroy();
  }

  @Test
  void aPatchMadeOnAPodReadBeforeAnotherRemovedTheLabelItChangesIsRefusedWith422() {
    KubernetesClient kube = api.createClient();
    kube.pods()
        .inNamespace("shop")
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName("pod-a")
                .withNamespace("shop")
                .addToLabels("ferry.dev/migration", "first")
                .endMetadata()
                .build())
        .create();
    Pod read = kube.pods().inNamespace("shop").withName("pod-a").get();
    kube.pods().inNamespace("shop").withName("pod-a").edit(p -> withLabels(p, Map.of()));

    // A JSON patch replacing a label that is no longer there: the real API server answers 422
    // before it compares resourceVersions; Fabric8's mock alone never answers.
    KubernetesClientException refused =
        catchThrowableOfType(
            () ->
                kube.pods()
                    .inNamespace("shop")
                    .resource(read)
                    .edit(p -> withLabels(p, Map.of("ferry.dev/migration", "second"))),
            KubernetesClientException.class);

    assertThat(refused.getCode()).as(refused.getMessage()).isEqualTo(422);
    assertThat(refused.getStatus().getReason()).isEqualTo("Invalid");
    assertThat(kube.pods().inNamespace("shop").withName("pod-a").get().getMetadata().getLabels())
        .as("nothing changed")
        .isEmpty();
  }

  @Test
  void anObjectIsFoundPatchedAndDeletedByItsNameAmongOthersOfThatName() {
    KubernetesClient kube = api.createClient();
    for (String ns : List.of("shop", "bank")) {
      kube.pods().inNamespace(ns).resource(pod(ns, "pod-a")).create();
      kube.configMaps()
          .inNamespace(ns)
          .resource(
              new ConfigMapBuilder()
                  .withNewMetadata()
                  .withName("pod-a")
                  .withNamespace(ns)
                  .endMetadata()
                  .addToData("ns", ns)
                  .build())
          .create();
    }

    assertThat(kube.pods().inNamespace("bank").withName("pod-a").get().getMetadata().getNamespace())
        .isEqualTo("bank");
    assertThat(
            catchThrowableOfType(
                    () -> kube.pods().inNamespace("bank").resource(pod("bank", "pod-a")).create(),
                    KubernetesClientException.class)
                .getCode())
        .as("a second create of one name in one namespace")
        .isEqualTo(409);
    kube.configMaps().inNamespace("bank").withName("pod-a").edit(c -> withData(c, "patched"));
    assertThat(kube.configMaps().inNamespace("bank").withName("pod-a").get().getData())
        .containsEntry("ns", "patched");
    assertThat(kube.configMaps().inNamespace("shop").withName("pod-a").get().getData())
        .containsEntry("ns", "shop");

    assertThat(kube.pods().inNamespace("shop").withName("pod-b").get()).isNull();
    assertThat(kube.pods().inNamespace("shop").withName("pod-a").delete()).hasSize(1);
    assertThat(kube.pods().inNamespace("shop").withName("pod-a").get()).isNull();
    assertThat(kube.configMaps().inNamespace("shop").withName("pod-a").get())
        .as("the other kind of that name stays")
        .isNotNull();
    assertThat(kube.pods().inNamespace("bank").withName("pod-a").get())
        .as("the pod of that name elsewhere stays")
        .isNotNull();
    kube.pods().inNamespace("shop").resource(pod("shop", "pod-a")).create();
    assertThat(kube.pods().inAnyNamespace().list().getItems()).hasSize(2);
    assertThat(kube.configMaps().inAnyNamespace().list().getItems()).hasSize(2);
  }

  private static Pod pod(String ns, String name) {
    return new PodBuilder()
        .withNewMetadata()
        .withName(name)
        .withNamespace(ns)
        .endMetadata()
        .build();
  }

  private static ConfigMap withData(ConfigMap c, String value) {
    c.setData(new HashMap<>(Map.of("ns", value)));
    return c;
  }

  private static Pod withLabels(Pod p, Map<String, String> labels) {
    p.getMetadata().setLabels(new HashMap<>(labels));
    return p;
  }
}
