// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.migration.TargetCannotSay;
import dev.ferry.agent.migration.WrongPhase;
import io.grpc.Status;
import org.junit.jupiter.api.Test;

/** The gRPC status each refusal reaches its caller with, which decides whether it calls again. */
class AgentApiStatusTest {
  @Test
  void aTargetThatCannotSayYetIsUnavailableWhichTheOperatorCallsAgainOn() {
    Status s = AgentApi.statusOf(new TargetCannotSay("the target's agent is starting again"));
    assertThat(s.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(s.getDescription()).isEqualTo("the target's agent is starting again");
  }

  @Test
  void aCallThatDoesNotFitThePhaseIsAFailedPreconditionWhichWouldComeAgain() {
    assertThat(AgentApi.statusOf(new WrongPhase("staged already")).getCode())
        .isEqualTo(Status.Code.FAILED_PRECONDITION);
  }
}
