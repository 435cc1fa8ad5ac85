// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.api.CallerCheck;
import dev.ferry.agent.api.MutualTls;
import dev.ferry.agent.api.SecretVolume;
import dev.ferry.agent.api.TestAgentServer;
import dev.ferry.agent.migration.ArrivalRehearsal;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.peer.Peers;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalMessage;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.api.v1alpha1.StatesBatch;
import dev.ferry.api.v1alpha1.StatesEnd;
import dev.ferry.api.v1alpha1.TransferredConnection;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The conversation an agent rehearses with its own API at start: over the agents' mutual TLS and
 * {@link CallerCheck}, with an agent's certificate, each round gets the answers of a target where
 * every connection staged and resumed, by both ways of committing; and the target's end refuses
 * what a real target would refuse. Root: the state sent is one a loopback socket's export left
 * ({@link MoveRehearsal}).
 */
class PeerRehearsalIT {
  @TempDir static Path shared;
  private static Departure.Departed sample;

  @TempDir Path dir;
  private Server server;
  private Peers peers;
  private MutualTls tls;
  private final List<ArrivalMessage> received = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void exportOne() throws Exception {
    sample = MoveRehearsal.run(1, shared.resolve("scratch")).sample();
  }

  @BeforeEach
  void agent() throws Exception {
    Path certs = SecretVolume.newCa(dir.resolve("cluster"));
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    AgentMetrics metrics = new AgentMetrics(registry);
    tls = SecretVolume.agentTls(certs, metrics);
    server =
        TestAgentServer.start(
            tls,
            metrics,
            new NodeAgentGrpc.NodeAgentImplBase() {
              @Override
              public StreamObserver<ArrivalMessage> rehearse(StreamObserver<ArrivalReply> out) {
                return recording(new ArrivalRehearsal("node-x", out));
              }
            });
    peers = new Peers(tls, Duration.ofSeconds(10));
  }

  @AfterEach
  void stop() throws InterruptedException {
    peers.close();
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }

  @Test
  void eachRoundIsAnsweredAsAMoveThatStagedAndResumedByBothWaysOfCommitting() throws Exception {
    PeerRehearsal.Result r =
        PeerRehearsal.run(
            peers,
            AgentRuntime.selfTarget("0.0.0.0", server.getPort()),
            "node-x",
            6,
            List.of(sample));

    assertThat(r.rounds()).isEqualTo(6);
    assertThat(received.stream().filter(ArrivalMessage::hasHeader)).hasSize(6);
    // Three rounds commit after STAGED, three right behind the states (if_all_staged).
    assertThat(received.stream().filter(m -> m.hasCommit() && m.getCommit().getIfAllStaged()))
        .hasSize(3);
    assertThat(received.stream().filter(m -> m.hasCommit() && !m.getCommit().getIfAllStaged()))
        .hasSize(3);
    // The state crossed whole: the target's end decoded it back to what was exported.
    ArrivalMessage states = received.stream().filter(ArrivalMessage::hasStates).findFirst().get();
    TransferredConnection tc = states.getStates().getConnections(0);
    assertThat(SocketStateCodec.fromMessage(tc.getSocket()))
        .usingRecursiveComparison()
        .isEqualTo(sample.socket());
    assertThat(tc.getAppState().toByteArray()).isEqualTo(sample.applicationState());
  }

  @Test
  void aTargetAgentThatCameBackIsReachedAtOnceNotAfterTheReconnectBackoff() throws Exception {
    String target = "127.0.0.1:" + server.getPort();
    InetSocketAddress address = new InetSocketAddress("127.0.0.1", server.getPort());
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    // A call while the target's agent is down fails, and leaves the channel in its reconnect
    // backoff (a second at first, up to two minutes), in which a call fails without trying.
    assertThatThrownBy(() -> peers.status(target, "m-1")).isInstanceOf(Peers.PeerFailed.class);

    // The agent is back, on the same address, a moment later (a FaultMatrixIT cell: both agents
    // restarted, then a move whose first call found the channel still backing off rolled back).
    server =
        NettyServerBuilder.forAddress(address, tls.serverCredentials())
            .addService(
                new NodeAgentGrpc.NodeAgentImplBase() {
                  @Override
                  public void status(MigrationRef r, StreamObserver<MigrationStatus> out) {
                    out.onError(Status.NOT_FOUND.asRuntimeException());
                  }
                })
            .build()
            .start();

    // Answered (it knows nothing of m-1), not refused by the backoff.
    assertThat(peers.status(target, "m-1")).isEmpty();
  }

