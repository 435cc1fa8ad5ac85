// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import dev.ferry.api.v1alpha1.PodRef;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeAddress;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** The Pods and Nodes a migration involves, read from the API server. */
public final class ClusterView {
  /**
   * Where a pod's network namespace is, for runtimes that name it (and the one-machine test bed).
   * Without it the agent finds the namespace from the pod's uid.
   */
  public static final String NETNS_ANNOTATION = "ferry.dev/netns";

  /**
   * Addresses a pod holds because Ferry moved them to it (comma-separated): the kubelet reports
   * only the CNI's address in status.podIPs, and a later migration from this pod must be able to
   * move them on.
   */
  public static final String MOVED_ADDRESSES_ANNOTATION = "ferry.dev/moved-addresses";

  private final KubernetesClient client;

  public ClusterView(KubernetesClient client) {
    this.client = client;
  }

  public Optional<Pod> pod(String namespace, String name) {
    return Optional.ofNullable(client.pods().inNamespace(namespace).withName(name).get());
  }

  public List<Pod> pods(String namespace, Map<String, String> labels) {
    return client.pods().inNamespace(namespace).withLabels(labels).list().getItems();
  }

  public Optional<Node> node(String name) {
    return Optional.ofNullable(client.nodes().withName(name).get());
  }

  public static Optional<String> internalIp(Node node) {
    if (node.getStatus() == null || node.getStatus().getAddresses() == null) {
      return Optional.empty();
    }
    return node.getStatus().getAddresses().stream()
        .filter(a -> "InternalIP".equals(a.getType()))
        .map(NodeAddress::getAddress)
        .findFirst();
  }

  public static List<String> movedAddresses(Pod pod) {
    Map<String, String> a = pod.getMetadata().getAnnotations();
    String list = a == null ? null : a.get(MOVED_ADDRESSES_ANNOTATION);
    if (list == null || list.isBlank()) {
      return List.of();
    }
    return java.util.Arrays.stream(list.split(","))
        .map(String::trim)
        .filter(x -> !x.isEmpty())
        .toList();
  }

  /** Records that {@code address} now lives in the target pod, and no longer in the source. */
  public void recordMove(String namespace, String from, String to, String address) {
    edit(namespace, from, address, false);
    edit(namespace, to, address, true);
  }

  private void edit(String namespace, String pod, String address, boolean holds) {
    client
        .pods()
        .inNamespace(namespace)
        .withName(pod)
        .edit(
            p -> {
              java.util.LinkedHashSet<String> set =
                  new java.util.LinkedHashSet<>(movedAddresses(p));
              if (holds) {
                set.add(address);
              } else {
                set.remove(address);
              }
              Map<String, String> annotations =
                  new java.util.HashMap<>(
                      p.getMetadata().getAnnotations() == null
                          ? Map.of()
                          : p.getMetadata().getAnnotations());
              if (set.isEmpty()) {
                annotations.remove(MOVED_ADDRESSES_ANNOTATION);
              } else {
                annotations.put(MOVED_ADDRESSES_ANNOTATION, String.join(",", set));
              }
              p.getMetadata().setAnnotations(annotations);
              return p;
            });
  }

  public static boolean ready(Pod pod) {
    return pod.getStatus() != null
        && "Running".equals(pod.getStatus().getPhase())
        && pod.getStatus().getConditions() != null
        && pod.getStatus().getConditions().stream()
            .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
  }

  public static String nodeOf(Pod pod) {
    return pod.getSpec() == null ? null : pod.getSpec().getNodeName();
  }

  /** How the agents name a pod: its uid, and its network namespace where that is known. */
  public static PodRef ref(Pod pod) {
    PodRef.Builder b =
        PodRef.newBuilder()
            .setNamespace(pod.getMetadata().getNamespace())
            .setName(pod.getMetadata().getName());
    if (pod.getMetadata().getUid() != null) {
      b.setUid(pod.getMetadata().getUid());
    }
    Map<String, String> annotations = pod.getMetadata().getAnnotations();
    if (annotations != null && annotations.containsKey(NETNS_ANNOTATION)) {
      b.setNetns(annotations.get(NETNS_ANNOTATION));
    }
    return b.build();
  }

  static boolean conditionTrue(List<PodCondition> conditions, String type) {
    return conditions != null
        && conditions.stream()
            .anyMatch(c -> type.equals(c.getType()) && "True".equals(c.getStatus()));
  }
}
