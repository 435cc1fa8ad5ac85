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
 * The TCP connections of a network namespace on its local ports: the connections a registered
 * application serves there, which a migration moves, and those it finds there in any other state.
 *
 * <p>Listed with sock_diag ({@link SockDiag}), IPv4 and IPv6. An IPv4 client of a dual-stack
 * server's AF_INET6 socket comes with IPv4 addresses, as the application's own sockets report it,
 * so that the agent and the application name the connection alike.
 */
public final class ConnectionTable {
  private ConnectionTable() {}

  /**
   * One connection and its state.
   *
   * @param state its TCP state as sock_diag reports it ({@link SockDiag#TCP_ESTABLISHED} etc.); a
   *     handshake in a listener's queue is TCP_SYN_RECV
   * @param orphan no descriptor holds it (inode 0): its application closed it and the kernel
   *     finishes the exchange alone
   */
  public record Listed(Connection connection, int state, boolean orphan) {}

  /**
   * Every connection on {@code localPorts} (on every port if it is empty), in every state a
   * connection has: all but LISTEN (a listener is no connection) and CLOSE (a socket that has
   * none). SYN_RECV brings the handshakes waiting in a listener's queue too.
   */
  public static List<Listed> every(NetNamespace namespace, Set<Integer> localPorts)
      throws SyscallException {
    int states =
        SockDiag.states(
            SockDiag.TCP_ESTABLISHED,
            SockDiag.TCP_SYN_SENT,
            SockDiag.TCP_SYN_RECV,
            SockDiag.TCP_FIN_WAIT1,
            SockDiag.TCP_FIN_WAIT2,
            SockDiag.TCP_TIME_WAIT,
            SockDiag.TCP_CLOSE_WAIT,
            SockDiag.TCP_LAST_ACK,
            SockDiag.TCP_CLOSING);
    List<SockDiag.Entry> entries =
        namespace.call(
            () -> {
              try (SockDiag diag = SockDiag.open()) {
                return diag.tcp(states, localPorts);
              }
            });
    List<Listed> out = new ArrayList<>(entries.size());
    for (SockDiag.Entry e : entries) {
      out.add(new Listed(new Connection(e.local(), e.remote()), e.state(), e.inode() == 0));
    }
    return out;
  }

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
