// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class LeaderElectionTest {
  private static Duration s(long seconds) {
    return Duration.ofSeconds(seconds);
  }

  @Test
  void kubernetesDefaultsAndLongerOnesForABusyNodeAreAccepted() {
    assertThatCode(() -> LeaderElection.checkTimings(s(15), s(10), s(2)))
        .doesNotThrowAnyException();
    assertThatCode(() -> LeaderElection.checkTimings(s(60), s(40), s(5)))
        .doesNotThrowAnyException();
  }

  @Test
  void aRenewDeadlineNotShorterThanTheLeaseIsRefusedNamingBothSettings() {
    assertThatThrownBy(() -> LeaderElection.checkTimings(s(15), s(15), s(2)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("FERRY_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE")
        .hasMessageContaining("lease-duration PT15S")
        .hasMessageContaining("make renew-deadline shorter");
  }

  @Test
  void aRetryPeriodNotShorterThanTheRenewDeadlineIsRefused() {
    assertThatThrownBy(() -> LeaderElection.checkTimings(s(15), s(10), s(10)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("FERRY_OPERATOR_LEADER_ELECTION_RETRY_PERIOD")
        .hasMessageContaining("renew-deadline PT10S");
  }

  @Test
  void aZeroRetryPeriodIsRefused() {
    assertThatThrownBy(() -> LeaderElection.checkTimings(s(15), s(10), Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("retry-period")
        .hasMessageContaining("positive");
  }
}
