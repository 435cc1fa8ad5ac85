// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static dev.ferry.api.v1alpha1.ConnectionPhase.RELEASED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RESUMED;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.crd.ConnectionCounts;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.operator.address.AddressClaimFailed;
import dev.ferry.operator.address.Fabric;
import dev.ferry.operator.migration.MoveCalls.Flight;
import dev.ferry.operator.migration.MoveCalls.Kind;
import io.grpc.Status;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * Moving: the source agent runs the whole move with the target agent (agent.proto, Move), and the
 * clients are held only inside it. Each reconcile here either starts one asynchronous call on the
 * source agent ({@link MoveCalls}) or reads the answer of the one that ended, and returns at once;
 * the status is written only when the migration ends. In order:
 *
 * <ol>
 *   <li>Move. An operator restarted in Moving has no call in flight and calls Move again: the agent
 *       joins the move under way, or answers how it ended. A request that proceeded from Prepared
 *       may still have its prepare-only Move in flight: its answer, PREPARED, is followed by the
 *       Move that freezes.
 *   <li>On AWS the agents stop at AWAITING_ADDRESS once everything is staged on the target: the
 *       operator claims the address with the {@link Fabric}, then calls Commit ({@link ClaimStep}).
 *       A claim that fails rolls back on the source agent, and gives the address back (best
 *       effort). Unless the source node forwards the address's packets to the target: then the
 *       agents run the move to its end without waiting for the operator, and Move answers COMPLETED
 *       with forwarding set. The operator then claims the address; past the commit a claim that
 *       fails is tried again (Move again reads the same outcome) until spec.deadline, never rolled
 *       back.
 *   <li>Past spec.deadline, Rollback on the source agent (while a Move is in flight, or when none
 *       is; a claim and Commit in flight are let end first); an agent past its commit point refuses
 *       and says so, and the move is seen to its end instead.
 * </ol>
 */
final class MoveStep {
  private static final Logger LOG = Logger.getLogger(MoveStep.class.getName());

  /** How soon a reconcile looks again without being woken by a call's end: a safety net. */
  static final Duration POLL = Duration.ofSeconds(1);

  /** How soon Move is called again after the source agent did not answer. */
  static final Duration RETRY = Duration.ofSeconds(2);

  private static final int LISTED_CONNECTIONS = 10;

  /**
   * How long a Move signed ahead is sent as it was signed; older, it is signed again. Far inside a
   * plan's validity (an hour): only a Moving entered long after its Preparing (the status write
   * retried while the API server was away) signs again.
   */
  static final Duration SIGNED_AHEAD_FOR = Duration.ofSeconds(30);

  private final Planner planner;
  private final Agents agents;
  private final Supplier<Fabric> fabric;
  private final MoveCalls calls;
  private final Clock clock;
  private final Duration callTimeout;
  private final ClaimStep claims;

  MoveStep(
      Planner planner,
      Agents agents,
      Supplier<Fabric> fabric,
      MoveCalls calls,
      Clock clock,
      Duration callTimeout) {
    this.planner = planner;
    this.agents = agents;
    this.fabric = fabric;
    this.calls = calls;
    this.clock = clock;
    this.callTimeout = callTimeout;
    this.claims = new ClaimStep(agents, fabric, calls);
  }

  StepOutcome step(MigrationRequest mr, Runnable wake) {
    MigrationRequestStatus st = mr.getStatus();
    Optional<Flight> flight = calls.find(st.getMigrationId());
    if (flight.isPresent() && flight.get().answer().isDone()) {
      calls.forget(st.getMigrationId());
      return answered(mr, flight.get(), wake);
    }
    if (flight.isPresent()) {
      Flight f = flight.get();
      // Not while the address is being claimed: a rollback then could give the address back
      // before the claim in flight takes it to the target. The claim is bounded (settle-timeout).
      if (f.kind() == Kind.MOVE && f.reason() == null && deadlinePassed(mr, f.plan())) {
        return rollBackAtDeadline(mr, f.plan(), wake);
      }
      return StepOutcome.wait(waitingFor(f.kind()), f.kind() + " in flight", POLL);
    }
    // No call in flight: the first reconcile in Moving, or an operator restarted in it.
    Plan plan;
    try {
      Optional<Plan> prepared = calls.takePrepared(st.getMigrationId());
      plan = prepared.isPresent() ? prepared.get() : planner.plan(mr, st.getTargetPod());
    } catch (InvalidRequest e) {
      return StepOutcome.end(
          Phase.Failed,
          Reasons.INVALID,
          "while Moving: "
              + e.getMessage()
              + "; the agents still hold what they hold, and the hold limit hands the clients back",
          Report.NONE);
    }
    if (deadlinePassed(mr, plan)) {
      return rollBackAtDeadline(mr, plan, wake);
    }
    return move(mr, plan, null, null, wake);
  }

