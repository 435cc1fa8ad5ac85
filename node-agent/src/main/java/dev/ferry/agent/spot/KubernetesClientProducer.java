// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/**
 * The agent's one Kubernetes client, configured from the pod's service account (or KUBECONFIG
 * outside a cluster). Built on first use, so an agent with the metadata watch off never builds it.
 */
@Singleton
public class KubernetesClientProducer {
  @Produces
  @Singleton
  KubernetesClient kubernetes() {
    return new KubernetesClientBuilder().build();
  }

  void close(@Disposes KubernetesClient client) {
    client.close();
  }
}
