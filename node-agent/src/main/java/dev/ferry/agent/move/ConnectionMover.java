// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.agent.handoff.HandoffOutcome;
import dev.ferry.agent.handoff.HandoffServer;
import dev.ferry.agent.handoff.PrecopyHandle;
import dev.ferry.agent.handoff.PrecopyListener;
import dev.ferry.agent.handoff.Prestate;
import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.repair.ClientAck;
import dev.ferry.agent.repair.CongestionSeed;
import dev.ferry.agent.repair.RestoreException;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketExporter;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * One node's part in moving application connections, in the order that loses nothing: ask the
 * application first (one that declines or stays silent is never touched), then hold the client,
 * read the socket and close it silently; on the other node, rebuild it, let the application take it
 * while the client is still held, and resume only when the address points there.
 */
public final class ConnectionMover {
  private static final Logger LOG = Logger.getLogger(ConnectionMover.class.getName());

  private final HandoffServer applications;
  private final ConnectionHold hold;
  private final Duration holdLimit;
  private final SocketExporter exporter = new SocketExporter();
  private final SocketRestorer restorer;
  private final HeldClientBytes kept;

  /**
   * @param holdLimit how long a client may be held before the hold steps aside
   * @param keepClientBytes whether what held clients sent goes into the restored sockets ({@link
   *     #keptClientBytes}); off only to compare
   * @param congestion gives restored sockets their original's congestion window; empty where the
   *     kernel cannot, or to compare
   */
  public ConnectionMover(
      HandoffServer applications,
      ConnectionHold hold,
      Duration holdLimit,
      boolean keepClientBytes,
      Optional<CongestionSeed> congestion) {
    this.restorer = new SocketRestorer(congestion);
    this.applications = applications;
    this.hold = hold;
    this.holdLimit = holdLimit;
    this.kept = keepClientBytes ? new HeldClientBytes(hold) : null;
  }

  /**
   * Source node, just before the commit: for each exported socket, what its held client sent after
   * the export point, in order (see {@link HeldClientBytes#take}).
   */
  public List<HeldClientBytes.Kept> keptClientBytes(List<SocketState> exported)
      throws SyscallException {
    return kept == null ? List.of() : kept.take(exported);
  }

  /**
   * Source node, just before the commit: what each held client acknowledged after its socket was
   * read, where that is more than the socket had seen (see {@link ClientAck}). A socket whose entry
   * cannot be read is left out: its restored copy waits for the client's answer to the resume.
   */
  public Map<Connection, ClientAck> clientAcks(List<SocketState> exported) {
    Map<Connection, ClientAck> out = new LinkedHashMap<>();
    for (SocketState s : exported) {
      try {
        hold.clientAck(new HoldKey(s.local(), s.remote()))
            .filter(a -> a.ack() - s.sendQueueSeq() > 0)
            .ifPresent(a -> out.put(new Connection(s.local(), s.remote()), a));
      } catch (SyscallException e) {
        LOG.fine(() -> s.connection() + ": its client's acknowledgment cannot be read: " + e);
      }
    }
    return out;
  }

  /** Source node: takes {@code c} from its application and out of the kernel. */
  public Departure depart(Connection c, long podNetns) throws InterruptedException {
    Freezing f = freeze(c, podNetns);
    return f instanceof Freezing.Held held ? export(held) : ((Freezing.Stays) f).stayed();
  }

  /**
   * Source node, before {@link #freeze}: asks the application to offer {@code c}'s state ahead of
   * the freeze (protocol version 2); {@code listener} hears it as it comes.
   */
  public PrecopyHandle precopy(Connection c, long podNetns, PrecopyListener listener) {
    return applications.precopy(c, podNetns, listener);
  }

  /**
   * The ports applications in the pod's network namespace ({@code podNetns}) have registered: where
   * its connections can arrive.
   */
  public java.util.Set<Integer> registeredPorts(long podNetns) {
    return applications.registrations(podNetns).keySet();
  }

  /**
   * Source node, first half of {@link #depart}: asks the application for {@code c} and holds the
   * client. The application has stopped writing; the socket is live and unread until {@link
   * #export}. An agent that dies now loses nothing: the application was never told the connection
   * left, and the hold steps aside at its deadline.
   */
  public Freezing freeze(Connection c, long podNetns) throws InterruptedException {
    return freezeAll(List.of(c), podNetns).get(0);
  }

