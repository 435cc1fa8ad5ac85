// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import static dev.ferry.api.v1alpha1.ConnectionPhase.EXPORTED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FAILED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FROZEN;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RELEASED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.ROLLED_BACK;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAYED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.TRANSFERRED;

import dev.ferry.agent.move.Arrival;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.move.Freezing;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MigrationStatus;
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
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.logging.Logger;

/**
 * The source node's side of one migration: freeze, export, transfer, then release, or roll back.
 * Calls are serialised per migration; each is idempotent, so a retried call finds the work done.
 */
final class SourceMigration {
  private static final Logger LOG = Logger.getLogger(SourceMigration.class.getName());

  final String id;
  private final PodRef pod;
  private final NodeParts node;
  private final PhaseClock clock;
  private final Map<Connection, ConnectionRecord> records = new LinkedHashMap<>();

  /** The address has left the node: the migration can only end on the target now. */
  private boolean committed;

  /** Why the hold limit rolled this migration back; null while it has not. */
  private String limitPassed;

  SourceMigration(String id, PodRef pod, NodeParts node) {
    this.id = id;
    this.pod = pod;
    this.node = node;
    this.clock = new PhaseClock(node.metrics()::phase);
  }

  /** An agent restarted with these states on disk: they are EXPORTED, held by their pins. */
  static SourceMigration recovered(
      String id, PodRef pod, NodeParts node, List<Departure.Departed> saved) {
    SourceMigration m = new SourceMigration(id, pod, node);
    for (Departure.Departed d : saved) {
      ConnectionRecord r = new ConnectionRecord(d.connection(), EXPORTED);
      r.departed = d;
      r.reason = "recovered from disk after an agent restart";
      m.records.put(d.connection(), r);
    }
    return m;
  }

