// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicyStatus;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.Events;
import dev.ferry.operator.OperatorMetrics;
import dev.ferry.operator.migration.MigrationMachine;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import jakarta.inject.Singleton;
import java.net.HttpURLConnection;
import java.time.Instant;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * One policy's answer to the nodes that announce they are going away: the MigrationRequests {@link
 * Evacuation} plans, created, and the requests a rebalance recommendation prepared, annotated to
 * proceed. The one path from a node's announcement to requests: the policy's reconciler takes it on
 * every node change, the SQS queue consumer right after it wrote a notice. Creating is idempotent
 * (a request's name is derived from the announcement), and so is proceeding (a request annotated
 * for the announcement is not annotated again), so both may.
 */
@Singleton
public class NodeEvacuator {
  private static final Logger LOG = Logger.getLogger(NodeEvacuator.class.getName());

  private final KubernetesClient client;
  private final OperatorMetrics metrics;
  private final Set<String> reported = ConcurrentHashMap.newKeySet();

  /**
   * @param created how many requests this call created (not those that existed already)
   * @param proceeded how many prepared requests this call annotated to proceed (not those that were
   *     already)
   * @param waiting the announcing nodes with a protected pod that has no request yet, as no pod can
   *     take its connections over
   * @param following the nodes with a prepared request that proceeded and has not ended: should it
   *     roll back, an ordinary request takes its place, so the policy looks again soon
   */
  public record Outcome(int created, int proceeded, Set<String> waiting, Set<String> following) {}

  public NodeEvacuator(KubernetesClient client, OperatorMetrics metrics) {
    this.client = client;
    this.metrics = metrics;
  }

  /**
   * Creates the requests for every node among {@code nodes} that announces, as {@code policy}'s
   * triggers read it, or proceeds the ones a rebalance recommendation prepared.
   *
   * @throws KubernetesClientException when the API server refused a read, a create (other than a
   *     request that exists already) or an annotation: some requests may be missing or not
   *     proceeding, and a second call sees to them
   */
  public Outcome evacuate(MigrationPolicy policy, Collection<Node> nodes) {
    if (PolicyReadiness.problem(policy.getSpec()).isPresent()) {
      return new Outcome(0, 0, Set.of(), Set.of()); // its Ready condition says why (ready)
    }
    var triggers = policy.getSpec().getTriggers();
    Map<String, NodeSignal> signals = new LinkedHashMap<>();
    for (Node node : nodes) {
      NodeSignal.of(node, triggers).ifPresent(s -> signals.put(s.node(), s));
    }
    if (signals.isEmpty()) {
      return new Outcome(0, 0, Set.of(), Set.of());
    }
    Set<String> leaving =
        nodes.stream()
            .filter(
                n ->
                    signals.containsKey(n.getMetadata().getName())
                        || Boolean.TRUE.equals(
                            n.getSpec() == null ? null : n.getSpec().getUnschedulable()))
            .map(n -> n.getMetadata().getName())
            .collect(Collectors.toSet());
    List<Pod> pods = pods(policy);
    int created = 0;
    int proceeded = 0;
    Set<String> waiting = new HashSet<>();
    Set<String> following = new HashSet<>();
    NodeSignal last = null;
    for (NodeSignal signal : signals.values()) {
      List<MigrationRequest> made = made(policy, signal);
      for (Evacuation.Move move : Evacuation.plan(policy, signal, pods, leaving, made)) {
        if (move instanceof Evacuation.Request r) {
          if (create(policy, signal, r)) {
            created++;
            last = signal;
          }
        } else if (move instanceof Evacuation.Proceed p) {
          proceed(policy, p);
          proceeded++;
          last = signal;
          following.add(signal.node());
        } else if (move instanceof Evacuation.Proceeding p) {
          if (!Evacuation.ended(p.prepared())) {
            following.add(signal.node());
          }
        } else if (move instanceof Evacuation.NoTarget n) {
          waiting.add(signal.node());
          String message =
              "pod " + n.source().getMetadata().getName() + " on " + signal + ": " + n.why();
          // Looked for again and again: said once per pod and announcement, not each time.
          if (reported.add(policy.getMetadata().getUid() + "/" + message)) {
            LOG.warning(() -> policy.getMetadata().getName() + ": " + message);
            Events.record(client, policy, "Warning", "NoTarget", message);
          }
        }
      }
    }
    if (created > 0 || proceeded > 0) {
      record(policy, created, last);
    }
    return new Outcome(created, proceeded, Set.copyOf(waiting), Set.copyOf(following));
  }

