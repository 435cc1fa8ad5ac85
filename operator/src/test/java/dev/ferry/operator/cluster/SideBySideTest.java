// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class SideBySideTest {

  @Test
  void bothRunAtOnce() {
    // Each waits for the other to have begun: run one after the other, neither would.
    CountDownLatch firstBegan = new CountDownLatch(1);
    CountDownLatch otherBegan = new CountDownLatch(1);
    AtomicBoolean otherSawFirst = new AtomicBoolean();

    SideBySide.run(
        () -> {
          firstBegan.countDown();
          assertThat(await(otherBegan)).as("the other began while the first ran").isTrue();
        },
        () -> {
          otherBegan.countDown();
          otherSawFirst.set(await(firstBegan));
        });

    assertThat(otherSawFirst).as("the first began while the other ran").isTrue();
  }

  @Test
  void aFailureIsThrownAsItWasOnceBothHaveEnded() {
    AtomicBoolean otherEnded = new AtomicBoolean();

    assertThatThrownBy(
            () ->
                SideBySide.run(
                    () -> {},
                    () -> {
                      throw new IllegalStateException("409 Conflict");
                    }))
        .isExactlyInstanceOf(IllegalStateException.class)
        .hasMessage("409 Conflict");
    assertThatThrownBy(
            () ->
                SideBySide.run(
                    () -> {
                      throw new IllegalArgumentException("the first's");
                    },
                    () -> {
                      sleep(200);
                      otherEnded.set(true);
                      throw new IllegalStateException("the other's");
                    }))
        .as("the first's failure, when both fail")
        .hasMessage("the first's");
    assertThat(otherEnded).as("the other had ended before the call returned").isTrue();
  }

  @Test
  void aReadAnswersThroughJoin() {
    assertThat(SideBySide.join(SideBySide.read(() -> "pod-b"))).isEqualTo("pod-b");
  }

  private static boolean await(CountDownLatch latch) {
    try {
      // Generous: the other side only has to be scheduled, on a machine that may be busy.
      return latch.await(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