  private StepOutcome move(
      MigrationRequest mr, Plan plan, String reason, String note, Runnable wake) {
    send(mr, plan, false, reason, note, wake);
    return StepOutcome.wait(
        Reasons.MOVE_IN_FLIGHT, "Move sent to the agent of " + plan.sourceNode(), POLL);
  }

  /**
   * Starts Move on the source agent as a flight of kind MOVE; with {@code prepareOnly} the agent
   * pre-copies and answers PREPARED, freezing nothing (Prepared).
   */
  void send(
      MigrationRequest mr,
      Plan plan,
      boolean prepareOnly,
      String reason,
      String note,
      Runnable wake) {
    MoveRequest request = request(mr, plan, prepareOnly);
    Optional<MoveCalls.SignedAhead> ahead =
        prepareOnly ? Optional.empty() : calls.takeSignedAhead(plan.id());
    Agent source = agents.agent(plan.sourceAgent());
    Duration timeout = plan.deadline().plus(callTimeout);
    calls.start(
        Kind.MOVE,
        plan,
        reason,
        note,
        () -> source.move(signedAhead(ahead, request), timeout),
        wake);
  }

  /**
   * The step before Moving (Preparing, or Prepared's proceed) hands over: the plan, which Moving
   * need not make again, and the Move signed off the reconcile's thread while the status that
   * enters Moving is written. Signing takes a millisecond of ECDSA, which Moving's first turn would
   * otherwise spend between that write and the call.
   */
  void ahead(MigrationRequest mr, Plan plan) {
    calls.prepared(plan);
    MoveRequest request = request(mr, plan, false);
    Agent source = agents.agent(plan.sourceAgent());
    calls.signAhead(plan.id(), clock.instant(), () -> source.signed(request));
  }

  /**
   * The Move signed ahead when it is ready, recent ({@link #SIGNED_AHEAD_FOR}) and the very request
   * Moving sends now; otherwise {@code request}, which the agent client signs as it sends it.
   */
  private MoveRequest signedAhead(Optional<MoveCalls.SignedAhead> ahead, MoveRequest request) {
    if (ahead.isEmpty()
        || Duration.between(ahead.get().at(), clock.instant()).compareTo(SIGNED_AHEAD_FOR) > 0) {
      return request;
    }
    MoveRequest signed;
    try {
      signed = ahead.get().request().getNow(null);
    } catch (RuntimeException e) {
      LOG.fine(() -> "signing " + request.getMigrationId() + " ahead failed: " + e);
      return request;
    }
    return signed != null && signed.toBuilder().clearPlan().build().equals(request)
        ? signed
        : request;
  }

  /**
   * The MoveRequest the plan and the spec make; the address plan depends on the fabric. Only
   * Prepared asks for {@code prepareOnly}: a Move from Moving always freezes and moves.
   */
  MoveRequest request(MigrationRequest mr, Plan plan, boolean prepareOnly) {
    boolean claims = hasAddress(plan) && fabric.get().claimsBeforeCommit();
    MoveAddressPlan address =
        MoveAddressPlan.newBuilder()
            .setCidr(hasAddress(plan) ? plan.address() : "")
            .setHostRoute(true)
            .setAnnounce(hasAddress(plan) && fabric.get().announces())
            .setClaimedByCaller(claims)
            // Where the source can forward, the agents commit without waiting for the claim,
            // and this step claims after (claimAfterCommit).
            .setClaimAfterForwardedCommit(claims)
            .build();
    return MoveRequest.newBuilder()
        .setMigrationId(plan.id())
        .setSourcePod(plan.source())
        .setTargetPod(plan.target())
        .addAllPorts(plan.ports())
        .setTargetAgent(plan.targetAgent())
        .setSourceNode(plan.sourceNode())
        .setTargetNode(plan.targetNode())
        .setHoldLimitMs((int) Math.min(Integer.MAX_VALUE, plan.holdLimit().toMillis()))
        .setAllowPartial(mr.getSpec().isAllowPartial())
        .setAddress(address)
        .setFault(faultPoint(mr))
        .setPrepareOnly(prepareOnly)
        .build();
  }

