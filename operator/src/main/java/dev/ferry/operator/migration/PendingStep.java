// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.Phase;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;

/**
 * Pending: the request waits for a migration slot ({@link MigrationSlots}), then Preparing checks
 * it. Touches nothing in the cluster. It reads only the source pod's node, which the limits count;
 * a request whose source cannot be read goes on to Preparing, which fails it with the reason. Once
 * admitted, it starts the operator's connections to both agents Preparing calls.
 */
final class PendingStep {
  /**
   * How soon a waiting request looks again if nothing wakes it: the end of a migration wakes the
   * waiting requests that its slot lets go ({@link MigrationSlots#next}), so this only covers a
   * wake that was lost; a deadline that passes meanwhile is looked at when it is due ({@link
   * #recheck}). Each look takes the slots' one lock: at 10 s, 1,000 waiting requests looked 70
   * times a second in make bench-operator, when each look still counted every request (2 ms each).
   */
  static final Duration RECHECK = Duration.ofMinutes(1);

  /** Past the deadline, not on it: the check that fails the request asks whether it is after. */
  private static final Duration PAST = Duration.ofMillis(100);

  private final Planner planner;
  private final Agents agents;
  private final MigrationSlots slots;
  private final Clock clock;

  PendingStep(Planner planner, Agents agents, MigrationSlots slots, Clock clock) {
    this.planner = planner;
    this.agents = agents;
    this.slots = slots;
    this.clock = clock;
  }

  StepOutcome step(MigrationRequest mr) {
    // The source node, once known, is kept in the status: a request that waits long is checked
    // against its cache, not planned again against the API server each time it looks.
    String node = mr.getStatus().getSourceNode();
    Duration deadline;
    try {
      if (node == null) {
        node = planner.sourceNode(mr);
      }
      deadline = Durations.parse("spec.deadline", mr.getSpec().getDeadline());
    } catch (InvalidRequest e) {
      return accepted(Report.NONE);
    }
    if (PrepareStep.deadlinePassed(mr.getStatus(), deadline, clock)) {
      return StepOutcome.end(
          Phase.Failed,
          Reasons.DEADLINE_PASSED,
          "spec.deadline ("
              + mr.getSpec().getDeadline()
              + ") passed while the request waited in Pending for a migration slot",
          Report.NONE);
    }
    Optional<String> waits = slots.admit(mr, node);
    if (waits.isPresent()) {
      return StepOutcome.stay(Reasons.WAITING_FOR_SLOT, waits.get(), recheck(mr, deadline), node);
    }
    connectAhead(mr);
    return accepted(Report.NONE);
  }

  /**
   * Starts connecting to the agents of both nodes, where the operator has no connection yet, and
   * returns at once. A new connection is a mutual TLS handshake, 6-7 ms of Preparing's first call
   * in make bench-operator, where each migration met a node the operator had not called before (as
   * a reclaim of many nodes does); begun here, it runs beside the status write that enters
   * Preparing. A request that cannot be planned is left for Preparing to fail with the reason.
   */
  private void connectAhead(MigrationRequest mr) {
    Plan plan;
    try {
      plan = planner.plan(mr, mr.getStatus().getTargetPod());
    } catch (InvalidRequest e) {
      return;
    }
    agents.agent(plan.targetAgent()).connect();
    agents.agent(plan.sourceAgent()).connect();
  }

  /** {@link #RECHECK}, or just past spec.deadline if that comes first. */
  private Duration recheck(MigrationRequest mr, Duration deadline) {
    return PrepareStep.due(mr.getStatus(), deadline)
        .map(due -> Duration.between(clock.instant(), due.plus(PAST)))
        .filter(left -> left.compareTo(RECHECK) < 0)
        .orElse(RECHECK);
  }

  private static StepOutcome accepted(Report report) {
    return StepOutcome.advance(
        Phase.Preparing,
        Reasons.ACCEPTED,
        "accepted; checking the pods, their nodes and agents",
        report);
  }
}
