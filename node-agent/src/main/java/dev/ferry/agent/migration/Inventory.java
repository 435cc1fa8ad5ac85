// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.move.ConnectionTable;
import dev.ferry.agent.move.ConnectionTable.Listed;
import dev.ferry.agent.repair.MovableState;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SockDiag;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpInfo;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The connections on a pod's ports, in every TCP state: those a move takes, and those it cannot,
 * each with its state and the reason, so that a move never cuts one without saying so.
 *
 * <p>TIME_WAIT is not counted: the connection is over on both ends (every byte and both FINs were
 * delivered and acknowledged), no application holds it, and no client waits on it. At most a client
 * whose last ACK was lost sends its FIN once more and is answered with a reset by the new node,
 * after it has closed for good; its application sees nothing.
 */
public final class Inventory {
  private Inventory() {}

  /** A connection a move cannot take, and why; named in the status when the address moves. */
  public record LeftBehind(Connection connection, String state, String reason) {
    /** The reason as the status reports it: the state first. */
    public String described() {
      return state + ": " + reason;
    }
  }

  /** What a move found: what it takes, and what it leaves behind. */
  public record Found(List<Listed> movable, List<LeftBehind> leftBehind) {
    /** The connections it takes. */
    public List<Connection> connections() {
      return movable.stream().map(Listed::connection).toList();
    }
  }

  /** The connections a move takes: ESTABLISHED and half-closed, on the pod's {@code ports}. */
  public static List<Connection> established(PodNamespaces pods, PodRef pod, List<Integer> ports)
      throws SyscallException {
    return take(pods, pod, ports).connections();
  }

  /** Every connection on the pod's {@code ports}, sorted into what moves and what cannot. */
  public static Found take(PodNamespaces pods, PodRef pod, List<Integer> ports)
      throws SyscallException {
    if (ports.isEmpty()) {
      throw new BadRequest("ports: name the ports the pod serves (at least one)");
    }
    List<Listed> listed = new ArrayList<>();
    try (NetNamespace ns = pods.open(pod, "pod")) {
      for (int port : ports) {
        if (port < 1 || port > 65535) {
          throw new BadRequest("ports: " + port + " is not a port (1..65535)");
        }
        listed.addAll(ConnectionTable.every(ns, Set.of(port)));
      }
    }
    return sort(listed);
  }

  /** Sorts listed connections by what their state allows. */
  static Found sort(List<Listed> listed) {
    List<Listed> movable = new ArrayList<>();
    List<LeftBehind> left = new ArrayList<>();
    for (Listed l : listed) {
      if (MovableState.of(l.state()).isPresent() && l.orphan()) {
        left.add(new LeftBehind(l.connection(), TcpInfo.stateName(l.state()), unheld(l)));
      } else if (MovableState.of(l.state()).isPresent()) {
        movable.add(l);
      } else if (l.state() != SockDiag.TCP_TIME_WAIT) {
        left.add(
            new LeftBehind(l.connection(), TcpInfo.stateName(l.state()), cannotMove(l.state())));
      }
    }
    return new Found(movable, left);
  }

  /** Why a movable connection no descriptor holds cannot move. */
  private static String unheld(Listed l) {
    // Only this side's close makes FIN_WAIT1, FIN_WAIT2, CLOSING and LAST_ACK; an ESTABLISHED or
    // CLOSE_WAIT socket without a descriptor waits in a listener's accept queue.
    MovableState s = MovableState.of(l.state()).orElseThrow();
    return s.sentFin
        ? "its application closed it already, so no one can hand it over; the kernel was still"
            + " finishing the exchange here"
        : "its application has not accepted it yet, so no one can hand it over";
  }

  private static String cannotMove(int state) {
    return switch (state) {
      case SockDiag.TCP_SYN_RECV ->
          "its handshake was not finished, so no application held it to hand over; the"
              + " client's next segment to the new node is reset";
      case SockDiag.TCP_SYN_SENT ->
          "it was still connecting out; Ferry moves connections only once established";
      default -> "Ferry cannot move a connection in this state";
    };
  }

  /**
   * Those of {@code found} that {@code named} lists (all of them when it is empty), and what is
   * left behind. Only a move that takes the address cuts what it leaves: then every connection not
   * taken is left behind, a movable one the request does not name included; without the address
   * they all carry on where they are, and none is.
   */
  public static Found chosen(Found found, List<ConnectionId> named, boolean addressMoves) {
    Set<Connection> wanted = new LinkedHashSet<>();
    for (int i = 0; i < named.size(); i++) {
      wanted.add(Wire.connection(named.get(i), "connections[" + i + "]"));
    }
    List<Listed> movable = new ArrayList<>();
    List<LeftBehind> left = new ArrayList<>();
    for (Listed l : found.movable()) {
      if (named.isEmpty() || wanted.contains(l.connection())) {
        movable.add(l);
      } else {
        left.add(
            new LeftBehind(
                l.connection(),
                TcpInfo.stateName(l.state()),
                "the request names other connections, not this one"));
      }
    }
    left.addAll(found.leftBehind());
    return new Found(movable, addressMoves ? left : List.of());
  }
}
