// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static dev.ferry.api.v1alpha1.ConnectionPhase.DISCARDED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FAILED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RESUMED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAGED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.TRANSFERRED;

import dev.ferry.agent.handoff.HandoffServer;
import dev.ferry.agent.move.Arrival;
import dev.ferry.agent.move.ConnectionMover;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.move.HeldClientBytes;
import dev.ferry.agent.repair.ClientAck;
import dev.ferry.agent.repair.PeerSegments;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.logging.Logger;

/**
 * The target node's side of one migration: receive the states (in memory: the source keeps its copy
 * until the commit), stage the sockets in the target pod, write the commit record, resume them, or
 * drop them. After the commit record nothing here is dropped: a rollback leaves the connections
 * here and says so, and the source never rebuilds them.
 */
public final class TargetMigration {
  private static final Logger LOG = Logger.getLogger(TargetMigration.class.getName());

  final String id;
  private final NodeParts node;
  private final PhaseClock clock;
  private final Map<Connection, ConnectionRecord> records = new LinkedHashMap<>();
  private boolean committed;
  private boolean aborted;

  /** The node the states come from, as its verified Arrive header named it. */
  private volatile String sourceNode = "";

  public TargetMigration(String id, NodeParts node) {
    this.id = id;
    this.node = node;
    this.clock = new PhaseClock(node.metrics()::phase);
    this.committed = node.commits().exists(id);
  }

  /**
   * A connection's whole state where the target application holds its pre-copied part already: its
   * takeover carries only the tail, and {@code bytes} makes the whole state if the application lets
   * go of that part first.
   */
  public record Whole(long size, java.util.function.Supplier<byte[]> bytes) {}

  private Map<Connection, Whole> wholes = Map.of();

  /** The states come from {@code node}'s agent: only it may ask for their status or rollback. */
  void from(String node) {
    sourceNode = node;
  }

  String sourceNode() {
    return sourceNode;
  }

  /** The signed plan the states come under ({@code MovePlans.idOf}); null until an arrival. */
  private String planId;

  private PodRef pod; // where the connections are staged, once they are

  /** The states come under the signed plan {@code id}: a rollback here marks it as run. */
  void plan(String id) {
    planId = id;
  }

  /** The source sends the states again after the commit (ArrivalHeader.after_commit). */
  private boolean afterCommit;

  /**
   * This migration committed here and this agent restarted before resuming it (its application
   * dropped what was staged): the source sends every state again, and it is staged and resumed
   * though the commit record exists. A connection already live in the pod is not staged again.
   *
   * @throws WrongPhase without a commit record: before one, the source rebuilds instead
   */
  public synchronized void afterCommit() {
    if (!committed) {
      throw new WrongPhase(
          "migration " + id + " has no commit record here: only a committed one is sent again");
    }
    afterCommit = true;
  }

  /**
   * After the commit, on the states sent again: waits until the pod's application ({@code
   * podNetns}) has registered every port of them with this restarted agent, or until {@code
   * deadline} (System.nanoTime()). The application opens its session again on its own, seconds
   * after the agent is back, while the source sends the states as soon as the agent answers; a
   * takeover before then would find no application, and with the commit written no connection can
   * go back to the source: it would be lost. The wait is inside the clients' hold, which keeps
   * them.
   */
  void awaitApplications(long podNetns, long deadline) throws InterruptedException {
    Set<Integer> ports = new TreeSet<>();
    synchronized (this) {
      if (!afterCommit || node.commits().wereAllResumed(id)) {
        return;
      }
      records.keySet().forEach(c -> ports.add(c.local().getPort()));
    }
    node.mover().awaitApplications(id, ports, podNetns, deadline, "it takes the connections over");
  }

  /** A (possibly repeated) transfer: replaces what was received, unless already staged. */
  public synchronized void receive(List<Departure.Departed> states, long micros) {
    receive(states, micros, Map.of());
  }

