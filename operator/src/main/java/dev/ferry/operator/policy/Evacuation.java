// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicySpec;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.PodReference;
import dev.ferry.operator.cluster.ClusterView;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a policy does about one node's announcement: a MigrationRequest for each protected pod on
 * the node, each with a target on a node that is staying. No I/O, so that the choices are tested on
 * their own.
 */
public final class Evacuation {
  /** The label naming the policy that made a request. */
  public static final String POLICY_LABEL = "ferry.dev/policy";

  /** The label naming the node a request evacuates. */
  public static final String NODE_LABEL = "ferry.dev/evacuated-node";

  /** The annotation telling which announcement made the request. */
  public static final String TRIGGER_ANNOTATION = "ferry.dev/trigger";

  /** A protected pod and what becomes of it. */
  public sealed interface Move {
    Pod source();
  }

  /** A request to create. */
  public record Request(Pod source, MigrationRequest request) implements Move {}

  /** No pod can take the connections over, yet. */
  public record NoTarget(Pod source, String why) implements Move {}

  private Evacuation() {}

  /**
   * @param pods the pods of the policy's namespace that match its selector or its target selector
   * @param leaving every node that has announced it is going away (targets are never chosen there)
   */
  public static List<Move> plan(
      MigrationPolicy policy, NodeSignal signal, List<Pod> pods, Set<String> leaving) {
    MigrationPolicySpec spec = policy.getSpec();
    List<Pod> protectedHere =
        pods.stream()
            .filter(p -> matches(p, spec.getSelector()))
            .filter(p -> signal.node().equals(ClusterView.nodeOf(p)))
            .filter(p -> p.getStatus() != null && "Running".equals(p.getStatus().getPhase()))
            .sorted(Comparator.comparing(p -> p.getMetadata().getName()))
            .toList();
    List<Pod> targets =
        pods.stream()
            .filter(p -> matches(p, spec.getTargetSelector()))
            .filter(ClusterView::ready)
            .filter(p -> ClusterView.nodeOf(p) != null && !leaving.contains(ClusterView.nodeOf(p)))
            .sorted(Comparator.comparing(p -> p.getMetadata().getName()))
            .toList();
    List<Move> moves = new ArrayList<>();
    for (int i = 0; i < protectedHere.size(); i++) {
      Pod source = protectedHere.get(i);
      if (targets.isEmpty()) {
        moves.add(
            new NoTarget(
                source,
                "no ready pod labelled "
                    + labels(spec.getTargetSelector())
                    + " runs on a node that is staying"));
        continue;
      }
      // Round robin over the targets, by name: the load spreads, and a retry picks the same.
      Pod target = targets.get(i % targets.size());
      moves.add(new Request(source, request(policy, signal, source, target)));
    }
    return moves;
  }

  private static MigrationRequest request(
      MigrationPolicy policy, NodeSignal signal, Pod source, Pod target) {
    MigrationPolicySpec spec = policy.getSpec();
    MigrationRequestSpec rs = new MigrationRequestSpec();
    rs.setSource(new PodReference(source.getMetadata().getName()));
    rs.setTarget(new PodReference(target.getMetadata().getName()));
    rs.setPorts(spec.getPorts());
    rs.setHoldLimit(spec.getHoldLimit());
    // The node is going away: the connections that can move should, whatever the others do.
    rs.setAllowPartial(true);
    MigrationRequest mr = new MigrationRequest();
    mr.setMetadata(
        new ObjectMetaBuilder()
            .withNamespace(policy.getMetadata().getNamespace())
            .withName(name(source, signal))
            .withLabels(
                Map.of(
                    POLICY_LABEL, policy.getMetadata().getName(),
                    NODE_LABEL, signal.node()))
            .withAnnotations(Map.of(TRIGGER_ANNOTATION, signal.toString()))
            .build());
    mr.setSpec(rs);
    return mr;
  }

  /**
   * The same for every reconcile of one announcement, so that creating it again is a conflict, not
   * a second migration; a later announcement on the node gets a new name.
   */
  static String name(Pod source, NodeSignal signal) {
    String pod = source.getMetadata().getName();
    String key =
        source.getMetadata().getUid()
            + "/"
            + signal.node()
            + "/"
            + signal.kind()
            + "/"
            + signal.since();
    String prefix = pod.length() > 200 ? pod.substring(0, 200) : pod;
    return prefix + "-" + hash(key);
  }

  private static String hash(String key) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d, 0, 4);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static boolean matches(Pod pod, Map<String, String> selector) {
    Map<String, String> labels = pod.getMetadata().getLabels();
    return !selector.isEmpty()
        && labels != null
        && selector.entrySet().stream().allMatch(e -> e.getValue().equals(labels.get(e.getKey())));
  }

  private static String labels(Map<String, String> selector) {
    return String.join(
        ",",
        selector.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).sorted().toList());
  }
}
