// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import static dev.ferry.api.v1alpha1.ConnectionPhase.DISCARDED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FAILED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RESUMED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAGED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.TRANSFERRED;

import dev.ferry.agent.move.Arrival;
import dev.ferry.agent.move.Departure;
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
import java.util.logging.Logger;

/**
 * The target node's side of one migration: receive the states, stage the sockets in the target pod,
 * resume them, or drop them. Resume is the commit point: after it, a rollback leaves the connection
 * here and says so.
 */
final class TargetMigration {
  private static final Logger LOG = Logger.getLogger(TargetMigration.class.getName());

  final String id;
  private final NodeParts node;
  private final PhaseClock clock;
  private final Map<Connection, ConnectionRecord> records = new LinkedHashMap<>();

  TargetMigration(String id, NodeParts node) {
    this.id = id;
    this.node = node;
    this.clock = new PhaseClock(node.metrics()::phase);
  }

  static TargetMigration recovered(String id, NodeParts node, List<Departure.Departed> saved) {
    TargetMigration m = new TargetMigration(id, node);
    m.put(saved, "recovered from disk after an agent restart");
    return m;
  }

  /** A (possibly repeated) transfer: replaces what was received, unless already staged. */
  synchronized void receive(List<Departure.Departed> states, long micros) {
    if (!in(STAGED).isEmpty() || !in(RESUMED).isEmpty()) {
      throw new WrongPhase("migration " + id + " is already staged here; roll it back first");
    }
    node.saved().forget(id);
    node.saved().begin(new SavedStates.Migration(id, "target", "", ""));
    records.clear();
    states.forEach(d -> node.saved().save(id, d));
    put(states, "");
    node.metrics().phase("receive", micros);
  }

  private void put(List<Departure.Departed> states, String reason) {
    for (Departure.Departed d : states) {
      ConnectionRecord r = new ConnectionRecord(d.connection(), TRANSFERRED);
      r.departed = d;
      r.reason = reason;
      records.put(d.connection(), r);
    }
  }

  synchronized MigrationStatus stage(PodRef pod) throws SyscallException {
    List<ConnectionRecord> received = in(TRANSFERRED);
    received.addAll(in(FAILED)); // a retried stage tries again what failed
    if (received.isEmpty()) {
      return status();
    }
    try (NetNamespace ns = node.pods().open(pod, "pod")) {
      clock.time(
          "stage",
          () -> {
            for (ConnectionRecord r : received) {
              stage(r, ns);
            }
            return null;
          });
    }
    return status();
  }

  private void stage(ConnectionRecord r, NetNamespace ns) {
    try {
      Arrival a = node.mover().arrive(r.departed, ns);
      if (a instanceof Arrival.Staged staged) {
        r.staged = staged;
        r.to(STAGED, "");
      } else {
        r.to(FAILED, ((Arrival.Refused) a).reason());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      r.to(FAILED, "interrupted while staging");
    }
  }

  synchronized MigrationStatus resume() {
    if (!in(TRANSFERRED).isEmpty()) {
      throw new WrongPhase("received connections are not staged yet: call Stage first");
    }
    clock.time(
        "resume",
        () -> {
          for (ConnectionRecord r : in(STAGED)) {
            try {
              r.staged.resume();
              r.staged = null;
              node.saved().delete(id, r.connection);
              r.departed = null;
              r.to(RESUMED, "");
            } catch (SyscallException e) {
              r.to(FAILED, "resume failed: " + e.getMessage());
            }
          }
          return null;
        });
    forgetIfDone();
    return status();
  }

  /** Drops everything not yet resumed; the source still has the states and rebuilds them. */
  synchronized MigrationStatus rollback() {
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
                LOG.warning(() -> "abandoning " + r.connection + ": " + e.getMessage());
              }
              r.staged = null;
            }
            r.departed = null;
            r.to(DISCARDED, "rolled back");
          }
          return null;
        });
    node.saved().forget(id);
    return status();
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

  private List<ConnectionRecord> in(ConnectionPhase phase) {
    return new ArrayList<>(records.values().stream().filter(r -> r.phase == phase).toList());
  }

  private void forgetIfDone() {
    if (records.values().stream().allMatch(r -> r.departed == null)) {
      node.saved().forget(id);
    }
  }
}
