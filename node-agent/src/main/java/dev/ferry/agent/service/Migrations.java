// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.move.Departure;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.sys.SyscallException;
import java.io.IOException;
import java.time.Duration;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/** Every migration this node takes part in, as source or target, by id. */
final class Migrations {
  private static final Logger LOG = Logger.getLogger(Migrations.class.getName());

  private final NodeParts node;
  private final Duration holdLimit;
  private final Map<String, SourceMigration> sources = new ConcurrentHashMap<>();
  private final Map<String, TargetMigration> targets = new ConcurrentHashMap<>();
  private final ScheduledExecutorService limits =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "hold-limits");
            t.setDaemon(true);
            return t;
          });

  /**
   * @param holdLimit the agent's own hold limit: the hold's programs step aside at it, so a
   *     migration's own limit is kept below it, with time to roll back before the hold goes
   */
  Migrations(NodeParts node, Duration holdLimit) {
    this.node = node;
    this.holdLimit = holdLimit;
  }

  /**
   * Rolls {@code m} back if it is still here when its clients have been held for {@code requested}
   * (0: the agent's own limit), unless its address has left the node by then.
   */
  void limitHold(SourceMigration m, Duration requested) {
    Duration most = holdLimit.multipliedBy(9).dividedBy(10);
    Duration limit = requested.isZero() || requested.compareTo(most) > 0 ? most : requested;
    limits.schedule(
        () -> {
          try {
            m.holdLimitPassed(limit);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          } catch (RuntimeException e) {
            LOG.severe(() -> "rolling " + m.id + " back at its hold limit failed: " + e);
          }
        },
        limit.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  /**
   * The address of migration {@code id} leaves this node ({@code gone}) or comes back; a no-op
   * unless the migration leaves this node.
   *
   * @throws WrongPhase when the migration's hold limit has already rolled it back here
   */
  void addressLeaving(String id, boolean gone) {
    SourceMigration m = sources.get(id);
    if (m != null) {
      m.addressLeaving(gone);
    }
  }

  /**
   * Picks up what a previous agent left on disk. Source states are still held (the hold's maps are
   * pinned) and wait for Release or Rollback; target states wait for Stage or Rollback. Holds with
   * no saved state belong to connections that were frozen but never exported: their applications
   * kept them when the session ended, so the hold lets go of them now.
   */
  void recover() throws IOException {
    Set<HoldKey> kept = new HashSet<>();
    for (String id : node.saved().migrations()) {
      SavedStates.Migration m;
      List<Departure.Departed> states;
      try {
        m = node.saved().migration(id);
        states = node.saved().load(id);
      } catch (IOException e) {
        LOG.severe(
            () -> "migration " + id + " cannot be recovered, its files stay: " + e.getMessage());
        continue;
      }
      if (m.role().equals("source")) {
        PodRef pod = PodRef.newBuilder().setNetns(m.podNetns()).setUid(m.podUid()).build();
        sources.put(id, SourceMigration.recovered(id, pod, node, states));
        states.forEach(d -> kept.add(new HoldKey(d.connection().local(), d.connection().remote())));
      } else {
        targets.put(id, TargetMigration.recovered(id, node, states));
      }
      LOG.info(
          () ->
              "recovered "
                  + m.role()
                  + " migration "
                  + id
                  + ": "
                  + states.size()
                  + " saved connections");
    }
    try {
      for (var key : node.hold().held()) {
        if (!kept.contains(key)) {
          node.hold().release(key);
          LOG.info(
              () ->
                  "released the hold on "
                      + key
                      + ": frozen, never exported, still its application's");
        }
      }
    } catch (SyscallException e) {
      LOG.warning(() -> "sweeping the holds failed: " + e.getMessage());
    }
  }

  SourceMigration newSource(String id, PodRef pod) {
    SavedStates.checkId(id);
    if (targets.containsKey(id)) {
      throw new WrongPhase("migration " + id + " targets this node; it cannot also leave it");
    }
    return sources.computeIfAbsent(
        id,
        k -> {
          node.metrics().migration("source");
          return new SourceMigration(k, pod, node);
        });
  }

  SourceMigration source(String id) {
    SourceMigration m = sources.get(id);
    if (m == null) {
      throw new NotFound("no migration " + id + " leaves this node (never frozen here)");
    }
    return m;
  }

  TargetMigration target(String id) {
    TargetMigration m = targets.get(id);
    if (m == null) {
      throw new NotFound("no migration " + id + " arrived on this node (nothing received)");
    }
    return m;
  }

  TargetMigration newTarget(String id) {
    SavedStates.checkId(id);
    if (sources.containsKey(id)) {
      throw new WrongPhase("migration " + id + " leaves this node; it cannot also arrive here");
    }
    return targets.computeIfAbsent(
        id,
        k -> {
          node.metrics().migration("target");
          return new TargetMigration(k, node);
        });
  }

  MigrationStatus rollback(String id) throws InterruptedException {
    if (sources.containsKey(id)) {
      return sources.get(id).rollback();
    }
    if (targets.containsKey(id)) {
      return targets.get(id).rollback();
    }
    throw new NotFound("this node knows no migration " + id);
  }

  MigrationStatus status(String id) {
    if (sources.containsKey(id)) {
      return sources.get(id).status();
    }
    return target(id).status();
  }

  Map<ConnectionPhase, Integer> phases() {
    Map<ConnectionPhase, Integer> n = new EnumMap<>(ConnectionPhase.class);
    sources.values().forEach(m -> m.phases().forEach((p, k) -> n.merge(p, k, Integer::sum)));
    targets.values().forEach(m -> m.phases().forEach((p, k) -> n.merge(p, k, Integer::sum)));
    return n;
  }

  /** A migration this node does not know. */
  static final class NotFound extends RuntimeException {
    NotFound(String message) {
      super(message);
    }
  }
}
