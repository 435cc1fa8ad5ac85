// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.PodReference;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The cluster the cache tests plan on: pod-a on node-a, pod-b on node-b, in namespace {@link #NS},
 * and a request that moves pod-a's connections on port 8080 to pod-b.
 */
final class TwoPods {
  static final String NS = "shop";

  private TwoPods() {}

  /** Both nodes with their InternalIPs (10.1.0.1, 10.1.0.2), both pods running and ready. */
  static void make(KubernetesClient kube) {
    KubeletObjects.node(kube, "node-a", "10.1.0.1");
    KubeletObjects.node(kube, "node-b", "10.1.0.2");
    KubeletObjects.runningPod(kube, NS, "pod-a", "node-a", "10.0.0.10", Map.of());
    KubeletObjects.runningPod(kube, NS, "pod-b", "node-b", "10.0.0.20", Map.of());
  }

  static MigrationRequest move() {
    MigrationRequest mr = new MigrationRequest();
    mr.getMetadata().setNamespace(NS);
    mr.getMetadata().setName("move");
    mr.getMetadata().setUid(UUID.randomUUID().toString());
    MigrationRequestSpec spec = new MigrationRequestSpec();
    spec.setSource(new PodReference("pod-a"));
    spec.setTarget(new PodReference("pod-b"));
    spec.setPorts(List.of(8080));
    mr.setSpec(spec);
    return mr;
  }
}