  @Test
  void theSelfTargetIsLoopbackWhenTheApiListensEverywhere() {
    assertThat(AgentRuntime.selfTarget("0.0.0.0", 9443)).isEqualTo("127.0.0.1:9443");
    assertThat(AgentRuntime.selfTarget("::", 9443)).isEqualTo("[::1]:9443");
    assertThat(AgentRuntime.selfTarget("10.0.0.7", 9443)).isEqualTo("10.0.0.7:9443");
    assertThat(AgentRuntime.selfTarget("fd00::7", 9443)).isEqualTo("[fd00::7]:9443");
  }

  @Test
  void theTargetsEndRefusesWhatATargetWouldRefuse() {
    assertRefused(List.of(states(1)), "a rehearsal begins with its header, got STATES");
    assertRefused(List.of(header(), states(1), end(2)), "END says 2 connections, 1 came");
    assertRefused(
        List.of(header(), states(ArrivalRehearsal.MAX_CONNECTIONS + 1)),
        "a rehearsal carries at most 1000 connections");
  }

  @Test
  void aRoundTheTargetRefusesFailsTheRehearsalWithItsWords() {
    // One state too many for END: the rehearsal stops with the target's reason, not a hang.
    Departure.Departed twice = sample;
    assertThatThrownBy(
            () ->
                PeerRehearsal.run(
                    peers,
                    "127.0.0.1:" + server.getPort(),
                    "node-x",
                    1,
                    java.util.Collections.nCopies(ArrivalRehearsal.MAX_CONNECTIONS + 1, twice)))
        .hasMessageContaining("at most 1000 connections");
  }

  private void assertRefused(List<ArrivalMessage> messages, String why) {
    Replies replies = new Replies();
    ArrivalRehearsal target = new ArrivalRehearsal("node-x", replies);
    messages.forEach(target::onNext);
    assertThat(replies.error).as("refusal of %s", messages.size()).isNotNull();
    Status s = Status.fromThrowable(replies.error);
    assertThat(s.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(s.getDescription()).isEqualTo(why);
  }

  private static ArrivalMessage header() {
    return ArrivalMessage.newBuilder()
        .setHeader(ArrivalHeader.newBuilder().setMigrationId("r-1"))
        .build();
  }

  private static ArrivalMessage states(int n) {
    StatesBatch.Builder b = StatesBatch.newBuilder();
    for (int i = 0; i < n; i++) {
      b.addConnections(
          TransferredConnection.newBuilder()
              .setSocket(SocketStateCodec.toMessage(sample.socket())));
    }
    return ArrivalMessage.newBuilder().setStates(b).build();
  }

  private static ArrivalMessage end(int n) {
    return ArrivalMessage.newBuilder().setEnd(StatesEnd.newBuilder().setConnections(n)).build();
  }

  private StreamObserver<ArrivalMessage> recording(StreamObserver<ArrivalMessage> target) {
    return new StreamObserver<>() {
      @Override
      public void onNext(ArrivalMessage m) {
        received.add(m);
        target.onNext(m);
      }

      @Override
      public void onError(Throwable t) {
        target.onError(t);
      }

      @Override
      public void onCompleted() {
        target.onCompleted();
      }
    };
  }

  private static final class Replies implements StreamObserver<ArrivalReply> {
    Throwable error;

    @Override
    public void onNext(ArrivalReply r) {}

    @Override
    public void onError(Throwable t) {
      error = t;
    }

    @Override
    public void onCompleted() {}
  }
}
