// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.hold.HoldMaps;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.peer.ArrivalCall;
import dev.ferry.agent.peer.Peers;
import dev.ferry.agent.store.SavedStates;
import dev.ferry.api.plan.MovePlans;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.sys.SyscallException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/** Every migration this node takes part in, as source or target, by id. */
public final class Migrations {
  private static final Logger LOG = Logger.getLogger(Migrations.class.getName());

  private final NodeParts node;
  private final Duration holdLimit;
  private final Duration answerTimeout;
  private final Duration precopyTimeout;
  private final Duration preparedLimit;

  /** ferry.agent.commit-with-states: see {@link #commitWithStates()}. */
  private final boolean commitWithStates;

  private final Map<String, SourceMigration> sources = new ConcurrentHashMap<>();
  private final Map<String, TargetMigration> targets = new ConcurrentHashMap<>();
  private final Map<String, SourceMove> moves = new ConcurrentHashMap<>();
  private final AtomicLong otherCalls = new AtomicLong();
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
  public Migrations(
      NodeParts node,
      Duration holdLimit,
      Duration answerTimeout,
      Duration precopyTimeout,
      Duration preparedLimit,
      boolean commitWithStates) {
    this.node = node;
    this.commitWithStates = commitWithStates;
    this.holdLimit = holdLimit;
    this.answerTimeout = answerTimeout;
    this.precopyTimeout = precopyTimeout;
    if (preparedLimit.isNegative()
        || preparedLimit.isZero()
        || preparedLimit.compareTo(ArrivalCall.PREPARED_MOST) > 0) {
      throw new IllegalArgumentException(
          "ferry.agent.prepared-limit must be more than 0 and at most "
              + ArrivalCall.PREPARED_MOST
              + " (the stream to the target lasts a little longer), got "
              + preparedLimit);
    }
    this.preparedLimit = preparedLimit;
  }

