// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.operator.migration.MoveCalls.Flight;
import dev.ferry.operator.migration.MoveCalls.Kind;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;

/**
 * Prepared (spec.prepareOnly): the source agent pre-copies each application's state to the target
 * and keeps it up to date, freezing nothing (a Move with prepare_only, in flight as {@link
 * MoveStep}'s calls are), and the request waits for the annotation {@code ferry.dev/proceed}. With
 * it, the source pod is guarded against eviction and the request goes on to Moving, whose Move
 * joins the prepared one. At spec.deadline without it, Rollback on the source agent drops what was
 * pre-copied, and the request ends RolledBack. No eviction guard is held in this phase: one held
 * while nothing moves would block a node's drain for minutes.
 */
final class PreparedStep {
  /**
   * How soon a request in Prepared looks again if nothing wakes it, for its deadline: the answer of
   * its call and a change of the proceed annotation wake it sooner.
   */
  static final Duration RECHECK = Duration.ofSeconds(10);

  private final Planner planner;
  private final MoveCalls calls;
  private final MoveStep move;
  private final EvictionGuard guard;
  private final Clock clock;

  PreparedStep(Planner planner, MoveCalls calls, MoveStep move, EvictionGuard guard, Clock clock) {
    this.planner = planner;
    this.calls = calls;
    this.move = move;
    this.guard = guard;
    this.clock = clock;
  }

  StepOutcome step(MigrationRequest mr, Runnable wake) {
    MigrationRequestStatus st = mr.getStatus();
    Optional<Flight> flight = calls.find(st.getMigrationId());
    Plan known = flight.map(Flight::plan).orElse(null);
    boolean precopied = precopied(st);
    if (flight.isPresent() && flight.get().answer().isDone()) {
      calls.forget(st.getMigrationId());
      if (!answeredPrepared(flight.get())) {
        // Refused, failed, unreachable, or it did more than prepare: as a Move's answer.
        return move.answered(mr, flight.get(), wake);
      }
      calls.heardPrepared(st.getMigrationId(), clock.instant());
      // Kept for the next question and the proceed: planning again reads pods and nodes.
      calls.prepared(flight.get().plan());
      flight = Optional.empty();
      precopied = true;
    }
    if (flight.isPresent() && flight.get().kind() != Kind.MOVE) {
      Kind kind = flight.get().kind(); // the deadline's Rollback: let it end
      return StepOutcome.wait(MoveStep.waitingFor(kind), kind + " in flight", RECHECK);
    }
    Duration deadline;
    try {
      deadline = Durations.parse("spec.deadline", mr.getSpec().getDeadline());
    } catch (InvalidRequest e) {
      return invalid(e);
    }
    String proceed = MoveStep.proceedAsked(mr);
    // Not over a Move that MoveStep's answer handling sent itself (it names its reason): that one
    // is seen to its end, as in Moving.
    boolean ours = flight.map(f -> f.reason() == null).orElse(true);
    if (ours && PrepareStep.deadlinePassed(st, deadline, clock)) {
      return rollBackAtDeadline(mr, known, proceed, wake);
    }
    if (proceed != null) {
      return proceed(mr, known, flight.isPresent(), proceed);
    }
    if (flight.isPresent()) {
      return StepOutcome.wait(Reasons.PRE_COPYING, "Move (prepare only) in flight", RECHECK);
    }
    if (precopied) {
      // Asked again every RECHECK (the agent answers a repeated prepare-only Move as the first,
      // or how the prepared move ended: its target's agent went away, say), so that the status
      // does not say pre-copied of a move that can no longer go on. Written once: the same
      // reason and message again change nothing.
      Duration since =
          calls
              .lastHeardPrepared(st.getMigrationId())
              .map(t -> Duration.between(t, clock.instant()))
              .orElse(RECHECK);
      if (since.compareTo(RECHECK) >= 0) {
        try {
          askToPrepare(mr, wake);
        } catch (InvalidRequest e) {
          return invalid(e);
        }
        return StepOutcome.stay(Reasons.STATE_PRECOPIED, precopiedMessage(mr), RECHECK);
      }
      return StepOutcome.stay(Reasons.STATE_PRECOPIED, precopiedMessage(mr), RECHECK.minus(since));
    }
    // The first turn here, or an operator restarted before the state was pre-copied: the agent
    // answers a repeated prepare-only Move as the first.
    return precopy(mr, wake);
  }