  /**
   * {@link #freeze} of many connections in one batch: every application is asked for all of its
   * connections at once ({@link HandoffServer#freezeAll}), then each frozen one is held. Results in
   * the order of {@code connections}.
   */
  public List<Freezing> freezeAll(List<Connection> connections, long podNetns)
      throws InterruptedException {
    List<HandoffOutcome> outcomes = applications.freezeAll(connections, podNetns);
    List<Freezing> out = new ArrayList<>(connections.size());
    for (int i = 0; i < connections.size(); i++) {
      out.add(hold(connections.get(i), outcomes.get(i)));
    }
    return out;
  }

  private Freezing hold(Connection c, HandoffOutcome outcome) {
    if (!(outcome instanceof HandoffOutcome.Frozen frozen)) {
      return new Freezing.Stays(new Departure.Stayed(c, describe(outcome)));
    }
    HoldKey key = new HoldKey(c.local(), c.remote());
    long deadline = System.nanoTime() + holdLimit.toNanos();
    try {
      hold.freeze(key, deadline);
    } catch (SyscallException e) {
      frozen.socket().close();
      giveBack(frozen, "the agent could not hold the client: " + e.getMessage());
      return new Freezing.Stays(new Departure.Stayed(c, "hold failed: " + e.getMessage()));
    }
    return new Freezing.Held(c, frozen, deadline);
  }

  /**
   * Source node, second half of {@link #depart}: reads the held socket, lets the hold answer for
   * it, and closes it silently. {@code save} runs before the application hears the connection is
   * gone, so that a state the caller must keep (on disk, say) is kept before anything else is lost.
   */
  public Departure export(Freezing.Held held, Consumer<Departure.Departed> save) {
    Reading r = read(held);
    if (r.stayed() != null) {
      return r.stayed();
    }
    try {
      save.accept(r.departed());
    } catch (RuntimeException e) {
      return putBack(r, couldNotSave(e));
    }
    return leave(r);
  }

  /**
   * A held socket read in repair mode and still open: until {@link #leave} closes it, {@link
   * #putBack} returns it to its application as it was. {@code stayed} is set instead when it could
   * not be read (the application has it back already).
   */
  public record Reading(Freezing.Held held, Departure.Departed departed, Departure.Stayed stayed) {}

  /** Reads the held socket's state with TCP_REPAIR; the socket stays open, in repair mode. */
  public Reading read(Freezing.Held held) {
    Connection c = held.connection();
    HandoffOutcome.Frozen frozen = held.frozen();
    try {
      SocketState state = exporter.export(frozen.socket());
      return new Reading(
          held, new Departure.Departed(c, state, frozen.state(), frozen.appendsToPrecopy()), null);
    } catch (IOException e) {
      // Nothing is lost yet: the socket left repair mode, the application still has it.
      return new Reading(
          held, null, giveBack(held, "the agent could not read the socket: " + e.getMessage()));
    }
  }

  /** Undoes {@link #read}: the socket leaves repair mode and goes back to its application. */
  public Departure.Stayed putBack(Reading r, String why) {
    Connection c = r.held().connection();
    try {
      exporter.putBack(r.held().frozen().socket(), r.departed().socket());
    } catch (SyscallException off) {
      LOG.warning(() -> "leaving repair mode on " + c + " failed: " + off.getMessage());
    }
    return giveBack(r.held(), why);
  }

  /**
   * Lets the read socket go: the hold answers for the client from now on, the application hears the
   * connection is gone, and the socket closes silently (repair mode sends nothing). The returned
   * state is then the only copy of the connection.
   */
  public Departure.Departed leave(Reading r) {
    Connection c = r.held().connection();
    HandoffOutcome.Frozen frozen = r.held().frozen();
    long exportedAt = System.nanoTime();
    try {
      hold.answer(r.departed().socket(), exportedAt, r.held().deadlineNanos());
    } catch (SyscallException e) {
      // The client is still frozen, not answered; it retransmits until the socket is back.
      LOG.warning(() -> "the hold cannot answer for " + c + ": " + e.getMessage());
    }
    try {
      frozen.session().released(frozen.requestId());
    } catch (SyscallException e) {
      // Only the application's bookkeeping suffers: the socket is in repair mode either way.
      LOG.warning(() -> "telling the application " + c + " is gone failed: " + e.getMessage());
    }
    frozen.socket().close(); // in repair mode: silent
    return r.departed();
  }

  /** {@link #export(Freezing.Held, Consumer)} with nothing to save. */
  public Departure export(Freezing.Held held) {
    return export(held, d -> {});
  }

