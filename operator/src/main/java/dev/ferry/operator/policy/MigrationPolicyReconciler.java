// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.policy;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.operator.cluster.NodeCache;
import io.fabric8.kubernetes.api.model.Node;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Watches the nodes for every MigrationPolicy: when a node announces it is going away (a spot
 * notice its agent or the SQS queue wrote, or a drain taint), creates a MigrationRequest for each
 * protected pod on it ({@link NodeEvacuator}). The requests then run like any other; the policy
 * only starts them.
 */
@ControllerConfiguration(name = "migrationpolicy")
public class MigrationPolicyReconciler implements Reconciler<MigrationPolicy> {
  /** How soon a policy looks again for a target it could not find. */
  private static final Duration RETRY = Duration.ofSeconds(2);

  private final NodeEvacuator evacuator;
  private final NodeCache nodeCache;

  public MigrationPolicyReconciler(NodeEvacuator evacuator, NodeCache nodeCache) {
    this.evacuator = evacuator;
    this.nodeCache = nodeCache;
  }

  @Override
  public List<EventSource<?, MigrationPolicy>> prepareEventSources(
      EventSourceContext<MigrationPolicy> context) {
    // Every node concerns every policy: a node's change wakes them all, and each reads the nodes
    // from this informer's cache. The migrations' plans read it too (NodeCache), rather than
    // keep a second copy of every Node.
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
    InformerEventSource<Node, MigrationPolicy> informer = new InformerEventSource<>(nodes, context);
    nodeCache.serveFrom(informer);
    return List.of(informer);
  }

  @Override
  public UpdateControl<MigrationPolicy> reconcile(
      MigrationPolicy policy, Context<MigrationPolicy> context) {
    if (!evacuator.ready(policy)) {
      return UpdateControl.noUpdate();
    }
    NodeEvacuator.Outcome outcome =
        evacuator.evacuate(policy, context.getSecondaryResources(Node.class));
    // A request's end wakes no policy: one that proceeded is looked at again until it ends.
    return outcome.waiting().isEmpty() && outcome.following().isEmpty()
        ? UpdateControl.noUpdate()
        : UpdateControl.<MigrationPolicy>noUpdate().rescheduleAfter(RETRY);
  }
}
