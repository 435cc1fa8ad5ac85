// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static dev.ferry.api.v1alpha1.ConnectionPhase.FAILED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FROZEN;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RELEASED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RESUMED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAGED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAYED;

import dev.ferry.agent.address.Carrier;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.move.HeldClientBytes;
import dev.ferry.agent.peer.ArrivalCall;
import dev.ferry.agent.peer.Peers;
import dev.ferry.agent.repair.ClientAck;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.SyscallException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * The source agent's run of one move: the one implementation of the migration sequence, which the
 * operator, the CLI and the benchmarks all start with a single Move call. Between the first freeze
 * and the last resume only the two agents act, over one stream (Arrive):
 *
 * <ol>
 *   <li>the stream to the target opens while the application freezes its connections;
 *   <li>freeze and export, in parallel, the states saved here in one batch;
 *   <li>the states go to the target, which stages every socket in repair mode in its pod (the
 *       address already on the pod, not yet routed) and answers STAGED;
 *   <li>the address leaves this node; the commit-sent mark is noted;
 *   <li>COMMIT: the target writes its commit record, routes the address, resumes every socket,
 *       announces the address, and answers;
 *   <li>this node lets go of its holds and states.
 * </ol>
 *
 * With ferry.agent.commit-with-states, steps 3 to 5 overlap when the target says it can (its answer
 * to the header): COMMIT follows the states at once, the address leaving here while the target
 * stages, and the target commits only if every connection staged; so the clients resume one message
 * after the states, not three (states, STAGED, COMMIT). Off by default: once COMMIT has gone, a
 * target agent that dies while it stages leaves this one unable to roll back until that agent
 * answers again (ClusterIT's target that dies after staging and stays down). Before the target's
 * commit record any failure rolls back here; after it nothing is rebuilt here. When the caller
 * claims the address (AWS), the run stops after step 4 with AWAITING_ADDRESS and {@link #commit}
 * carries on; unless this node forwards the address's packets to the target and the caller claims
 * after the commit: then the run goes on to its end, and the caller claims once it has the outcome
 * (forwarding set).
 */
public final class SourceMove {
  private static final Logger LOG = Logger.getLogger(SourceMove.class.getName());

  /**
   * The longest the freeze waits for the target's answer to the header (ready): nobody is held yet,
   * and a target that predates it never answers, so that one's moves freeze this much later.
   */
  private static final Duration READY_WAIT = Duration.ofSeconds(2);

  /** How often a rollback asks a target that does not answer whether it committed. */
  private static final Duration ASK_TARGET_EVERY = Duration.ofMillis(500);

  final String id;
  private final MoveRequest req;
  private final NodeParts node;
  private final Migrations migrations;
  private final CompletableFuture<MoveOutcome> outcome = new CompletableFuture<>();
  private SourceMigration m;
  private ArrivalCall call;

  /** How long the clients may be held: the request's limit, within the agent's own. */
  private final Duration limit;

  private MigrationStatus staged = MigrationStatus.getDefaultInstance();
  private long freezeWallMicros;
  private long freezeNanos;
  private long callsAtFreeze;
  private boolean awaitingAddress;

  /** This node's end of the forwarding tunnel, offered to the target; null when none. */
  private Carrier tunnelEnd;

  /** The address's packets go on to the target until the network delivers it there. */
  private boolean forwarding;

  private MoveOutcome awaiting;

  /**
   * COMMIT goes right behind the states, which the target commits only if every connection staged:
   * the round trip to STAGED and back is not in the pause. When the target said it can (its answer
   * to the header) and the caller does not claim the address between STAGED and COMMIT.
   */
  private boolean commitWithStates;

  /** When the states went to the target. */
  private long statesSent;

  /** The connections the move takes, and those it leaves with their application. */
  private Inventory.Found found;

  private List<PrecopyForwarder> precopies = List.of();

  /** When the move answered PREPARED, while it waits for a Move without prepare_only; else null. */
  private volatile java.time.Instant preparedAt;

  public SourceMove(MoveRequest req, NodeParts node, Migrations migrations) {
    this.id = req.getMigrationId();
    this.req = req;
    this.node = node;
    this.migrations = migrations;
    this.limit = migrations.holdLimit(Duration.ofMillis(req.getHoldLimitMs()));
  }

  /** What the move ended with; completes once (AWAITING_ADDRESS is not an end). */
  public CompletableFuture<MoveOutcome> outcome() {
    return outcome;
  }

  /**
   * Runs the move up to its end, or to AWAITING_ADDRESS, or (prepare_only) to PREPARED; on the Move
   * call's thread.
   */
  public synchronized MoveOutcome run() {
    try {
      prepare();
      if (req.getPrepareOnly()) {
        return prepared();
      }
      return freezeAndOn();
    } catch (RuntimeException | InterruptedException | java.io.IOException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      return end(failed(e));
    }
  }

  /** From the freeze on: the move to its end, or to AWAITING_ADDRESS. */
  private MoveOutcome freezeAndOn() {
    try {
      MoveOutcome o = freezeAndSend();
      if (o != null) {
        return end(o);
      }
      if (req.getAddress().getClaimedByCaller()
          && forwarding
          && req.getAddress().getClaimAfterForwardedCommit()) {
        // This node forwards the address's packets to the target until the network delivers it
        // there: the clients need not be held while the caller claims it (a round trip to the
        // caller and the cloud's API, a second or more). Past the commit the caller owes the
        // claim, and the outcome says so.
        MoveOutcome done = commitAndResume();
        return end(done.getCommitted() ? done.toBuilder().setForwarding(true).build() : done);
      }
      if (req.getAddress().getClaimedByCaller()) {
        awaitingAddress = true;
        awaiting =
            outcomeOf(
                    MoveOutcome.Result.AWAITING_ADDRESS,
                    "every connection is staged on the target and the address is on its node: claim"
                        + " it, then Commit"
                        + (forwarding
                            ? " (this node forwards the address's packets to the target until the"
                                + " network delivers it there: Commit once the network accepted"
                                + " the claim)"
                            : ""),
                    null)
                .toBuilder()
                .setForwarding(forwarding)
                .build();
        return awaiting;
      }
      return end(commitAndResume());
    } catch (RuntimeException | InterruptedException | java.io.IOException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      return end(failed(e));
    }
  }

  /**
   * A repeated Move: waits for the run under way (it holds this object's lock), then answers how it
   * ended, or that it waits for the address.
   */
  public synchronized MoveOutcome joined(MoveRequest again) {
    if (outcome.isDone()) {
      return outcome.join();
    }
    if (preparedAt != null) {
      if (again.getPrepareOnly()) {
        return preparedOutcome();
      }
      preparedAt = null;
      LOG.info(() -> "migration " + id + ": prepared, now moving");
      if (req.getConnectionsCount() == 0) {
        // Minutes may have passed: every connection on the ports now, those that came since
        // without a pre-copy (their whole state crosses with the freeze).
        try {
          found = takeInventory();
        } catch (RuntimeException | java.io.IOException e) {
          return end(failed(e));
        }
      }
      return freezeAndOn();
    }
    if (awaiting != null) {
      return awaiting;
    }
    throw new WrongPhase("migration " + id + " has not started here yet; call Move again");
  }

  /** The caller has claimed the address: commit and resume (after AWAITING_ADDRESS only). */
  public synchronized MoveOutcome commit() {
    if (outcome.isDone()) {
      return outcome.join();
    }
    if (!awaitingAddress) {
      throw new WrongPhase("migration " + id + " is not waiting for its address; call Move");
    }
    try {
      return end(commitAndResume());
    } catch (RuntimeException | InterruptedException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      return end(failed(e));
    }
  }

  /** Step 1 and the pre-copy: nothing is frozen. */
  private void prepare() throws InterruptedException, java.io.IOException {
    m = migrations.newSource(id, req.getSourcePod());
    m.plan(req.getTargetAgent(), req.getAddress());
    // The stream opens, and the target puts the address on its pod, while the application
    // freezes: the handshakes are not in the pause.
    call = node.peers().arrive(req.getTargetAgent(), limit);
    tunnelEnd = TunnelEnds.local(node, req.getAddress(), id).orElse(null);
    call.sendHeader(header());
    found = takeInventory();
    // Pre-copy: each application (protocol version 2) offers its state now, while its client
    // streams on; the freeze below then carries only what changed since.
    long precopyStart = System.nanoTime();
    precopies =
        PrecopyForwarder.start(
            node,
            id,
            found.connections(),
            node.pods().inode(req.getSourcePod(), "source_pod"),
            call);
    // Nobody is held yet: an application may take a while to put a large snapshot together
    // (1 GiB and its checksum took over 2 s here), so it gets the state timeout, not the answer's.
    PrecopyForwarder.awaitSnapshots(precopies, migrations.precopyTimeout());
    m.timed("precopy", precopyStart);
  }

  /**
   * Every connection on the ports, in every state: one the move cannot take is named in the status
   * as STAYED with its state, so the all-or-none rule counts it.
   */
  private Inventory.Found takeInventory() throws java.io.IOException {
    return Inventory.chosen(
        Inventory.take(node.pods(), req.getSourcePod(), req.getPortsList()),
        req.getConnectionsList(),
        !req.getAddress().getCidr().isEmpty());
  }

  /**
   * prepare_only: the states are with the target, and each application's appends keep flowing
   * there, until a Move without prepare_only, a Rollback, or the prepared limit.
   */
  private MoveOutcome prepared() {
    // A target that refused the header, or went away during the pre-copy, has said so by now:
    // nothing is prepared for it (the caller hears why, as from a move).
    call.requireOpen();
    preparedAt = java.time.Instant.now();
    migrations.limitPrepared(this);
    // A target that goes away meanwhile (its agent restarted, say) can take this move no more:
    // said at once, so that the next Move or Status tells the truth.
    call.onBroken(why -> abandonPrepared("the stream to the target broke while prepared: " + why));
    LOG.info(
        () ->
            "migration "
                + id
                + ": prepared: "
                + found.connections().size()
                + " connection(s), their states pre-copied to "
                + call.target()
                + "; nothing frozen");
    return preparedOutcome();
  }

  private MoveOutcome preparedOutcome() {
    return outcomeOf(
        MoveOutcome.Result.PREPARED,
        "prepared at "
            + preparedAt
            + ": the state of "
            + found.connections().size()
            + " connection(s) is pre-copied to "
            + call.target()
            + " and kept up to date; nothing is frozen. Move again without prepare_only to move,"
            + " or Rollback",
        null);
  }

  /**
   * Ends a prepared move that nobody asked to move (a Rollback, or the prepared limit): nothing was
   * frozen, so nothing goes back; the target drops what was pre-copied when the stream ends. Each
   * connection is reported as stayed, so the status says how many stay and why, as for any move
   * that ended before its freeze.
   *
   * @return false when the move is not (or no longer) waiting prepared
   */
  public boolean abandonPrepared(String why) {
    if (preparedAt == null) {
      return false; // read without the lock: a move under way holds it to its end
    }
    synchronized (this) {
      return abandonPreparedLocked(why);
    }
  }

  private boolean abandonPreparedLocked(String why) {
    if (preparedAt == null || outcome.isDone()) {
      return false;
    }
    preparedAt = null;
    precopies.forEach(f -> f.stop(why));
    call.abort();
    try {
      rollBackHere();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    m.stayedUnfrozen(found.connections(), found.leftBehind(), "not frozen: " + why);
    end(
        outcomeOf(
            MoveOutcome.Result.ROLLED_BACK,
            why + "; nothing was frozen: the connections stayed on " + node.nodeName(),
            null));
    return true;
  }

  /**
   * Steps 2 to 4, after {@link #prepare}; null when the move goes on to commit, else how it ended.
   */
  private MoveOutcome freezeAndSend() throws InterruptedException, java.io.IOException {
    List<Connection> chosen = found.connections();
    // The target's answer to the header (ready, or a refusal) before anyone is held: its work on
    // the header (the plan's check, the pod, the address: 9-41 ms in a cold agent's first arrival
    // in make bench, 172 ms once) is then not in the pause, nobody is frozen for a target that
    // refused, and COMMIT may follow the states at once.
    long readyStart = System.nanoTime();
    boolean ready = call.awaitReady(READY_WAIT);
    m.timed("target-ready", readyStart);
    if (ready) {
      // The target's time with the header, however long the inventory and the pre-copy took here
      // meanwhile (target-ready is only what was left of it).
      m.took("header-answered", call.headerAnsweredMicros());
    } else {
      call.requireOpen();
      LOG.info(
          () ->
              "migration "
                  + id
                  + ": the target did not answer its header within "
                  + READY_WAIT.toMillis()
                  + " ms (an older agent): the freeze goes on, and COMMIT waits for its STAGED");
    }
    call.requireOpen();
    freezeWallMicros = nowMicros();
    freezeNanos = System.nanoTime();
    callsAtFreeze = migrations.otherCalls();
    call.holdStarts();
    MigrationStatus frozen = m.freeze(chosen, found.leftBehind());
    precopies.forEach(PrecopyForwarder::close);
    migrations.limitHold(m, limit);
    node.faults().reach(req.getFault(), "source-after-freeze", req.getMigrationId());
    // No connection at all, and an address to move: the address alone moves, by the same steps.
    boolean addressOnly = chosen.isEmpty() && !req.getAddress().getCidr().isEmpty();
    if (count(frozen, FROZEN) == 0 && !addressOnly) {
      rollBackHere();
      return outcomeOf(
          MoveOutcome.Result.NOTHING_TO_MOVE,
          chosen.isEmpty()
              ? "no connection on ports " + req.getPortsList() + " of the pod"
              : "no connection could be frozen: each is kept by its application",
          null);
    }
    MoveOutcome partial = refuseIfPartial("freeze", frozen);
    if (partial != null) {
      return partial;
    }
    MigrationStatus exported = m.export();
    node.faults().reach(req.getFault(), "source-after-export", req.getMigrationId());
    node.faults().stall(req.getFault(), "source-stalls-after-export");
    partial = refuseIfPartial("export", exported);
    if (partial != null) {
      return partial;
    }
    if (m.limitPassed() != null) {
      // The hold limit gave the connections back while this move was slow: nothing to send.
      call.abort();
      return outcomeOf(MoveOutcome.Result.ROLLED_BACK, m.limitPassed(), null);
    }
    statesSent = System.nanoTime();
    commitWithStates = offersCommitWithStates() && call.commitsIfAllStaged();
    if (commitWithStates) {
      // The target stages while the address leaves here and COMMIT follows: it commits only if
      // every connection staged, and says STAGED first either way (commitAndResume reads both).
      call.sendStatesAhead(m.exported());
      addressLeaves("");
      return null;
    }
    ArrivalReply reply = call.sendStates(m.exported());
    if (!staged(reply)) {
      call.abort();
      rollBackHere();
      return outcomeOf(
          MoveOutcome.Result.ROLLED_BACK,
          stagingFailed() + "; every connection went back to " + node.nodeName(),
          null);
    }
    addressLeaves(reply.getTunnelEndpoint());
    return null;
  }

  /** Takes the target's STAGED answer: whether every connection staged. */
  private boolean staged(ArrivalReply reply) {
    m.timed("send-and-stage", statesSent);
    m.transferred();
    staged = reply.getStaged();
    return ArrivalStream.allStaged(
        staged, found.connections().isEmpty() && !req.getAddress().getCidr().isEmpty());
  }

  private String stagingFailed() {
    return "staging on "
        + staged.getNode()
        + " failed for "
        + staged.getConnectionsList().stream().filter(c -> c.getPhase() != STAGED).count()
        + " connection(s): "
        + reasons(staged, c -> c.getPhase() != STAGED);
  }

  /** Step 4: from here the target may be told to commit. */
  private void addressLeaves(String targetTunnelEnd) throws SyscallException {
    // Refused if a rollback (the operator's deadline, a deleted request, the hold limit) came
    // first, and noted for a restarted agent, before COMMIT can be sent.
    long leaving = System.nanoTime();
    m.commitMayHappen();
    m.addressLeaves();
    forwarding = forwardToTarget(targetTunnelEnd);
    m.timed("address-leaves", leaving);
    node.faults().reach(req.getFault(), "source-after-address", req.getMigrationId());
  }

  /** Step 5 and 6: the commit point and after. */
  private MoveOutcome commitAndResume() throws InterruptedException {
    node.faults().reach(req.getFault(), "source-before-commit", req.getMigrationId());
    sendKeptClientBytes();
    // Read as late as possible, as what the clients sent: the address has left. Timed: one map
    // lookup per connection, inside the pause.
    long reading = System.nanoTime();
    Map<Connection, ClientAck> acks =
        node.mover().clientAcks(m.exported().stream().map(Departure.Departed::socket).toList());
    m.timed("client-acks", reading);
    ArrivalReply reply;
    long committing = System.nanoTime();
    try {
      if (commitWithStates) {
        // From the states to COMMIT: what the target's stage overlaps with (and a mark, in the
        // status, that COMMIT went before STAGED).
        m.timed("states-to-commit", statesSent);
        call.commitIfAllStaged(m.millisSinceExport(), acks);
        if (!staged(call.awaitReply())) {
          // The target drops what it staged instead of committing, and says so next.
          String why = stagingFailed();
          reply = call.awaitReply();
          if (reply.getCommitted()) {
            return resumed(reply, ""); // never from a target that said ready
          }
          MigrationStatus back = rollbackOnceTheTargetAnswers();
          return outcomeOf(
              count(back, FAILED) == 0 ? MoveOutcome.Result.ROLLED_BACK : MoveOutcome.Result.FAILED,
              why + "; every connection went back to " + node.nodeName(),
              null);
        }
        reply = call.awaitReply();
      } else {
        reply = call.commit(m.millisSinceExport(), acks);
      }
      m.timed("commit-round-trip", committing);
    } catch (Peers.PeerFailed e) {
      // Whether the target committed is unknown: the rollback asks it, and either gives the
      // connections back here (it had not) or releases them (it had). Unless it committed and
      // then lost what it had staged: then the move goes forward again.
      String why =
          e.targetAnswered()
              ? "the target could not commit (" + e.getMessage() + ")"
              : "the target's answer to COMMIT was lost (" + e.getMessage() + ")";
      LOG.warning(() -> "migration " + id + ": " + why);
      MoveOutcome forward = forwardAgainIfTheTargetLostItsStaging(why);
      return forward != null ? forward : afterRollback(why);
    }
    if (!reply.getCommitted()) {
      return afterRollback("the target refused to commit: it had rolled the migration back");
    }
    return resumed(reply, "");
  }

  /**
   * What the held clients sent after their sockets stopped reading, read from the hold as late as
   * possible (the address has left), to the target, which puts it into the restored receive queues
   * before they resume: the resume then acknowledges it, and a client that was uploading goes on at
   * once instead of after its retransmission timeout. What cannot be read or sent, the client sends
   * again after that timeout, as it would have without this step; so a failure here is logged only.
   */
  private void sendKeptClientBytes() throws InterruptedException {
    long t = System.nanoTime();
    List<HeldClientBytes.Kept> kept;
    try {
      kept =
          node.mover()
              .keptClientBytes(m.exported().stream().map(Departure.Departed::socket).toList());
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              "migration "
                  + id
                  + ": reading what the held clients sent failed; they send it again: "
                  + e.getMessage());
      return;
    }
    if (kept.isEmpty()) {
      return;
    }
    try {
      call.sendKept(kept);
    } catch (Peers.PeerFailed e) {
      // The stream is gone: COMMIT, next, fails the same way, and its handling decides.
      LOG.warning(() -> "migration " + id + ": sending what the held clients sent failed: " + e);
      return;
    }
    m.timed("send-kept", t);
    long bytes = kept.stream().mapToLong(k -> k.data().length).sum();
    LOG.fine(
        () ->
            "migration "
                + id
                + ": "
                + bytes
                + " bytes that "
                + kept.size()
                + " held client(s) sent go to the target");
  }

  /**
   * The target wrote its commit record and its agent then restarted before answering: its
   * application dropped the staged sockets with the session (they were never live), and the
   * restarted agent knows the migration only by that record. Past the commit nothing is rebuilt
   * here, and nothing has been live anywhere since the freeze, so the states saved here are still
   * exact: they go to the target again, whole, on a new stream that says so ({@code after_commit}),
   * and it stages and resumes them (a connection it had resumed before its restart it finds live,
   * and reports so). Null when that is not the case: the target had not committed, still holds the
   * migration, or cannot say by the hold limit.
   */
  private MoveOutcome forwardAgainIfTheTargetLostItsStaging(String why)
      throws InterruptedException {
    java.util.Optional<MigrationStatus> answer = askTargetUntilItAnswers(limit);
    if (answer == null
        || answer.isEmpty()
        || !answer.get().getCommitted()
        || answer.get().getConnectionsCount() > 0) {
      return null;
    }
    LOG.info(
        () ->
            "migration "
                + id
                + ": committed on the target, whose agent restarted before it resumed: sending"
                + " the states again");
    try {
      List<Departure.Departed> whole = new java.util.ArrayList<>();
      for (Departure.Departed d : m.exported()) {
        whole.add(node.saved().whole(id, d));
      }
      call = node.peers().arrive(req.getTargetAgent(), limit);
      call.holdStarts(); // the clients are held until their states are live again
      call.sendHeader(header().toBuilder().setAfterCommit(true).build());
      ArrivalReply again = call.sendStates(whole);
      staged = again.getStaged();
      ArrivalReply reply = call.commit(m.millisSinceExport());
      return resumed(reply, why + "; the target had committed and restarted: moved again");
    } catch (RuntimeException | java.io.IOException e) {
      // Never rebuilt here past the commit: the connections are lost, and the status says so.
      LOG.warning(() -> "migration " + id + ": sending the states again failed: " + e);
      if (call != null) {
        call.abort();
      }
      m.release();
      return outcomeOf(
              MoveOutcome.Result.FAILED,
              why
                  + "; the target had committed and restarted, and sending the states again"
                  + " failed ("
                  + e.getMessage()
                  + "): the connections are lost",
              null)
          .toBuilder()
          .setCommitted(true)
          .build();
    }
  }

  /**
   * Called again on a source agent that restarted past its commit mark ({@code recovered}, from its
   * saved states): if the target committed and has lost what it staged (its agent restarted too,
   * before the resume), the saved states go to it again, as a live source sends them; else null,
   * and the rollback decides (it releases what a target that committed holds, and rebuilds what one
   * that did not gave up). Releasing for a target that lost its staging would lose the connections:
   * FaultMatrixIT, both agents killed after the commit.
   */
  public synchronized MoveOutcome sendAgainIfTheTargetLostItsStaging(SourceMigration recovered)
      throws InterruptedException {
    m = recovered;
    return forwardAgainIfTheTargetLostItsStaging("the source agent restarted during the move");
  }

  /**
   * The target's Status, asked every {@link #ASK_TARGET_EVERY} while its agent does not answer (it
   * may be starting again); null if it has not answered within {@code limit}.
   */
  private java.util.Optional<MigrationStatus> askTargetUntilItAnswers(Duration limit)
      throws InterruptedException {
    long until = System.nanoTime() + limit.toNanos();
    while (true) {
      try {
        return node.peers().status(req.getTargetAgent(), id);
      } catch (Peers.PeerFailed e) {
        if (System.nanoTime() > until) {
          return null;
        }
        Thread.sleep(ASK_TARGET_EVERY.toMillis());
      }
    }
  }

  /** The target's RESUMED answer: the source lets go, and the move ends. */
  private MoveOutcome resumed(ArrivalReply reply, String note) {
    long resumedNanos = System.nanoTime();
    node.faults().reach(req.getFault(), "source-before-release", req.getMigrationId());
    m.release();
    call.close();
    MigrationStatus target = reply.getResumed();
    long notResumed =
        target.getConnectionsList().stream().filter(c -> c.getPhase() != RESUMED).count();
    MoveOutcome.Builder o =
        outcomeOf(
                notResumed == 0 ? MoveOutcome.Result.COMPLETED : MoveOutcome.Result.FAILED,
                notResumed == 0
                    ? count(target, RESUMED)
                        + " connection(s) live on "
                        + target.getNode()
                        + (note.isEmpty() ? "" : " (" + note + ")")
                    : "committed, but "
                        + notResumed
                        + " connection(s) did not resume on "
                        + target.getNode()
                        + ": "
                        + reasons(target, c -> c.getPhase() != RESUMED),
                target)
            .toBuilder()
            .setCommitted(true)
            .setResumedUnixMicros(reply.getResumedUnixMicros());
    if (freezeNanos != 0) { // not for states sent again by a restarted agent: it saw no freeze
      o.setPauseMicros((resumedNanos - freezeNanos) / 1000)
          .setApiCallsDuringPause((int) (migrations.otherCalls() - callsAtFreeze));
    }
    return o.build();
  }

  /** Rolls back by the commit rule (the target is asked first) and says how that ended. */
  private MoveOutcome afterRollback(String why) throws InterruptedException {
    MigrationStatus s = rollbackOnceTheTargetAnswers();
    // Only a target that may have had COMMIT can have committed: a move that failed before (its
    // status may hold no connection at all, which the test below would pass) went nowhere.
    if (m.commitMayHaveHappened()
        && s.getConnectionsList().stream()
            .allMatch(c -> c.getPhase() == RELEASED || c.getPhase() == STAYED)) {
      return outcomeOf(MoveOutcome.Result.COMPLETED, why + "; the target had committed", null)
          .toBuilder()
          .setCommitted(true)
          .build();
    }
    return outcomeOf(
        count(s, FAILED) == 0 ? MoveOutcome.Result.ROLLED_BACK : MoveOutcome.Result.FAILED,
        why + "; the connections went back to " + node.nodeName(),
        null);
  }

  /**
   * The move failed before it froze anything (the target's agent unreachable, its header refused, a
   * pre-copy that failed): its plan is undone as any rollback's, and each connection on the ports
   * is named as STAYED here, with why, so that the status says where every connection lives.
   */
  private MoveOutcome beforeAnyFreeze(String why) throws InterruptedException {
    Inventory.Found here = found;
    if (here == null) {
      try {
        here = takeInventory();
      } catch (java.io.IOException | RuntimeException e) {
        LOG.warning(() -> "migration " + id + ": its connections could not be listed: " + e);
      }
    }
    if (here != null) {
      m.stayedUnfrozen(here.connections(), here.leftBehind(), "not frozen: " + why);
    }
    rollbackOnceTheTargetAnswers();
    return outcomeOf(
        MoveOutcome.Result.ROLLED_BACK,
        why + "; nothing was frozen: the connections stayed on " + node.nodeName(),
        null);
  }

  /**
   * A target that may have committed and does not answer is most often an agent starting again (a
   * crash, an upgrade): it answers within seconds, and a restarted one without a commit record
   * answers "not committed". So the question is asked again until the hold limit, after which the
   * clients are no longer held anyway; only then does the rollback fail, saying so.
   */
  private MigrationStatus rollbackOnceTheTargetAnswers() throws InterruptedException {
    long until =
        System.nanoTime() + migrations.holdLimit(Duration.ofMillis(req.getHoldLimitMs())).toNanos();
    for (int asked = 1; ; asked++) {
      try {
        return m.rollback();
      } catch (TargetCannotSay e) {
        if (System.nanoTime() > until) {
          throw e;
        }
        if (asked == 1) { // once: the answer, or the failure, is logged when it comes
          LOG.info(
              () -> "migration " + id + ": asking the target until it answers: " + e.getMessage());
        }
        Thread.sleep(ASK_TARGET_EVERY.toMillis());
      }
    }
  }

  private void rollBackHere() throws InterruptedException {
    if (m != null) {
      m.rollback();
    }
  }

  private MoveOutcome failed(Exception e) {
    LOG.warning(() -> "migration " + id + " failed: " + e);
    String why = e.getMessage() == null ? e.toString() : e.getMessage();
    if (m != null && call != null && call.holdEnded()) {
      // The call gave up because the clients had been held for the whole limit, and the limit's
      // own timer (another thread) may not have run yet on a busy machine: the rollback is the
      // hold limit's, and is named so, whichever of the two saw it first.
      try {
        m.holdLimitPassed(limit);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
      }
    }
    if (m != null && m.limitPassed() != null) {
      why = m.limitPassed(); // the cause; what failed after it is its consequence
    }
    if (m == null) {
      return outcomeOf(MoveOutcome.Result.FAILED, why, null);
    }
    if (call != null) {
      call.abort();
    }
    try {
      // Not after a freeze (an address alone may have moved), nor for a restarted agent's
      // migration, whose records came back from its disk.
      if (freezeNanos == 0 && m.status().getConnectionsCount() == 0) {
        return beforeAnyFreeze(why);
      }
      return afterRollback(why);
    } catch (RuntimeException | InterruptedException again) {
      return outcomeOf(
          MoveOutcome.Result.FAILED,
          why
              + "; rolling back failed too: "
              + again.getMessage()
              + ". The agent keeps the states and holds the clients until the hold limit; retry"
              + " with Rollback",
          null);
    }
  }

  /**
   * Some connections stayed with their application: moving the address would cut them off, so
   * unless the request allows it every connection goes back.
   */
  private MoveOutcome refuseIfPartial(String step, MigrationStatus s) throws InterruptedException {
    if (count(s, STAYED) == 0 || req.getAllowPartial()) {
      return null;
    }
    rollBackHere();
    call.abort();
    return outcomeOf(
        MoveOutcome.Result.ROLLED_BACK,
        step
            + " on "
            + s.getNode()
            + ": "
            + count(s, STAYED)
            + " connection(s) stayed with their application: "
            + reasons(s, c -> c.getPhase() == STAYED)
            + ". Moving the address would cut them off, so every connection goes back; set"
            + " spec.allowPartial to move the others anyway",
        null);
  }

  private ArrivalHeader header() {
    return ArrivalHeader.newBuilder()
        .setMigrationId(id)
        .setSourceNode(node.nodeName())
        .setTargetPod(req.getTargetPod())
        .setAddress(req.getAddress())
        .setHoldLimitMs(req.getHoldLimitMs())
        .setFault(req.getFault())
        .setPlan(req.getPlan())
        .setTunnelEndpoint(tunnelEnd == null ? "" : tunnelEnd.local().getHostAddress())
        .setAnswerReady(true)
        .build();
  }

  /**
   * Whether this move may send COMMIT right behind the states: this agent's setting
   * (ferry.agent.commit-with-states), and not when the caller claims the address between STAGED and
   * COMMIT (AWS).
   */
  private boolean offersCommitWithStates() {
    return migrations.commitWithStates() && !req.getAddress().getClaimedByCaller();
  }

  /**
   * Once the address has left the pod, and before the target may resume: its packets, which the
   * network still delivers here, go on to the target from now (the hold keeps the held clients'
   * until it is cleared, since its programs run first), and the target's replies, which come back
   * through the tunnel from its resume on, go out to the clients. False when the target offered no
   * end or arming fails: the caller then waits for the network before Commit, as without it.
   */
  private boolean forwardToTarget(String targetEnd) {
    if (tunnelEnd == null || targetEnd.isEmpty()) {
      return false;
    }
    try {
      node.forwarding()
          .forward(
              TunnelEnds.address(req.getAddress()),
              tunnelEnd,
              TunnelEnds.peer("staged.tunnel_endpoint", targetEnd));
      return true;
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              "migration "
                  + id
                  + ": forwarding to the target failed ("
                  + e.getMessage()
                  + "): the clients wait for the network to deliver the address there");
      return false;
    }
  }

  private MoveOutcome outcomeOf(MoveOutcome.Result result, String message, MigrationStatus target) {
    MoveOutcome.Builder b =
        MoveOutcome.newBuilder()
            .setResult(result)
            .setMessage(message)
            .setFreezeStartedUnixMicros(freezeWallMicros);
    if (m != null) {
      b.setSource(m.status());
    }
    b.setTarget(target != null ? target : staged);
    return b.build();
  }

  private MoveOutcome end(MoveOutcome o) {
    if (call != null) {
      call.close();
    }
    outcome.complete(o);
    LOG.info(() -> "migration " + id + ": " + o.getResult() + ": " + o.getMessage());
    return outcome.join();
  }

  public static long nowMicros() {
    java.time.Instant t = java.time.Instant.now();
    return t.getEpochSecond() * 1_000_000 + t.getNano() / 1000;
  }

  private static long count(MigrationStatus s, ConnectionPhase phase) {
    return s.getConnectionsList().stream().filter(c -> c.getPhase() == phase).count();
  }

  private static String reasons(
      MigrationStatus s, java.util.function.Predicate<ConnectionStatus> which) {
    return s.getConnectionsList().stream()
        .filter(which)
        .limit(5)
        .map(c -> Wire.format(c.getId()) + " " + c.getPhase() + " (" + c.getReason() + ")")
        .collect(Collectors.joining("; "));
  }
}