  /**
   * As {@link #receive(List, long)}; the states in {@code wholes} are tails that append to what the
   * target application already holds.
   */
  public synchronized void receive(
      List<Departure.Departed> states, long micros, Map<Connection, Whole> wholes) {
    if (!in(STAGED).isEmpty() || !in(RESUMED).isEmpty() || (committed && !afterCommit)) {
      throw new WrongPhase("migration " + id + " is already staged here; roll it back first");
    }
    aborted = false;
    records.clear();
    this.wholes = wholes;
    for (Departure.Departed d : states) {
      ConnectionRecord r = new ConnectionRecord(d.connection(), TRANSFERRED);
      r.departed = d;
      Whole w = wholes.get(d.connection());
      r.stateBytes = w == null ? d.applicationState().length : w.size();
      records.put(d.connection(), r);
    }
    node.metrics().phase("receive", micros);
  }

  /**
   * Rebuilds every received socket in the pod, in repair mode, and has its application take it, in
   * parallel across the agent's workers. The clients stay held.
   */
  public synchronized MigrationStatus stage(PodRef pod) throws SyscallException {
    this.pod = pod;
    if (afterCommit && node.commits().wereAllResumed(id)) {
      for (ConnectionRecord r : records.values()) {
        r.departed = null;
        r.to(RESUMED, "resumed here before this node's agent restarted");
      }
      return status();
    }
    List<ConnectionRecord> received = in(TRANSFERRED);
    received.addAll(in(FAILED)); // a retried stage tries again what failed
    if (afterCommit) {
      received.removeIf(liveAlready(received, pod)::contains);
    }
    if (received.isEmpty() || (committed && !afterCommit)) {
      return status();
    }
    try (NetNamespace ns = node.pods().open(pod, "pod")) {
      clock.time(
          "stage",
          () -> {
            List<Arrival> arrivals;
            try {
              arrivals =
                  node.mover()
                      .arriveAll(
                          received.stream().map(r -> r.departed).toList(),
                          ns,
                          (d, socket) -> {
                            Whole w = d.appendsToPrecopy() ? wholes.get(d.connection()) : null;
                            return w == null
                                ? new HandoffServer.Incoming(
                                    d.connection(), socket, d.applicationState())
                                : HandoffServer.Incoming.appending(
                                    d.connection(), socket, d.applicationState(), w.bytes());
                          },
                          new ConnectionMover.ForEach() {
                            @Override
                            public <T, R> List<R> apply(
                                List<T> items, java.util.function.Function<T, R> step) {
                              return Workers.each(node.workers(), items, step::apply);
                            }
                          });
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              throw new IllegalStateException("interrupted while staging", e);
            }
            for (int i = 0; i < received.size(); i++) {
              ConnectionRecord r = received.get(i);
              if (arrivals.get(i) instanceof Arrival.Staged staged) {
                r.staged = staged;
                r.to(STAGED, "");
              } else {
                r.to(FAILED, ((Arrival.Refused) arrivals.get(i)).reason());
              }
            }
            return null;
          });
    }
    return status();
  }

  /**
   * Which of the connections sent again after the commit are live in the pod already: resumed
   * before this agent restarted. Their application holds them then (it drops only what was never
   * resumed), so a second copy must not be staged; each is reported RESUMED. One look at the pod
   * for all of them.
   */
  private java.util.Set<ConnectionRecord> liveAlready(List<ConnectionRecord> sent, PodRef pod) {
    java.util.Set<Connection> live;
    try {
      live =
          new java.util.HashSet<>(
              Inventory.established(
                  node.pods(),
                  pod,
                  sent.stream().map(r -> r.connection.local().getPort()).distinct().toList()));
    } catch (SyscallException e) {
      return java.util.Set.of(); // staging them says what is wrong with the pod
    }
    java.util.Set<ConnectionRecord> found = new java.util.HashSet<>();
    for (ConnectionRecord r : sent) {
      if (live.contains(r.connection)) {
        r.departed = null;
        r.to(RESUMED, "live here already: resumed before this node's agent restarted");
        found.add(r);
      }
    }
    return found;
  }

  /**
   * The commit point: writes the commit record (the one fsync of the migration), after which the
   * source never rebuilds these connections.
   *
   * @throws WrongPhase if the migration was aborted here first (the source rolled back)
   */
  public synchronized void commit() {
    if (aborted) {
      throw new WrongPhase("migration " + id + " was rolled back here before it could commit");
    }
    if (!committed) {
      clock.time(
          "commit",
          () -> {
            node.commits().write(id);
            return null;
          });
      committed = true;
    }
  }

