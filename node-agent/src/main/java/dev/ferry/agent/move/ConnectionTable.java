// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SockDiag;
import dev.ferry.sys.SyscallException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The ESTABLISHED TCP connections of a network namespace on one local port: the connections a
 * registered application serves there, and so the ones a migration moves.
 *
 * <p>Listed with sock_diag ({@link SockDiag}), IPv4 and IPv6. An IPv4 client of a dual-stack
 * server's AF_INET6 socket comes with IPv4 addresses, as the application's own sockets report it,
 * so that the agent and the application name the connection alike.
 */
public final class ConnectionTable {
  private ConnectionTable() {}

  /** Lists them from inside {@code namespace}. */
  public static List<Connection> established(NetNamespace namespace, int localPort)
      throws SyscallException {
    return established(namespace, Set.of(localPort));
  }

  /** The connections on any of {@code localPorts} (on every port if it is empty), in one dump. */
  public static List<Connection> established(NetNamespace namespace, Set<Integer> localPorts)
      throws SyscallException {
    List<SockDiag.Entry> entries =
        namespace.call(
            () -> {
              // The netlink socket lists the namespace it is opened in: this one, entered here.
              try (SockDiag diag = SockDiag.open()) {
                return diag.tcp(SockDiag.states(SockDiag.TCP_ESTABLISHED), localPorts);
              }
            });
    List<Connection> out = new ArrayList<>(entries.size());
    for (SockDiag.Entry e : entries) {
      out.add(new Connection(e.local(), e.remote()));
    }
    return out;
  }
}
