// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.plan.MovePlans;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Which pods count as agents, as the API server (Fabric8's, in CRUD mode) knows them. */
@EnableKubernetesMockClient(crud = true)
class KubeAgentPodsTest {
  static KubernetesClient client;
  private final KubeAgentPods pods = new KubeAgentPods(() -> client);

  @Test
  void aRunningAgentPodRunsOnItsNode() {
    create(pod("ferry-agent-x2k9p", "node-agent", "node-c", "Running"));

    assertThat(pods.nodeOf("ferry", "ferry-agent-x2k9p")).contains("node-c");
  }

  @Test
  void aPodThatIsNoAgentOrNotRunningOrAbsentIsNone() {
    create(pod("impostor", "operator", "node-c", "Running"));
    create(pod("ferry-agent-starting", "node-agent", "node-c", "Pending"));

    assertThat(pods.nodeOf("ferry", "impostor")).as("another component's pod").isEmpty();
    assertThat(pods.nodeOf("ferry", "ferry-agent-starting")).as("not running yet").isEmpty();
    assertThat(pods.nodeOf("ferry", "ferry-agent-gone")).as("no such pod").isEmpty();
  }

  @Test
  void anApiServerThatCannotBeAskedRefusesNamingTheRight() {
    KubeAgentPods unreachable =
        new KubeAgentPods(
            () -> {
              throw new io.fabric8.kubernetes.client.KubernetesClientException(
                  "pods \"ferry-agent-x2k9p\" is forbidden", 403, null);
            });

    assertThatThrownBy(() -> unreachable.nodeOf("ferry", "ferry-agent-x2k9p"))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining("cannot ask the API server where the calling agent's pod")
        .hasMessageContaining("needs get on pods in ferry");
  }

  private void create(Pod p) {
    client.pods().inNamespace("ferry").resource(p).create();
  }

  private static Pod pod(String name, String component, String node, String phase) {
    return new PodBuilder()
        .withNewMetadata()
        .withName(name)
        .withNamespace("ferry")
        .withLabels(Map.of("app.kubernetes.io/component", component))
        .endMetadata()
        .withNewSpec()
        .withNodeName(node)
        .endSpec()
        .withNewStatus()
        .withPhase(phase)
        .endStatus()
        .build();
  }
}
