// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicyStatus;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.Events;
import dev.ferry.operator.OperatorMetrics;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.net.HttpURLConnection;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * Watches the nodes for every MigrationPolicy: when a node announces it is going away (its agent's
 * spot notice, or a drain taint), creates a MigrationRequest for each protected pod on it. The
 * requests then run like any other; the policy only starts them.
 */
@ControllerConfiguration(name = "migrationpolicy")
public class MigrationPolicyReconciler implements Reconciler<MigrationPolicy> {
  private static final Logger LOG = Logger.getLogger(MigrationPolicyReconciler.class.getName());

  /** How soon a policy looks again for a target it could not find. */
  private static final Duration RETRY = Duration.ofSeconds(2);

  private final KubernetesClient client;
  private final OperatorMetrics metrics;
  private final Set<String> reported = java.util.concurrent.ConcurrentHashMap.newKeySet();

  public MigrationPolicyReconciler(KubernetesClient client, OperatorMetrics metrics) {
    this.client = client;
    this.metrics = metrics;
  }

  @Override
  public List<EventSource<?, MigrationPolicy>> prepareEventSources(
      EventSourceContext<MigrationPolicy> context) {
    // Every node concerns every policy: a node's change wakes them all, and each reads the nodes
    // from this informer's cache.
    InformerEventSourceConfiguration<Node> nodes =
        InformerEventSourceConfiguration.from(Node.class, MigrationPolicy.class)
            .withSecondaryToPrimaryMapper(
                node ->
                    context
                        .getPrimaryCache()
                        .list()
                        .map(ResourceID::fromResource)
                        .collect(Collectors.toSet()))
            .build();
    return List.of(new InformerEventSource<>(nodes, context));
  }

  @Override
  public UpdateControl<MigrationPolicy> reconcile(
      MigrationPolicy policy, Context<MigrationPolicy> context) {
    if (!ready(policy)) {
      return UpdateControl.noUpdate();
    }
    var triggers = policy.getSpec().getTriggers();
    Set<Node> nodes = context.getSecondaryResources(Node.class);
    Map<String, NodeSignal> signals = new LinkedHashMap<>();
    for (Node node : nodes) {
      NodeSignal.of(node, triggers).ifPresent(s -> signals.put(s.node(), s));
    }
    if (signals.isEmpty()) {
      return UpdateControl.noUpdate();
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
    boolean waiting = false;
    NodeSignal last = null;
    for (NodeSignal signal : signals.values()) {
      for (Evacuation.Move move : Evacuation.plan(policy, signal, pods, leaving)) {
        if (move instanceof Evacuation.Request r) {
          if (create(policy, signal, r)) {
            created++;
            last = signal;
          }
        } else if (move instanceof Evacuation.NoTarget n) {
          waiting = true;
          String message =
              "pod " + n.source().getMetadata().getName() + " on " + signal + ": " + n.why();
          // Looked for again every RETRY: said once per pod and announcement, not each time.
          if (reported.add(policy.getMetadata().getUid() + "/" + message)) {
            LOG.warning(() -> policy.getMetadata().getName() + ": " + message);
            Events.record(client, policy, "Warning", "NoTarget", message);
          }
        }
      }
    }
    if (created > 0) {
      record(policy, created, last);
    }
    return waiting
        ? UpdateControl.<MigrationPolicy>noUpdate().rescheduleAfter(RETRY)
        : UpdateControl.noUpdate();
  }

  /**
   * Writes the policy's Ready condition when what it says changed; true when the policy can be
   * acted on.
   */
  private boolean ready(MigrationPolicy policy) {
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

  /** Creates the request unless an earlier reconcile did; true when this one did. */
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
}
