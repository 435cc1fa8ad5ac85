// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.Phase;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Pending: the request waits for a migration slot ({@link MigrationSlots}), then Preparing checks
 * it. Touches nothing while it waits. It reads only the source pod's node, which the limits count;
 * a request whose source cannot be read goes on to Preparing, which fails it with the reason. Once
 * admitted, what Preparing begins ahead ({@link PrepareStep#ahead}) starts.
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
  private final MigrationSlots slots;
  private final Consumer<MigrationRequest> admitted;
  private final Clock clock;

  /**
   * @param admitted begins, without waiting, what Preparing can do ahead
   */
  PendingStep(
      Planner planner, MigrationSlots slots, Consumer<MigrationRequest> admitted, Clock clock) {
    this.planner = planner;
    this.slots = slots;
    this.admitted = admitted;
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
    admitted.accept(mr);
    return accepted(Report.NONE);
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
