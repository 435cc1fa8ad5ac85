// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.Phase;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;

/**
 * Pending: the request waits for a migration slot ({@link MigrationSlots}), then Preparing checks
 * it. Touches nothing. The plan made here only names the source node the limits count; a request
 * that cannot be planned goes on to Preparing, which fails it with the reason.
 */
final class PendingStep {
  /**
   * How soon a waiting request looks again if nothing wakes it (the end of any migration wakes
   * every waiting request).
   */
  static final Duration RECHECK = Duration.ofSeconds(5);

  private final Planner planner;
  private final MigrationSlots slots;
  private final Clock clock;

  PendingStep(Planner planner, MigrationSlots slots, Clock clock) {
    this.planner = planner;
    this.slots = slots;
    this.clock = clock;
  }

  StepOutcome step(MigrationRequest mr) {
    Plan plan;
    try {
      plan = planner.plan(mr, null);
    } catch (InvalidRequest e) {
      return accepted(Report.NONE);
    }
    if (PrepareStep.deadlinePassed(mr.getStatus(), plan.deadline(), clock)) {
      return StepOutcome.end(
          Phase.Failed,
          Reasons.DEADLINE_PASSED,
          "spec.deadline ("
              + mr.getSpec().getDeadline()
              + ") passed while the request waited in Pending for a migration slot",
          Report.NONE);
    }
    Optional<String> waits = slots.admit(mr, plan.sourceNode());
    if (waits.isPresent()) {
      return StepOutcome.queue(Reasons.WAITING_FOR_SLOT, waits.get(), RECHECK, plan.sourceNode());
    }
    return accepted(Report.of(plan));
  }

  private static StepOutcome accepted(Report report) {
    return StepOutcome.advance(
        Phase.Preparing,
        Reasons.ACCEPTED,
        "accepted; checking the pods, their nodes and agents",
        report);
  }
}