  /**
   * Tests only, as KubeVirt's forced-failure annotations: the fault point the request names. Only
   * an agent started with {@code ferry.agent.fault-points=true} acts on it; the others ignore a
   * point they know and refuse a name they do not.
   */
  static final String FAULT_ANNOTATION = "ferry.dev/fault-point";

  /**
   * Asks an ended request to roll back what its source agent still holds (after RollbackFailed,
   * say): {@code kubectl annotate mr NAME ferry.dev/rollback=VALUE}, each new value once. The
   * status records the value it answered (status.rollbackRequest).
   */
  public static final String ROLLBACK_ANNOTATION = "ferry.dev/rollback";

  /**
   * Moves a request that waits in Prepared (spec.prepareOnly): {@code kubectl annotate mr NAME
   * ferry.dev/proceed=VALUE}, any value but an empty one. A policy sets it when the node's
   * interruption follows its rebalance recommendation.
   */
  public static final String PROCEED_ANNOTATION = "ferry.dev/proceed";

  /** The value of the proceed annotation, if set and not empty; else null. */
  static String proceedAsked(MigrationRequest mr) {
    var annotations = mr.getMetadata().getAnnotations();
    String asked = annotations == null ? null : annotations.get(PROCEED_ANNOTATION);
    return asked == null || asked.isEmpty() ? null : asked;
  }

  /** The rollback the annotation asks for and the status has not answered; else null. */
  static String rollbackAsked(MigrationRequest mr) {
    var annotations = mr.getMetadata().getAnnotations();
    String asked = annotations == null ? null : annotations.get(ROLLBACK_ANNOTATION);
    if (asked == null || mr.getStatus() == null) {
      return null;
    }
    return asked.equals(mr.getStatus().getRollbackRequest()) ? null : asked;
  }

  /**
   * An ended request whose annotation asks for a rollback: Rollback on the source agent, as at a
   * deadline; its answer ends the request again (RolledBack, or Failed saying where each connection
   * is). The source agent refuses past the commit point: nothing is rebuilt then.
   */
  StepOutcome rollbackOnRequest(MigrationRequest mr, Runnable wake) {
    MigrationRequestStatus st = mr.getStatus();
    if (st.getPhase() != Phase.Failed) {
      return StepOutcome.end(
          st.getPhase(),
          Reasons.ROLLBACK_REQUESTED,
          ROLLBACK_ANNOTATION
              + " ignored: the request ended "
              + st.getPhase()
              + ", so nothing waits to be rolled back; "
              + text(st.getMessage(), ""),
          Report.NONE);
    }
    Optional<Flight> flight = calls.find(st.getMigrationId());
    if (flight.isPresent() && flight.get().answer().isDone()) {
      calls.forget(st.getMigrationId());
      return answered(mr, flight.get(), wake);
    }
    if (flight.isPresent()) {
      return StepOutcome.wait(Reasons.ROLLING_BACK, "Rollback in flight", POLL);
    }
    Plan plan;
    try {
      plan = planner.plan(mr, st.getTargetPod());
    } catch (InvalidRequest e) {
      return StepOutcome.end(
          st.getPhase(),
          Reasons.ROLLBACK_FAILED,
          "the rollback asked with "
              + ROLLBACK_ANNOTATION
              + " cannot find the source agent: "
              + e.getMessage(),
          Report.NONE);
    }
    return rollBack(
        plan,
        Reasons.ROLLBACK_REQUESTED,
        "rollback asked with " + ROLLBACK_ANNOTATION + "=" + rollbackAsked(mr),
        wake,
        true);
  }

  private static String faultPoint(MigrationRequest mr) {
    var annotations = mr.getMetadata().getAnnotations();
    return annotations == null ? "" : annotations.getOrDefault(FAULT_ANNOTATION, "");
  }

