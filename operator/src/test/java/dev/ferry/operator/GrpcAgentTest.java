// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.SignedPlan;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class GrpcAgentTest {
  @Test
  void aMoveSignedAheadGoesWithTheFirstAttemptOnlyAndEachRetryIsSignedAnew() {
    MoveRequest signedAhead =
        MoveRequest.newBuilder()
            .setMigrationId("move-1")
            .setPlan(SignedPlan.newBuilder().setSignature(ByteString.copyFromUtf8("ahead")))
            .build();

    Supplier<MoveRequest> attempts = GrpcAgent.attempts(signedAhead);

    assertThat(attempts.get()).isSameAs(signedAhead);
    MoveRequest retry = attempts.get();
    assertThat(retry.hasPlan()).as("left to the client, which signs it with a new nonce").isFalse();
    assertThat(retry.getMigrationId()).isEqualTo("move-1");
    assertThat(attempts.get()).isEqualTo(retry);
  }
}
