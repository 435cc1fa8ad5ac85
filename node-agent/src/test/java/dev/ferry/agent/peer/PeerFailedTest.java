// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.peer;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import org.junit.jupiter.api.Test;

/**
 * What a source says when its call on the target fails: the target's own words when it answered (it
 * could not do it), and whether it answered at all (SourceMove tells "could not commit" from "the
 * answer was lost" by it).
 */
class PeerFailedTest {
  private static final String TARGET = "198.18.0.3:9443";

  @Test
  void aTargetThatAnsweredWithAnErrorIsQuotedWithoutGrpcsWrapping() {
    Peers.PeerFailed e =
        new Peers.PeerFailed(
            TARGET,
            Status.INTERNAL
                .withDescription("writing the commit record of m-1 failed: No space left on device")
                .asRuntimeException());

    assertThat(e.targetAnswered()).isTrue();
    assertThat(e.getMessage())
        .isEqualTo(
            "the call to the target's agent 198.18.0.3:9443 failed: INTERNAL: writing the commit"
                + " record of m-1 failed: No space left on device")
        .doesNotContain("Status{");
  }

  @Test
  void aBrokenOrSilentCallIsNotAnAnswer() {
    assertThat(
            new Peers.PeerFailed(TARGET, Status.UNAVAILABLE.asRuntimeException()).targetAnswered())
        .isFalse();
    assertThat(new Peers.PeerFailed(TARGET, Status.CANCELLED.asRuntimeException()).targetAnswered())
        .isFalse();
    Peers.PeerFailed silent =
        new Peers.PeerFailed(TARGET, new IllegalStateException("no answer within the move's time"));
    assertThat(silent.targetAnswered()).isFalse();
    assertThat(silent.getMessage())
        .isEqualTo(
            "the call to the target's agent 198.18.0.3:9443 failed: no answer within the move's"
                + " time");
  }
}
