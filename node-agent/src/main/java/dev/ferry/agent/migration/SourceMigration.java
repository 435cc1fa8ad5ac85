// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static dev.ferry.api.v1alpha1.ConnectionPhase.EXPORTED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FAILED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FROZEN;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RELEASED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.ROLLED_BACK;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAYED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.TRANSFERRED;

import dev.ferry.agent.address.PodAddresses;
import dev.ferry.agent.address.ServiceAddress;
import dev.ferry.agent.move.Arrival;
import dev.ferry.agent.move.ConnectionMover;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.move.Freezing;
import dev.ferry.agent.repair.PeerSegments;
import dev.ferry.agent.store.SavedStates;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.logging.Logger;

/**
 * The source node's side of one migration: freeze, export, transfer, then release, or roll back.
 * Calls are serialised per migration; each is idempotent, so a retried call finds the work done.
 */
public final class SourceMigration {
  private static final Logger LOG = Logger.getLogger(SourceMigration.class.getName());

  final String id;
  private final PodRef pod;
  private final NodeParts node;
  private final PhaseClock clock;
  private final Map<Connection, ConnectionRecord> records = new LinkedHashMap<>();

  /**
   * The address has left the node, or the target was told to commit: from here only the target
   * knows whether the migration committed, and a rollback must ask it first.
   */
  private boolean committed;

  /** A rollback ran before any commit could: the target must never be told to commit. */
  private boolean rolledBack;

  /** Why the hold limit rolled this migration back; null while it has not. */
  private String limitPassed;

  /** host:port of the target's agent, once known: a rollback past the commit-sent mark asks it. */
  private String targetAgent = "";

  /** How the service address follows the connections; none when its cidr is empty. */
  private MoveAddressPlan address = MoveAddressPlan.getDefaultInstance();

  /** The address left this node's pod: a rollback puts it back before it rebuilds a socket. */
  private boolean addressLeft;

  /** Read from disk by an agent that restarted mid-move: see {@link #awaitApplications}. */
  private boolean recovered;

  /** System.nanoTime() as the first export began; 0 for a migration recovered from disk. */
  private long exportBeganNanos;

  public SourceMigration(String id, PodRef pod, NodeParts node) {
    this.id = id;
    this.pod = pod;
    this.node = node;
    this.clock = new PhaseClock(node.metrics()::phase);
  }

  /** An agent restarted with these states on disk: they are EXPORTED, held by their pins. */
  public static SourceMigration recovered(
      SavedStates.Migration saved, PodRef pod, NodeParts node, List<Departure.Departed> states) {
    SourceMigration m = new SourceMigration(saved.id(), pod, node);
    m.targetAgent = saved.targetAgent();
    m.address = saved.address();
    // Whether the target was told to commit before the agent died is not known here: ask it.
    m.committed = node.saved().commitMayHaveHappened(saved.id());
    m.addressLeft = m.committed; // the address leaves after the mark, never before
    m.recovered = true;
    List<Departure.Departed> saved0 = states;
    for (Departure.Departed d : saved0) {
      ConnectionRecord r = new ConnectionRecord(d.connection(), EXPORTED);
      r.departed = d;
      r.reason = "recovered from disk after an agent restart";
      m.records.put(d.connection(), r);
    }
    return m;
  }

  /**
   * Freezes {@code connections}, and records each of {@code leftBehind} as STAYED with its state
   * and reason: the move cannot take it, and the status must say so before its address goes.
   */
  public synchronized MigrationStatus freeze(
      List<Connection> connections, List<Inventory.LeftBehind> leftBehind)
      throws InterruptedException {
    if (!records.isEmpty()) {
      return status(); // a retried freeze: these connections are already asked for
    }
    long podNetns;
    try {
      // Only the applications in the pod are asked for its connections: one elsewhere on the node
      // that registered the same port (another pod's, or a squatter) gets nothing.
      podNetns = node.pods().inode(pod, "pod");
    } catch (SyscallException e) {
      for (Connection c : connections) {
        ConnectionRecord r = new ConnectionRecord(c, FROZEN);
        r.to(STAYED, "the pod's network namespace: " + e.getMessage());
        records.put(c, r);
      }
      return status();
    }
    List<Freezing> results =
        // One batch: every application hears of all its connections at once, not one by one.
        clock.time(
            "freeze",
            () -> {
              try {
                return node.mover().freezeAll(List.copyOf(connections), podNetns);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
              }
            });
    for (Freezing f : results) {
      ConnectionRecord r = new ConnectionRecord(f.connection(), FROZEN);
      if (f instanceof Freezing.Held held) {
        r.held = held;
      } else {
        r.to(STAYED, ((Freezing.Stays) f).stayed().reason());
      }
      records.put(f.connection(), r);
    }
    recordLeftBehind(leftBehind);
    return status();
  }

