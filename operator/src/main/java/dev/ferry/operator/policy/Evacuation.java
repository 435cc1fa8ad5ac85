// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicySpec;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.migration.MigrationMachine;
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
import java.util.Optional;
import java.util.Set;

/**
 * What a policy does about one node's announcement: a MigrationRequest for each protected pod on
 * the node, each with a target on a node that is staying. A rebalance recommendation only prepares
 * (spec.prepareOnly): the instance may stay, and nothing is frozen for it. A later announcement of
 * the node's end proceeds those prepared requests (ferry.dev/proceed) rather than make new ones. No
 * I/O, so that the choices are tested on their own.
 */
public final class Evacuation {
  /** The label naming the policy that made a request. */
  public static final String POLICY_LABEL = MigrationRequest.POLICY_LABEL;

  /** The label naming the node a request evacuates. */
  public static final String NODE_LABEL = MigrationRequest.EVACUATED_NODE_LABEL;

  /** The annotation telling which announcement made the request. */
  public static final String TRIGGER_ANNOTATION = "ferry.dev/trigger";

  /**
   * The deadline of a request that only prepares: the agents keep a prepared move about 9 minutes,
   * then drop it by themselves, so the request is rolled back no later than that.
   */
  static final String PREPARE_DEADLINE = "9m";

  /** A protected pod and what becomes of it. */
  public sealed interface Move {
    Pod source();
  }

  /** A request to create. */
  public record Request(Pod source, MigrationRequest request) implements Move {}

  /** No pod can take the connections over, yet. */
  public record NoTarget(Pod source, String why) implements Move {}

  /** A request that prepares the pod's move, to annotate {@code ferry.dev/proceed=value}. */
  public record Proceed(Pod source, MigrationRequest prepared, String value) implements Move {}

  /**
   * A request that prepared the pod's move proceeds, or proceeded for this signal: nothing to do.
   */
  public record Proceeding(Pod source, MigrationRequest prepared) implements Move {}

  private Evacuation() {}

  /**
   * @param pods the pods of the policy's namespace that match its selector or its target selector
   * @param leaving every node that has announced it is going away (targets are never chosen there)
   * @param made the requests this policy made for the signal's node, whatever their phase
   */
  public static List<Move> plan(
      MigrationPolicy policy,
      NodeSignal signal,
      List<Pod> pods,
      Set<String> leaving,
      List<MigrationRequest> made) {
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
      Optional<Move> proceed = proceed(signal, source, made);
      if (proceed.isPresent()) {
        moves.add(proceed.get());
        continue;
      }
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

  /**
   * What becomes of a pod whose move a request of {@code made} prepared, when {@code signal} says
   * the node is going: that request proceeds, having pre-copied already. One that ended (rolled
   * back at its deadline, say) is no help, and a new request is made; unless it proceeded for this
   * very signal: then the announcement is answered, unless that request rolled back (its prepared
   * move could not go on: the target's agent restarted meanwhile, say). Every connection then lives
   * where it was, and an ordinary request for the announcement moves them, as if there had been no
   * recommendation.
   */
  private static Optional<Move> proceed(
      NodeSignal signal, Pod source, List<MigrationRequest> made) {
    if (signal.preparesOnly()) {
      return Optional.empty();
    }
    String value = signal.toString();
    List<MigrationRequest> prepared =
        made.stream()
            .filter(r -> r.getSpec() != null && r.getSpec().isPrepareOnly())
            .filter(r -> source.getMetadata().getName().equals(r.getSpec().getSource().getName()))
            .sorted(NEWEST_FIRST)
            .toList();
    for (MigrationRequest r : prepared) {
      if (value.equals(proceedValue(r))) {
        return rolledBack(r) ? Optional.empty() : Optional.of(new Proceeding(source, r));
      }
    }
    for (MigrationRequest r : prepared) {
      if (!ended(r)) {
        // Any value moves it: one set for an earlier signal needs no second.
        return Optional.of(
            proceedValue(r) == null ? new Proceed(source, r, value) : new Proceeding(source, r));
      }
    }
    return Optional.empty();
  }

  private static final Comparator<MigrationRequest> NEWEST_FIRST =
      Comparator.comparing(
              (MigrationRequest r) -> r.getMetadata().getCreationTimestamp(),
              Comparator.nullsLast(Comparator.naturalOrder()))
          .reversed();

  private static String proceedValue(MigrationRequest r) {
    Map<String, String> annotations = r.getMetadata().getAnnotations();
    String value =
        annotations == null ? null : annotations.get(MigrationMachine.PROCEED_ANNOTATION);
    return value == null || value.isEmpty() ? null : value;
  }

  private static boolean rolledBack(MigrationRequest r) {
    return r.getStatus() != null && r.getStatus().getPhase() == Phase.RolledBack;
  }

  /** Whether {@code r} has ended, whichever way. */
  static boolean ended(MigrationRequest r) {
    return r.getStatus() != null
        && r.getStatus().getPhase() != null
        && r.getStatus().getPhase().finished();
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
    if (signal.preparesOnly()) {
      // It may stay, and an interruption may follow in minutes: pre-copy now, freeze then.
      rs.setPrepareOnly(true);
      rs.setDeadline(PREPARE_DEADLINE);
    }
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
