// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

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

  /**
   * As a restarted agent finds a point it stopped at, when the operator retries the Move: passed.
   * For /oom too (filling this JVM's heap is the fault suite's to show, FaultMatrixIT).
   */
  @ParameterizedTest
  @CsvSource({
    "source-after-freeze, source-after-freeze, m-1.source-after-freeze",
    "target-after-commit/oom, target-after-commit, m-1.target-after-commit-oom"
  })
  void aPointAMigrationReachedBeforeIsPassedTheSecondTime(
      String requested, String point, String noted, @TempDir Path dir) throws Exception {
    Files.createDirectories(dir.resolve("reached"));
    Files.createFile(dir.resolve("reached").resolve(noted));
    new FaultPoints(true, dir.resolve("reached")).reach(requested, point, "m-1");
  }
}
