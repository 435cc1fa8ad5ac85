// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import java.util.ArrayList;
import java.util.List;

/** Keeps the Events and the address moves a migration reported. */
final class FakeSink implements StatusSink {
  final List<String> events = new ArrayList<>();
  final List<Plan> addressMoves = new ArrayList<>();

  /** Thrown by the next {@link #addressMoved}, as the API server's refusal would be. */
  RuntimeException addressRefusal;

  /** Something to call at each {@link #addressMoved}, before it records or fails. */
  Runnable onAddressMoved = () -> {};

  @Override
  public void addressMoved(MigrationRequest mr, Plan plan) {
    onAddressMoved.run();
    RuntimeException refusal = addressRefusal;
    if (refusal != null) {
      addressRefusal = null;
      throw refusal;
    }
    addressMoves.add(plan);
  }

  @Override
  public void event(MigrationRequest mr, String type, String reason, String message) {
    events.add(type + " " + reason + ": " + message);
  }
}
