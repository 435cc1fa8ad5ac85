// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.Phase;

/** Pending: the request is taken on; Preparing checks it. Touches nothing. */
final class PendingStep {
  StepOutcome step() {
    return StepOutcome.advance(
        Phase.Preparing,
        Reasons.ACCEPTED,
        "accepted; checking the pods, their nodes and agents",
        Report.NONE);
  }
}
