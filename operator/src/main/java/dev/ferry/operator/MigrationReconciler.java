// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.cluster.NodeCache;
import dev.ferry.operator.cluster.PodCache;
import dev.ferry.operator.migration.EndedRequests;
import dev.ferry.operator.migration.EvictionGuard;
import dev.ferry.operator.migration.MigrationMachine;
import dev.ferry.operator.migration.MigrationSlots;
import dev.ferry.operator.migration.MoveCalls;
import dev.ferry.operator.migration.PlanMaker;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.config.informer.Informer;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.IndexerResourceCache;
import io.javaoperatorsdk.operator.processing.event.source.inbound.SimpleInboundEventSource;
import java.time.Clock;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Drives each MigrationRequest from Pending to an end, one short step per reconcile ({@link
 * MigrationMachine}): no reconcile waits on the agents' move. The step's status is written whole as
 * a JSON patch of the status subresource ({@link RequestStatusWrite}, through JOSDK's resource
 * operations, which also cache it, so that the next reconcile reads the phase it wrote). A call on
 * an agent that ends wakes its request through an inbound event source; of the request's own
 * updates, those in {@link RequestChanges} wake it. Deleting an unfinished request rolls back what
 * the agents hold, best effort.
 */
@ControllerConfiguration(
    name = "migrationrequest",
    generationAwareEventProcessing = false,
    informer = @Informer(onUpdateFilter = RequestChanges.class))
public class MigrationReconciler
    implements Reconciler<MigrationRequest>, Cleaner<MigrationRequest> {
  private final KubernetesClient client;
  private final OperatorSettings settings;
  private final AgentClients agents;
  private final OperatorMetrics metrics;
  private final Fabrics fabrics;
  private final MoveCalls calls;
  private final MigrationSlots slots;
  private final EvictionGuard guard;
  private final NodeCache nodes;
  private final PodCache pods;

  /** Every request the operator knows: the informer's cache, once the event sources exist. */
  private volatile IndexerResourceCache<MigrationRequest> requests;

  /** Where the end of a call on an agent turns into a reconcile of its request. */
  private final SimpleInboundEventSource<MigrationRequest> answers =
      new SimpleInboundEventSource<>("agent-answers");

  public MigrationReconciler(
      KubernetesClient client,
      OperatorSettings settings,
      AgentClients agents,
      OperatorMetrics metrics,
      Fabrics fabrics,
      NodeCache nodes,
      PodCache pods,
      MoveCalls calls) {
    this.client = client;
    this.calls = calls;
    this.nodes = nodes;
    this.pods = pods;
    this.settings = settings;
    this.agents = agents;
    this.metrics = metrics;
    this.fabrics = fabrics;
    this.guard = new KubeEvictionGuard(client, pods);
    this.slots =
        new MigrationSlots(
            new MigrationSlots.Limits(settings.limits().perCluster(), settings.limits().perNode()),
            new CachedRequests());
  }

  /**
   * The slots' view of the cache, through its indexes: the requests under way, those waiting (all,
   * and by source node), and each by uid. Ended requests stay in the cluster, and in the cache,
   * until someone deletes them, and a reclaim creates hundreds of requests at once: each admission
   * reads only what it needs.
   */
  private final class CachedRequests implements MigrationSlots.Requests {
    @Override
    public Collection<MigrationRequest> underWay() {
      return lookUp(UNDER_WAY, UNDER_WAY);
    }

    @Override
    public Collection<MigrationRequest> waiting() {
      return lookUp(WAITING, WAITING);
    }

    @Override
    public Collection<MigrationRequest> waitingFrom(String node) {
      return lookUp(WAITING_FROM, node);
    }

    @Override
    public MigrationRequest byUid(String uid) {
      List<MigrationRequest> found = lookUp(UID, uid);
      return found.isEmpty() ? null : found.get(0);
    }

    private List<MigrationRequest> lookUp(String index, String key) {
      IndexerResourceCache<MigrationRequest> cache = requests;
      return cache == null ? List.of() : cache.byIndex(index, key);
    }
  }

  private static final String UNDER_WAY = "ferry-under-way";
  private static final String WAITING = "ferry-waiting";
  private static final String WAITING_FROM = "ferry-waiting-from";
  private static final String UID = "ferry-uid";

  private static Map<String, Function<MigrationRequest, List<String>>> slotIndexes() {
    return Map.of(
        UNDER_WAY,
        r -> MigrationSlots.isUnderWay(r) ? List.of(UNDER_WAY) : List.of(),
        WAITING,
        r -> MigrationSlots.isWaiting(r) ? List.of(WAITING) : List.of(),
        WAITING_FROM,
        r -> MigrationSlots.isWaiting(r) ? List.of(r.getStatus().getSourceNode()) : List.of(),
        UID,
        r -> List.of(r.getMetadata().getUid()));
  }

  @Override
  public List<EventSource<?, MigrationRequest>> prepareEventSources(
      EventSourceContext<MigrationRequest> context) {
    IndexerResourceCache<MigrationRequest> cache = context.getPrimaryCache();
    cache.addIndexers(slotIndexes());
    requests = cache;
    // The pods a migration names, for its plan and its eviction guard: read from this informer's
    // cache rather than from the API server (PodCache).
    return List.of(answers, pods.informer(context));
  }

  @Override
  public UpdateControl<MigrationRequest> reconcile(
      MigrationRequest mr, Context<MigrationRequest> context) {
    ResourceID id = ResourceID.fromResource(mr);
    MigrationMachine.Turn turn = machine().reconcile(mr, () -> answers.propagateEvent(id));
    if (turn.writeStatus()) {
      RequestStatusWrite.write(client, mr, context);
    }
    if (turn.delete()) {
      // Its finalizer's cleanup runs as for any deletion, then the object goes.
      client
          .resources(MigrationRequest.class)
          .inNamespace(mr.getMetadata().getNamespace())
          .withName(mr.getMetadata().getName())
          .delete();
      return UpdateControl.noUpdate();
    }
    UpdateControl<MigrationRequest> control = UpdateControl.noUpdate();
    turn.reschedule().ifPresent(control::rescheduleAfter);
    if (turn.ended()) {
      metrics.ended(mr);
    }
    return control;
  }

  @Override
  public DeleteControl cleanup(MigrationRequest mr, Context<MigrationRequest> context) {
    machine().cleanup(mr);
    wakeWaiting();
    return DeleteControl.defaultDelete();
  }

  /** A slot came free: the requests it lets go look again now, not at their recheck. */
  private void wakeWaiting() {
    slots.next().forEach(r -> answers.propagateEvent(ResourceID.fromResource(r)));
  }

  private MigrationMachine machine() {
    return new MigrationMachine(
        new PlanMaker(new ClusterView(client, nodes, pods), settings.agentPort()),
        agents,
        fabrics::fabric,
        calls,
        new KubeStatusSink(client),
        slots,
        guard,
        new EndedRequests(settings.policyRequestsKept(), nodes::gone, Clock.systemUTC()),
        Clock.systemUTC(),
        settings.callTimeout(),
        this::wakeWaiting);
  }
}