  /**
   * The migration's course once {@code flight} has answered or failed, whichever phase it started
   * in (Prepared hands here every answer but its own PREPARED).
   */
  StepOutcome answered(MigrationRequest mr, Flight flight, Runnable wake) {
    MoveOutcome o;
    try {
      o = flight.answer().join();
    } catch (RuntimeException e) {
      return callFailed(mr, flight, MoveCalls.cause(e), wake);
    }
    if (flight.kind() == Kind.ROLLBACK) {
      return rolledBack(mr, flight, o, wake);
    }
    if (flight.kind() == Kind.MOVE && claims.owed(flight.plan(), o)) {
      return claims.afterCommit(flight, o, wake);
    }
    return switch (o.getResult()) {
      // The prepare-only Move of Prepared answered after the request proceeded: Move again,
      // without prepare_only, which joins the prepared move and moves.
      case PREPARED -> move(mr, flight.plan(), flight.reason(), flight.note(), wake);
      case AWAITING_ADDRESS ->
          flight.kind() == Kind.MOVE
              ? claims.thenCommit(flight, o.getForwarding(), wake)
              : end(
                  Phase.Failed, Reasons.MOVE_FAILED, flight, "Commit answered AWAITING_ADDRESS", o);
      case COMPLETED ->
          end(
              Phase.Completed,
              Reasons.COMPLETED,
              flight,
              "every connection that could move lives on " + flight.plan().targetNode(),
              o);
      case ROLLED_BACK -> {
        boolean whole = report(flight.plan(), o).connections().getFailed() == 0;
        yield end(
            whole ? Phase.RolledBack : Phase.Failed,
            whole ? Reasons.ROLLED_BACK : Reasons.ROLLBACK_INCOMPLETE,
            flight,
            "in "
                + mr.getStatus().getPhase()
                + ": "
                + text(o.getMessage(), "the agents rolled the move back"),
            o);
      }
      case NOTHING_TO_MOVE ->
          // The agent says which: no connection at all on the ports, or each kept by its
          // application (then connectionDetails lists them).
          end(
              Phase.Failed,
              Reasons.NOTHING_FROZEN,
              flight,
              text(o.getMessage(), "no connection could be frozen: each is kept by its application")
                  + "; the address stays"
                  + (o.getSource().getConnectionsCount() > 0 ? " (see connectionDetails)" : ""),
              o);
      case FAILED ->
          end(
              Phase.Failed,
              Reasons.MOVE_FAILED,
              flight,
              text(o.getMessage(), "the agents' move failed") + failedConnections(o),
              o);
      default ->
          end(
              Phase.Failed,
              Reasons.MOVE_FAILED,
              flight,
              "the agent of " + flight.plan().sourceNode() + " answered " + o.getResult(),
              o);
    };
  }

  private StepOutcome callFailed(MigrationRequest mr, Flight flight, Throwable e, Runnable wake) {
    Plan plan = flight.plan();
    if (e instanceof ClaimStep.AfterCommitFailed late) {
      return claims.failedAfterCommit(mr, flight, late, deadlinePassed(mr, flight.plan()));
    }
    if (e instanceof ClaimStep.Failed claim) {
      String why = "in Moving: " + claim.getCause().getMessage();
      LOG.warning(
          () ->
              mr.getMetadata().getNamespace()
                  + "/"
                  + mr.getMetadata().getName()
                  + ": "
                  + why
                  + "; rolling back");
      // A claim EC2 turned down moved nothing: there is no address to give back, and asking
      // for it would only be turned down the same way.
      boolean mayHaveMoved =
          !(claim.getCause() instanceof AddressClaimFailed f && f.nothingAssigned());
      return rollBack(plan, Reasons.ADDRESS_CLAIM_FAILED, why, wake, mayHaveMoved);
    }
    if (!(e instanceof AgentClient.Failed failed)) {
      return StepOutcome.end(
          Phase.Failed, Reasons.MOVE_FAILED, flight.kind() + " failed: " + e, Report.of(plan));
    }
    if (flight.kind() == Kind.ROLLBACK) {
      if (refused(failed) && Reasons.DEADLINE_PASSED.equals(flight.reason())) {
        // Past its commit point: the move goes on to its end, which the status then reports.
        return move(
            mr,
            plan,
            flight.reason(),
            flight.note() + ", and the source agent would not roll back: " + failed.getMessage(),
            wake);
      }
      return rollbackFailed(mr, flight, failed.getMessage());
    }
    if (worthRetrying(failed)) {
      // The agent keeps moving without us; Move again joins it, or answers how it ended.
      return StepOutcome.wait(Reasons.AGENT_UNREACHABLE, failed.getMessage(), RETRY);
    }
    return StepOutcome.end(
        Phase.Failed,
        Reasons.AGENT_REFUSED,
        failed.getMessage() + (flight.note() == null ? "" : "; " + flight.note()),
        Report.of(plan));
  }

