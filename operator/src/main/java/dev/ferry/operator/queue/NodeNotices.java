// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import dev.ferry.operator.address.ProviderId;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.NodeConditionBuilder;
import io.fabric8.kubernetes.api.model.NodeStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.time.Clock;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Writes a queue notice onto its Node as the condition the node-agent writes for the same notice
 * from IMDS, so that the cluster sees one announcement whichever of the two came first: the
 * policies' triggers read it, targets are never chosen on the node, and a request's name, derived
 * from the condition's lastTransitionTime, is the same for both.
 */
final class NodeNotices {
  /** The kubelet writes the same status; losing a race to it a few times in a row is unlikely. */
  private static final int CONFLICT_ATTEMPTS = 3;

  private final KubernetesClient client;
  private final Clock clock;

  NodeNotices(KubernetesClient client, Clock clock) {
    this.client = client;
    this.clock = clock;
  }

  /** The Node whose spec.providerID names the instance; empty when none of this cluster does. */
  Optional<Node> nodeOf(List<Node> nodes, String instanceId) {
    return nodes.stream().filter(n -> instanceId.equals(instanceOf(n))).findFirst();
  }

  private static String instanceOf(Node n) {
    try {
      return ProviderId.instanceId(n.getSpec() == null ? null : n.getSpec().getProviderID());
    } catch (IllegalArgumentException notEc2) {
      return null;
    }
  }

  /**
   * Sets the notice's condition to True unless it is already (then the first announcement, the
   * agent's or an earlier message's, stands). A read-modify-write of the status guarded by
   * resourceVersion, as the agent's NodeReporter does: a merge patch would replace the kubelet's
   * conditions.
   *
   * @throws KubernetesClientException when the write failed; the message stays in the queue
   */
  void mark(String nodeName, QueueNotice notice) {
    String type = notice.kind().conditionType();
    for (int attempt = 1; ; attempt++) {
      Node node = client.nodes().withName(nodeName).get();
      if (node == null) {
        throw new KubernetesClientException("Node " + nodeName + " not found");
      }
      if (node.getStatus() == null) {
        node.setStatus(new NodeStatus());
      }
      List<NodeCondition> current =
          node.getStatus().getConditions() == null ? List.of() : node.getStatus().getConditions();
      if (current.stream()
          .anyMatch(c -> type.equals(c.getType()) && "True".equals(c.getStatus()))) {
        return;
      }
      String now = clock.instant().truncatedTo(ChronoUnit.SECONDS).toString();
      NodeCondition next =
          new NodeConditionBuilder()
              .withType(type)
              .withStatus("True")
              .withReason(notice.kind().reason())
              .withMessage(notice.what() + " (from the SQS queue)")
              .withLastHeartbeatTime(now)
              .withLastTransitionTime(now)
              .build();
      List<NodeCondition> all = new ArrayList<>(current);
      all.removeIf(c -> type.equals(c.getType()));
      all.add(next);
      node.getStatus().setConditions(all);
      try {
        client.nodes().resource(node).updateStatus();
        return;
      } catch (KubernetesClientException e) {
        if (e.getCode() != HttpURLConnection.HTTP_CONFLICT || attempt == CONFLICT_ATTEMPTS) {
          throw e;
        }
      }
    }
  }
}