  /**
   * The requests this policy made for the signal's node, which a signal of its end may proceed;
   * none for a rebalance recommendation, which proceeds nothing.
   */
  private List<MigrationRequest> made(MigrationPolicy policy, NodeSignal signal) {
    if (signal.preparesOnly()) {
      return List.of();
    }
    return client
        .resources(MigrationRequest.class)
        .inNamespace(policy.getMetadata().getNamespace())
        .withLabel(Evacuation.POLICY_LABEL, policy.getMetadata().getName())
        .withLabel(Evacuation.NODE_LABEL, signal.node())
        .list()
        .getItems();
  }

  /** Annotates a prepared request to proceed: its reconciler, woken, guards the pod and moves. */
  private void proceed(MigrationPolicy policy, Evacuation.Proceed p) {
    MigrationRequest mr = p.prepared();
    // A merge patch of the one annotation, with no resourceVersion to conflict on: the request's
    // reconciler writes its status meanwhile, and the rest is left as it is.
    String patch =
        Serialization.asJson(
            Map.of(
                "metadata",
                Map.of("annotations", Map.of(MigrationMachine.PROCEED_ANNOTATION, p.value()))));
    client
        .resources(MigrationRequest.class)
        .inNamespace(mr.getMetadata().getNamespace())
        .withName(mr.getMetadata().getName())
        .patch(PatchContext.of(PatchType.JSON_MERGE), patch);
    String message =
        "annotated MigrationRequest "
            + mr.getMetadata().getName()
            + " "
            + MigrationMachine.PROCEED_ANNOTATION
            + "="
            + p.value()
            + ": the move of "
            + p.source().getMetadata().getName()
            + " it prepared goes ahead";
    LOG.info(() -> policy.getMetadata().getName() + ": " + message);
    Events.record(client, policy, "Normal", "MigrationProceeded", message);
  }

  private List<Pod> pods(MigrationPolicy policy) {
    String ns = policy.getMetadata().getNamespace();
    Map<String, Pod> byName = new LinkedHashMap<>();
    for (Map<String, String> labels :
        List.of(policy.getSpec().getSelector(), policy.getSpec().getTargetSelector())) {
      if (!labels.isEmpty()) {
        client
            .pods()
            .inNamespace(ns)
            .withLabels(labels)
            .list()
            .getItems()
            .forEach(p -> byName.putIfAbsent(p.getMetadata().getName(), p));
      }
    }
    return List.copyOf(byName.values());
  }

  /** Creates the request unless an earlier call did; true when this one did. */
  private boolean create(MigrationPolicy policy, NodeSignal signal, Evacuation.Request r) {
    MigrationRequest mr = r.request();
    try {
      client.resource(mr).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() == HttpURLConnection.HTTP_CONFLICT) {
        return false;
      }
      throw e;
    }
    String message =
        "created MigrationRequest "
            + mr.getMetadata().getName()
            + ": "
            + r.source().getMetadata().getName()
            + " -> "
            + mr.getSpec().getTarget().getName()
            + " ("
            + signal
            + ")";
    LOG.info(() -> policy.getMetadata().getName() + ": " + message);
    Events.record(client, policy, "Normal", "MigrationRequested", message);
    metrics.requestCreated(policy, signal.kind());
    return true;
  }

  private void record(MigrationPolicy policy, int created, NodeSignal last) {
    client
        .resources(MigrationPolicy.class)
        .inNamespace(policy.getMetadata().getNamespace())
        .withName(policy.getMetadata().getName())
        .editStatus(
            current -> {
              MigrationPolicyStatus st =
                  Optional.ofNullable(current.getStatus()).orElseGet(MigrationPolicyStatus::new);
              st.setRequestsCreated(st.getRequestsCreated() + created);
              st.setLastTrigger(last.toString());
              current.setStatus(st);
              return current;
            });
  }

  /**
   * Writes the policy's Ready condition when what it says changed; true when the policy can be
   * acted on.
   */
  boolean ready(MigrationPolicy policy) {
    MigrationPolicyStatus seen = new MigrationPolicyStatus();
    if (policy.getStatus() != null) {
      seen.setConditions(policy.getStatus().getConditions());
      seen.setObservedGeneration(policy.getStatus().getObservedGeneration());
    }
    Instant now = Instant.now();
    if (PolicyReadiness.update(policy, seen, now)) {
      client
          .resources(MigrationPolicy.class)
          .inNamespace(policy.getMetadata().getNamespace())
          .withName(policy.getMetadata().getName())
          .editStatus(
              current -> {
                MigrationPolicyStatus st =
                    Optional.ofNullable(current.getStatus()).orElseGet(MigrationPolicyStatus::new);
                PolicyReadiness.update(current, st, now);
                current.setStatus(st);
                return current;
              });
    }
    return seen.getConditions().get(0).getStatus().equals("True");
  }
}
