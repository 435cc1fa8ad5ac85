// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.ConnectionCounts;
import dev.ferry.api.crd.ConnectionDetail;
import java.util.List;
import java.util.Map;

/**
 * What a step learned that the status records beside the phase; null fields leave the status as it
 * is.
 *
 * @param plan the migration's pods, nodes and address (status.migrationId, targetPod, ...)
 * @param pauseMillis the clients' pause as the agents measured it
 * @param agentPhaseMillis the agents' own steps, named as phaseMillis keys (agent.source.freeze)
 * @param addressMoved the address now lives in the target pod: recorded as a MovedAddress
 */
public record Report(
    Plan plan,
    ConnectionCounts connections,
    List<ConnectionDetail> details,
    Double pauseMillis,
    Map<String, Double> agentPhaseMillis,
    boolean addressMoved) {
  static final Report NONE = new Report(null, null, null, null, Map.of(), false);

  static Report of(Plan plan) {
    return new Report(plan, null, null, null, Map.of(), false);
  }
}
