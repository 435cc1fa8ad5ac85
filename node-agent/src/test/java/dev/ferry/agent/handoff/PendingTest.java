// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Connection;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

class PendingTest {
  private static final Connection CONNECTION =
      new Connection(
          new InetSocketAddress("10.0.0.1", 8080), new InetSocketAddress("10.0.0.2", 40000));

  /**
   * The agent's wait for a batch of freezes or takeovers ends once it sees every request finished,
   * and reads their outcomes then: an answer's thread must have put the outcome in the batch by the
   * time the request shows finished. A race of two threads, many times: one finishes the request,
   * the other waits to see it finished and reads the outcome (make bench once read none, and a move
   * rolled back on the NullPointerException).
   */
  @Test
  void aRequestSeenFinishedHasItsOutcomeInTheBatch() throws InterruptedException {
    for (int round = 0; round < 5_000; round++) {
      HandoffServer.Batch batch = new HandoffServer.Batch(1);
      Session.Pending req = new Session.Pending(null, round, true, CONNECTION, batch, 0, null);
      HandoffOutcome taken = new HandoffOutcome.NotAnswered("round " + round);
      Thread answer = new Thread(() -> req.finish(taken));
      answer.start();
      while (!req.finished) {
        Thread.onSpinWait();
      }
      assertThat(batch.outcomes().get(0)).as("round %d", round).isSameAs(taken);
      answer.join();
    }
  }

  @Test
  void theFirstOutcomeStands() {
    HandoffServer.Batch batch = new HandoffServer.Batch(1);
    Session.Pending req = new Session.Pending(null, 1, false, CONNECTION, batch, 0, null);
    HandoffOutcome first = new HandoffOutcome.NotAnswered("silent");

    assertThat(req.finish(first)).isTrue();
    assertThat(req.finish(new HandoffOutcome.NotAnswered("its session closed"))).isFalse();

    assertThat(batch.outcomes()).containsExactly(first);
  }
}
