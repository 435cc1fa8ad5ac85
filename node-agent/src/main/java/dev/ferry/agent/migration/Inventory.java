// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.move.ConnectionTable;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** The connections of a pod that a move takes: every one on its ports, or those named. */
public final class Inventory {
  private Inventory() {}

  public static List<Connection> established(PodNamespaces pods, PodRef pod, List<Integer> ports)
      throws SyscallException {
    if (ports.isEmpty()) {
      throw new BadRequest("ports: name the ports the pod serves (at least one)");
    }
    List<Connection> out = new ArrayList<>();
    try (NetNamespace ns = pods.open(pod, "pod")) {
      for (int port : ports) {
        if (port < 1 || port > 65535) {
          throw new BadRequest("ports: " + port + " is not a port (1..65535)");
        }
        out.addAll(ConnectionTable.established(ns, port));
      }
    }
    return out;
  }

  /** Those of {@code found} that {@code named} lists; all of them when it is empty. */
  public static List<Connection> chosen(List<Connection> found, List<ConnectionId> named) {
    if (named.isEmpty()) {
      return found;
    }
    Set<Connection> wanted = new LinkedHashSet<>();
    for (int i = 0; i < named.size(); i++) {
      wanted.add(Wire.connection(named.get(i), "connections[" + i + "]"));
    }
    return found.stream().filter(wanted::contains).toList();
  }
}
