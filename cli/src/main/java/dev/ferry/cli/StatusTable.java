// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.Endpoint;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.api.v1alpha1.MigrationStatus;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Map;
import java.util.TreeMap;

/** What the CLI prints: one line per connection, then the phase timings. */
final class StatusTable {
  private StatusTable() {}

  static String of(MigrationStatus s) {
    StringBuilder b = new StringBuilder();
    b.append("migration ")
        .append(s.getMigrationId())
        .append(" on ")
        .append(s.getNode())
        .append(": ")
        .append(s.getConnectionsCount())
        .append(" connection(s)\n");
    b.append(
        String.format("  %-47s %-12s %12s  %s%n", "CONNECTION", "PHASE", "STATE-BYTES", "REASON"));
    for (ConnectionStatus c : s.getConnectionsList()) {
      b.append(
          String.format(
              "  %-47s %-12s %12d  %s%n",
              format(c.getId()), c.getPhase(), c.getAppStateBytes(), c.getReason()));
    }
    if (s.getPhaseMicrosCount() > 0) {
      b.append("  phases:");
      Map<String, Long> sorted = new TreeMap<>(s.getPhaseMicrosMap());
      sorted.forEach(
          (phase, micros) -> b.append(String.format(" %s %.1f ms", phase, micros / 1e3)));
      b.append('\n');
    }
    return b.toString();
  }

  static String listed(ListedConnection c) {
    return String.format(
        "  %-47s send-queue %8d  recv-queue %8d  inode %d",
        format(c.getId()), c.getSendQueue(), c.getRecvQueue(), c.getInode());
  }

  static String format(ConnectionId id) {
    return format(id.getLocal()) + " <- " + format(id.getRemote());
  }

  private static String format(Endpoint e) {
    try {
      InetAddress a = InetAddress.getByAddress(e.getIp().toByteArray());
      String host = a.getHostAddress();
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + e.getPort();
    } catch (UnknownHostException bad) {
      return "?:" + e.getPort();
    }
  }
}
