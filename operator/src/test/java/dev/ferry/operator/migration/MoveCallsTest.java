// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.PodRef;
import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The operator's stop cuts its calls on agents before its Lease goes: a call still running then
 * would run beside the next leader's.
 */
class MoveCallsTest {
  private final MoveCalls calls = MoveCalls.withOwnThreads();

  @Test
  void aCheckAskedAheadIsUsedOnlyForTheSameQuestionToTheSameAgentAndNeverWhenItFailed() {
    MoveCalls direct = new MoveCalls(Runnable::run);
    ListConnectionsRequest asked = check("pod-b");
    ListConnectionsResponse answer =
        ListConnectionsResponse.newBuilder().addRegisteredPorts(8080).build();

    direct.checkAhead("uid-1", "10.0.0.2:9443", asked, () -> answer);
    assertThat(direct.takeCheck("uid-1", "10.0.0.2:9443", check("pod-c")))
        .as("the plan names another target since")
        .isEmpty();
    assertThat(direct.takeCheck("uid-1", "10.0.0.2:9443", asked)).as("taken once").isEmpty();

    direct.checkAhead("uid-1", "10.0.0.2:9443", asked, () -> answer);
    assertThat(direct.takeCheck("uid-1", "10.0.0.3:9443", asked)).as("another agent").isEmpty();

    direct.checkAhead("uid-1", "10.0.0.2:9443", asked, () -> answer);
    assertThat(direct.takeCheck("uid-1", "10.0.0.2:9443", asked)).contains(answer);

    direct.checkAhead(
        "uid-1",
        "10.0.0.2:9443",
        asked,
        () -> {
          throw new IllegalStateException("UNAVAILABLE");
        });
    assertThat(direct.takeCheck("uid-1", "10.0.0.2:9443", asked))
        .as("failed ahead, not as a call: the caller asks again itself")
        .isEmpty();

    AgentClient.Failed unreachable =
        new AgentClient.Failed("10.0.0.2:9443", "ListConnections", Status.UNAVAILABLE);
    direct.checkAhead(
        "uid-1",
        "10.0.0.2:9443",
        asked,
        () -> {
          throw unreachable;
        });
    assertThatThrownBy(() -> direct.takeCheck("uid-1", "10.0.0.2:9443", asked))
        .as("the call failed: as the caller's own would, without a second wait for it")
        .isSameAs(unreachable);
  }

  private static ListConnectionsRequest check(String pod) {
    return ListConnectionsRequest.newBuilder()
        .setPod(PodRef.newBuilder().setNamespace("shop").setName(pod))
        .addPorts(8080)
        .build();
  }

  @Test
  void aStopCutsTheCallsInFlightAndTakesNoMore() throws Exception {
    CountDownLatch called = new CountDownLatch(1);
    MoveCalls.Flight flight =
        calls.start(
            MoveCalls.Kind.MOVE,
            Rig.plan(),
            null,
            null,
            () -> {
              called.countDown();
              // As a blocking gRPC call waits for its answer: an interrupt cancels it.
              Thread.sleep(TimeUnit.MINUTES.toMillis(10));
              return MoveOutcome.getDefaultInstance();
            },
            () -> {});
    assertThat(called.await(30, TimeUnit.SECONDS)).isTrue();

    assertThat(calls.stop(Duration.ofSeconds(30))).as("every call ended").isTrue();

    assertThatThrownBy(() -> flight.answer().get(30, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(InterruptedException.class);
    assertThatThrownBy(
            () ->
                calls.start(
                    MoveCalls.Kind.MOVE,
                    Rig.plan(),
                    null,
                    null,
                    MoveOutcome::getDefaultInstance,
                    () -> {}))
        .isInstanceOf(RejectedExecutionException.class);
  }

  @Test
  void aCallThatDoesNotEndWhenCutIsReported() throws Exception {
    CountDownLatch called = new CountDownLatch(1);
    CountDownLatch letGo = new CountDownLatch(1);
    calls.start(
        MoveCalls.Kind.ROLLBACK,
        Rig.plan(),
        null,
        null,
        () -> {
          called.countDown();
          // Deaf to the interrupt, as a call stuck in a read that ignores it would be.
          while (true) {
            try {
              if (letGo.await(10, TimeUnit.MILLISECONDS)) {
                return MoveOutcome.getDefaultInstance();
              }
            } catch (InterruptedException e) {
              // ignored on purpose
            }
          }
        },
        () -> {});
    assertThat(called.await(30, TimeUnit.SECONDS)).isTrue();
    try {
      assertThat(calls.stop(Duration.ofMillis(200))).as("a call still runs").isFalse();
    } finally {
      letGo.countDown();
    }
  }
}
