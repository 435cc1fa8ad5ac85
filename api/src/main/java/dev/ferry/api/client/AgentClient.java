// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.client;

import dev.ferry.api.plan.PlanSigner;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.api.v1alpha1.NodeAgentGrpc.NodeAgentBlockingStub;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ForwardingClientCall;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * Calls on one node-agent. Every call of the agent's API is idempotent, so a call that timed out or
 * found the agent unreachable is simply made again, a few times, before it counts as failed.
 */
public final class AgentClient implements AutoCloseable {
  private static final int ATTEMPTS = 3;

  public final String target;
  private final ManagedChannel channel;
  private final Channel signing;
  private final PlanSigner signer;
  private final Duration deadline;

  /** Every Move sent through this client carries its plan, signed by {@code tls}'s signer. */
  public AgentClient(String target, CallerTls tls, Duration deadline) {
    this.target = target;
    this.channel = AgentChannels.open(target, tls.context());
    this.signer = tls.signer();
    this.signing = ClientInterceptors.intercept(channel, new SignsMoves(signer));
    this.deadline = deadline;
  }

  /**
   * Starts connecting to the agent, if the channel is not connected, and returns at once: the TCP
   * and TLS handshakes then happen before the next call, not inside it.
   */
  public void connect() {
    channel.getState(true);
  }

  /**
   * {@code req} with its plan signed now, as a Move sent through this client would be: for a caller
   * that signs ahead of the call. A Move that carries a plan is sent as it is.
   */
  public MoveRequest signed(MoveRequest req) {
    return signer.signed(req);
  }

  /** Makes {@code call}, named {@code what} in errors; retried while the agent is unreachable. */
  public <T> T call(String what, Function<NodeAgentBlockingStub, T> call) {
    StatusRuntimeException last = null;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        return call.apply(
            NodeAgentGrpc.newBlockingStub(signing)
                .withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS));
      } catch (StatusRuntimeException e) {
        last = e;
        if (!worthRetrying(e.getStatus().getCode()) || attempt == ATTEMPTS) {
          break;
        }
        sleep(200L << (2 * (attempt - 1)));
        // An agent that was down and is back: the channel would otherwise wait out its growing
        // reconnect backoff (up to minutes) and fail this retry at once.
        channel.resetConnectBackoff();
      }
    }
    throw new Failed(target, what, last.getStatus());
  }

  private static boolean worthRetrying(Status.Code code) {
    return code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Signs a Move on its way out, unless its caller has (a test sending a plan of its own). */
  private record SignsMoves(PlanSigner signer) implements ClientInterceptor {
    @Override
    public <Q, A> ClientCall<Q, A> interceptCall(
        MethodDescriptor<Q, A> method, CallOptions options, Channel next) {
      ClientCall<Q, A> call = next.newCall(method, options);
      if (!method.equals(NodeAgentGrpc.getMoveMethod())) {
        return call;
      }
      return new ForwardingClientCall.SimpleForwardingClientCall<>(call) {
        @Override
        @SuppressWarnings("unchecked")
        public void sendMessage(Q message) {
          MoveRequest req = (MoveRequest) message;
          super.sendMessage(req.hasPlan() ? message : (Q) signer.signed(req));
        }
      };
    }
  }

  @Override
  public void close() {
    channel.shutdownNow();
  }

  /** A call the agent refused or could not be reached for. */
  public static final class Failed extends RuntimeException {
    public final Status status;

    public Failed(String target, String what, Status status) {
      super(
          what
              + " on the agent at "
              + target
              + " failed: "
              + status.getCode()
              + (status.getDescription() == null ? "" : ": " + status.getDescription()));
      this.status = status;
    }

    public boolean notFound() {
      return status.getCode() == Status.Code.NOT_FOUND;
    }
  }
}