  /** Source node: gives a held, unexported connection back to its application, live. */
  public Departure.Stayed giveBack(Freezing.Held held, String why) {
    Connection c = held.connection();
    releaseQuietly(new HoldKey(c.local(), c.remote()));
    TcpSocket socket = held.frozen().socket();
    if (giveBack(held.frozen(), why)) {
      socket.close(); // the application has its own descriptor: this close sends nothing
      return new Departure.Stayed(c, why);
    }
    // The application is gone, so ours is the connection's last descriptor: a plain close would
    // send a FIN, and a client reading a stream (SSE, a download) would take it for a normal end.
    resetOnClose(socket, c);
    socket.close();
    return new Departure.Stayed(
        c, why + "; its application is gone, so the client was reset", true);
  }

  private static void resetOnClose(TcpSocket socket, Connection c) {
    try {
      new SocketOptions(socket).setLinger(new SocketOptions.Linger(true, 0));
    } catch (SyscallException e) {
      LOG.warning(
          () -> c + ": could not arm the reset (" + e.getMessage() + "); it ends with a FIN");
    }
  }

  /**
   * How long a rollback's rebuilds, together, wait for sockets with their connections' addresses to
   * go ({@link #arrive}): the source's application heard a moment before that they left (RELEASED
   * frames) and may not have closed its descriptors of the originals yet. One that has not closed
   * them by then is stuck, and those rebuilds fail saying so.
   */
  public static final Duration OLD_SOCKET_WAIT = Duration.ofSeconds(2);

  /**
   * Target node (or the source, to roll back): rebuilds the socket in {@code namespace} and hands
   * it with its state to the application serving the port. The client stays held. While a socket
   * there still has the connection's addresses, the rebuild is tried again until {@code
   * oldSocketGoneBy} ({@link System#nanoTime}).
   */
  public Arrival arrive(Departure.Departed d, NetNamespace namespace, long oldSocketGoneBy)
      throws InterruptedException {
    Connection c = d.connection();
    RestoredSocket restored;
    try {
      Duration wait = Duration.ofNanos(Math.max(0, oldSocketGoneBy - System.nanoTime()));
      restored = restorer.restore(d.socket(), namespace, wait);
    } catch (RestoreException e) {
      return new Arrival.Refused(c, e.getMessage());
    }
    HoldKey key = new HoldKey(c.local(), c.remote());
    try {
      StagedClient client = holdStaged(d);
      HandoffOutcome outcome =
          applications.takeover(c, restored.socket(), d.applicationState(), namespace.inode());
      if (outcome instanceof HandoffOutcome.Taken taken) {
        return new Arrival.Staged(c, restored, taken.session(), taken.requestId(), client);
      }
      restored.close();
      releaseQuietly(key);
      return new Arrival.Refused(c, describe(outcome));
    } catch (SyscallException e) {
      restored.close();
      releaseQuietly(key);
      return new Arrival.Refused(
          c, "handing the socket to the application failed: " + e.getMessage());
    }
  }

  /**
   * Target node, many at once: rebuilds each state in {@code namespace} (in parallel, through
   * {@code each}), then hands every rebuilt socket to its application in one batch (one request per
   * connection, all sent before any answer is awaited). The clients stay held.
   */
  public List<Arrival> arriveAll(
      List<Departure.Departed> departed,
      NetNamespace namespace,
      IncomingFactory incoming,
      ForEach each)
      throws InterruptedException {
    long podNetns;
    try {
      podNetns = namespace.inode();
    } catch (SyscallException e) {
      return departed.stream()
          .<Arrival>map(d -> new Arrival.Refused(d.connection(), "the pod's namespace: " + e))
          .toList();
    }
    List<Object> restored =
        each.apply(
            departed,
            d -> {
              try {
                return restorer.restore(d.socket(), namespace);
              } catch (RestoreException e) {
                return new Arrival.Refused(d.connection(), e.getMessage());
              }
            });
    List<Arrival> out = new ArrayList<>(departed.size());
    List<HandoffServer.Incoming> requests = new ArrayList<>();
    List<Integer> at = new ArrayList<>();
    List<StagedClient> clients = new ArrayList<>(departed.size());
    for (int i = 0; i < departed.size(); i++) {
      Departure.Departed d = departed.get(i);
      out.add(null);
      clients.add(null);
      if (restored.get(i) instanceof Arrival.Refused refused) {
        out.set(i, refused);
        continue;
      }
      RestoredSocket socket = (RestoredSocket) restored.get(i);
      try {
        clients.set(i, holdStaged(d));
      } catch (SyscallException e) {
        socket.close();
        out.set(i, new Arrival.Refused(d.connection(), "the hold could not stage it: " + e));
        continue;
      }
      requests.add(incoming.of(d, socket.socket()));
      at.add(i);
    }
    List<HandoffOutcome> answers = applications.takeoverAll(requests, podNetns);
    for (int k = 0; k < at.size(); k++) {
      int i = at.get(k);
      Connection c = departed.get(i).connection();
      RestoredSocket socket = (RestoredSocket) restored.get(i);
      if (answers.get(k) instanceof HandoffOutcome.Taken taken) {
        out.set(
            i, new Arrival.Staged(c, socket, taken.session(), taken.requestId(), clients.get(i)));
      } else {
        socket.close();
        releaseQuietly(new HoldKey(c.local(), c.remote()));
        out.set(i, new Arrival.Refused(c, describe(answers.get(k))));
      }
    }
    return out;
  }