  /** Each connection the move cannot take, as STAYED with its state and reason. */
  private void recordLeftBehind(List<Inventory.LeftBehind> leftBehind) {
    for (Inventory.LeftBehind l : leftBehind) {
      ConnectionRecord r = new ConnectionRecord(l.connection(), STAYED);
      r.reason = l.described();
      records.put(l.connection(), r);
    }
  }

  /**
   * The move failed before anything was frozen: each connection it would have taken, and each it
   * could not, is recorded as STAYED, so that the status names every connection and the side it
   * lives on (this one) rather than none. A no-op once anything is recorded.
   */
  public synchronized MigrationStatus stayedUnfrozen(
      List<Connection> connections, List<Inventory.LeftBehind> leftBehind, String why) {
    if (records.isEmpty()) {
      for (Connection c : connections) {
        ConnectionRecord r = new ConnectionRecord(c, STAYED);
        r.reason = why;
        records.put(c, r);
      }
      recordLeftBehind(leftBehind);
    }
    return status();
  }

  /**
   * Reads every frozen socket, saves all the states in one batch, and only then lets the sockets
   * go: until the batch is written each socket is still open in repair mode, so nothing is lost if
   * the agent dies. Reading and letting go run in parallel across the agent's workers.
   */
  public synchronized MigrationStatus export() throws InterruptedException {
    refuseIfLimitPassed();
    List<ConnectionRecord> frozen = in(FROZEN);
    if (exportBeganNanos == 0) {
      exportBeganNanos = System.nanoTime();
    }
    clock.time(
        "export",
        () -> {
          List<ConnectionMover.Reading> read = each(frozen, r -> node.mover().read(r.held));
          List<ConnectionRecord> reading = new ArrayList<>();
          List<ConnectionMover.Reading> readings = new ArrayList<>();
          for (int i = 0; i < frozen.size(); i++) {
            ConnectionRecord r = frozen.get(i);
            if (read.get(i).stayed() != null) {
              r.held = null;
              r.to(STAYED, read.get(i).stayed().reason());
            } else {
              reading.add(r);
              readings.add(read.get(i));
            }
          }
          List<Departure.Departed> keep = new ArrayList<>(departed());
          readings.forEach(x -> keep.add(x.departed()));
          try {
            node.saved().save(saved(), keep);
          } catch (RuntimeException e) {
            List<Departure.Stayed> back =
                each(readings, x -> node.mover().putBack(x, ConnectionMover.couldNotSave(e)));
            for (int i = 0; i < reading.size(); i++) {
              reading.get(i).held = null;
              reading.get(i).to(STAYED, back.get(i).reason());
            }
            return null;
          }
          List<Departure.Departed> left = each(readings, x -> node.mover().leave(x));
          for (int i = 0; i < reading.size(); i++) {
            ConnectionRecord r = reading.get(i);
            r.held = null;
            r.departed = left.get(i);
            r.stateBytes = r.departed.applicationState().length;
            r.to(EXPORTED, "");
          }
          return null;
        });
    return status();
  }

  private SavedStates.Migration saved() {
    return new SavedStates.Migration(
        id, "source", pod.getNetns(), pod.getUid(), targetAgent, address);
  }

  /** Every state this node keeps: the exported connections not yet released or rolled back. */
  private List<Departure.Departed> departed() {
    return records.values().stream().filter(r -> r.departed != null).map(r -> r.departed).toList();
  }

  /** The states to send to the target, in order. */
  public synchronized List<Departure.Departed> exported() {
    return savedRecords().stream().map(r -> r.departed).toList();
  }

