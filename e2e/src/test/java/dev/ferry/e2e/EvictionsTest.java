// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudgetBuilder;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.net.InetAddress;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The test API server's eviction subresource answers as the real one, through Fabric8's evict().
 */
class EvictionsTest {
  private KubernetesMockServer api;
  private KubernetesClient kube;

  @BeforeEach
  void start() throws Exception {
    api = ApiServer.server();
    api.init(InetAddress.getLoopbackAddress(), 0);
    // No retries: Fabric8 retries 429 and 5xx with a backoff, as kubectl drain does; the test
    // reads each answer.
    try (KubernetesClient plain = api.createClient()) {
      kube =
          new KubernetesClientBuilder()
              .withConfig(
                  new ConfigBuilder(plain.getConfiguration())
                      .withRequestRetryBackoffLimit(0)
                      .build())
              .build();
    }
  }

  @AfterEach
  void stop() {
    kube.close();
    api.destroy();
  }

  @Test
  void aPodWithoutABudgetIsEvicted() {
    pod("web-1", "web", true);

    assertThat(kube.pods().inNamespace("shop").withName("web-1").evict()).isTrue();

    assertThat(kube.pods().inNamespace("shop").withName("web-1").get()).isNull();
  }

  @Test
  void aBudgetAllowingNoDisruptionRefusesWith429UntilItGoes() {
    pod("web-1", "web", true);
    budget("hold-web", "web", new IntOrString(0), null);

    assertThat(kube.pods().inNamespace("shop").withName("web-1").evict())
        .as("refused: 429 TooManyRequests")
        .isFalse();
    assertThat(kube.pods().inNamespace("shop").withName("web-1").get()).isNotNull();

    kube.policy().v1().podDisruptionBudget().inNamespace("shop").withName("hold-web").delete();
    assertThat(kube.pods().inNamespace("shop").withName("web-1").evict()).isTrue();
  }

  @Test
  void minAvailableCountsTheReadyPodsItSelects() {
    pod("web-1", "web", true);
    pod("web-2", "web", true);
    pod("web-3", "web", false);
    budget("two-web", "web", null, new IntOrString(1));

    assertThat(kube.pods().inNamespace("shop").withName("web-1").evict()).isTrue();
    assertThat(kube.pods().inNamespace("shop").withName("web-2").evict())
        .as("the last ready one")
        .isFalse();
  }

  @Test
  void aPodThatIsNotRunningIsEvictedWhateverTheBudget() {
    Pod p = pod("done-1", "web", false);
    p.getStatus().setPhase("Succeeded");
    kube.pods().inNamespace("shop").resource(p).updateStatus();
    budget("hold-web", "web", new IntOrString(0), null);

    assertThat(kube.pods().inNamespace("shop").withName("done-1").evict()).isTrue();
  }

  @Test
  void twoBudgetsOnOnePodAreAnErrorAsInKubernetes() {
    pod("web-1", "web", true);
    budget("a", "web", new IntOrString(1), null);
    budget("b", "web", new IntOrString(1), null);

    assertThatThrownBy(() -> kube.pods().inNamespace("shop").withName("web-1").evict())
        .isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("more than one PodDisruptionBudget");
  }

  @Test
  void aMissingPodIsNotFound() {
    assertThatThrownBy(() -> kube.pods().inNamespace("shop").withName("nobody").evict())
        .isInstanceOfSatisfying(
            KubernetesClientException.class, e -> assertThat(e.getCode()).isEqualTo(404));
  }

  private Pod pod(String name, String app, boolean ready) {
    return kube.pods()
        .inNamespace("shop")
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace("shop")
                .addToLabels("app", app)
                .endMetadata()
                .withNewStatus()
                .withPhase("Running")
                .addNewCondition()
                .withType("Ready")
                .withStatus(ready ? "True" : "False")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  private void budget(String name, String app, IntOrString maxUnavailable, IntOrString min) {
    kube.policy()
        .v1()
        .podDisruptionBudget()
        .inNamespace("shop")
        .resource(
            new PodDisruptionBudgetBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace("shop")
                .endMetadata()
                .withNewSpec()
                .withMaxUnavailable(maxUnavailable)
                .withMinAvailable(min)
                .withNewSelector()
                .addToMatchLabels("app", app)
                .endSelector()
                .endSpec()
                .build())
        .create();
  }
}
