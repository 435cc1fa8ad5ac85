// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.v1alpha1.MoveOutcome;
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
