// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which fault names a move may carry: the fault suite's, and nothing else. */
class FaultPointsTest {
  @Test
  void everyPointMayCrashOrStallTheSideThatReachesIt() {
    for (String p : FaultPoints.POINTS) {
      assertThat(FaultPoints.check(p)).isEqualTo(p);
      assertThat(FaultPoints.check(p + "/stall")).isEqualTo(p + "/stall");
      assertThat(FaultPoints.check(p + "/oom")).isEqualTo(p + "/oom");
    }
    assertThat(FaultPoints.check("source-stalls-after-export")).isNotEmpty();
    assertThat(FaultPoints.check("")).isEmpty();
  }

  @Test
  void anUnknownPointIsRefusedNamingTheKnownOnes() {
    assertThatThrownBy(() -> FaultPoints.check("source-after-lunch/stall"))
        .isInstanceOf(BadRequest.class)
        .hasMessageContaining("'source-after-lunch/stall' is none of")
        .hasMessageContaining("source-after-freeze")
        .hasMessageContaining("(each may end in /stall or /oom)");
    assertThatThrownBy(() -> FaultPoints.check("source-stalls-after-export/stall"))
        .isInstanceOf(BadRequest.class);
  }

  @Test
  void aDisabledAgentIgnoresEveryPoint(@TempDir Path dir) {
    // A crash here would end the test JVM: an agent without the setting never acts on a point.
    new FaultPoints(false, dir).reach("source-after-freeze", "source-after-freeze", "m-1");
    assertThat(dir).isEmptyDirectory();
  }

  @Test
  void aPointAMigrationReachedBeforeIsPassedTheSecondTime(@TempDir Path dir) throws Exception {
    // As a restarted agent finds it, when the operator retries the Move that stopped it.
    Files.createDirectories(dir.resolve("reached"));
    Files.createFile(dir.resolve("reached").resolve("m-1.source-after-freeze"));
    new FaultPoints(true, dir.resolve("reached"))
        .reach("source-after-freeze", "source-after-freeze", "m-1");
  }

  @Test
  void aPointThatFilledTheHeapOnceIsPassedTheSecondTime(@TempDir Path dir) throws Exception {
    // Filling this JVM's heap is the fault suite's to show (FaultMatrixIT): here only that the
    // restarted agent, asked again, goes on instead.
    Files.createDirectories(dir.resolve("reached"));
    Files.createFile(dir.resolve("reached").resolve("m-1.target-after-commit-oom"));
    new FaultPoints(true, dir.resolve("reached"))
        .reach("target-after-commit/oom", "target-after-commit", "m-1");
  }
}
