// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The tests' API server answers a patch it cannot apply as a real one does. */
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

  private static Pod withLabels(Pod p, Map<String, String> labels) {
    p.getMetadata().setLabels(new HashMap<>(labels));
    return p;
  }
}
