// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.peer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalMessage;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The source sends COMMIT right behind the states only to a target that said, in answer to the
 * header, that it commits only what staged: a target that predates it would commit connections that
 * failed to stage, so the source waits for its STAGED as before. Against a target on a real gRPC
 * stream over loopback, which answers as an older or a newer agent does.
 */
class CommitWithStatesTest {
  private Server server;
  private ManagedChannel channel;
  private final LinkedBlockingQueue<ArrivalMessage> received = new LinkedBlockingQueue<>();

  @AfterEach
  void stop() throws Exception {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void aTargetThatSaysReadyGetsCommitBehindTheStatesAndAnswersStagedThenResumed() throws Exception {
    ArrivalCall call = callTo(true);
    call.sendHeader(header());
    assertThat(received.poll(10, TimeUnit.SECONDS)).isNotNull(); // the header, taken
    assertThat(call.awaitReady(Duration.ofSeconds(10))).isTrue();

    call.sendStatesAhead(List.of());
    call.commitIfAllStaged(3, Map.of());

    assertThat(received.poll(10, TimeUnit.SECONDS).hasEnd()).isTrue();
    ArrivalMessage commit = received.poll(10, TimeUnit.SECONDS);
    assertThat(commit.hasCommit()).isTrue();
    assertThat(commit.getCommit().getIfAllStaged()).isTrue();
    assertThat(commit.getCommit().getMillisSinceExport()).isEqualTo(3);
    assertThat(call.awaitReply().hasStaged()).as("STAGED comes first").isTrue();
    assertThat(call.awaitReply().getCommitted()).isTrue();
    call.close();
  }

  @Test
  void aTargetThatNeverSaysReadyIsNotSentCommitBeforeItsStaged() throws Exception {
    ArrivalCall call = callTo(false);
    call.sendHeader(header());
    assertThat(received.poll(10, TimeUnit.SECONDS)).isNotNull();
    assertThat(call.awaitReady(Duration.ofMillis(300))).as("an older target never says").isFalse();
    // The older target's STAGED answers the states: nothing in between made the source think
    // it may commit ahead.
    ArrivalReply staged = call.sendStates(List.of());
    assertThat(staged.hasStaged()).isTrue();
    assertThat(call.commitsIfAllStaged()).isFalse();
    assertThatThrownBy(() -> call.commitIfAllStaged(0, Map.of()))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("did not say it commits only what staged");
    assertThat(received.poll(10, TimeUnit.SECONDS).hasEnd()).isTrue();
    assertThat(received.poll(200, TimeUnit.MILLISECONDS)).as("no COMMIT was sent").isNull();
    call.close();
  }

  private static ArrivalHeader header() {
    return ArrivalHeader.newBuilder().setMigrationId("m-1").setAnswerReady(true).build();
  }

  /** A target on loopback that answers as a newer agent ({@code ready}) or an older one. */
  private ArrivalCall callTo(boolean saysReady) throws Exception {
    server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(
                new NodeAgentGrpc.NodeAgentImplBase() {
                  @Override
                  public StreamObserver<ArrivalMessage> arrive(StreamObserver<ArrivalReply> out) {
                    return new StreamObserver<>() {
                      @Override
                      public void onNext(ArrivalMessage m) {
                        received.add(m);
                        if (m.hasHeader() && saysReady && m.getHeader().getAnswerReady()) {
                          out.onNext(ArrivalReply.newBuilder().setReady(true).build());
                        } else if (m.hasEnd()) {
                          out.onNext(
                              ArrivalReply.newBuilder()
                                  .setStaged(MigrationStatus.getDefaultInstance())
                                  .build());
                        } else if (m.hasCommit()) {
                          out.onNext(
                              ArrivalReply.newBuilder()
                                  .setResumed(MigrationStatus.getDefaultInstance())
                                  .setCommitted(true)
                                  .build());
                          out.onCompleted();
                        }
                      }

                      @Override
                      public void onError(Throwable t) {}

                      @Override
                      public void onCompleted() {}
                    };
                  }
                })
            .build()
            .start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
    return new ArrivalCall("target", channel, Duration.ofSeconds(30));
  }
}
