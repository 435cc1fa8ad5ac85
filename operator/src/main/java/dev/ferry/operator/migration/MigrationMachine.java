// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.crd.ConnectionCounts;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PhaseTransition;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.operator.address.Fabric;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * The MigrationRequest state machine: reads status.phase, runs that phase's one short step, and
 * applies the step's {@link StepOutcome} to the status, which the caller then writes (at most once
 * a turn, and only when it changed).
 *
 * <pre>
 * Pending   --Accepted-->  Preparing  (PendingStep: a migration slot free under the limits;
 *                                      begins the target's check, the source agent's connection
 *                                      and the eviction guard)
 * Preparing --Prepared-->  Moving     (PrepareStep: plan, validate, the target agent, the source
 *                                      pod guarded against eviction; a dry run ends here)
 * Preparing --Prepared-->  Prepared   (PrepareStep, spec.prepareOnly without ferry.dev/proceed:
 *                                      the same, but no guard)
 * Prepared  --Proceeding-> Moving     (PreparedStep: the state pre-copied, nothing frozen, until
 *                                      ferry.dev/proceed; then guard the source pod)
 * Prepared  -->            RolledBack (PreparedStep: spec.deadline passed; nothing was frozen)
 * Moving    -->            Completed | Failed | RolledBack  (MoveStep: the agents' Move)
 * </pre>
 *
 * A step may also wait: nothing the status shows changed, so nothing is written; or stay, written
 * when what the status shows of the phase changed (Pending's queue, Prepared's pre-copy). The
 * clients are held only inside Moving, and nothing is written between entering Moving and its end.
 */
public final class MigrationMachine {
  private static final Logger LOG = Logger.getLogger(MigrationMachine.class.getName());

  /**
   * What the caller does after a turn.
   *
   * @param writeStatus the status changed: write it
   * @param reschedule when to reconcile again if nothing else wakes the request; empty: never
   * @param ended the request reached its end in this turn
   * @param delete the request ended long enough ago: delete it ({@link EndedRequests})
   */
  public record Turn(
      boolean writeStatus, Optional<Duration> reschedule, boolean ended, boolean delete) {
    Turn(boolean writeStatus, Optional<Duration> reschedule, boolean ended) {
      this(writeStatus, reschedule, ended, false);
    }
  }

  /** The annotation that asks an ended request to roll back again (see MoveStep). */
  public static final String ROLLBACK_ANNOTATION = MoveStep.ROLLBACK_ANNOTATION;

  /** The annotation that moves a request waiting in Prepared (see MoveStep). */
  public static final String PROCEED_ANNOTATION = MoveStep.PROCEED_ANNOTATION;

  private final PendingStep pending;
  private final PrepareStep prepare;
  private final PreparedStep prepared;
  private final MoveStep move;
  private final Planner planner;
  private final Agents agents;
  private final MoveCalls calls;
  private final StatusSink sink;
  private final MigrationSlots slots;
  private final EvictionGuard guard;
  private final EndedRequests ended;
  private final Clock clock;

  /**
   * Wakes the requests a freed slot lets go (the reconciler's; they reconcile on other threads).
   */
  private final Runnable slotFreed;

  public MigrationMachine(
      Planner planner,
      Agents agents,
      Supplier<Fabric> fabric,
      MoveCalls calls,
      StatusSink sink,
      MigrationSlots slots,
      EvictionGuard guard,
      EndedRequests ended,
      Clock clock,
      Duration callTimeout,
      Runnable slotFreed) {
    this.move = new MoveStep(planner, agents, fabric, calls, clock, callTimeout);
    this.prepare = new PrepareStep(planner, agents, fabric, guard, calls, move::ahead, clock);
    this.pending = new PendingStep(planner, slots, prepare::ahead, clock);
    this.prepared = new PreparedStep(planner, calls, move, guard, clock);
    this.planner = planner;
    this.agents = agents;
    this.calls = calls;
    this.sink = sink;
    this.slots = slots;
    this.guard = guard;
    this.ended = ended;
    this.clock = clock;
    this.slotFreed = slotFreed;
  }

  /**
   * One turn for {@code mr}, whose status it updates in place.
   *
   * @param wake makes the request's next reconcile happen now: a call in flight runs it when it
   *     ends
   */
  public Turn reconcile(MigrationRequest mr, Runnable wake) {
    boolean fresh = false;
    MigrationRequestStatus st = mr.getStatus();
    if (st == null || st.getPhase() == null) {
      st = new MigrationRequestStatus();
      Instant now = clock.instant();
      st.setPhase(Phase.Pending);
      st.setStartTime(now.toString());
      st.setPhaseTransitionTimestamps(List.of(new PhaseTransition(Phase.Pending, now.toString())));
      Conditions.set(
          st,
          Phase.Pending,
          Reasons.CREATED,
          "seen by the operator; starts when its turn comes",
          mr.getMetadata().getGeneration(),
          now);
      mr.setStatus(st);
      fresh = true;
    }
    Phase at = st.getPhase();
    if (at.finished()) {
      String asked = MoveStep.rollbackAsked(mr);
      if (asked != null) {
        Turn turn = apply(mr, at, move.rollbackOnRequest(mr, wake), false);
        if (turn.writeStatus()) {
          st.setRollbackRequest(asked); // answered: this value is not acted on again
        }
        // Not a second end for the metrics: the request ended once already.
        return new Turn(turn.writeStatus(), turn.reschedule(), false);
      }
      calls.forget(st.getMigrationId());
      Optional<Duration> left = ended.untilDeleted(mr);
      if (left.isPresent() && left.get().isZero()) {
        LOG.info(
            () ->
                name(mr)
                    + " ended at "
                    + mr.getStatus().getCompletionTime()
                    + ", more than "
                    + ended.keptAsWritten()
                    + " ago: deleted (ferry.operator.policy-requests-kept)");
        return new Turn(false, Optional.empty(), false, true);
      }
      return new Turn(false, left, false);
    }
    StepOutcome outcome =
        switch (at) {
          case Pending -> pending.step(mr);
          case Preparing -> prepare.step(mr);
          case Prepared -> prepared.step(mr, wake);
          case Moving -> move.step(mr, wake);
          default -> throw new IllegalStateException("no step for " + at);
        };
    return apply(mr, at, outcome, fresh);
  }

  private Turn apply(MigrationRequest mr, Phase at, StepOutcome outcome, boolean fresh) {
    if (outcome instanceof StepOutcome.Wait w) {
      LOG.fine(() -> name(mr) + " waits in " + at + ": " + w.reason() + ", " + w.message());
      return new Turn(fresh, Optional.of(w.reschedule()), false);
    }
    if (outcome instanceof StepOutcome.Stay s) {
      return stay(mr, at, s, fresh);
    }
    if (outcome instanceof StepOutcome.Advance a) {
      enter(mr, at, a.next(), a.reason(), a.message(), a.report());
      sink.event(mr, "Normal", a.next().name(), a.message());
      // Status-only writes do not wake a generation-aware controller: come back at once.
      return new Turn(true, Optional.of(Duration.ZERO), false);
    }
    StepOutcome.End e = (StepOutcome.End) outcome;
    MigrationRequestStatus st = mr.getStatus();
    // The agents are done with it: the slot is free now, and the next request starts beside this
    // end's writes (the guard's release, the address's record, the status), not after them. Were
    // one to fail, the retried reconcile reads the agent's answer again and ends the same way, the
    // next request keeping the slot.
    slots.release(mr);
    slotFreed.run();
    // Beside the address's record, which depends on nothing of it, so that the end waits for the
    // slower of the two; both are done before the status says the request ended.
    Runnable lifted = liftsGuard(mr, at) ? guard.startRelease(mr) : () -> {};
    try {
      if (e.report().addressMoved()) {
        sink.addressMoved(mr, e.report().plan());
      }
    } catch (RuntimeException failed) {
      lifted.run(); // nothing left running behind the retry
      throw failed;
    }
    enter(mr, at, e.end(), e.reason(), e.message(), e.report());
    st.setCompletionTime(clock.instant().toString());
    if (st.getConnections() == null) {
      st.setConnections(new ConnectionCounts());
    }
    lifted.run();
    calls.forget(st.getMigrationId());
    LOG.info(() -> name(mr) + " ended " + e.end() + " (" + e.reason() + "): " + e.message());
    sink.event(
        mr,
        e.end() == Phase.Completed ? "Normal" : "Warning",
        e.reason(),
        e.message()
            + " ("
            + st.getConnections().getMigrated()
            + " of "
            + st.getConnections().getTotal()
            + " migrated)");
    return new Turn(true, ended.untilDeleted(mr), true);
  }

  /**
   * Whether an end in phase {@code at} lifts the eviction guard: from Moving; from Prepared, which
   * holds none unless its turn into Moving was not written; from Preparing, where the guard was
   * raised as the request was admitted (not for a dry run, nor a request that only prepares); and
   * from any phase, one begun ahead in this operator. That one is waited for first: a release must
   * not run before the guard it lifts has landed.
   */
  private boolean liftsGuard(MigrationRequest mr, Phase at) {
    boolean begun = calls.settleAhead(mr.getMetadata().getUid());
    return begun
        || at == Phase.Moving
        || at == Phase.Prepared
        || (at == Phase.Preparing && PrepareStep.guarded(mr));
  }

  /** Still in phase {@code at}: the status shows why, written only when that changed. */
  private Turn stay(MigrationRequest mr, Phase at, StepOutcome.Stay s, boolean fresh) {
    MigrationRequestStatus st = mr.getStatus();
    boolean changed =
        !s.message().equals(st.getMessage())
            || !s.reason().equals(Conditions.progressingReason(st))
            || (s.sourceNode() != null && !s.sourceNode().equals(st.getSourceNode()));
    if (changed) {
      if (s.sourceNode() != null) {
        st.setSourceNode(s.sourceNode());
      }
      st.setMessage(s.message());
      Conditions.set(
          st, at, s.reason(), s.message(), mr.getMetadata().getGeneration(), clock.instant());
      LOG.info(() -> name(mr) + " waits in " + at + ": " + s.message());
    }
    return new Turn(fresh || changed, Optional.of(s.reschedule()), false);
  }

  /** Closes the clock of phase {@code was}, and records {@code next} with what the step learned. */
  private void enter(
      MigrationRequest mr, Phase was, Phase next, String reason, String message, Report report) {
    MigrationRequestStatus st = mr.getStatus();
    Instant now = clock.instant();
    Map<String, Double> millis =
        st.getPhaseMillis() == null ? new HashMap<>() : new HashMap<>(st.getPhaseMillis());
    // Pending too: a request may wait there for a migration slot, and Preparing's clock starts
    // where Pending's stops.
    if (!was.finished()) { // an ended request asked to roll back: its time since is no phase
      millis.merge(was.name(), round(Duration.between(entered(st), now)), Double::sum);
    }
    millis.putAll(report.agentPhaseMillis());
    st.setPhaseMillis(millis);
    Plan plan = report.plan();
    if (plan != null) {
      st.setMigrationId(plan.id());
      st.setSourceNode(plan.sourceNode());
      st.setTargetPod(plan.target().getName());
      st.setTargetNode(plan.targetNode());
      st.setAddress(plan.address());
    }
    if (report.connections() != null) {
      st.setConnections(report.connections());
      ConnectionDetails.record(st, report.details());
    }
    if (report.pauseMillis() != null) {
      st.setPauseMillis(report.pauseMillis());
    }
    st.setPhase(next);
    List<PhaseTransition> transitions =
        st.getPhaseTransitionTimestamps() == null
            ? new ArrayList<>()
            : new ArrayList<>(st.getPhaseTransitionTimestamps());
    transitions.add(new PhaseTransition(next, now.toString()));
    st.setPhaseTransitionTimestamps(transitions);
    st.setMessage(message);
    Conditions.set(st, next, reason, message, mr.getMetadata().getGeneration(), now);
  }

  /**
   * When the current phase began: the status keeps no such time, but each phase's operator time is
   * recorded when it ends, and the phases follow one another from startTime.
   */
  private static Instant entered(MigrationRequestStatus st) {
    double spent =
        st.getPhaseMillis() == null
            ? 0
            : st.getPhaseMillis().entrySet().stream()
                .filter(e -> !e.getKey().startsWith("agent."))
                .mapToDouble(Map.Entry::getValue)
                .sum();
    return Instant.parse(st.getStartTime()).plusNanos(Math.round(spent * 1e6));
  }

  /**
   * A request deleted before its end: in Pending or Preparing the agents hold nothing, and the
   * eviction guard raised since its admission is lifted; in Prepared or Moving the guard is lifted
   * and the source agent is asked to roll back (Prepared: to drop what it pre-copied), off the
   * caller's thread and best effort (past its commit point it refuses, and the connections stay on
   * the target). Writes no status.
   */
  public void cleanup(MigrationRequest mr) {
    MigrationRequestStatus st = mr.getStatus();
    slots.release(mr);
    if (liftsGuard(mr, st == null ? Phase.Pending : st.getPhase())) {
      guard.release(mr);
    }
    if (st == null || (st.getPhase() != Phase.Moving && st.getPhase() != Phase.Prepared)) {
      if (st != null) {
        calls.forget(st.getMigrationId());
      }
      return;
    }
    Phase at = st.getPhase();
    Plan plan;
    Optional<MoveCalls.Flight> flight = calls.find(st.getMigrationId());
    if (flight.isPresent()) {
      plan = flight.get().plan();
    } else {
      try {
        plan = planner.plan(mr, st.getTargetPod());
      } catch (InvalidRequest e) {
        LOG.warning(
            () ->
                "deleting "
                    + name(mr)
                    + " in "
                    + at
                    + ": cannot roll back, "
                    + e.getMessage()
                    + (at == Phase.Prepared
                        ? "; the source agent drops what it pre-copied at its own limit"
                        : "; the hold limit hands the clients back"));
        return;
      }
    }
    calls.forget(st.getMigrationId());
    Agent source = agents.agent(plan.sourceAgent());
    calls.runBestEffort(
        "rolling back deleted " + name(mr),
        () -> {
          String what;
          try {
            MigrationStatus s = source.rollback(plan.id());
            what = "rolled back on " + s.getNode();
          } catch (AgentClient.Failed e) {
            if (!e.notFound()) {
              throw e;
            }
            what = "the source agent never saw it";
          }
          String said = what;
          LOG.info(() -> "deleted " + name(mr) + " in " + at + ": " + said);
          sink.event(mr, "Warning", Reasons.DELETED, "deleted in " + at + ": " + said);
        });
  }

  private static String name(MigrationRequest mr) {
    return mr.getMetadata().getNamespace() + "/" + mr.getMetadata().getName();
  }

  private static double round(Duration d) {
    return Math.round(d.toNanos() / 1e5) / 10.0;
  }
}
