// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class CongestionStateTest {

  @Test
  void theWindowIsSeededInEveryStateButLossWhereTheInitialOneIsUsed() {
    // Open, Disorder, CWR, Recovery: the window the source would have gone on with.
    for (int caState = 0; caState <= 3; caState++) {
      assertThat(new CongestionState(240, 120, caState, 20_000, 0).seedCwnd(0))
          .as("ca_state %d", caState)
          .isEqualTo(240);
    }
    assertThat(new CongestionState(1, 120, 4, 20_000, 0).seedCwnd(0)).isEqualTo(10);
  }

  /** A socket with its window full of held bytes would wait for a timer before it sends again. */
  @Test
  void theWindowLeavesRoomForTheInitialWindowBeyondWhatIsInFlight() {
    assertThat(new CongestionState(240, 120, 0, 20_000, 0).seedCwnd(240)).isEqualTo(250);
    assertThat(new CongestionState(240, 120, 0, 20_000, 0).seedCwnd(100)).isEqualTo(240);
    assertThat(new CongestionState(1, 120, 4, 20_000, 0).seedCwnd(30)).isEqualTo(40);
  }

  @Test
  void valuesTheKernelNeverReportsAreRefusedWithTheirField() {
    assertThatThrownBy(() -> new CongestionState(0, 10, 0, 0, 0))
        .hasMessageContaining("congestion.cwnd");
    assertThatThrownBy(() -> new CongestionState(10, 10, 0, 0, -1))
        .hasMessageContaining("congestion.delivery_rate");
    assertThatThrownBy(() -> new CongestionState(10, 10, 0, -1, 0))
        .hasMessageContaining("congestion.rtt_us");
  }
}