  /**
   * Milliseconds since the first export of this migration began, on this node's monotonic clock:
   * each exported connection's hold has been answering for no longer (see
   * RestoredSocket.continueClock, which adds the time COMMIT takes to arrive). For a migration
   * recovered from disk, from the states' export times on the wall clock.
   */
  public synchronized long millisSinceExport() {
    if (exportBeganNanos != 0) {
      return (System.nanoTime() - exportBeganNanos) / 1_000_000;
    }
    long first =
        exported().stream()
            .mapToLong(d -> d.socket().exportedAtMillis())
            .filter(t -> t > 0)
            .min()
            .orElse(System.currentTimeMillis());
    return Math.max(0, System.currentTimeMillis() - first);
  }

  /** The target has the states of every exported connection. */
  public synchronized void transferred() {
    savedRecords().forEach(r -> r.to(TRANSFERRED, ""));
  }

  /** The connections live on the target now: stop answering for them and forget their states. */
  public synchronized MigrationStatus release() {
    if (!in(FROZEN).isEmpty()) {
      throw new WrongPhase("connections are frozen but not exported: roll back instead");
    }
    clock.time(
        "release",
        () -> {
          for (ConnectionRecord r : savedRecords()) {
            try {
              node.mover().release(r.connection);
            } catch (SyscallException e) {
              // The entry expires at its deadline; the address has left this node anyway.
              LOG.warning(
                  () ->
                      "migration "
                          + id
                          + ": releasing the hold on "
                          + r.connection
                          + ": "
                          + e.getMessage());
            }
            r.departed = null;
            r.to(RELEASED, "");
          }
          return null;
        });
    forgetIfDone();
    return status();
  }

  /**
   * Recovered by an agent that restarted mid-move: waits until the pod's application has registered
   * again every port of the saved connections, or until {@code deadline} (System.nanoTime()), so
   * that a rollback's rebuild finds it. The application opens its session with the restarted agent
   * on its own, up to seconds after the agent is back, while the operator calls Move again as soon
   * as it answers; a rebuild before then would fail, and leave the clients held until the hold
   * limit's rollback. Outside the migration's lock: its status is read meanwhile.
   *
   * <p>Past the commit's mark only the target knows whether the connections are its now: it is
   * asked first, which also makes it abort if it has not committed, so that the answer holds.
   * Committed there, nothing is rebuilt here and nothing waits for this pod's application; not
   * committed, the rebuild waits for it as before the mark (a source that died between its mark and
   * COMMIT, then came back before its application did, reported the move Failed and held the
   * clients until the hold limit: FaultMatrixIT's late applications).
   */
  void awaitApplications(long deadline) throws InterruptedException {
    Set<Integer> ports = new TreeSet<>();
    boolean pastMark;
    synchronized (this) {
      if (!recovered) {
        return;
      }
      savedRecords().forEach(r -> ports.add(r.connection.local().getPort()));
      pastMark = committed;
    }
    if (ports.isEmpty() || (pastMark && targetCommittedOrCannotSay())) {
      return;
    }
    long podNetns;
    try {
      podNetns = node.pods().inode(pod, "pod");
    } catch (SyscallException e) {
      return; // the rollback says so
    }
    node.mover().awaitApplications(id, ports, podNetns, deadline, "rolling back");
  }

  /**
   * Whether the target committed this migration, asked as {@link #rollback} asks it (a target that
   * had not aborts, and never commits after); true too when it cannot say, so that nothing waits
   * here for a rebuild the rollback will refuse until it can.
   */
  private boolean targetCommittedOrCannotSay() {
    try {
      return node.peers().abortUnlessCommitted(targetAgent, id);
    } catch (RuntimeException e) {
      return true;
    }
  }

