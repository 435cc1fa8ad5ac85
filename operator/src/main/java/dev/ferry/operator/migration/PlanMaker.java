// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MovedAddress;
import dev.ferry.api.crd.MovedAddressSpec;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.cluster.SideBySide;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Collectors;

/**
 * Checks a MigrationRequest against the cluster and turns it into a {@link Plan}, before anything
 * is frozen. Each refusal names the field and the fix.
 */
public final class PlanMaker implements Planner {
  private final ClusterView cluster;
  private final int agentPort;

  public PlanMaker(ClusterView cluster, int agentPort) {
    this.cluster = cluster;
    this.agentPort = agentPort;
  }

  /** One read of the source pod; Preparing checks the rest. */
  @Override
  public String sourceNode(MigrationRequest mr) throws InvalidRequest {
    String ns = mr.getMetadata().getNamespace();
    String name = mr.getSpec().getSource() == null ? null : mr.getSpec().getSource().getName();
    if (name == null) {
      throw new InvalidRequest("spec.source.name", "is required: name the pod to move from");
    }
    Pod source =
        cluster
            .pod(ns, name)
            .orElseThrow(() -> new InvalidRequest("spec.source.name", "no pod " + name));
    String node = ClusterView.nodeOf(source);
    if (node == null) {
      throw new InvalidRequest("spec.source.name", "pod " + name + " is not on a node");
    }
    return node;
  }

  /**
   * @param chosenTarget the target an earlier plan chose from the selector (recorded in the
   *     status), so that a restarted operator keeps to it; null the first time
   */
  @Override
  public Plan plan(MigrationRequest mr, String chosenTarget) throws InvalidRequest {
    MigrationRequestSpec spec = mr.getSpec();
    String ns = mr.getMetadata().getNamespace();
    Duration deadline = Durations.parse("spec.deadline", spec.getDeadline());
    Duration holdLimit = Durations.parse("spec.holdLimit", spec.getHoldLimit());
    if (holdLimit.compareTo(deadline) > 0) {
      throw new InvalidRequest(
          "spec.holdLimit",
          spec.getHoldLimit()
              + " is longer than spec.deadline ("
              + spec.getDeadline()
              + "): a hold outlasting the migration could only end in a rollback");
    }

    if (spec.getSource() == null || spec.getSource().getName() == null) {
      throw new InvalidRequest("spec.source.name", "is required: name the pod to move from");
    }
    String sourceName = spec.getSource().getName();
    // A named target is read beside the source: neither read waits for the other. (Left to end on
    // its own if the source fails the plan: a read changes nothing.)
    String named =
        chosenTarget != null
            ? chosenTarget
            : spec.getTarget() == null ? null : spec.getTarget().getName();
    CompletableFuture<Optional<Pod>> namedTarget =
        named == null ? null : SideBySide.read(() -> cluster.pod(ns, named));
    Pod source =
        cluster
            .pod(ns, sourceName)
            .orElseThrow(
                () ->
                    new InvalidRequest(
                        "spec.source.name",
                        "no pod "
                            + sourceName
                            + " in namespace "
                            + ns
                            + "; name a pod that exists"));
    String sourceNode = ClusterView.nodeOf(source);
    if (sourceNode == null || !"Running".equals(phase(source))) {
      throw new InvalidRequest(
          "spec.source.name",
          "pod " + sourceName + " is not running on a node (phase " + phase(source) + ")");
    }

    Pod target =
        named == null
            ? bySelector(spec, ns, sourceNode)
            : SideBySide.join(namedTarget)
                .orElseThrow(
                    () ->
                        new InvalidRequest(
                            "spec.target.name",
                            "no pod "
                                + named
                                + " in namespace "
                                + ns
                                + "; name a pod that exists"));
    String targetName = target.getMetadata().getName();
    String targetNode = ClusterView.nodeOf(target);
    if (sourceNode.equals(targetNode)) {
      throw new InvalidRequest(
          "spec.target.name",
          "pod "
              + targetName
              + " runs on node "
              + targetNode
              + ", like the source; choose a pod on another node");
    }
    if (!ClusterView.ready(target)) {
      throw new InvalidRequest(
          "spec.target.name",
          "pod " + targetName + " is not ready; wait for it, or choose another");
    }

    String address = address(spec, source);
    List<Integer> ports = ports(spec, source);
    return new Plan(
        mr.getMetadata().getUid() == null
            ? ns + "-" + mr.getMetadata().getName()
            : mr.getMetadata().getName() + "-" + mr.getMetadata().getUid().substring(0, 8),
        ClusterView.ref(source),
        sourceNode,
        agent(sourceNode, "spec.source.name"),
        ClusterView.ref(target),
        targetNode,
        agent(targetNode, "spec.target.name"),
        ports,
        address,
        deadline,
        holdLimit,
        ClusterView.ownAddresses(target),
        source);
  }

