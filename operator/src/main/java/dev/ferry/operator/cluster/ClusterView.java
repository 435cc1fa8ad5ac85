// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import dev.ferry.api.crd.MovedAddress;
import dev.ferry.api.crd.MovedAddressSpec;
import dev.ferry.api.v1alpha1.PodRef;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeAddress;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** The Pods and Nodes a migration involves, from the operator's caches where they have them. */
public final class ClusterView {
  /**
   * Where a pod's network namespace is, for runtimes that name it (and the one-machine test bed).
   * Without it the agent finds the namespace from the pod's uid.
   */
  public static final String NETNS_ANNOTATION = "ferry.dev/netns";

  /** On a MovedAddress: the uid of the pod that holds it, for {@link #movedInto}. */
  public static final String HOLDER_LABEL = "ferry.dev/pod-uid";

  private final KubernetesClient client;
  private final NodeCache nodes;
  private final PodCache pods;

  public ClusterView(KubernetesClient client, NodeCache nodes, PodCache pods) {
    this.client = client;
    this.nodes = nodes;
    this.pods = pods;
  }

  /** Reads every pod from the API server. */
  public ClusterView(KubernetesClient client, NodeCache nodes) {
    this(client, nodes, new PodCache());
  }

  /** Reads every pod and node from the API server: for callers that read none, or have no cache. */
  public ClusterView(KubernetesClient client) {
    this(client, new NodeCache());
  }

  /**
   * From the operator's cache of the pods, reduced to what the operator reads ({@link
   * PodCache#FIELDS}); from the API server when the cache does not have it (not synced yet, or a
   * pod created a moment ago). A fresh object either way: the caller may change it.
   */
  public Optional<Pod> pod(String namespace, String name) {
    return pods.pod(namespace, name)
        .or(() -> Optional.ofNullable(client.pods().inNamespace(namespace).withName(name).get()));
  }

  public List<Pod> pods(String namespace, Map<String, String> labels) {
    return client.pods().inNamespace(namespace).withLabels(labels).list().getItems();
  }

  /**
   * From the operator's cache of the nodes; from the API server when the cache does not have it
   * (not synced yet, or a node added a moment ago). Not to be modified: it may be the cache's own.
   */
  public Optional<Node> node(String name) {
    return nodes.node(name).or(() -> Optional.ofNullable(client.nodes().withName(name).get()));
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

  /**
   * The record of an address Ferry moved into a pod, if there is one. Only the operator writes
   * these (see {@link MovedAddress}): they, and never a pod's own annotations, say which addresses
   * a pod may move on.
   */
  public Optional<MovedAddress> movedAddress(String address) {
    return Optional.ofNullable(
        client.resources(MovedAddress.class).withName(MovedAddress.nameFor(address)).get());
  }

  /**
   * Records that {@code address} now lives in pod {@code holder}: its MovedAddress names that pod,
   * or is removed when the address is one of the pod's own again (moved back home).
   *
   * @param holder the pod, with its uid, as the migration's plan read it
   * @param holderOwn the pod's own addresses as the plan read them: no read again at the end of the
   *     move, as a pod's addresses, like its uid, stay what they are while it lives
   */
  public void recordMove(
      PodRef holder, List<String> holderOwn, String node, String address, String migrationRequest) {
    var records = client.resources(MovedAddress.class);
    if (holderOwn.stream().anyMatch(ip -> sameAddress(ip, address))) {
      records.withName(MovedAddress.nameFor(address)).delete();
      return;
    }
    MovedAddress record =
        MovedAddress.of(
            new MovedAddressSpec(
                address,
                new MovedAddressSpec.HolderPod(
                    holder.getNamespace(), holder.getName(), holder.getUid()),
                node,
                migrationRequest));
    record.getMetadata().setLabels(Map.of(HOLDER_LABEL, holder.getUid()));
    records.resource(record).createOr(NonDeletingOperation::update);
  }

  /** The addresses MovedAddress records give {@code pod}, by its uid (a remade pod has none). */
  public List<String> movedInto(Pod pod) {
    return client
        .resources(MovedAddress.class)
        .withLabel(HOLDER_LABEL, pod.getMetadata().getUid())
        .list()
        .getItems()
        .stream()
        .map(m -> m.getSpec().getAddress())
        .sorted()
        .toList();
  }

  /** The addresses the pod's own status gives it (the CNI's), without those Ferry moved there. */
  public static List<String> ownAddresses(Pod pod) {
    List<String> own = new java.util.ArrayList<>();
    if (pod.getStatus() != null && pod.getStatus().getPodIPs() != null) {
      pod.getStatus().getPodIPs().forEach(ip -> own.add(ip.getIp()));
    }
    if (own.isEmpty() && pod.getStatus() != null && pod.getStatus().getPodIP() != null) {
      own.add(pod.getStatus().getPodIP());
    }
    return own;
  }

  /** Two spellings of one address ("fd42::5" and "fd42:0::5") are the same address. */
  public static boolean sameAddress(String a, String b) {
    try {
      return MovedAddress.nameFor(a).equals(MovedAddress.nameFor(b));
    } catch (IllegalArgumentException notAnAddress) {
      return false;
    }
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