  private StepOutcome rollBackAtDeadline(MigrationRequest mr, Plan plan, Runnable wake) {
    String why = "spec.deadline (" + mr.getSpec().getDeadline() + ") passed in phase Moving";
    return rollBack(plan, Reasons.DEADLINE_PASSED, why, wake, true);
  }

  /**
   * Rollback on the source agent; where the operator claims the address (AWS), the fabric then
   * gives it back to the source node, unless the agent was past its commit point. That is best
   * effort: the connections are back either way, and a claim-back is idempotent. Always {@link
   * Fabric#claimBack}, never a first claim: the claim for the target may have been made, in this
   * process or (Moving keeps nothing across a restart) before the operator restarted, and may still
   * be landing; a claim-back is not overtaken by it. Skipped only when {@code addressMayHaveMoved}
   * is false: this process's claim was turned down by EC2 before anything was assigned.
   */
  StepOutcome rollBack(
      Plan plan, String reason, String why, Runnable wake, boolean addressMayHaveMoved) {
    Agent source = agents.agent(plan.sourceAgent());
    Fabric network = fabric.get();
    boolean addressBack = addressMayHaveMoved && hasAddress(plan) && network.claimsBeforeCommit();
    calls.start(
        Kind.ROLLBACK,
        plan,
        reason,
        why,
        () -> {
          MoveOutcome.Builder o =
              MoveOutcome.newBuilder().setResult(MoveOutcome.Result.ROLLED_BACK);
          try {
            MigrationStatus s = source.rollback(plan.id());
            o.setSource(s).setCommitted(pastCommit(s));
          } catch (AgentClient.Failed e) {
            if (!e.notFound()) {
              throw e;
            }
            // The source agent never saw the migration: nothing of it to give back.
          }
          if (addressBack && !o.getCommitted()) {
            try {
              network.claimBack(bare(plan.address()), plan.sourceNode());
            } catch (Exception e) {
              o.setMessage(
                  "giving the address back to " + plan.sourceNode() + " failed: " + e.getMessage());
            }
          }
          return o.build();
        },
        wake);
    return StepOutcome.wait(Reasons.ROLLING_BACK, why + "; rolling back", POLL);
  }

  private StepOutcome rolledBack(MigrationRequest mr, Flight flight, MoveOutcome o, Runnable wake) {
    if (o.getCommitted() && Reasons.DEADLINE_PASSED.equals(flight.reason())) {
      return move(
          mr,
          flight.plan(),
          flight.reason(),
          flight.note()
              + ", and the source agent would not roll back: the connections are past the commit"
              + " point",
          wake);
    }
    Report report = report(flight.plan(), o);
    boolean whole = !o.getCommitted() && report.connections().getFailed() == 0;
    String problems = o.getMessage().isEmpty() ? "" : "; on the way back: " + o.getMessage();
    return StepOutcome.end(
        whole ? Phase.RolledBack : Phase.Failed,
        whole ? flight.reason() : Reasons.ROLLBACK_INCOMPLETE,
        flight.note() + problems,
        report);
  }

  private StepOutcome rollbackFailed(MigrationRequest mr, Flight flight, String why) {
    return StepOutcome.end(
        Phase.Failed,
        Reasons.ROLLBACK_FAILED,
        flight.note()
            + "; rolling back failed too: "
            + why
            + (mr.getStatus().getPhase() == Phase.Prepared
                ? ". Nothing was frozen, so no client is held; the source agent drops what it"
                    + " pre-copied at its prepared limit (9 minutes at most);"
                : ". The source agent keeps the states and holds the clients until"
                    + " spec.holdLimit;")
            + " retry with: kubectl annotate migrationrequest -n "
            + mr.getMetadata().getNamespace()
            + " "
            + mr.getMetadata().getName()
            + " "
            + ROLLBACK_ANNOTATION
            + "=$(date +%s) --overwrite",
        Report.of(flight.plan()));
  }