  /**
   * Bytes {@code c}'s client sent while held, which the source's hold kept: they must continue the
   * restored receive queue exactly (the first piece at the exported rcv_nxt, each next one where
   * the last ended) and stay inside the window the exported socket had offered, since the kernel
   * will take them as received. Between STAGED and the commit only.
   *
   * @throws BadRequest for bytes that do not continue the stream, or of a connection not staged
   */
  public synchronized void keep(Connection c, int seq, byte[] data) {
    ConnectionRecord r = records.get(c);
    if (r == null || r.phase != STAGED || committed) {
      throw new BadRequest(
          "kept client bytes for "
              + c
              + ", which is not staged here"
              + (committed ? " (the migration has committed)" : ""));
    }
    SocketState s = r.departed.socket();
    int have = r.keptClientBytes == null ? 0 : r.keptClientBytes.size();
    int expected = s.dataRecvSeq() + have;
    if (s.tcpState().receivedFin || seq != expected) {
      throw new BadRequest(
          "kept client bytes for "
              + c
              + " begin at sequence number "
              + Integer.toUnsignedString(seq)
              + (s.tcpState().receivedFin
                  ? ", after the client's FIN"
                  : ", but its receive queue ends at " + Integer.toUnsignedString(expected)));
    }
    if ((long) have + data.length > HeldClientBytes.windowLeft(s)) {
      throw new BadRequest(
          "kept client bytes for "
              + c
              + " go past the receive window it had offered ("
              + HeldClientBytes.windowLeft(s)
              + " bytes)");
    }
    if (r.keptClientBytes == null) {
      r.keptClientBytes = new java.io.ByteArrayOutputStream();
    }
    r.keptClientBytes.writeBytes(data);
  }

  /** Records a step of the arrival timed outside this class. */
  public void timed(String phase, long startNanos) {
    clock.add(phase, (System.nanoTime() - startNanos) / 1000);
  }

  public synchronized boolean committed() {
    return committed;
  }

  /**
   * Sets every staged socket's TSval clock from the time since the source's first export: {@code
   * millisAtCommit} when the source sent COMMIT, which arrived at {@code arrivedNanos}
   * (System.nanoTime()), with a margin for COMMIT's own transit (RestoredSocket.continueClock). A
   * socket whose clock cannot be set keeps the one its restore gave it, a second ahead.
   */
  public synchronized void continueClocks(long millisAtCommit, long arrivedNanos) {
    for (ConnectionRecord r : in(STAGED)) {
      try {
        // Worked out for each socket: at 10,000 of them the loop takes milliseconds, and a clock
        // set from the time at its start would fall behind the hold's answers.
        r.staged.continueClock(millisAtCommit + (System.nanoTime() - arrivedNanos) / 1_000_000);
      } catch (SyscallException | RuntimeException e) {
        LOG.warning(
            () ->
                "migration "
                    + id
                    + ": "
                    + r.connection
                    + " keeps its restored TSval clock, a second ahead: "
                    + e.getMessage());
      }
    }
  }

  /**
   * What each held client acknowledged after its socket was read, as the source's hold saw it
   * (COMMIT carries them): the resume hands each to its socket. A connection not staged here, or
   * whose socket has no such data in flight, is passed over.
   *
   * @return how many the resume will hand on
   */
  public synchronized int clientAcknowledged(Map<Connection, ClientAck> acks) {
    int taken = 0;
    for (Map.Entry<Connection, ClientAck> e : acks.entrySet()) {
      ConnectionRecord r = records.get(e.getKey());
      if (r != null && r.phase == STAGED && r.staged.clientAcknowledged(e.getValue())) {
        taken++;
      }
    }
    return taken;
  }

  /** Resumes every staged socket, in parallel; only after {@link #commit}. */
  public synchronized MigrationStatus resume() {
    if (!in(TRANSFERRED).isEmpty()) {
      throw new WrongPhase("received connections are not staged yet: call Stage first");
    }
    commit();
    List<ConnectionRecord> staged = in(STAGED);
    try (PeerSegments peers = peerSegments(staged)) {
      resume(staged, peers);
    }
    return status();
  }

