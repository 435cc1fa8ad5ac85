// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import com.google.protobuf.ByteString;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.Endpoint;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.handler.ssl.ClientAuth;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Every node's agent at once, with no kernel work: one gRPC server on all of the host's addresses,
 * over the same mutual TLS as the real agents, that tells the nodes apart by the address a call
 * came to (each node's InternalIP is its own loopback address, 127.1.x.y). {@code Move} answers
 * COMPLETED after {@code agentTime}, as the agents' own work would take; the answer does not hold a
 * thread. It records how many moves were under way at once, per source node and in all, and the
 * order each node's moves began in.
 */
final class SimulatedAgents implements AutoCloseable {
  private static final Context.Key<String> NODE_ADDRESS = Context.key("node-address");

  private final Duration agentTime;
  private final Server server;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
  private final Map<String, CompletableFuture<MoveOutcome>> moves = new ConcurrentHashMap<>();
  private final Map<String, Integer> inFlightByNode = new ConcurrentHashMap<>();
  private final Map<String, List<String>> startedByNode = new ConcurrentHashMap<>();
  private int inFlight;
  private int maxInFlight;
  private final Map<String, Integer> maxByNode = new ConcurrentHashMap<>();

  SimulatedAgents(Path certs, Duration agentTime) throws Exception {
    this.agentTime = agentTime;
    this.server =
        NettyServerBuilder.forAddress(new InetSocketAddress(0))
            .sslContext(
                GrpcSslContexts.forServer(
                        certs.resolve("agent.crt").toFile(), certs.resolve("agent.key").toFile())
                    .trustManager(certs.resolve("ca.crt").toFile())
                    .clientAuth(ClientAuth.REQUIRE)
                    .build())
            .addService(ServerInterceptors.intercept(new Agent(), new WhichNode()))
            .build()
            .start();
  }

  int port() {
    return server.getPort();
  }

  /** The most moves under way at once in all, and out of any one node. */
  synchronized int maxInFlight() {
    return maxInFlight;
  }

  int maxInFlightPerNode() {
    return maxByNode.values().stream().mapToInt(Integer::intValue).max().orElse(0);
  }

  /** Per node address, the migration ids in the order their moves began. */
  Map<String, List<String>> startedByNode() {
    return startedByNode;
  }

  private synchronized void began(String node, String id) {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    int now = inFlightByNode.merge(node, 1, Integer::sum);
    maxByNode.merge(node, now, Math::max);
    startedByNode.computeIfAbsent(node, n -> new ArrayList<>()).add(id);
  }

  private synchronized void ended(String node) {
    inFlight--;
    inFlightByNode.merge(node, -1, Integer::sum);
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    timer.shutdownNow();
  }

  /** Puts the address the call came to (the node's InternalIP) into its context. */
  private static final class WhichNode implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      InetSocketAddress local =
          (InetSocketAddress) call.getAttributes().get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR);
      String node = local == null ? "?" : local.getAddress().getHostAddress();
      return Contexts.interceptCall(
          Context.current().withValue(NODE_ADDRESS, node), call, headers, next);
    }
  }

  private final class Agent extends NodeAgentGrpc.NodeAgentImplBase {
    @Override
    public void listConnections(
        ListConnectionsRequest request, StreamObserver<ListConnectionsResponse> answer) {
      answer.onNext(
          ListConnectionsResponse.newBuilder()
              .addAllRegisteredPorts(request.getPortsList())
              .build());
      answer.onCompleted();
    }

    @Override
    public void move(MoveRequest request, StreamObserver<MoveOutcome> answer) {
      String node = NODE_ADDRESS.get();
      CompletableFuture<MoveOutcome> outcome =
          moves.computeIfAbsent(
              request.getMigrationId(),
              id -> {
                began(node, id);
                CompletableFuture<MoveOutcome> f = new CompletableFuture<>();
                timer.schedule(
                    () -> {
                      ended(node);
                      f.complete(completed(request));
                    },
                    agentTime.toNanos(),
                    TimeUnit.NANOSECONDS);
                return f;
              });
      // A repeated Move joins the first, as the real agent's does.
      outcome.whenComplete(
          (o, e) -> {
            answer.onNext(o);
            answer.onCompleted();
          });
    }

    @Override
    public void status(MigrationRef request, StreamObserver<MigrationStatus> answer) {
      CompletableFuture<MoveOutcome> f = moves.get(request.getMigrationId());
      if (f == null || !f.isDone()) {
        answer.onError(Status.NOT_FOUND.withDescription("no such migration").asException());
        return;
      }
      answer.onNext(f.join().getSource());
      answer.onCompleted();
    }

    @Override
    public void rollback(MigrationRef request, StreamObserver<MigrationStatus> answer) {
      answer.onError(
          Status.FAILED_PRECONDITION.withDescription("simulated: committed").asException());
    }
  }

  private MoveOutcome completed(MoveRequest r) {
    ConnectionId id =
        ConnectionId.newBuilder()
            .setLocal(endpoint(new byte[] {10, 0, 0, 1}, 8080))
            .setRemote(endpoint(new byte[] {(byte) 192, 0, 2, 7}, 40000))
            .build();
    long micros = agentTime.toNanos() / 1000;
    return MoveOutcome.newBuilder()
        .setResult(MoveOutcome.Result.COMPLETED)
        .setCommitted(true)
        .setPauseMicros(micros / 2)
        .setSource(status(r, "source", id, ConnectionPhase.RELEASED, micros))
        .setTarget(status(r, "target", id, ConnectionPhase.RESUMED, micros / 2))
        .build();
  }

  private static MigrationStatus status(
      MoveRequest r, String side, ConnectionId id, ConnectionPhase phase, long micros) {
    return MigrationStatus.newBuilder()
        .setMigrationId(r.getMigrationId())
        .setNode(side)
        .addConnections(ConnectionStatus.newBuilder().setId(id).setPhase(phase))
        .putPhaseMicros("move", micros)
        .build();
  }

  private static Endpoint endpoint(byte[] ip, int port) {
    return Endpoint.newBuilder().setIp(ByteString.copyFrom(ip)).setPort(port).build();
  }
}
