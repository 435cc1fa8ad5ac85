// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodIP;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/** Nodes and pods as the kubelet registers and reports them, made on the tests' API server. */
final class KubeletObjects {
  private KubeletObjects() {}

  /** A Node with its InternalIP, where its agent listens. */
  static void node(KubernetesClient kube, String name, String internalIp) {
    kube.nodes()
        .resource(
            new NodeBuilder()
                .withNewMetadata()
                .withName(name)
                .endMetadata()
                .withNewStatus()
                .addNewAddress()
                .withType("InternalIP")
                .withAddress(internalIp)
                .endAddress()
                .endStatus()
                .build())
        .create();
  }

  /** A running, ready pod on {@code node}, with {@code ip} (none if null) and its own uid. */
  static void runningPod(
      KubernetesClient kube,
      String namespace,
      String name,
      String node,
      String ip,
      Map<String, String> annotations) {
    kube.pods()
        .inNamespace(namespace)
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(namespace)
                .withUid(UUID.randomUUID().toString())
                .withAnnotations(annotations)
                .endMetadata()
                .withNewSpec()
                .withNodeName(node)
                .endSpec()
                .withNewStatus()
                .withPhase("Running")
                .withPodIP(ip)
                .withPodIPs(ip == null ? List.of() : List.of(new PodIP(ip)))
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }
}