  /**
   * Puts every connection back where it was: a frozen one is handed back to its application; a
   * saved one is rebuilt in the pod, taken by its application and resumed. A state that cannot be
   * rebuilt stays on disk, reported FAILED with the reason.
   */
  public synchronized MigrationStatus rollback() throws InterruptedException {
    if (committed && !savedRecords().isEmpty()) {
      // Only the target knows whether it committed; asking also makes it abort if it has not,
      // so that it can never commit after this.
      boolean targetCommitted;
      try {
        targetCommitted = node.peers().abortUnlessCommitted(targetAgent, id);
      } catch (RuntimeException e) {
        throw new TargetCannotSay(
            "migration "
                + id
                + " may have committed on the target, whose agent ("
                + targetAgent
                + ") cannot say: "
                + e.getMessage()
                + ". Nothing is rebuilt here until it answers; retry");
      }
      if (targetCommitted) {
        LOG.info(() -> "migration " + id + " committed on the target: releasing, not rebuilding");
        return release();
      }
    }
    rolledBack = true;
    giveAddressBack();
    clock.time(
        "rollback",
        () -> {
          for (ConnectionRecord r : in(FROZEN)) {
            Departure.Stayed back = node.mover().giveBack(r.held, "the migration was rolled back");
            r.held = null;
            if (back.reset()) {
              r.to(FAILED, back.reason());
            } else {
              r.to(ROLLED_BACK, "");
            }
          }
          List<ConnectionRecord> saved = savedRecords();
          // A connection that failed with its state still here (an earlier rebuild failed) is
          // tried again; one that failed without a state (its application was gone when it was
          // given back, so its client was reset, just above) has nothing to rebuild.
          in(FAILED).stream().filter(r -> r.departed != null).forEach(saved::add);
          if (saved.isEmpty()) {
            return null;
          }
          try (NetNamespace ns = node.pods().open(pod, "pod")) {
            // One wait for the application to let go of the originals, shared by every rebuild:
            // an application that does not close them must not hold the rollback a while each.
            long oldSocketsGoneBy = System.nanoTime() + ConnectionMover.OLD_SOCKET_WAIT.toNanos();
            for (ConnectionRecord r : saved) {
              rebuild(r, ns, oldSocketsGoneBy);
            }
          } catch (SyscallException e) {
            saved.forEach(r -> r.to(FAILED, "the pod's network namespace: " + e.getMessage()));
          }
          return null;
        });
    forgetIfDone();
    return status();
  }

