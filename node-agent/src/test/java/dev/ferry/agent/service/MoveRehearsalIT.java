// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The rehearsal an agent runs at start moves real loopback connections in repair mode (root): each
 * one's bytes arrive whole, both ways, across the export, the save and the restore, and no state
 * stays on disk.
 */
class MoveRehearsalIT {
  @TempDir Path dir;

  @Test
  void movesLoopbackConnectionsIntactAndLeavesNoStateBehind() throws Exception {
    Path scratch = dir.resolve("rehearsal");

    MoveRehearsal.Result r = MoveRehearsal.run(5, scratch);

    assertThat(r.moves()).isEqualTo(5);
    // Per move: 3,000 + i % 97 bytes from the client, 5,000 + i % 89 from the server before the
    // move and 1,000 after it, each compared byte for byte.
    long expected = 0;
    for (int i = 0; i < 5; i++) {
      expected += 3_000 + i % 97 + 5_000 + i % 89 + 1_000;
    }
    assertThat(r.bytesChecked()).isEqualTo(expected);
    assertThat(scratch).doesNotExist();
    assertThat(Files.list(dir)).isEmpty();
  }
}
