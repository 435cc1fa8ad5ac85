// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MovedAddress;
import dev.ferry.api.crd.MovedAddressSpec;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.PodRef;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeAddress;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
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

  /**
   * On a MovedAddress: the uid of the MigrationRequest that wrote it. A record written beside its
   * Move ({@link #recordMoveAhead}) names the target before the move commits: only its writer may
   * take it back, and until the writer ends no other request moves the address on from it ({@link
   * #stillMovingInto}).
   */
  public static final String WRITER_LABEL = "ferry.dev/request-uid";

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
   * @param writer the request that moved it, as "namespace/name"
   * @param writerUid that request's uid ({@link #WRITER_LABEL})
   */
  public void recordMove(
      PodRef holder,
      List<String> holderOwn,
      String node,
      String address,
      String writer,
      String writerUid) {
    var records = client.resources(MovedAddress.class);
    if (holderOwn.stream().anyMatch(ip -> sameAddress(ip, address))) {
      records.withName(MovedAddress.nameFor(address)).delete();
      return;
    }
    records
        .resource(record(holder, node, address, writer, writerUid))
        .createOr(NonDeletingOperation::update);
  }

  /**
   * Records, before the move commits, that {@code address} is moving into pod {@code holder}, so
   * that the end of a committed move has nothing to write: created only where no record of the
   * address exists, as none does while the source pod holds the address as its own. Whether the
   * record is now this writer's: true when created, or when a call before (an operator restarted in
   * the move) created it; false when another's record was there, which is left as it is.
   */
  public boolean recordMoveAhead(
      PodRef holder, String node, String address, String writer, String writerUid) {
    var records = client.resources(MovedAddress.class);
    try {
      records.resource(record(holder, node, address, writer, writerUid)).create();
      return true;
    } catch (KubernetesClientException e) {
      if (e.getCode() != 409) {
        throw e;
      }
      return movedAddress(address).map(r -> writtenBy(r, writerUid)).orElse(false);
    }
  }

  /**
   * Removes the record of {@code address} if request {@code writerUid} wrote it: its move did not
   * commit, so the address stays where it was, in the source pod that owns it. A record another
   * request wrote is left as it is. Whether one was removed.
   */
  public boolean takeBackMove(String address, String writerUid) {
    Optional<MovedAddress> record = movedAddress(address);
    if (record.isEmpty() || !writtenBy(record.get(), writerUid)) {
      return false;
    }
    client.resources(MovedAddress.class).resource(record.get()).delete();
    return true;
  }

  /**
   * The request, as "namespace/name (phase)", that wrote {@code record} beside its Move and has not
   * ended yet; empty when the record is settled (its writer ended, is gone, or wrote it at the end
   * of a move, as operators before the record ahead did: no label). The API server is asked, not
   * the operator's cache, which can lag behind a request's end that its requester has already read.
   */
  public Optional<String> stillMovingInto(MovedAddress record) {
    Map<String, String> labels = record.getMetadata().getLabels();
    String uid = labels == null ? null : labels.get(WRITER_LABEL);
    String writer = record.getSpec().getMigrationRequest();
    if (uid == null || writer == null || writer.indexOf('/') < 0) {
      return Optional.empty();
    }
    MigrationRequest mr =
        client
            .resources(MigrationRequest.class)
            .inNamespace(writer.substring(0, writer.indexOf('/')))
            .withName(writer.substring(writer.indexOf('/') + 1))
            .get();
    if (mr == null
        || !uid.equals(mr.getMetadata().getUid())
        || (mr.getStatus() != null
            && mr.getStatus().getPhase() != null
            && mr.getStatus().getPhase().finished())) {
      return Optional.empty();
    }
    Phase at = mr.getStatus() == null ? null : mr.getStatus().getPhase();
    return Optional.of(writer + " (" + (at == null ? "Pending" : at) + ")");
  }

  /** Whether request {@code writerUid} wrote {@code record}. */
  public static boolean writtenBy(MovedAddress record, String writerUid) {
    Map<String, String> labels = record.getMetadata().getLabels();
    return writerUid != null && labels != null && writerUid.equals(labels.get(WRITER_LABEL));
  }

  private static MovedAddress record(
      PodRef holder, String node, String address, String writer, String writerUid) {
    MovedAddress record =
        MovedAddress.of(
            new MovedAddressSpec(
                address,
                new MovedAddressSpec.HolderPod(
                    holder.getNamespace(), holder.getName(), holder.getUid()),
                node,
                writer));
    Map<String, String> labels = new java.util.HashMap<>();
    labels.put(HOLDER_LABEL, holder.getUid());
    if (writerUid != null) {
      labels.put(WRITER_LABEL, writerUid);
    }
    record.getMetadata().setLabels(labels);
    return record;
  }

  /** The addresses MovedAddress records give {@code pod}, by its uid (a remade pod has none). */
  public List<String> movedInto(Pod pod) {
    return recordsOf(pod).stream().map(m -> m.getSpec().getAddress()).sorted().toList();
  }

  /** The MovedAddress records that give {@code pod} an address, by its uid. */
  public List<MovedAddress> recordsOf(Pod pod) {
    return client
        .resources(MovedAddress.class)
        .withLabel(HOLDER_LABEL, pod.getMetadata().getUid())
        .list()
        .getItems();
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
