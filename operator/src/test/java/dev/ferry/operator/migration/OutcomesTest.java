// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.ConnectionDetail;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.Endpoint;
import dev.ferry.api.v1alpha1.MigrationStatus;
import org.junit.jupiter.api.Test;

/** Where each connection lives, from what the two agents say. */
class OutcomesTest {
  private static final ConnectionId ID =
      ConnectionId.newBuilder()
          .setLocal(endpoint(new byte[] {10, 0, 0, 100}, 8080))
          .setRemote(endpoint(new byte[] {10, 0, 0, 1}, 40000))
          .build();

  @Test
  void aTargetThatStartedAgainMidMoveDoesNotUndoTheSourcesRelease() {
    // The fault suite's case: the target crashed after resuming; the restarted one knows only
    // that the move was under way, the source that it released the connection to it.
    Outcomes o = new Outcomes();
    o.read(status(ConnectionPhase.RELEASED));
    o.read(status(ConnectionPhase.TRANSFERRED));

    assertThat(o.details()).extracting(ConnectionDetail::getOutcome).containsExactly("Migrated");
    assertThat(o.counts().getMigrated()).isEqualTo(1);
  }

  @Test
  void aLaterEndOverridesAnEarlierOne() {
    Outcomes o = new Outcomes();
    o.read(status(ConnectionPhase.TRANSFERRED));
    o.read(status(ConnectionPhase.ROLLED_BACK));

    assertThat(o.details()).extracting(ConnectionDetail::getOutcome).containsExactly("RolledBack");
  }

  private static Endpoint endpoint(byte[] ip, int port) {
    return Endpoint.newBuilder()
        .setIp(com.google.protobuf.ByteString.copyFrom(ip))
        .setPort(port)
        .build();
  }

  private static MigrationStatus status(ConnectionPhase phase) {
    return MigrationStatus.newBuilder()
        .addConnections(ConnectionStatus.newBuilder().setId(ID).setPhase(phase))
        .build();
  }
}
