// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import dev.ferry.api.plan.MovePlans;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Agent pods as the API server knows them: a pod of the agents' DaemonSet (label {@code
 * app.kubernetes.io/component: node-agent}, as the chart sets it) that is running, and its node.
 */
public final class KubeAgentPods implements AgentIdentity.AgentPods {
  static final String COMPONENT = "app.kubernetes.io/component";

  private final Supplier<KubernetesClient> client;

  public KubeAgentPods(Supplier<KubernetesClient> client) {
    this.client = client;
  }

  @Override
  public Optional<String> nodeOf(String namespace, String pod) {
    Pod p;
    try {
      p = client.get().pods().inNamespace(namespace).withName(pod).get();
    } catch (KubernetesClientException e) {
      // Refused, not guessed: the source gives its connections back, and the next move asks again.
      throw new MovePlans.Refused(
          "cannot ask the API server where the calling agent's pod "
              + namespace
              + "/"
              + pod
              + " runs ("
              + e.getMessage()
              + "): the agents' ServiceAccount needs get on pods in "
              + namespace);
    }
    if (p == null || p.getSpec() == null || p.getStatus() == null) {
      return Optional.empty();
    }
    Map<String, String> labels = p.getMetadata().getLabels();
    if (labels == null || !"node-agent".equals(labels.get(COMPONENT))) {
      return Optional.empty();
    }
    if (!"Running".equals(p.getStatus().getPhase())) {
      return Optional.empty();
    }
    return Optional.ofNullable(p.getSpec().getNodeName());
  }
}
