// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.peer;

import dev.ferry.agent.api.MutualTls;
import dev.ferry.agent.migration.BadRequest;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
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
          NodeAgentGrpc.newBlockingStub(channel(target))
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
    ManagedChannel ch = channel(target);
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
    return ArrivalCall.rehearsal(target, channel(target), limit);
  }

  private ManagedChannel channel(String target) {
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
