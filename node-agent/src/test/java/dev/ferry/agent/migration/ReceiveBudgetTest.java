// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.api.AgentApi;
import io.grpc.Status;
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
  void theDefaultHoldsTwoOfTheLargestStatesWhateverTheHeap() {
    assertThat(ReceiveBudget.defaultLimit(1L << 40)).isEqualTo(2L << 40);
    assertThat(ReceiveBudget.defaultLimit(1)).isEqualTo(Runtime.getRuntime().maxMemory() / 2);
  }
}