  private StepOutcome precopy(MigrationRequest mr, Runnable wake) {
    Plan plan;
    try {
      plan = askToPrepare(mr, wake);
    } catch (InvalidRequest e) {
      return invalid(e);
    }
    return StepOutcome.wait(
        Reasons.PRE_COPYING,
        "Move (prepare only) sent to the agent of " + plan.sourceNode(),
        RECHECK);
  }

  /** Move with prepare_only on the source agent, as a flight; the first time and every RECHECK. */
  private Plan askToPrepare(MigrationRequest mr, Runnable wake) throws InvalidRequest {
    Plan plan = plan(mr, null);
    move.send(mr, plan, true, null, null, wake);
    return plan;
  }

  /**
   * Guards the source pod, now that it moves, and goes on to Moving. A prepare-only Move still in
   * flight is left to Moving, which reads its answer.
   */
  private StepOutcome proceed(MigrationRequest mr, Plan known, boolean inFlight, String value) {
    Plan plan;
    try {
      plan = plan(mr, known);
    } catch (InvalidRequest e) {
      return invalid(e);
    }
    Optional<String> unguarded = guard.protect(mr, plan);
    if (!inFlight) {
      move.ahead(mr, plan);
    }
    return StepOutcome.advance(
        Phase.Moving,
        Reasons.PROCEEDING,
        MoveStep.PROCEED_ANNOTATION
            + "="
            + value
            + ": moving the connections of "
            + plan.source().getName()
            + " to "
            + plan.target().getName()
            + " on "
            + plan.targetNode()
            + unguarded.map(w -> "; " + w).orElse(""),
        Report.of(plan));
  }

  private StepOutcome rollBackAtDeadline(
      MigrationRequest mr, Plan known, String proceed, Runnable wake) {
    Plan plan;
    try {
      plan = plan(mr, known);
    } catch (InvalidRequest e) {
      return invalid(e);
    }
    String why =
        "spec.deadline ("
            + mr.getSpec().getDeadline()
            + ") passed in phase Prepared "
            + (proceed == null
                ? "before " + MoveStep.PROCEED_ANNOTATION
                : "before " + MoveStep.PROCEED_ANNOTATION + "=" + proceed + " was acted on")
            + ": nothing was frozen; rolling back drops the pre-copied state";
    // Nothing claimed the address in Prepared: there is none to give back.
    return move.rollBack(plan, Reasons.DEADLINE_PASSED, why, wake, false);
  }

  /** The flight's plan, else Preparing's, else a new plan against the cluster. */
  private Plan plan(MigrationRequest mr, Plan known) throws InvalidRequest {
    if (known != null) {
      return known;
    }
    MigrationRequestStatus st = mr.getStatus();
    Optional<Plan> prepared = calls.takePrepared(st.getMigrationId());
    return prepared.isPresent() ? prepared.get() : planner.plan(mr, st.getTargetPod());
  }

  private static StepOutcome invalid(InvalidRequest e) {
    return StepOutcome.end(
        Phase.Failed,
        Reasons.INVALID,
        "in Prepared: "
            + e.getMessage()
            + "; nothing was frozen, and the source agent drops what it pre-copied at its own"
            + " limit",
        Report.NONE);
  }

  private static String precopiedMessage(MigrationRequest mr) {
    MigrationRequestStatus st = mr.getStatus();
    return "the application state is pre-copied to "
        + st.getTargetPod()
        + " on "
        + st.getTargetNode()
        + " and kept up to date; nothing is frozen. Move with: kubectl annotate"
        + " migrationrequest -n "
        + mr.getMetadata().getNamespace()
        + " "
        + mr.getMetadata().getName()
        + " "
        + MoveStep.PROCEED_ANNOTATION
        + "=now";
  }

  /** Whether the status already says the state is pre-copied (an earlier turn wrote it). */
  private static boolean precopied(MigrationRequestStatus st) {
    return Reasons.STATE_PRECOPIED.equals(Conditions.progressingReason(st));
  }

  private static boolean answeredPrepared(Flight flight) {
    if (flight.kind() != Kind.MOVE || flight.answer().isCompletedExceptionally()) {
      return false;
    }
    return flight.answer().join().getResult() == MoveOutcome.Result.PREPARED;
  }
}
