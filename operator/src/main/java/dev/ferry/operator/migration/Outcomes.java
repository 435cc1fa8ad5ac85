// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.ConnectionCounts;
import dev.ferry.api.crd.ConnectionDetail;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.Endpoint;
import dev.ferry.api.v1alpha1.MigrationStatus;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Turns the agents' per-connection phases into where each connection lives, for the status. */
public final class Outcomes {
  static final String MIGRATED = "Migrated";
  static final String KEPT = "Kept";
  static final String ROLLED_BACK = "RolledBack";
  static final String FAILED = "Failed";
  static final String MOVING = "Moving";

  private final Map<String, ConnectionDetail> byConnection = new LinkedHashMap<>();
  private boolean addressGone;

  /** Reads a status from either agent; a later one overrides what an earlier one said. */
  void read(MigrationStatus s) {
    for (ConnectionStatus c : s.getConnectionsList()) {
      String id = format(c.getId());
      String outcome =
          switch (c.getPhase()) {
            case RESUMED, RELEASED -> MIGRATED;
            case STAYED -> KEPT;
            case ROLLED_BACK -> ROLLED_BACK;
            case FAILED -> FAILED;
            case DISCARDED -> null; // the target dropped its copy: the source's word counts
            default -> MOVING;
          };
      if (outcome == null) {
        continue;
      }
      ConnectionDetail prior = byConnection.get(id);
      // A source that released the connection says Migrated; keep the target's reason if any.
      if (prior != null && MIGRATED.equals(prior.getOutcome()) && MIGRATED.equals(outcome)) {
        continue;
      }
      // An agent that started again mid-move knows only that the move was under way; the other
      // agent's word on where the connection ended stands.
      if (prior != null && MOVING.equals(outcome)) {
        continue;
      }
      String reason = c.getReason();
      if (KEPT.equals(outcome) && addressGone) {
        outcome = FAILED;
        reason = cutOff(reason);
      }
      byConnection.put(id, new ConnectionDetail(id, outcome, reason));
    }
  }

  /**
   * The address has left the source: a connection its application kept there has no address any
   * more (spec.allowPartial).
   */
  void addressLeft() {
    addressGone = true;
    byConnection.replaceAll(
        (id, d) ->
            KEPT.equals(d.getOutcome())
                ? new ConnectionDetail(id, FAILED, cutOff(d.getReason()))
                : d);
  }

  private static String cutOff(String reason) {
    // Kept by its application, or one the agent could not move at all (its reason names the TCP
    // state: a handshake not finished, a socket its application had closed).
    return "stayed on the source ("
        + reason
        + "), then lost its address when the address moved (spec.allowPartial)";
  }

  List<ConnectionDetail> details() {
    return new ArrayList<>(byConnection.values());
  }

  ConnectionCounts counts() {
    ConnectionCounts n = new ConnectionCounts();
    n.setTotal(byConnection.size());
    for (ConnectionDetail d : byConnection.values()) {
      switch (d.getOutcome()) {
        case MIGRATED -> n.setMigrated(n.getMigrated() + 1);
        case KEPT -> n.setKept(n.getKept() + 1);
        case ROLLED_BACK -> n.setRolledBack(n.getRolledBack() + 1);
        case FAILED -> n.setFailed(n.getFailed() + 1);
        default -> {}
      }
    }
    return n;
  }

  /** LOCAL:PORT <- REMOTE:PORT, as the pod sees the connection. */
  public static String format(ConnectionId id) {
    return format(id.getLocal()) + " <- " + format(id.getRemote());
  }

  private static String format(Endpoint e) {
    try {
      String host = InetAddress.getByAddress(e.getIp().toByteArray()).getHostAddress();
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + e.getPort();
    } catch (UnknownHostException bad) {
      return "?:" + e.getPort();
    }
  }
}
