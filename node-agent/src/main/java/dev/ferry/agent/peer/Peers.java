// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.peer;

import dev.ferry.agent.api.MutualTls;
import dev.ferry.agent.migration.BadRequest;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/** Calls on other nodes' agents: the transfer of socket states, straight from agent to agent. */
public final class Peers implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Peers.class.getName());
  static final int CHUNK = 1 << 20;

  private final MutualTls tls;
  private final Duration timeout;
  private final Map<String, ManagedChannel> channels = new ConcurrentHashMap<>();

  public Peers(MutualTls tls, Duration timeout) {
    this.tls = tls;
    this.timeout = timeout;
  }

  public static boolean validTarget(String target) {
    return target.matches("[A-Za-z0-9.:\\[\\]-]+:[0-9]{1,5}");
  }

  /**
   * Asks the target's agent to drop migration {@code id} unless it committed; answers whether it
   * did. Once this returns false the target can never commit it.
   */
  public boolean abortUnlessCommitted(String target, String id) {
    if (!validTarget(target)) {
      throw new BadRequest("the target agent of " + id + " is not known here ('" + target + "')");
    }
    try {
      return NodeAgentGrpc.newBlockingStub(channel(target))
          .withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
          .rollback(MigrationRef.newBuilder().setMigrationId(id).build())
          .getCommitted();
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() == io.grpc.Status.Code.NOT_FOUND) {
        return false; // the target never received it (or restarted before its commit record)
      }
      throw new PeerFailed(target, e);
    }
  }

  /**
   * What the target's agent knows of migration {@code id}; empty if it knows nothing of it.
   *
   * @throws PeerFailed if it does not answer
   */
  public java.util.Optional<dev.ferry.api.v1alpha1.MigrationStatus> status(
      String target, String id) {
    if (!validTarget(target)) {
      throw new BadRequest("the target agent of " + id + " is not known here ('" + target + "')");
    }
    try {
      return java.util.Optional.of(
          NodeAgentGrpc.newBlockingStub(reconnected(target))
              .withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
              .status(MigrationRef.newBuilder().setMigrationId(id).build()));
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() == io.grpc.Status.Code.NOT_FOUND) {
        return java.util.Optional.empty();
      }
      throw new PeerFailed(target, e);
    }
  }

  /** Opens the stream of one move to the target's agent ({@link ArrivalCall}). */
  public ArrivalCall arrive(String target, Duration limit) {
    if (!validTarget(target)) {
      throw new BadRequest("target_agent must be HOST:PORT, got '" + target + "'");
    }
    // Not in the caller's gRPC context: a Move that answers AWAITING_ADDRESS ends its call while
    // this stream must live on until Commit, and a cancelled caller must not cancel the move.
    ManagedChannel ch = reconnected(target);
    io.grpc.Context previous = io.grpc.Context.ROOT.attach();
    try {
      return new ArrivalCall(target, ch, limit);
    } finally {
      io.grpc.Context.ROOT.detach(previous);
    }
  }

  /**
   * Opens a rehearsed move's stream to {@code target} (agent.proto, Rehearse; {@link
   * ArrivalCall#rehearsal}): the calls and answers of {@link #arrive}, and nothing moves.
   */
  public ArrivalCall rehearse(String target, Duration limit) {
    if (!validTarget(target)) {
      throw new BadRequest("a rehearsal's target must be HOST:PORT, got '" + target + "'");
    }
    return ArrivalCall.rehearsal(target, reconnected(target), limit);
  }

  /**
   * The channel to {@code target}'s agent, out of its reconnect backoff: after a failed connection
   * the channel waits a second, then longer (up to two minutes), and meanwhile fails every call
   * without trying; it stays failed until a connection succeeds. Here it connects again at once.
   */
  private ManagedChannel channel(String target) {
    ManagedChannel ch = opened(target);
    leaveBackoff(ch);
    return ch;
  }

  /**
   * {@link #channel}, and up to {@link #RECONNECT} for it to connect again if it was backing off:
   * an agent that restarted is reached, not refused for the rest of the wait (a move whose first
   * call was so refused rolled back, having frozen nothing); one still down fails the call that
   * follows, as before, a moment later. For the calls that start a move's stream or ask a target
   * that may be starting again; the target's abort in a rollback asks without waiting.
   */
  private ManagedChannel reconnected(String target) {
    ManagedChannel ch = opened(target);
    if (leaveBackoff(ch)) {
      awaitReady(ch, System.nanoTime() + RECONNECT.toNanos());
    }
    return ch;
  }

  /** Ends {@code ch}'s reconnect backoff, if it is in one; whether it was. */
  private static boolean leaveBackoff(ManagedChannel ch) {
    if (ch.getState(false) != ConnectivityState.TRANSIENT_FAILURE) {
      return false;
    }
    ch.resetConnectBackoff();
    return true;
  }

  /** How long a call waits for a channel that was backing off to connect again. */
  static final Duration RECONNECT = Duration.ofSeconds(2);

  private static void awaitReady(ManagedChannel ch, long until) {
    ConnectivityState state = ch.getState(false);
    while (state != ConnectivityState.READY && state != ConnectivityState.SHUTDOWN) {
      long left = until - System.nanoTime();
      if (left <= 0) {
        return;
      }
      CountDownLatch changed = new CountDownLatch(1);
      ch.notifyWhenStateChanged(state, changed::countDown);
      try {
        if (!changed.await(left, TimeUnit.NANOSECONDS)) {
          return;
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      state = ch.getState(false);
    }
  }

  private ManagedChannel opened(String target) {
    return channels.computeIfAbsent(
        target,
        t ->
            NettyChannelBuilder.forTarget(t)
                .overrideAuthority(MutualTls.AGENT_NAME)
                .sslContext(tls.clientContext())
                .maxInboundMessageSize(4 << 20)
                // The replies of a move's stream (ready, staged, resumed) are handed on at once
                // by ArrivalCall's observer, never blocking: run it on the channel's own network
                // thread rather than waking another thread for it, one hop less a reply.
                .directExecutor()
                .build());
  }

  @Override
  public void close() {
    channels.values().forEach(ManagedChannel::shutdownNow);
  }

  /** The target agent could not be reached or refused the states. */
  public static final class PeerFailed extends RuntimeException {
    PeerFailed(String target, Throwable cause) {
      super("the call to the target's agent " + target + " failed: " + why(cause), cause);
    }

    /**
     * Whether the target's agent answered, with an error of its own (it could not do it), rather
     * than the call breaking off or timing out (its answer lost, if it gave one).
     */
    public boolean targetAnswered() {
      if (!(getCause() instanceof StatusRuntimeException e)) {
        return false;
      }
      return switch (e.getStatus().getCode()) {
        case UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, UNKNOWN -> false;
        default -> true;
      };
    }

    /** What the target said (its status and words), or what broke; without gRPC's wrapping. */
    private static String why(Throwable cause) {
      if (cause instanceof StatusRuntimeException e) {
        io.grpc.Status s = e.getStatus();
        return s.getDescription() == null
            ? s.getCode().toString()
            : s.getCode() + ": " + s.getDescription();
      }
      return cause.getMessage() == null ? cause.toString() : cause.getMessage();
    }
  }
}
