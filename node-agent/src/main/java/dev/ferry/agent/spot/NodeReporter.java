// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.NodeStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/** Writes a notice onto this agent's Node: its condition in the Node's status, and one Event. */
final class NodeReporter {
  /** The kubelet writes the same status; losing a race to it a few times in a row is unlikely. */
  private static final int CONFLICT_ATTEMPTS = 3;

  private final KubernetesClient client;
  private final String nodeName;
  private final Clock clock;

  NodeReporter(KubernetesClient client, String nodeName, Clock clock) {
    this.client = client;
    this.nodeName = nodeName;
    this.clock = clock;
  }

  /**
   * Sets the condition, then records the Event. Calling it again for the same notice after a
   * failure writes only what is still missing.
   *
   * @throws KubernetesClientException when a write failed; the caller tries again later
   */
  void report(SpotNotice notice) {
    Instant now = clock.instant();
    Node node = markCondition(notice, now);
    recordEvent(node, notice, now);
  }

  /**
   * A read-modify-write of the status subresource guarded by resourceVersion. Not a patch: a JSON
   * merge patch replaces the whole conditions list (the kubelet's among them), and Fabric8's mock
   * server answers a strategic merge patch with 415, so only an update is both safe on a real
   * cluster and testable here.
   */
  private Node markCondition(SpotNotice notice, Instant now) {
    for (int attempt = 1; ; attempt++) {
      Node node = client.nodes().withName(nodeName).get();
      if (node == null) {
        throw new KubernetesClientException("Node " + nodeName + " not found");
      }
      if (node.getStatus() == null) {
        node.setStatus(new NodeStatus());
      }
      List<NodeCondition> current = node.getStatus().getConditions();
      Optional<List<NodeCondition>> next =
          NodeConditions.withNotice(current == null ? List.of() : current, notice, now);
      if (next.isEmpty()) {
        return node;
      }
      node.getStatus().setConditions(next.get());
      try {
        return client.nodes().resource(node).updateStatus();
      } catch (KubernetesClientException e) {
        if (e.getCode() != HttpURLConnection.HTTP_CONFLICT || attempt == CONFLICT_ATTEMPTS) {
          throw e;
        }
      }
    }
  }

  private void recordEvent(Node node, SpotNotice notice, Instant now) {
    try {
      client
          .v1()
          .events()
          .inNamespace(NoticeEvents.NAMESPACE)
          .resource(NoticeEvents.eventFor(node, notice, now))
          .create();
    } catch (KubernetesClientException e) {
      // The name is derived from the notice: a conflict means this Event is already recorded.
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw e;
      }
    }
  }
}