  private void rebuild(ConnectionRecord r, NetNamespace ns, long oldSocketGoneBy) {
    try {
      // The application gets its whole state back: a pre-copied part is read from disk.
      dev.ferry.agent.repair.SocketState state = r.departed.socket();
      Arrival arrival =
          node.mover().arrive(node.saved().whole(id, r.departed), ns, oldSocketGoneBy);
      if (arrival instanceof Arrival.Staged staged) {
        // As on a target: what the client acknowledged to the hold frees the rebuilt socket's
        // window at once. One raw socket for it: a rollback is rare, and rolls back few.
        node.mover().clientAcks(List.of(state)).values().forEach(staged::clientAcknowledged);
        try (PeerSegments peers =
            staged.hasClientAck()
                ? PeerSegments.openOrNone(ns, List.of(state.local()), "migration " + id)
                : PeerSegments.NONE) {
          // What the client sent while held is in this node's ring, as on a target: the resume
          // takes it from there, so the client need not wait for its timer to send it again.
          staged.resume(new byte[0], peers.forAddress(state.local()));
        }
        r.departed = null;
        r.to(ROLLED_BACK, "");
      } else {
        r.to(FAILED, "rebuilding it here failed: " + ((Arrival.Refused) arrival).reason());
      }
    } catch (java.io.IOException e) {
      r.to(FAILED, "resuming it here failed: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      r.to(FAILED, "interrupted while rebuilding it; its state is still on disk");
    }
  }

  public synchronized MigrationStatus status() {
    MigrationStatus.Builder b =
        MigrationStatus.newBuilder().setMigrationId(id).setNode(node.nodeName());
    records.values().forEach(r -> b.addConnections(r.status()));
    b.putAllPhaseMicros(clock.snapshot());
    return b.build();
  }

  public synchronized Map<ConnectionPhase, Integer> phases() {
    Map<ConnectionPhase, Integer> n = new LinkedHashMap<>();
    records.values().forEach(r -> n.merge(r.phase, 1, Integer::sum));
    return n;
  }

  private List<ConnectionRecord> savedRecords() {
    List<ConnectionRecord> out = in(EXPORTED);
    out.addAll(in(TRANSFERRED));
    return out;
  }

  private List<ConnectionRecord> in(ConnectionPhase phase) {
    return new ArrayList<>(records.values().stream().filter(r -> r.phase == phase).toList());
  }

  /**
   * The clients have been held for {@code limit}: unless the address has left the node, every
   * connection goes back to its application here, and the migration's later steps are refused.
   */
  public synchronized void holdLimitPassed(Duration limit) throws InterruptedException {
    boolean pending = records.values().stream().anyMatch(r -> r.held != null || r.departed != null);
    if (committed || !pending || limitPassed != null) {
      return;
    }
    limitPassed =
        "the hold limit ("
            + limit.toMillis()
            + " ms) passed before the migration finished: its connections went back to their"
            + " application on "
            + node.nodeName();
    LOG.warning(() -> "migration " + id + ": " + limitPassed);
    rollback();
    records.values().stream()
        .filter(r -> r.phase == ROLLED_BACK)
        .forEach(r -> r.to(ROLLED_BACK, limitPassed));
  }

  /** Records a step of the move timed outside this class (the stream's round trips). */
  public void timed(String phase, long startNanos) {
    clock.add(phase, (System.nanoTime() - startNanos) / 1000);
  }

  /** Records a step of the move measured elsewhere, in microseconds. */
  public void took(String phase, long micros) {
    clock.add(phase, micros);
  }

  /** Why the hold limit rolled this migration back; null while it has not. */
  public synchronized String limitPassed() {
    return limitPassed;
  }

  public synchronized boolean commitMayHaveHappened() {
    return committed;
  }

  /** Where the move goes: the target's agent and what becomes of the address. */
  public synchronized void plan(String agent, MoveAddressPlan address) {
    if (!agent.isEmpty()) {
      targetAgent = agent;
    }
    this.address = address;
  }

  /**
   * The address leaves the pod (and the node's route to it), once the target has staged every
   * connection; nothing when the move carries no address.
   */
  public synchronized void addressLeaves() throws SyscallException {
    if (address.getCidr().isEmpty()) {
      return;
    }
    addressLeaving(true);
    addressLeft = true;
    node.addresses()
        .remove(
            PodAddresses.parse("address.cidr", address.getCidr()),
            pod,
            ifname(),
            address.getSourceHostInterface(),
            address.getHostRoute());
  }

  /** The address back on the pod, routed and announced, if it had left. */
  private void giveAddressBack() {
    if (!addressLeft) {
      return;
    }
    try {
      ServiceAddress a = PodAddresses.parse("address.cidr", address.getCidr());
      if (a.ip() instanceof java.net.Inet4Address v4) {
        // First, or the node would go on sending the address's packets to the target.
        node.forwarding().end(v4, "migration " + id + " rolled back: the address is here again");
      }
      node.addresses()
          .add(a, pod, ifname(), address.getSourceHostInterface(), address.getHostRoute());
      if (address.getAnnounce()) {
        node.addresses().announce(a);
      }
      addressLeft = false;
    } catch (SyscallException | RuntimeException e) {
      // The sockets are rebuilt anyway; each one that cannot bind is reported FAILED.
      LOG.severe(() -> "migration " + id + ": giving the address back failed: " + e.getMessage());
    }
  }

  private String ifname() {
    return address.getInterface().isEmpty() ? "eth0" : address.getInterface();
  }

  /**
   * Marks the point after which the target may commit: noted on disk first, so that a restarted
   * agent knows to ask the target before it rebuilds anything.
   *
   * @throws WrongPhase when the hold limit rolled the migration back first
   */
  public synchronized void commitMayHappen() {
    refuseIfLimitPassed();
    if (rolledBack) {
      throw new WrongPhase(
          "migration " + id + " was rolled back while it moved (deadline or request deleted)");
    }
    node.saved().commitMayHappen(id);
    committed = true;
  }

  public synchronized void addressLeaving(boolean gone) {
    if (gone) {
      refuseIfLimitPassed();
    }
    committed = gone;
  }

  private void refuseIfLimitPassed() {
    if (limitPassed != null) {
      throw new WrongPhase(limitPassed + "; roll the migration back");
    }
  }

  /** Keeps on disk exactly the states still held here; nothing once none is left. */
  private void forgetIfDone() {
    List<Departure.Departed> left = departed();
    if (left.isEmpty()) {
      if (records.values().stream().allMatch(r -> r.held == null)) {
        node.saved().forget(id);
      }
    } else if (left.size() < records.size()) {
      node.saved().save(saved(), left);
    }
  }

  private <T, R> List<R> each(Collection<T> items, Workers.Work<T, R> work) {
    return Workers.each(node.workers(), items, work);
  }
}