  /** The client of {@code d}, whose socket is rebuilt, held here until it resumes: StagedClient. */
  private StagedClient holdStaged(Departure.Departed d) throws SyscallException {
    return StagedClient.hold(hold, kept, d.socket(), System.nanoTime() + holdLimit.toNanos());
  }

  /** What the application is handed for a rebuilt socket: the state, or a tail of it. */
  public interface IncomingFactory {
    HandoffServer.Incoming of(Departure.Departed d, TcpSocket socket);
  }

  /**
   * Target node, before the states come: hands {@code c}'s pre-copied state to the pod's
   * application as it arrives; null when that application cannot hold it (version 1).
   */
  public Prestate prestate(Connection c, long podNetns) {
    return applications.prestate(c, podNetns);
  }

  /**
   * After this agent restarted: waits until the pod's application ({@code podNetns}) has registered
   * each of {@code ports} again, or until {@code deadline} (System.nanoTime()), logging the wait,
   * if there is one, and how it ended. The application opens its session with the new agent on its
   * own, up to seconds after the agent answers the other agents and the operator.
   *
   * @param migration whose connections wait, for the log
   * @param before what waits for it (the log says "... again before {@code before}")
   */
  public void awaitApplications(
      String migration,
      java.util.Collection<Integer> ports,
      long podNetns,
      long deadline,
      String before)
      throws InterruptedException {
    long began = System.nanoTime();
    if (applications.awaitRegistered(podNetns, ports, began).isEmpty()) {
      return;
    }
    LOG.info(
        () ->
            "migration "
                + migration
                + ": waiting up to "
                + (deadline - began) / 1_000_000
                + " ms for the pod's application to register port(s) "
                + ports
                + " again before "
                + before);
    java.util.Set<Integer> missing = applications.awaitRegistered(podNetns, ports, deadline);
    long waited = (System.nanoTime() - began) / 1_000_000;
    if (missing.isEmpty()) {
      LOG.info(
          () ->
              "migration "
                  + migration
                  + ": the pod's application registered port(s) "
                  + ports
                  + " again after "
                  + waited
                  + " ms");
    } else {
      LOG.warning(
          () ->
              "migration "
                  + migration
                  + ": no application in the pod registered port(s) "
                  + missing
                  + " with this agent within "
                  + waited
                  + " ms; going on without it");
    }
  }

  /** Runs a step for every item, in parallel where the caller can; results in order. */
  public interface ForEach {
    <T, R> List<R> apply(List<T> items, java.util.function.Function<T, R> step)
        throws InterruptedException;
  }

  /** Source node: the connection lives elsewhere now; stop answering for it. */
  public void release(Connection c) throws SyscallException {
    hold.release(new HoldKey(c.local(), c.remote()));
  }

  private void releaseQuietly(HoldKey key) {
    try {
      hold.release(key);
    } catch (SyscallException e) {
      LOG.warning(() -> "releasing the hold on " + key + " failed: " + e.getMessage());
    }
  }

  /** Tells the application it has the connection back; false when it is not there to hear it. */
  private static boolean giveBack(HandoffOutcome.Frozen frozen, String why) {
    try {
      frozen.session().returned(frozen.requestId(), why);
      return true;
    } catch (SyscallException e) {
      LOG.warning(() -> "giving a connection back failed: " + e.getMessage());
      return false;
    }
  }

  private static String describe(HandoffOutcome outcome) {
    if (outcome instanceof HandoffOutcome.Declined d) {
      return "the application declined: " + d.reason();
    }
    if (outcome instanceof HandoffOutcome.NotAnswered n) {
      return n.why();
    }
    if (outcome instanceof HandoffOutcome.NoApplication n) {
      return "no application registered port " + n.port() + " on this node";
    }
    return outcome.toString();
  }

  /**
   * Why a state could not be saved, with the system's own words (an UncheckedIOException's message
   * says what was being written; its cause says why: "No space left on device").
   */
  public static String couldNotSave(RuntimeException e) {
    String why = "the agent could not save the state: " + e.getMessage();
    Throwable cause = e.getCause();
    return cause != null && cause.getMessage() != null ? why + ": " + cause.getMessage() : why;
  }
}