  private StepOutcome end(Phase end, String reason, Flight flight, String message, MoveOutcome o) {
    String note = flight.note() == null ? "" : " (" + flight.note() + ")";
    return StepOutcome.end(end, reason, message + note, report(flight.plan(), o));
  }

  /**
   * Where each connection is, from both agents' statuses: the side that holds the connections at
   * the end has the last word (the target once committed, the source otherwise).
   */
  static Report report(Plan plan, MoveOutcome o) {
    Outcomes outcomes = new Outcomes();
    boolean committed = o.getCommitted() || o.getResult() == MoveOutcome.Result.COMPLETED;
    List<MigrationStatus> order =
        committed ? List.of(o.getSource(), o.getTarget()) : List.of(o.getTarget(), o.getSource());
    order.forEach(outcomes::read);
    boolean moved = committed && hasAddress(plan);
    if (moved) {
      // Connections their application kept on the source lost the address (spec.allowPartial).
      outcomes.addressLeft();
    }
    Map<String, Double> agentMillis = new LinkedHashMap<>();
    o.getSource()
        .getPhaseMicrosMap()
        .forEach((k, v) -> agentMillis.put("agent.source." + k, ms(v)));
    o.getTarget()
        .getPhaseMicrosMap()
        .forEach((k, v) -> agentMillis.put("agent.target." + k, ms(v)));
    ConnectionCounts counts = outcomes.counts();
    return new Report(
        plan,
        counts,
        outcomes.details(),
        o.getPauseMicros() > 0 ? ms(o.getPauseMicros()) : null,
        agentMillis,
        moved && o.getResult() == MoveOutcome.Result.COMPLETED);
  }

  /** The connections the agents report FAILED, with their reasons, for the message. */
  private static String failedConnections(MoveOutcome o) {
    List<String> failed = new ArrayList<>();
    for (MigrationStatus s : List.of(o.getSource(), o.getTarget())) {
      for (ConnectionStatus c : s.getConnectionsList()) {
        if (c.getPhase() == ConnectionPhase.FAILED) {
          failed.add(Outcomes.format(c.getId()) + " on " + s.getNode() + ": " + c.getReason());
        }
      }
    }
    if (failed.isEmpty()) {
      return "";
    }
    String listed =
        String.join("; ", failed.subList(0, Math.min(failed.size(), LISTED_CONNECTIONS)));
    return ": "
        + listed
        + (failed.size() > LISTED_CONNECTIONS
            ? "; and " + (failed.size() - LISTED_CONNECTIONS) + " more (see connectionDetails)"
            : "");
  }

  private boolean deadlinePassed(MigrationRequest mr, Plan plan) {
    return PrepareStep.deadlinePassed(mr.getStatus(), plan.deadline(), clock);
  }

  private static boolean pastCommit(MigrationStatus s) {
    return s.getConnectionsList().stream()
        .anyMatch(c -> c.getPhase() == RELEASED || c.getPhase() == RESUMED);
  }

  /** The agent answered, and will answer the same again: not worth calling again. */
  private static boolean refused(AgentClient.Failed e) {
    return e.status.getCode() == Status.Code.FAILED_PRECONDITION;
  }

  private static boolean worthRetrying(AgentClient.Failed e) {
    Status.Code code = e.status.getCode();
    return code == Status.Code.UNAVAILABLE
        || code == Status.Code.DEADLINE_EXCEEDED
        || code == Status.Code.ABORTED
        || code == Status.Code.RESOURCE_EXHAUSTED;
  }

  static String waitingFor(Kind kind) {
    return switch (kind) {
      case MOVE -> Reasons.MOVE_IN_FLIGHT;
      case COMMIT, CLAIM -> Reasons.CLAIMING_ADDRESS;
      case ROLLBACK -> Reasons.ROLLING_BACK;
    };
  }

  static boolean hasAddress(Plan plan) {
    return plan.address() != null && !plan.address().isEmpty();
  }

  /** The address without its prefix length: what EC2 calls it. */
  static String bare(String cidr) {
    int slash = cidr.indexOf('/');
    return slash < 0 ? cidr : cidr.substring(0, slash);
  }

  private static String text(String s, String otherwise) {
    return s == null || s.isEmpty() ? otherwise : s;
  }

  private static double ms(long micros) {
    return Math.round(micros / 100.0) / 10.0;
  }
}
