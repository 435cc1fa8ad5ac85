// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.operator.address.Ec2Fabric;
import dev.ferry.operator.address.Fabric;
import dev.ferry.operator.address.LanFabric;
import dev.ferry.operator.address.ProviderId;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.cluster.NodeCache;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;

/** The network beyond the nodes, as ferry.operator.address-mover names it: one for the process. */
@ApplicationScoped
public class Fabrics {
  private final OperatorSettings settings;
  private final ClusterView cluster;
  private volatile Fabric fabric;

  public Fabrics(OperatorSettings settings, KubernetesClient client, NodeCache nodes) {
    this.settings = settings;
    this.cluster = new ClusterView(client, nodes);
  }

  /** Built on first use, so that a bad setting fails the migration with its name, not startup. */
  public Fabric fabric() {
    if (fabric == null) {
      synchronized (this) {
        if (fabric == null) {
          fabric =
              switch (settings.addressMover()) {
                case "l2" -> new LanFabric();
                case "aws" -> Ec2Fabric.create(settings.aws(), this::instanceOf);
                default ->
                    throw new IllegalStateException(
                        "ferry.operator.address-mover must be l2 or aws, got "
                            + settings.addressMover());
              };
        }
      }
    }
    return fabric;
  }

  /** The EC2 instance behind a Node, from the spec.providerID the cloud provider sets. */
  private String instanceOf(String nodeName) {
    Node node =
        cluster
            .node(nodeName)
            .orElseThrow(() -> new IllegalStateException("node " + nodeName + " does not exist"));
    return ProviderId.instanceId(node.getSpec() == null ? null : node.getSpec().getProviderID());
  }

  void close(@Observes ShutdownEvent ev) {
    if (fabric instanceof AutoCloseable c) {
      try {
        c.close();
      } catch (Exception e) {
        // closing at shutdown: nothing to do about it
      }
    }
  }
}
