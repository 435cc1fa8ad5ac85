// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.api.AgentApi;
import io.grpc.Status;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class ReceiveBudgetTest {
  @Test
  void anArrivalOverTheNodesLimitIsRefusedWithResourceExhaustedAndTheFixNamed() {
    ReceiveBudget budget = new ReceiveBudget(100);
    budget.take(60, "app_state of a");
    assertThatThrownBy(() -> budget.take(41, "app_state of b"))
        .isInstanceOfSatisfying(
            ReceiveBudget.Exhausted.class,
            e ->
                assertThat(AgentApi.statusOf(e).getCode())
                    .isEqualTo(Status.Code.RESOURCE_EXHAUSTED))
        .hasMessageContaining("app_state of b")
        .hasMessageContaining("ferry.agent.max-receive-bytes");
    assertThat(budget.held()).as("a refusal takes nothing").isEqualTo(60);
    budget.take(40, "app_state of b");
    budget.give(100);
    assertThat(budget.held()).isZero();
  }

  @Test
  void theDefaultIsHalfTheHeapWhateverTheLargestState() {
    long mib = 1 << 20;
    // The chart's agent: a 1 GiB limit, 75 % of it heap, 256 MiB states. Two such states at once
    // would be 512 MiB, two thirds of the heap before either is put back together.
    assertThat(ReceiveBudget.of(Optional.empty(), 256 * mib, 768 * mib).limit())
        .isEqualTo(384 * mib);
    assertThat(ReceiveBudget.of(Optional.of(100 * mib), 100 * mib, 768 * mib).limit())
        .as("a limit set is kept, down to one state of the largest size")
        .isEqualTo(100 * mib);
  }

  @Test
  void anAgentWhoseBudgetCannotHoldOneStateOfTheLargestSizeIsRefusedWithTheFixNamed() {
    long mib = 1 << 20;
    assertThatThrownBy(() -> ReceiveBudget.of(Optional.empty(), 512 * mib, 768 * mib))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("ferry.agent.max-state-bytes is " + 512 * mib)
        .hasMessageContaining("half the heap of " + 768 * mib)
        .hasMessageContaining("agent.resources.limits.memory")
        .hasMessageContaining("agent.maxStateBytes");
    assertThatThrownBy(() -> ReceiveBudget.of(Optional.of(mib), 2 * mib, 768 * mib))
        .hasMessageContaining("at most " + mib)
        .hasMessageContaining("(ferry.agent.max-receive-bytes)");
  }
}