  synchronized MigrationStatus freeze(List<Connection> connections) throws InterruptedException {
    if (!records.isEmpty()) {
      return status(); // a retried freeze: these connections are already asked for
    }
    node.saved().begin(new SavedStates.Migration(id, "source", pod.getNetns(), pod.getUid()));
    // One batch: every application hears of all its connections at once, not one by one.
    List<Freezing> results =
        clock.time(
            "freeze",
            () -> {
              try {
                return node.mover().freezeAll(List.copyOf(connections));
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
    return status();
  }

  synchronized MigrationStatus export() throws InterruptedException {
    refuseIfLimitPassed();
    List<ConnectionRecord> frozen = in(FROZEN);
    List<Departure> results =
        clock.time(
            "export",
            () -> each(frozen, r -> node.mover().export(r.held, d -> node.saved().save(id, d))));
    for (int i = 0; i < frozen.size(); i++) {
      ConnectionRecord r = frozen.get(i);
      r.held = null;
      if (results.get(i) instanceof Departure.Departed d) {
        r.departed = d;
        r.to(EXPORTED, "");
      } else {
        r.to(STAYED, ((Departure.Stayed) results.get(i)).reason());
      }
    }
    return status();
  }

  /** Streams every saved state to the target's agent; the target replaces what it had. */
  synchronized MigrationStatus transfer(String targetAgent) {
    refuseIfLimitPassed();
    if (!in(FROZEN).isEmpty()) {
      throw new WrongPhase("connections are frozen but not exported: call Export first");
    }
    List<ConnectionRecord> saved = new ArrayList<>(in(EXPORTED));
    saved.addAll(in(TRANSFERRED));
    clock.time(
        "transfer",
        () -> {
          node.peers()
              .send(targetAgent, id, node.nodeName(), saved.stream().map(r -> r.departed).toList());
          return null;
        });
    saved.forEach(r -> r.to(TRANSFERRED, ""));
    return status();
  }

  /** The connections live on the target now: stop answering for them and forget their states. */
  synchronized MigrationStatus release() {
    if (!in(FROZEN).isEmpty()) {
      throw new WrongPhase("connections are frozen but not exported: roll back instead");
    }
    clock.time(
        "release",
        () -> {
          for (ConnectionRecord r : saved()) {
            try {
              node.mover().release(r.connection);
            } catch (SyscallException e) {
              // The entry expires at its deadline; the address has left this node anyway.
              LOG.warning(() -> "releasing the hold on " + r.connection + ": " + e.getMessage());
            }
            node.saved().delete(id, r.connection);
            r.departed = null;
            r.to(RELEASED, "");
          }
          return null;
        });
    forgetIfDone();
    return status();
  }

  /**
   * Puts every connection back where it was: a frozen one is handed back to its application; a
   * saved one is rebuilt in the pod, taken by its application and resumed. A state that cannot be
   * rebuilt stays on disk, reported FAILED with the reason.
   */
  synchronized MigrationStatus rollback() throws InterruptedException {
    clock.time(
        "rollback",
        () -> {
          for (ConnectionRecord r : in(FROZEN)) {
            node.mover().giveBack(r.held, "the migration was rolled back");
            r.held = null;
            r.to(ROLLED_BACK, "");
          }
          List<ConnectionRecord> saved = saved();
          saved.addAll(in(FAILED));
          if (saved.isEmpty()) {
            return null;
          }
          try (NetNamespace ns = node.pods().open(pod, "pod")) {
            for (ConnectionRecord r : saved) {
              rebuild(r, ns);
            }
          } catch (SyscallException e) {
            saved.forEach(r -> r.to(FAILED, "the pod's network namespace: " + e.getMessage()));
          }
          return null;
        });
    forgetIfDone();
    return status();
  }

  private void rebuild(ConnectionRecord r, NetNamespace ns) {
    try {
      Arrival arrival = node.mover().arrive(r.departed, ns);
      if (arrival instanceof Arrival.Staged staged) {
        staged.resume();
        node.saved().delete(id, r.connection);
        r.departed = null;
        r.to(ROLLED_BACK, "");
      } else {
        r.to(FAILED, "rebuilding it here failed: " + ((Arrival.Refused) arrival).reason());
      }
    } catch (SyscallException e) {
      r.to(FAILED, "resuming it here failed: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      r.to(FAILED, "interrupted while rebuilding it; its state is still on disk");
    }
  }

  synchronized MigrationStatus status() {
    MigrationStatus.Builder b =
        MigrationStatus.newBuilder().setMigrationId(id).setNode(node.nodeName());
    records.values().forEach(r -> b.addConnections(r.status()));
    b.putAllPhaseMicros(clock.snapshot());
    return b.build();
  }

  synchronized Map<ConnectionPhase, Integer> phases() {
    Map<ConnectionPhase, Integer> n = new LinkedHashMap<>();
    records.values().forEach(r -> n.merge(r.phase, 1, Integer::sum));
    return n;
  }

  private List<ConnectionRecord> saved() {
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
  synchronized void holdLimitPassed(Duration limit) throws InterruptedException {
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

  synchronized void addressLeaving(boolean gone) {
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

  private void forgetIfDone() {
    if (records.values().stream().allMatch(r -> r.departed == null && r.held == null)) {
      node.saved().forget(id);
    }
  }

  /** Runs {@code work} for every item at once on the agent's workers; results in order. */
  private <T, R> List<R> each(Collection<T> items, Work<T, R> work) {
    List<Future<R>> futures = new ArrayList<>();
    for (T item : items) {
      Callable<R> task = () -> work.run(item);
      futures.add(node.workers().submit(task));
    }
    List<R> out = new ArrayList<>();
    for (Future<R> f : futures) {
      try {
        out.add(f.get());
      } catch (ExecutionException e) {
        throw new IllegalStateException(e.getCause().getMessage(), e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted", e);
      }
    }
    return out;
  }

  interface Work<T, R> {
    R run(T item) throws Exception;
  }
}
