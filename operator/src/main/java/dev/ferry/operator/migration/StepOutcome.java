// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.Phase;
import java.time.Duration;

/**
 * What one step of a migration decided; the reconciler applies it to the status. A step never
 * writes the status itself.
 */
public sealed interface StepOutcome {
  String reason();

  String message();

  /** On to {@code next}, which the next reconcile (at once) runs the step of. */
  record Advance(Phase next, String reason, String message, Report report) implements StepOutcome {}

  /** Nothing changed that the status shows: look again after {@code reschedule}. */
  record Wait(String reason, String message, Duration reschedule) implements StepOutcome {}

  /**
   * Still in the same phase, for a reason the status shows (the Progressing condition's reason, the
   * message and, when not null, {@code sourceNode}): written when one of them changed; look again
   * after {@code reschedule}. Pending waiting for a slot; Prepared once the state is pre-copied.
   */
  record Stay(String reason, String message, Duration reschedule, String sourceNode)
      implements StepOutcome {}

  /** The migration ended in {@code end} (Completed, Failed or RolledBack). */
  record End(Phase end, String reason, String message, Report report) implements StepOutcome {
    public End {
      if (!end.finished()) {
        throw new IllegalArgumentException(end + " is not an end");
      }
    }
  }

  static StepOutcome advance(Phase next, String reason, String message, Report report) {
    return new Advance(next, reason, message, report);
  }

  static StepOutcome wait(String reason, String message, Duration reschedule) {
    return new Wait(reason, message, reschedule);
  }

  static StepOutcome stay(String reason, String message, Duration reschedule) {
    return new Stay(reason, message, reschedule, null);
  }

  static StepOutcome stay(String reason, String message, Duration reschedule, String node) {
    return new Stay(reason, message, reschedule, node);
  }

  static StepOutcome end(Phase end, String reason, String message, Report report) {
    return new End(end, reason, message, report);
  }
}