  /**
   * Raw sockets in the pod, one per address family among {@code staged}, from which the clients'
   * acknowledgments are handed on; none when no client acknowledged anything or the pod's namespace
   * cannot be entered (then the sockets wait for the clients' answers to the resume).
   */
  private PeerSegments peerSegments(List<ConnectionRecord> staged) {
    if (pod == null || staged.stream().noneMatch(r -> r.staged.hasClientAck())) {
      return PeerSegments.NONE;
    }
    try (NetNamespace ns = node.pods().open(pod, "pod")) {
      return PeerSegments.openOrNone(
          ns, staged.stream().map(r -> r.departed.socket().local()).toList(), "migration " + id);
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              "migration "
                  + id
                  + ": cannot enter the pod for the clients' acknowledgments; each socket waits"
                  + " for its client's answer to the resume: "
                  + e.getMessage());
      return PeerSegments.NONE;
    }
  }

  private void resume(List<ConnectionRecord> staged, PeerSegments peers) {
    clock.time(
        "resume",
        () -> {
          List<String> failures =
              Workers.each(
                  node.workers(),
                  staged,
                  r -> {
                    try {
                      r.staged.resume(
                          r.keptClientBytes == null ? new byte[0] : r.keptClientBytes.toByteArray(),
                          peers.forAddress(r.departed.socket().local()));
                      return null;
                    } catch (SyscallException | RuntimeException e) {
                      return "resume failed: " + e.getMessage();
                    }
                  });
          for (int i = 0; i < staged.size(); i++) {
            ConnectionRecord r = staged.get(i);
            r.staged = null;
            r.departed = null;
            r.keptClientBytes = null;
            if (failures.get(i) == null) {
              r.to(RESUMED, "");
            } else {
              r.to(FAILED, failures.get(i));
            }
          }
          return null;
        });
  }

  /**
   * Notes that every connection is live here, if so: states sent again after the commit (by a
   * source that never heard the answer, or one replaying its plan) are then answered from this
   * mark, never staged a second time, not even for a connection its client has closed since. After
   * the answer to COMMIT, so that its fsync is not in the pause the source reports.
   */
  synchronized void markIfAllResumed() {
    if (records.isEmpty() || !records.values().stream().allMatch(r -> r.phase == RESUMED)) {
      return;
    }
    try {
      node.commits().allResumed(id);
    } catch (java.io.UncheckedIOException e) {
      LOG.warning(() -> "migration " + id + ": " + e.getMessage());
    }
  }

  /**
   * Drops everything not yet resumed, unless the migration committed here: then nothing is dropped,
   * and the status says committed. Once this has dropped anything, the migration can never commit
   * here.
   */
  public synchronized MigrationStatus rollback() {
    if (committed) {
      return status();
    }
    if (planId != null) {
      try {
        node.commits().planRolledBack(planId);
      } catch (java.io.UncheckedIOException e) {
        // This migration can never commit here all the same; only a replay after a restart of
        // this agent would get past.
        LOG.warning(() -> "migration " + id + ": " + e.getMessage());
      }
    }
    aborted = true;
    clock.time(
        "rollback",
        () -> {
          for (ConnectionRecord r : records.values()) {
            if (r.phase == RESUMED || r.phase == DISCARDED) {
              continue;
            }
            if (r.staged != null) {
              try {
                r.staged.abandon();
              } catch (SyscallException e) {
                LOG.warning(
                    () ->
                        "migration " + id + ": abandoning " + r.connection + ": " + e.getMessage());
              }
              r.staged = null;
            }
            r.departed = null;
            r.to(DISCARDED, "rolled back");
          }
          return null;
        });
    return status();
  }

  public synchronized MigrationStatus status() {
    MigrationStatus.Builder b =
        MigrationStatus.newBuilder()
            .setMigrationId(id)
            .setNode(node.nodeName())
            .setCommitted(committed);
    records.values().forEach(r -> b.addConnections(r.status()));
    b.putAllPhaseMicros(clock.snapshot());
    return b.build();
  }

  public synchronized Map<ConnectionPhase, Integer> phases() {
    Map<ConnectionPhase, Integer> n = new LinkedHashMap<>();
    records.values().forEach(r -> n.merge(r.phase, 1, Integer::sum));
    return n;
  }

  private List<ConnectionRecord> in(ConnectionPhase phase) {
    return new ArrayList<>(records.values().stream().filter(r -> r.phase == phase).toList());
  }
}
