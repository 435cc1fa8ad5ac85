// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
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
  void pastTheBoundARequestRunsOnItsCaller() {
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch busy = new CountDownLatch(SideBySide.MOST);
    List<CompletableFuture<Void>> held = new ArrayList<>();
    try {
      for (int i = 0; i < SideBySide.MOST; i++) {
        held.add(
            SideBySide.start(
                () -> {
                  busy.countDown();
                  await(release);
                }));
      }
      assertThat(await(busy)).as("every thread of the pool busy").isTrue();
      Thread caller = Thread.currentThread();
      AtomicReference<Thread> ranOn = new AtomicReference<>();

      SideBySide.join(SideBySide.start(() -> ranOn.set(Thread.currentThread())));

      assertThat(ranOn.get())
          .as("no thread more than the bound: the caller's own")
          .isSameAs(caller);
    } finally {
      release.countDown();
      held.forEach(SideBySide::join);
    }
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