  /** The target the selector chooses: no name was given, and none chosen before. */
  private Pod bySelector(MigrationRequestSpec spec, String ns, String sourceNode)
      throws InvalidRequest {
    Map<String, String> labels = spec.getTargetSelector();
    if (labels.isEmpty()) {
      throw new InvalidRequest(
          "spec.target", "name a target pod, or give a targetSelector to choose one from");
    }
    // The first ready pod on another node, by name, so that a retried plan picks the same one.
    Optional<Pod> pick =
        cluster.pods(ns, labels).stream()
            .filter(ClusterView::ready)
            .filter(p -> ClusterView.nodeOf(p) != null && !sourceNode.equals(ClusterView.nodeOf(p)))
            .min(Comparator.comparing(p -> p.getMetadata().getName()));
    return pick.orElseThrow(
        () ->
            new InvalidRequest(
                "spec.targetSelector",
                "no ready pod labelled "
                    + labels.entrySet().stream()
                        .map(e -> e.getKey() + "=" + e.getValue())
                        .collect(Collectors.joining(","))
                    + " runs on a node other than "
                    + sourceNode));
  }

  private String address(MigrationRequestSpec spec, Pod source) throws InvalidRequest {
    List<String> owned = ClusterView.ownAddresses(source);
    String name = source.getMetadata().getName();
    String wanted = spec.getAddress();
    if (wanted == null || wanted.isEmpty()) {
      // The pod's own address first; a pod with none of its own (the target of an earlier move,
      // on a network that gives it none) moves what Ferry moved into it.
      List<String> moved = owned.isEmpty() ? cluster.movedInto(source) : List.of();
      if (owned.isEmpty() && moved.isEmpty()) {
        throw new InvalidRequest(
            "spec.address", "pod " + name + " has no IP yet; give the address to move");
      }
      return withHostPrefix(owned.isEmpty() ? moved.get(0) : owned.get(0));
    }
    for (String ip : owned) {
      if (ClusterView.sameAddress(ip, wanted)) {
        return withHostPrefix(ip);
      }
    }
    Optional<MovedAddress> record;
    try {
      record = cluster.movedAddress(wanted);
    } catch (IllegalArgumentException notAnAddress) {
      throw new InvalidRequest(
          "spec.address", wanted + " is not an IP address; give one or leave it out");
    }
    // Only a record the operator wrote counts: whatever the pod says about itself (its
    // annotations, its labels) its owner can write, and would let it take another's address.
    if (record.isPresent() && holds(record.get(), source)) {
      return withHostPrefix(record.get().getSpec().getAddress());
    }
    throw new InvalidRequest(
        "spec.address",
        wanted
            + " is not an address of pod "
            + name
            + " (it has "
            + (owned.isEmpty() ? "none" : String.join(", ", owned))
            + record
                .map(
                    r ->
                        "; MovedAddress "
                            + r.getMetadata().getName()
                            + " gives it to pod "
                            + holder(r))
                .orElse(", and no MovedAddress gives it this one")
            + "); leave it out to move the pod's IP");
  }

  private static boolean holds(MovedAddress record, Pod pod) {
    MovedAddressSpec.HolderPod h = record.getSpec().getPod();
    return h != null
        && h.getNamespace().equals(pod.getMetadata().getNamespace())
        && h.getName().equals(pod.getMetadata().getName())
        && h.getUid().equals(pod.getMetadata().getUid());
  }

  private static String holder(MovedAddress record) {
    MovedAddressSpec.HolderPod h = record.getSpec().getPod();
    return h == null ? "none" : h.getNamespace() + "/" + h.getName() + " (uid " + h.getUid() + ")";
  }

  private static String withHostPrefix(String ip) {
    return ip + (ip.contains(":") ? "/128" : "/32");
  }

  private static List<Integer> ports(MigrationRequestSpec spec, Pod source) throws InvalidRequest {
    if (!spec.getPorts().isEmpty()) {
      return spec.getPorts();
    }
    List<Integer> declared = new ArrayList<>();
    if (source.getSpec() != null && source.getSpec().getContainers() != null) {
      for (Container c : source.getSpec().getContainers()) {
        if (c.getPorts() != null) {
          c.getPorts().stream()
              .filter(p -> p.getProtocol() == null || "TCP".equals(p.getProtocol()))
              .map(ContainerPort::getContainerPort)
              .forEach(declared::add);
        }
      }
    }
    if (declared.isEmpty()) {
      throw new InvalidRequest(
          "spec.ports",
          "pod "
              + source.getMetadata().getName()
              + " declares no TCP container ports; list the ports whose connections move");
    }
    return declared;
  }

  private String agent(String nodeName, String field) throws InvalidRequest {
    Node node =
        cluster
            .node(nodeName)
            .orElseThrow(
                () -> new InvalidRequest(field, "the pod's node " + nodeName + " does not exist"));
    String ip =
        ClusterView.internalIp(node)
            .orElseThrow(
                () ->
                    new InvalidRequest(
                        field,
                        "node "
                            + nodeName
                            + " has no InternalIP, so its Ferry agent is unreachable"));
    return (ip.contains(":") ? "[" + ip + "]" : ip) + ":" + agentPort;
  }

  private static String phase(Pod p) {
    return p.getStatus() == null ? "unknown" : p.getStatus().getPhase();
  }
}
