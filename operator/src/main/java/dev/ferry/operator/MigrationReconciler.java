// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.crd.ConnectionCounts;
import dev.ferry.api.crd.ConnectionDetail;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.operator.address.AddressMove;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.migration.Conditions;
import dev.ferry.operator.migration.InvalidRequest;
import dev.ferry.operator.migration.MigrationRun;
import dev.ferry.operator.migration.Outcomes;
import dev.ferry.operator.migration.Plan;
import dev.ferry.operator.migration.PlanMaker;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import java.time.Instant;
import java.util.List;
import java.util.logging.Logger;

/**
 * Drives each MigrationRequest from Pending to an end. A request is planned (validated) before
 * anything is frozen; its run then writes the status at every phase, so that an operator restarted
 * in the middle carries on from there. Deleting an unfinished request rolls it back first.
 */
@ControllerConfiguration(name = "migrationrequest")
public class MigrationReconciler
    implements Reconciler<MigrationRequest>, Cleaner<MigrationRequest> {
  private static final Logger LOG = Logger.getLogger(MigrationReconciler.class.getName());

  private final KubernetesClient client;
  private final OperatorSettings settings;
  private final AgentClients agents;
  private final OperatorMetrics metrics;
  private final Fabrics fabrics;

  public MigrationReconciler(
      KubernetesClient client,
      OperatorSettings settings,
      AgentClients agents,
      OperatorMetrics metrics,
      Fabrics fabrics) {
    this.client = client;
    this.settings = settings;
    this.agents = agents;
    this.metrics = metrics;
    this.fabrics = fabrics;
  }

  @Override
  public UpdateControl<MigrationRequest> reconcile(
      MigrationRequest mr, Context<MigrationRequest> context) {
    KubeStatusSink sink = new KubeStatusSink(client);
    MigrationRequestStatus st = mr.getStatus();
    if (st == null || st.getPhase() == null) {
      st = new MigrationRequestStatus();
      st.setPhase(Phase.Pending);
      st.setStartTime(Instant.now().toString());
      st.setObservedGeneration(mr.getMetadata().getGeneration());
      mr.setStatus(st);
      sink.save(mr);
      sink.event(mr, "Normal", "Pending", "accepted");
    }
    if (st.getPhase().finished()) {
      return UpdateControl.noUpdate();
    }
    Plan plan;
    try {
      plan = planMaker().plan(mr, st.getTargetPod());
    } catch (InvalidRequest e) {
      if (st.getPhase() == Phase.Pending || st.getPhase() == Phase.Preparing) {
        refuse(mr, sink, e.getMessage());
      } else {
        // The cluster changed under a running migration (a pod went away): the agents still
        // hold what they hold; the hold limit hands the clients back.
        refuse(mr, sink, "while " + st.getPhase() + ": " + e.getMessage());
      }
      return ended(mr);
    }
    st.setMigrationId(plan.id());
    st.setSourceNode(plan.sourceNode());
    st.setTargetPod(plan.target().getName());
    st.setTargetNode(plan.targetNode());
    st.setAddress(plan.address());
    if (st.getPhase() == Phase.Pending || st.getPhase() == Phase.Preparing) {
      // Nothing is frozen yet: a target that cannot take the connections is refused now.
      try {
        checkTarget(plan);
      } catch (InvalidRequest e) {
        refuse(mr, sink, e.getMessage());
        return ended(mr);
      }
    }
    if (st.getPhase() == Phase.Pending) {
      st.setPhase(Phase.Preparing);
      sink.save(mr);
    }
    if (mr.getSpec().isDryRun()) {
      dryRun(mr, plan, sink);
      return ended(mr);
    }
    ResourceID id = ResourceID.fromResource(mr);
    run(mr, plan, sink, () -> deleted(context, id)).run();
    return ended(mr);
  }

  private UpdateControl<MigrationRequest> ended(MigrationRequest mr) {
    if (mr.getStatus().getPhase().finished()) {
      metrics.ended(mr);
    }
    return UpdateControl.noUpdate();
  }

  @Override
  public DeleteControl cleanup(MigrationRequest mr, Context<MigrationRequest> context) {
    MigrationRequestStatus st = mr.getStatus();
    if (st == null || st.getPhase() == null || st.getPhase().finished()) {
      return DeleteControl.defaultDelete();
    }
    try {
      Plan plan = planMaker().plan(mr, st.getTargetPod());
      run(mr, plan, new KubeStatusSink(client), () -> true)
          .abort("the MigrationRequest was deleted");
    } catch (InvalidRequest e) {
      LOG.warning(
          () ->
              "deleting "
                  + mr.getMetadata().getName()
                  + " in "
                  + st.getPhase()
                  + ": cannot roll back, "
                  + e.getMessage()
                  + "; the hold limit hands the clients back");
    }
    return DeleteControl.defaultDelete();
  }

  private MigrationRun run(
      MigrationRequest mr,
      Plan plan,
      KubeStatusSink sink,
      java.util.function.BooleanSupplier gone) {
    AgentClient source = agents.at(plan.sourceAgent());
    AgentClient target = agents.at(plan.targetAgent());
    return new MigrationRun(
        mr,
        plan,
        source,
        target,
        new AddressMove(plan, source, target, fabrics.fabric()),
        sink,
        gone);
  }

  private static boolean deleted(Context<MigrationRequest> context, ResourceID id) {
    return context
        .getPrimaryCache()
        .get(id)
        .map(r -> r.getMetadata().getDeletionTimestamp() != null)
        .orElse(true);
  }

  /** The target's agent answers, and an application there has registered every port. */
  private void checkTarget(Plan plan) throws InvalidRequest {
    ListConnectionsResponse r;
    try {
      r =
          agents
              .at(plan.targetAgent())
              .call(
                  "ListConnections",
                  a ->
                      a.listConnections(
                          ListConnectionsRequest.newBuilder()
                              .setPod(plan.target())
                              .addAllPorts(plan.ports())
                              .build()));
    } catch (AgentClient.Failed e) {
      throw new InvalidRequest(
          "spec.target.name",
          "the Ferry agent of node "
              + plan.targetNode()
              + " does not answer ("
              + e.getMessage()
              + "); check its pod, or choose a target on another node");
    }
    List<Integer> missing =
        plan.ports().stream().filter(p -> !r.getRegisteredPortsList().contains(p)).toList();
    if (!missing.isEmpty()) {
      throw new InvalidRequest(
          "spec.target.name",
          "no application on node "
              + plan.targetNode()
              + " has registered port"
              + (missing.size() > 1 ? "s " : " ")
              + missing.stream()
                  .map(String::valueOf)
                  .collect(java.util.stream.Collectors.joining(", "))
              + " with Ferry; start "
              + plan.target().getName()
              + "'s server with the Ferry SDK (it registers through the agent's handoff socket),"
              + " or choose another target");
    }
  }

  private void dryRun(MigrationRequest mr, Plan plan, KubeStatusSink sink) {
    MigrationRequestStatus st = mr.getStatus();
    try {
      List<ListedConnection> listed =
          agents
              .at(plan.sourceAgent())
              .call(
                  "ListConnections",
                  a ->
                      a.listConnections(
                          ListConnectionsRequest.newBuilder()
                              .setPod(plan.source())
                              .addAllPorts(plan.ports())
                              .build()))
              .getConnectionsList();
      st.setConnectionDetails(
          listed.stream()
              .map(c -> new ConnectionDetail(Outcomes.format(c.getId()), "WouldMove", ""))
              .toList());
      ConnectionCounts n = new ConnectionCounts();
      n.setTotal(listed.size());
      st.setConnections(n);
      end(
          mr,
          sink,
          Phase.Completed,
          "DryRun",
          "dry run: "
              + listed.size()
              + " connection(s) on ports "
              + plan.ports()
              + " would move to "
              + plan.target().getName()
              + " on "
              + plan.targetNode()
              + "; nothing was touched");
    } catch (AgentClient.Failed e) {
      end(mr, sink, Phase.Failed, "AgentUnreachable", "dry run: " + e.getMessage());
    }
  }

  private void refuse(MigrationRequest mr, KubeStatusSink sink, String message) {
    end(mr, sink, Phase.Failed, "Invalid", message);
  }

  private static void end(
      MigrationRequest mr, KubeStatusSink sink, Phase end, String reason, String message) {
    MigrationRequestStatus st = mr.getStatus();
    Conditions.set(st, end, reason, message, mr.getMetadata().getGeneration());
    st.setPhase(end);
    st.setMessage(message);
    st.setCompletionTime(Instant.now().toString());
    if (st.getConnections() == null) {
      st.setConnections(new ConnectionCounts());
    }
    sink.save(mr);
    sink.event(mr, end == Phase.Completed ? "Normal" : "Warning", reason, message);
  }

  private PlanMaker planMaker() {
    return new PlanMaker(new ClusterView(client), settings.agentPort());
  }
}
