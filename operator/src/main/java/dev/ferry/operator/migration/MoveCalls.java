// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * The calls on source agents in flight, at most one per migration id: the Move (the whole data
 * plane), the address claim and Commit that follow it on AWS (or the claim alone, after a forwarded
 * commit), or a Rollback. Also what a step begins ahead for the next (the plan, the target's check
 * and the eviction guard as a request is admitted, the Move's signature as Moving is entered). They
 * run on this registry's threads, never on a reconcile's; the end of each wakes its migration's
 * reconcile, which reads the answer here. The registry is memory only: an operator restarted in
 * Moving has none, and calls Move again (the agent joins the move under way, or answers how it
 * ended).
 */
public final class MoveCalls {
  private static final Logger LOG = Logger.getLogger(MoveCalls.class.getName());

  /** Which call a flight is. */
  public enum Kind {
    MOVE,
    /** The address claim with the fabric, then Commit on the source agent. */
    COMMIT,
    /** The address claim with the fabric after the agents committed while forwarding. */
    CLAIM,
    ROLLBACK
  }

  /**
   * One call and, once there, its answer.
   *
   * @param reason why the call was made off the plain course (a Reasons constant), else null
   * @param note what the status must say besides the answer (why a rollback), else null
   */
  public record Flight(
      Kind kind, Plan plan, String reason, String note, CompletableFuture<MoveOutcome> answer) {}

  private final Map<String, Flight> flights = new ConcurrentHashMap<>();

  /**
   * The plan Preparing made, by migration id, for the Move that follows at once: Moving need not
   * read the pods and nodes again. Taken by Moving; an operator restarted in between plans again.
   */
  private final Map<String, Plan> prepared = new ConcurrentHashMap<>();

  /**
   * When the source agent last answered PREPARED, by migration id: Prepared asks again every {@link
   * PreparedStep#RECHECK}, so that a prepared move the agent had to end (its target went away)
   * shows in the status before anyone proceeds it.
   */
  private final Map<String, Instant> preparedHeard = new ConcurrentHashMap<>();

  /** The Move signed ahead of its call, by migration id ({@link #signAhead}). */
  private final Map<String, SignedAhead> signed = new ConcurrentHashMap<>();

  /**
   * A Move being signed, or signed, ahead of its call.
   *
   * @param at when the signing began, which the plan's validity counts from
   */
  record SignedAhead(Instant at, CompletableFuture<MoveRequest> request) {}

  /**
   * The eviction guard begun as the request was admitted, by the request's uid ({@link
   * #guardAhead}): the status write that enters Preparing runs beside it. Keyed by uid, not by
   * migration id: a request whose plan fails in Preparing has no migration id, and its guard is
   * lifted all the same.
   */
  private final Map<String, CompletableFuture<Optional<String>>> guards = new ConcurrentHashMap<>();

  /** The plan made as the request was admitted, by uid: Preparing's, which need not plan again. */
  private final Map<String, Plan> plansAhead = new ConcurrentHashMap<>();

  /** Preparing's check of the target's agent, asked as the request was admitted, by uid. */
  private final Map<String, CheckAhead> checks = new ConcurrentHashMap<>();

  /** A question to the agent at {@code agent} (HOST:PORT), asked ahead, and its answer to come. */
  private record CheckAhead(
      String agent,
      ListConnectionsRequest request,
      CompletableFuture<ListConnectionsResponse> answer) {}

  private final Executor executor;
  private final Executor ahead;

  /**
   * @param executor runs the calls
   * @param ahead runs what is begun ahead of its use: the check of the target's agent, the eviction
   *     guard, the signing of a Move
   */
  public MoveCalls(Executor executor, Executor ahead) {
    this.executor = executor;
    this.ahead = ahead;
  }

  /**
   * Runs what is begun ahead on the caller's thread: for tests, whose calls run when the test says.
   */
  public MoveCalls(Executor executor) {
    this(executor, Runnable::run);
  }

  /** With threads of its own, as many as calls in flight: each waits on one agent's answer. */
  public static MoveCalls withOwnThreads() {
    AtomicInteger n = new AtomicInteger();
    ExecutorService threads =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "ferry-move-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    return new MoveCalls(threads, threads);
  }

  /**
   * Starts {@code call} for {@code plan}'s migration, in place of any flight it had; {@code wake}
   * runs when it has answered or failed.
   */
  Flight start(
      Kind kind, Plan plan, String reason, String note, Callable<MoveOutcome> call, Runnable wake) {
    CompletableFuture<MoveOutcome> answer = new CompletableFuture<>();
    Flight flight = new Flight(kind, plan, reason, note, answer);
    flights.put(plan.id(), flight);
    answer.whenComplete((o, e) -> wake.run());
    executor.execute(
        () -> {
          try {
            answer.complete(call.call());
          } catch (Throwable e) {
            answer.completeExceptionally(e);
          }
        });
    return flight;
  }

  /** Runs {@code work} off the caller's thread; what fails is logged. */
  void runBestEffort(String what, Runnable work) {
    executor.execute(
        () -> {
          try {
            work.run();
          } catch (RuntimeException e) {
            LOG.warning(() -> what + " failed: " + e.getMessage());
          }
        });
  }

  Optional<Flight> find(String migrationId) {
    return migrationId == null ? Optional.empty() : Optional.ofNullable(flights.get(migrationId));
  }

  void forget(String migrationId) {
    if (migrationId != null) {
      flights.remove(migrationId);
      prepared.remove(migrationId);
      preparedHeard.remove(migrationId);
      signed.remove(migrationId);
    }
  }

  /**
   * Starts {@code sign} off the caller's thread, for the Move of {@code migrationId} that follows:
   * taken by {@link #takeSignedAhead}, dropped by {@link #forget}.
   */
  void signAhead(String migrationId, Instant at, Supplier<MoveRequest> sign) {
    signed.put(migrationId, new SignedAhead(at, CompletableFuture.supplyAsync(sign, ahead)));
  }

  /**
   * Starts {@code protect} off the caller's thread, for request {@code uid}: taken by {@link
   * #takeGuard}, waited for by {@link #settleAhead}.
   */
  void guardAhead(String uid, Supplier<Optional<String>> protect) {
    // Once: a Pending turn tried again (its status write failed) admits the request again.
    guards.computeIfAbsent(uid, u -> CompletableFuture.supplyAsync(protect, ahead));
  }

  /**
   * Waits for the guard begun ahead for request {@code uid}, and forgets it.
   *
   * @return what the guard answered (why the pod is not protected, if so); empty when none was
   *     begun, or it threw: the caller raises the guard itself
   */
  Optional<Optional<String>> takeGuard(String uid) {
    CompletableFuture<Optional<String>> begun = uid == null ? null : guards.remove(uid);
    if (begun == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(begun.join());
    } catch (RuntimeException e) {
      LOG.fine(() -> "the eviction guard begun ahead for " + uid + " failed: " + cause(e));
      return Optional.empty();
    }
  }

  /** Keeps {@code plan}, made as request {@code uid} was admitted, for Preparing. */
  void planAhead(String uid, Plan plan) {
    plansAhead.put(uid, plan);
  }

  /** The plan made as request {@code uid} was admitted, forgotten; empty if none was. */
  Optional<Plan> takePlanAhead(String uid) {
    return uid == null ? Optional.empty() : Optional.ofNullable(plansAhead.remove(uid));
  }

  /**
   * Waits for the guard begun ahead for request {@code uid}, if any, and forgets it with the plan
   * and the check made ahead: a release must not run before the guard it lifts has landed.
   *
   * @return whether a guard was begun
   */
  boolean settleAhead(String uid) {
    if (uid == null) {
      return false;
    }
    plansAhead.remove(uid);
    checks.remove(uid);
    CompletableFuture<Optional<String>> begun = guards.remove(uid);
    if (begun != null) {
      begun.exceptionally(e -> Optional.empty()).join();
    }
    return begun != null;
  }

  /**
   * Starts {@code ask}, the question {@code request} to the agent at {@code agent}, off the
   * caller's thread, for request {@code uid}: taken by {@link #takeCheck}.
   */
  void checkAhead(
      String uid,
      String agent,
      ListConnectionsRequest request,
      Supplier<ListConnectionsResponse> ask) {
    checks.put(uid, new CheckAhead(agent, request, CompletableFuture.supplyAsync(ask, ahead)));
  }

  /**
   * The answer of the agent at {@code agent} to {@code request}, asked ahead for request {@code
   * uid}, waited for; forgotten either way.
   *
   * @return empty when that question was not asked ahead (the plan changed since, or an operator
   *     restarted), or it failed other than as a call: the caller asks now
   * @throws AgentClient.Failed the agent's call failed, as the caller's own would have: asked
   *     again, an agent that does not answer would keep Preparing for a second call's timeout
   */
  Optional<ListConnectionsResponse> takeCheck(
      String uid, String agent, ListConnectionsRequest request) {
    CheckAhead asked = uid == null ? null : checks.remove(uid);
    if (asked == null || !asked.agent().equals(agent) || !asked.request().equals(request)) {
      return Optional.empty();
    }
    try {
      return Optional.of(asked.answer().join());
    } catch (RuntimeException e) {
      if (cause(e) instanceof AgentClient.Failed failed) {
        throw failed;
      }
      LOG.fine(() -> "the check asked ahead for " + uid + " failed: " + cause(e));
      return Optional.empty();
    }
  }

  Optional<SignedAhead> takeSignedAhead(String migrationId) {
    return migrationId == null ? Optional.empty() : Optional.ofNullable(signed.remove(migrationId));
  }

  void heardPrepared(String migrationId, Instant at) {
    preparedHeard.put(migrationId, at);
  }

  Optional<Instant> lastHeardPrepared(String migrationId) {
    return migrationId == null
        ? Optional.empty()
        : Optional.ofNullable(preparedHeard.get(migrationId));
  }

  void prepared(Plan plan) {
    prepared.put(plan.id(), plan);
  }

  Optional<Plan> takePrepared(String migrationId) {
    return migrationId == null
        ? Optional.empty()
        : Optional.ofNullable(prepared.remove(migrationId));
  }

  /**
   * Takes no further call and cuts those in flight, as the operator stops: a blocking call whose
   * thread is interrupted cancels its RPC, which to the agent is what an operator's death is, a
   * case the agents come through at every point of a move (their own side goes on, and the next
   * leader calls again). Waits up to {@code grace} for the calls' threads; whether all ended.
   * Nothing is recorded of them: the reconciles that would read their answers have stopped.
   */
  public boolean stop(Duration grace) throws InterruptedException {
    if (!(executor instanceof ExecutorService threads)) {
      return true; // a caller's own executor (tests): nothing of ours runs apart
    }
    threads.shutdownNow();
    return threads.awaitTermination(grace.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** How many flights the registry keeps. */
  public int size() {
    return flights.size();
  }

  /** What a finished flight's call threw, unwrapped. */
  static Throwable cause(Throwable e) {
    return e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
  }
}
