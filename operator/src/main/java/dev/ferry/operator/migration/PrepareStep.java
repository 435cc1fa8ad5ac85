// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.crd.ConnectionCounts;
import dev.ferry.api.crd.ConnectionDetail;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.operator.address.Fabric;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BiConsumer;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Preparing: plans the request against the cluster ({@link PlanMaker}), and checks that the target
 * node's agent answers and that an application there has registered every port, before anything is
 * frozen. A dry run ends here, listing what would move. The source pod is guarded against eviction
 * ({@link EvictionGuard}) from the start of Preparing: the guard is begun as Pending admits the
 * request ({@link #ahead}), beside the status write that enters Preparing, and the step waits for
 * it before it goes on to Moving; an end here lifts it. A request that only prepares
 * (spec.prepareOnly) goes on to Prepared instead, unguarded, unless ferry.dev/proceed is already
 * set. A dry run touches nothing.
 */
final class PrepareStep {
  private final Planner planner;
  private final Agents agents;
  private final Supplier<Fabric> fabric;
  private final EvictionGuard guard;
  private final MoveCalls calls;
  private final BiConsumer<MigrationRequest, Plan> moving;
  private final Clock clock;

  /**
   * @param calls keeps the guard begun ahead, and the plan for Prepared, which follows at once
   * @param moving hands the plan to Moving, which follows at once ({@link MoveStep#ahead})
   */
  PrepareStep(
      Planner planner,
      Agents agents,
      Supplier<Fabric> fabric,
      EvictionGuard guard,
      MoveCalls calls,
      BiConsumer<MigrationRequest, Plan> moving,
      Clock clock) {
    this.planner = planner;
    this.agents = agents;
    this.fabric = fabric;
    this.guard = guard;
    this.calls = calls;
    this.moving = moving;
    this.clock = clock;
  }

  /**
   * What Preparing begins as Pending admits the request, and returns at once, so that it runs
   * beside the status write that enters Preparing: the check of the target's agent (read only; a
   * node's first call is also a mutual TLS handshake, 6-7 ms in make bench-operator, where each
   * migration met nodes the operator had not called before, as a reclaim of many nodes does); the
   * connection to the source's agent, for the Move; and the eviction guard, so that it holds from
   * Preparing on. A request that cannot be planned is left to {@link #step}, which fails it with
   * the reason.
   */
  void ahead(MigrationRequest mr) {
    Plan plan;
    try {
      plan = planner.plan(mr, mr.getStatus().getTargetPod());
    } catch (InvalidRequest e) {
      return;
    }
    String uid = mr.getMetadata().getUid();
    calls.planAhead(uid, plan);
    ListConnectionsRequest check = targetCheck(plan);
    Agent target = agents.agent(plan.targetAgent());
    calls.checkAhead(uid, plan.targetAgent(), check, () -> target.listConnections(check));
    agents.agent(plan.sourceAgent()).connect();
    if (guarded(mr)) {
      calls.guardAhead(uid, () -> guard.protect(mr, plan));
    }
  }

  /**
   * Whether the source pod is guarded from Preparing on: the request moves now, so neither a dry
   * run nor a request that only prepares without ferry.dev/proceed.
   */
  static boolean guarded(MigrationRequest mr) {
    return !mr.getSpec().isDryRun()
        && (!mr.getSpec().isPrepareOnly() || MoveStep.proceedAsked(mr) != null);
  }

  StepOutcome step(MigrationRequest mr) {
    MigrationRequestStatus st = mr.getStatus();
    // The plan made a moment ago, as the request was admitted; planned again only when there is
    // none (an operator restarted in Preparing): a plan may read MovedAddress records from the API
    // server.
    Optional<Plan> ahead = calls.takePlanAhead(mr.getMetadata().getUid());
    Plan plan;
    try {
      plan = ahead.isPresent() ? ahead.get() : planner.plan(mr, st.getTargetPod());
    } catch (InvalidRequest e) {
      return StepOutcome.end(Phase.Failed, Reasons.INVALID, e.getMessage(), Report.NONE);
    }
    Report report = Report.of(plan);
    if (deadlinePassed(st, plan.deadline(), clock)) {
      return StepOutcome.end(
          Phase.Failed,
          Reasons.DEADLINE_PASSED,
          "spec.deadline (" + mr.getSpec().getDeadline() + ") passed in phase Preparing",
          report);
    }
    try {
      checkTarget(mr, plan);
    } catch (InvalidRequest e) {
      return StepOutcome.end(Phase.Failed, Reasons.INVALID, e.getMessage(), report);
    }
    if (mr.getSpec().isDryRun()) {
      return dryRun(plan);
    }
    Fabric network;
    try {
      network = fabric.get();
    } catch (RuntimeException e) {
      return StepOutcome.end(Phase.Failed, Reasons.MISCONFIGURED, e.getMessage(), report);
    }
    StepOutcome refused = checkClaim(network, plan, report);
    if (refused != null) {
      return refused;
    }
    if (mr.getSpec().isPrepareOnly() && MoveStep.proceedAsked(mr) == null) {
      // No guard yet: one held while nothing moves would block a drain for minutes. Prepared
      // raises it when the request proceeds. (One begun ahead, while ferry.dev/proceed was set,
      // is lifted: the annotation went since.)
      if (calls.settleAhead(mr.getMetadata().getUid())) {
        guard.release(mr);
      }
      calls.prepared(plan);
      return StepOutcome.advance(
          Phase.Prepared,
          Reasons.PREPARED,
          "pre-copying the state of "
              + plan.source().getName()
              + "'s applications to "
              + plan.target().getName()
              + " on "
              + plan.targetNode()
              + "; nothing is frozen, and the move waits for "
              + MoveStep.PROCEED_ANNOTATION,
          report);
    }
    // Begun as the request was admitted, and usually landed by now; raised here when it was not
    // begun (an operator restarted in Preparing) or failed.
    Optional<String> unguarded =
        calls.takeGuard(mr.getMetadata().getUid()).orElseGet(() -> guard.protect(mr, plan));
    moving.accept(mr, plan);
    return StepOutcome.advance(
        Phase.Moving,
        Reasons.PREPARED,
        "moving the connections of "
            + plan.source().getName()
            + " to "
            + plan.target().getName()
            + " on "
            + plan.targetNode()
            + unguarded.map(w -> "; " + w).orElse(""),
        report);
  }

  /**
   * Where the operator claims the address (EC2), what of the claim can be checked ahead, checked
   * before anything is frozen: past a forwarded commit a failed claim cannot roll the move back.
   * Null when nothing found stops the move.
   */
  private static StepOutcome checkClaim(Fabric network, Plan plan, Report report) {
    if (!MoveStep.hasAddress(plan) || !network.claimsBeforeCommit()) {
      return null;
    }
    try {
      network.checkClaim(MoveStep.bare(plan.address()), plan.targetNode());
      return null;
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      return StepOutcome.end(
          Phase.Failed,
          Reasons.ADDRESS_CLAIM_FAILED,
          "in Preparing, checking the claim of "
              + plan.address()
              + " for "
              + plan.targetNode()
              + ": "
              + e.getMessage()
              + "; nothing was frozen",
          report);
    }
  }

  /**
   * The target's agent answers, and an application there has registered every port: the answer
   * asked as the request was admitted, if the plan still asks the same, else asked now.
   */
  private void checkTarget(MigrationRequest mr, Plan plan) throws InvalidRequest {
    ListConnectionsRequest check = targetCheck(plan);
    ListConnectionsResponse r;
    try {
      Optional<ListConnectionsResponse> ahead =
          calls.takeCheck(mr.getMetadata().getUid(), plan.targetAgent(), check);
      r = ahead.isPresent() ? ahead.get() : agents.agent(plan.targetAgent()).listConnections(check);
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
              + missing.stream().map(String::valueOf).collect(Collectors.joining(", "))
              + " with Ferry; start "
              + plan.target().getName()
              + "'s server with the Ferry SDK (it registers through the agent's handoff socket),"
              + " or choose another target");
    }
  }

  private static ListConnectionsRequest targetCheck(Plan plan) {
    return ListConnectionsRequest.newBuilder()
        .setPod(plan.target())
        .addAllPorts(plan.ports())
        .build();
  }

  private StepOutcome dryRun(Plan plan) {
    List<ListedConnection> listed;
    try {
      listed =
          agents
              .agent(plan.sourceAgent())
              .listConnections(
                  ListConnectionsRequest.newBuilder()
                      .setPod(plan.source())
                      .addAllPorts(plan.ports())
                      .build())
              .getConnectionsList();
    } catch (AgentClient.Failed e) {
      return StepOutcome.end(
          Phase.Failed, Reasons.AGENT_UNREACHABLE, "dry run: " + e.getMessage(), Report.of(plan));
    }
    List<ConnectionDetail> details =
        listed.stream()
            .map(c -> new ConnectionDetail(Outcomes.format(c.getId()), "WouldMove", ""))
            .toList();
    ConnectionCounts n = new ConnectionCounts();
    n.setTotal(listed.size());
    return StepOutcome.end(
        Phase.Completed,
        Reasons.DRY_RUN,
        "dry run: "
            + listed.size()
            + " connection(s) on ports "
            + plan.ports()
            + " would move to "
            + plan.target().getName()
            + " on "
            + plan.targetNode()
            + "; nothing was touched",
        new Report(plan, n, details, null, Map.of(), false));
  }

  /** Whether spec.deadline, counted from status.startTime, has passed. */
  static boolean deadlinePassed(MigrationRequestStatus st, Duration deadline, Clock clock) {
    return due(st, deadline).map(clock.instant()::isAfter).orElse(false);
  }

  /** When spec.deadline, counted from status.startTime, comes; empty before the start is set. */
  static Optional<Instant> due(MigrationRequestStatus st, Duration deadline) {
    String start = st.getStartTime();
    return start == null ? Optional.empty() : Optional.of(Instant.parse(start).plus(deadline));
  }
}