  /**
   * Ends {@code move} if it still waits prepared when the prepared limit has passed: the stream to
   * its target cannot outlive it, and its applications' appends should not flow for ever.
   */
  void limitPrepared(SourceMove move) {
    // On a thread of its own: the hold limits' thread must never wait for a move's lock.
    String why =
        "prepared and not asked to move within the agent's prepared limit (" + preparedLimit + ")";
    Runnable end =
        () -> {
          try {
            move.abandonPrepared(why);
          } catch (RuntimeException e) {
            LOG.severe(() -> "ending prepared migration " + move.id + " failed: " + e);
          }
        };
    limits.schedule(
        () -> {
          Thread t = new Thread(end, "prepared-limit-" + move.id);
          t.setDaemon(true);
          t.start();
        },
        preparedLimit.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  /**
   * Rolls {@code m} back if it is still here when its clients have been held for {@code requested}
   * (0: the agent's own limit), unless its address has left the node by then.
   */
  public void limitHold(SourceMigration m, Duration requested) {
    Duration limit = holdLimit(requested);
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
   * A migration's hold limit: what it asked for ({@code requested}, 0 for none), at most 90 % of
   * the agent's own, so that a rollback has time before the hold's programs step aside.
   */
  /** How long an application may stay silent while it answers the agent. */
  public Duration answerTimeout() {
    return answerTimeout;
  }

  /**
   * Whether a move from here sends COMMIT right behind the states (to a target that says it commits
   * only what staged), saving two messages in the pause, at the price of a target agent that dies
   * while it stages holding the clients until it answers again or the hold limit passes.
   */
  public boolean commitWithStates() {
    return commitWithStates;
  }

  /** How long an application may stay silent while it offers its state ahead of a freeze. */
  public Duration precopyTimeout() {
    return precopyTimeout;
  }

  public Duration holdLimit(Duration requested) {
    Duration most = holdLimit.multipliedBy(9).dividedBy(10);
    return requested.isZero() || requested.compareTo(most) > 0 ? most : requested;
  }

  /** Counts an API call that is not a move's own: the operator is meant to stay out of a pause. */
  public void otherCall() {
    otherCalls.incrementAndGet();
  }

  public long otherCalls() {
    return otherCalls.get();
  }

  /**
   * Runs the move {@code req} on this (its source) node, or joins the one under way with that id,
   * or answers how it ended. A move that an agent restart interrupted is rolled back by the commit
   * rule (the target is asked first) and answered so.
   */
  public MoveOutcome move(MoveRequest req) throws InterruptedException {
    String id = SavedStates.checkId(req.getMigrationId());
    FaultPoints.check(req.getFault());
    if (req.getPortsCount() == 0) {
      throw new BadRequest("ports: name the ports the pod serves (at least one)");
    }
    if (!Peers.validTarget(req.getTargetAgent())) {
      throw new BadRequest(
          "target_agent must be HOST:PORT of the target node's agent, got '"
              + req.getTargetAgent()
              + "'");
    }
    if (!req.hasTargetPod()) {
      throw new BadRequest("target_pod: name the pod the connections move to");
    }
    // Checked here as the target will check it, so that a plan the target would refuse freezes
    // nothing.
    MovePlans.requireOf(node.plans().verify(req.getPlan()), req);
    if (!req.getSourceNode().isEmpty() && !req.getSourceNode().equals(node.nodeName())) {
      throw new BadRequest(
          "source_node: the move leaves node "
              + req.getSourceNode()
              + ", and this is the agent of node "
              + node.nodeName());
    }
    SourceMove fresh = new SourceMove(req, node, this);
    SourceMove m = moves.putIfAbsent(id, fresh);
    if (m == null) {
      SourceMigration recovered = sources.get(id);
      if (recovered != null) {
        moves.remove(id);
        if (recovered.commitMayHaveHappened()) {
          MoveOutcome again = fresh.sendAgainIfTheTargetLostItsStaging(recovered);
          if (again != null) {
            return again;
          }
        }
        // Within half the hold limit, as a target waits for its application after a restart.
        recovered.awaitApplications(
            System.nanoTime() + holdLimit(Duration.ofMillis(req.getHoldLimitMs())).toNanos() / 2);
        return interrupted(recovered);
      }
      return fresh.run();
    }
    return m.joined(req);
  }

  /** The caller has claimed the address of a move that waits for it. */
  public MoveOutcome commit(String id) {
    SourceMove m = moves.get(id);
    if (m == null) {
      throw new NotFound("no move " + id + " waits for its address on this node");
    }
    return m.commit();
  }

  private MoveOutcome interrupted(SourceMigration m) throws InterruptedException {
    MigrationStatus s = m.rollback();
    boolean released =
        s.getConnectionsList().stream().allMatch(c -> c.getPhase() == ConnectionPhase.RELEASED);
    boolean failed =
        s.getConnectionsList().stream().anyMatch(c -> c.getPhase() == ConnectionPhase.FAILED);
    return MoveOutcome.newBuilder()
        .setResult(
            released
                ? MoveOutcome.Result.COMPLETED
                : failed ? MoveOutcome.Result.FAILED : MoveOutcome.Result.ROLLED_BACK)
        .setCommitted(released)
        .setMessage(
            "the source agent restarted during the move; "
                + (released
                    ? "the target had committed: the connections live there"
                    : failed
                        ? "not every connection could be put back on "
                            + node.nodeName()
                            + " (each says why); the agent keeps their states and tries again"
                            + " at the hold limit"
                        : "the connections went back to " + node.nodeName()))
        .setSource(s)
        .build();
  }

  /**
   * The address of migration {@code id} leaves this node ({@code gone}) or comes back; a no-op
   * unless the migration leaves this node.
   *
   * @throws WrongPhase when the migration's hold limit has already rolled it back here
   */
  public void addressLeaving(String id, boolean gone) {
    SourceMigration m = sources.get(id);
    if (m != null) {
      m.addressLeaving(gone);
    }
  }

  /**
   * Picks up what a previous agent left on disk. Source states are still held (the hold's maps are
   * pinned) and wait for Release or Rollback; target states wait for Stage or Rollback. Holds with
   * no saved state belong to connections that were frozen but never exported (their applications
   * kept them when the session ended), or to sockets staged here, which went with the last agent:
   * the hold lets go of them now.
   */
  public void recover() throws IOException {
    Set<HoldKey> kept = new HashSet<>();
    // Never before the plans they belong to expire: a source must not run a plan twice.
    Duration ten = holdLimit.multipliedBy(10);
    node.commits().expire(ten.compareTo(MovePlans.GOOD_FOR) > 0 ? ten : MovePlans.GOOD_FOR);
    for (String id : node.saved().migrations()) {
      if (!node.saved().anySaved(id)) {
        // Stopped before its states were saved: every socket is still with its application.
        node.saved().forget(id);
        LOG.info(() -> "migration " + id + " had saved no state: its pre-copied data is removed");
        continue;
      }
      SavedStates.Migration m;
      List<Departure.Departed> states;
      try {
        m = node.saved().migration(id);
        states = node.saved().load(id);
      } catch (IOException | RuntimeException e) {
        // One bad record must not stop the agent: every other hold on the node depends on it.
        Path to = node.saved().setAside(id);
        node.metrics().setAside();
        LOG.severe(
            () ->
                "migration "
                    + id
                    + " cannot be recovered ("
                    + e.getMessage()
                    + "); set aside in "
                    + to
                    + ". Its clients are released when the hold limit passes");
        continue;
      }
      PodRef pod = PodRef.newBuilder().setNetns(m.podNetns()).setUid(m.podUid()).build();
      SourceMigration recovered = SourceMigration.recovered(m, pod, node, states);
      sources.put(id, recovered);
      // The README promises that the source gives connections back at the hold limit, operator
      // or not: a restarted agent keeps that promise too (counted from now, within the hold's
      // own deadline, which the pinned maps kept).
      limitHold(recovered, Duration.ZERO);
      states.forEach(d -> kept.add(new HoldKey(d.connection().local(), d.connection().remote())));
      LOG.info(
          () -> "recovered source migration " + id + ": " + states.size() + " saved connections");
    }
    try {
      for (var key : node.hold().held()) {
        if (!kept.contains(key)) {
          // A target's entry (WAKE) was for a socket staged here, gone with the last agent: the
          // source sends its state again, or the migration rolls back there.
          boolean staged =
              node.hold().entry(key).map(e -> (e.flags() & HoldMaps.F_WAKE) != 0).orElse(false);
          node.hold().release(key);
          LOG.info(
              () ->
                  "released the hold on "
                      + key
                      + (staged
                          ? ": staged here, its socket gone with the last agent"
                          : ": frozen, never exported, still its application's"));
        }
      }
    } catch (SyscallException e) {
      LOG.warning(() -> "sweeping the holds failed: " + e.getMessage());
    }
  }

  public SourceMigration newSource(String id, PodRef pod) {
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

  public TargetMigration newTarget(String id) {
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

  /**
   * As {@link #rollback(String)}, asked by {@code peer}'s agent (empty: the operator, an admin, or
   * peers without identities): a peer may roll back only a migration whose states it sent here.
   */
  public MigrationStatus rollback(String id, Optional<String> peer) throws InterruptedException {
    requireSourceOf(id, peer, "roll back");
    return rollback(id);
  }

  /**
   * As {@link #status(String)}, asked by {@code peer}'s agent: see {@link #rollback(String,
   * Optional)}.
   */
  public MigrationStatus status(String id, Optional<String> peer) {
    requireSourceOf(id, peer, "ask for the status of");
    return status(id);
  }

  /**
   * A peer agent may act only on a migration that arrives here from its node. What this agent no
   * longer holds in memory (it restarted) answers from its commit record alone, to anyone.
   */
  private void requireSourceOf(String id, Optional<String> peer, String what) {
    if (peer.isEmpty()) {
      return;
    }
    TargetMigration t = targets.get(id);
    String why =
        sources.containsKey(id)
            ? "it leaves this node"
            : t != null && !t.sourceNode().equals(peer.get())
                ? "its states came from node " + t.sourceNode()
                : null;
    if (why != null) {
      throw new MovePlans.Refused(
          "the agent of node " + peer.get() + " may not " + what + " migration " + id + ": " + why);
    }
  }

  public MigrationStatus rollback(String id) throws InterruptedException {
    SourceMove move = moves.get(id);
    if (move != null && move.abandonPrepared("rolled back while prepared")) {
      return sources.get(id).status();
    }
    if (sources.containsKey(id)) {
      return sources.get(id).rollback();
    }
    if (targets.containsKey(id)) {
      return targets.get(id).rollback();
    }
    return committedEarlier(id);
  }

  public MigrationStatus status(String id) {
    if (sources.containsKey(id)) {
      return sources.get(id).status();
    }
    if (targets.containsKey(id)) {
      return targets.get(id).status();
    }
    return committedEarlier(id);
  }

  /**
   * A migration this agent no longer holds in memory (it restarted): its commit record, if any, is
   * all that is left of it, and is the answer a source's rollback needs.
   */
  private MigrationStatus committedEarlier(String id) {
    if (node.commits().exists(id)) {
      return MigrationStatus.newBuilder()
          .setMigrationId(id)
          .setNode(node.nodeName())
          .setCommitted(true)
          .build();
    }
    throw new NotFound("this node knows no migration " + id);
  }

  public Map<ConnectionPhase, Integer> phases() {
    Map<ConnectionPhase, Integer> n = new EnumMap<>(ConnectionPhase.class);
    sources.values().forEach(m -> m.phases().forEach((p, k) -> n.merge(p, k, Integer::sum)));
    targets.values().forEach(m -> m.phases().forEach((p, k) -> n.merge(p, k, Integer::sum)));
    return n;
  }

  /** A migration this node does not know. */
  public static final class NotFound extends RuntimeException {
    NotFound(String message) {
      super(message);
    }
  }
}
