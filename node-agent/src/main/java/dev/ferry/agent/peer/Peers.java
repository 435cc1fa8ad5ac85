// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.peer;

import com.google.protobuf.ByteString;
import dev.ferry.agent.api.MutualTls;
import dev.ferry.agent.migration.BadRequest;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.api.v1alpha1.AppStateChunk;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.api.v1alpha1.ReceiveResponse;
import dev.ferry.api.v1alpha1.TransferChunk;
import dev.ferry.api.v1alpha1.TransferEnd;
import dev.ferry.api.v1alpha1.TransferHeader;
import dev.ferry.api.v1alpha1.TransferredConnection;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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

  /**
   * Opens the channel to {@code target} now, in the background, so that a transfer soon after finds
   * the handshakes done. A bad address is only reported by the transfer itself.
   */
  public void connectAhead(String target) {
    if (validTarget(target)) {
      channel(target).getState(true);
    }
  }

  public static boolean validTarget(String target) {
    return target.matches("[A-Za-z0-9.:\\[\\]-]+:[0-9]{1,5}");
  }

  /**
   * Streams {@code states} to the agent at {@code target} (host:port), waiting for the network as
   * it goes: a 64 MiB state is never all in memory twice.
   */
  public ReceiveResponse send(
      String target, String id, String sourceNode, List<Departure.Departed> states) {
    if (!validTarget(target)) {
      throw new BadRequest("target_agent must be HOST:PORT, got '" + target + "'");
    }
    CompletableFuture<ReceiveResponse> done = new CompletableFuture<>();
    ReadyGate gate = new ReadyGate();
    long start = System.nanoTime();
    NodeAgentGrpc.newStub(channel(target))
        .withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
        .receive(
            new ClientResponseObserver<TransferChunk, ReceiveResponse>() {
              @Override
              public void beforeStart(ClientCallStreamObserver<TransferChunk> requests) {
                gate.attach(requests);
              }

              @Override
              public void onNext(ReceiveResponse r) {
                done.complete(r);
              }

              @Override
              public void onError(Throwable t) {
                done.completeExceptionally(t);
                gate.open();
              }

              @Override
              public void onCompleted() {
                done.complete(ReceiveResponse.getDefaultInstance());
              }
            });
    try {
      gate.send(
          TransferChunk.newBuilder()
              .setHeader(
                  TransferHeader.newBuilder()
                      .setMigrationId(id)
                      .setSourceNode(sourceNode)
                      .setConnections(states.size()))
              .build(),
          done);
      for (Departure.Departed d : states) {
        byte[] app = d.applicationState();
        gate.send(
            TransferChunk.newBuilder()
                .setConnection(
                    TransferredConnection.newBuilder()
                        .setSocket(SocketStateCodec.toMessage(d.socket()))
                        .setAppStateLength(app.length))
                .build(),
            done);
        for (int off = 0; off < app.length; off += CHUNK) {
          int n = Math.min(CHUNK, app.length - off);
          gate.send(
              TransferChunk.newBuilder()
                  .setAppState(AppStateChunk.newBuilder().setData(ByteString.copyFrom(app, off, n)))
                  .build(),
              done);
        }
      }
      gate.send(TransferChunk.newBuilder().setEnd(TransferEnd.getDefaultInstance()).build(), done);
      gate.complete();
      long sent = System.nanoTime();
      ReceiveResponse r = done.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      long end = System.nanoTime();
      LOG.info(
          () ->
              String.format(
                  "sent migration %s to %s: %d connections, %d bytes of application state; first"
                      + " chunk after %.1f ms, all written after %.1f ms, acknowledged after %.1f"
                      + " ms",
                  id,
                  target,
                  r.getConnections(),
                  r.getBytes(),
                  (gate.firstSent - start) / 1e6,
                  (sent - start) / 1e6,
                  (end - start) / 1e6));
      return r;
    } catch (ExecutionException e) {
      throw new PeerFailed(target, e.getCause());
    } catch (TimeoutException e) {
      gate.cancel("timed out");
      throw new PeerFailed(target, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      gate.cancel("interrupted");
      throw new PeerFailed(target, e);
    }
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

  /** Opens the stream of one move to the target's agent ({@link ArrivalCall}). */
  public ArrivalCall arrive(String target, Duration limit) {
    if (!validTarget(target)) {
      throw new BadRequest("target_agent must be HOST:PORT, got '" + target + "'");
    }
    return new ArrivalCall(target, channel(target), limit);
  }

  private ManagedChannel channel(String target) {
    return channels.computeIfAbsent(
        target,
        t ->
            NettyChannelBuilder.forTarget(t)
                .overrideAuthority(MutualTls.AGENT_NAME)
                .sslContext(tls.clientContext())
                .maxInboundMessageSize(4 << 20)
                .build());
  }

  @Override
  public void close() {
    channels.values().forEach(ManagedChannel::shutdownNow);
  }

  /** The target agent could not be reached or refused the states. */
  public static final class PeerFailed extends RuntimeException {
    PeerFailed(String target, Throwable cause) {
      super(
          "sending the states to "
              + target
              + " failed: "
              + (cause instanceof StatusRuntimeException s ? s.getStatus() : cause.toString()),
          cause);
    }
  }

  /** Sends only when the transport has room, so a slow peer slows the sender down. */
  private static final class ReadyGate {
    private ClientCallStreamObserver<TransferChunk> requests;
    private boolean failed;
    long firstSent;

    synchronized void attach(ClientCallStreamObserver<TransferChunk> requests) {
      this.requests = requests;
      requests.setOnReadyHandler(this::open);
    }

    synchronized void open() {
      notifyAll();
    }

    synchronized void send(TransferChunk chunk, CompletableFuture<?> done)
        throws InterruptedException, ExecutionException {
      while (!requests.isReady() && !done.isDone()) {
        wait(100);
      }
      if (done.isDone()) {
        done.get(); // throws the peer's error; a success before the end is a protocol error
        throw new ExecutionException(new IllegalStateException("the peer answered early"));
      }
      if (firstSent == 0) {
        firstSent = System.nanoTime();
      }
      requests.onNext(chunk);
    }

    synchronized void complete() {
      requests.onCompleted();
    }

    synchronized void cancel(String why) {
      if (!failed) {
        failed = true;
        requests.cancel(why, null);
      }
    }
  }
}
