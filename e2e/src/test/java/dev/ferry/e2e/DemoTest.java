// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The demo prints a request's status as kubectl would, the way helm/README.md shows it. */
class DemoTest {
  @Test
  void theStatusIsLaidOutAsKubectlLaysItOut() {
    assertThat(
            Demo.kubectlTable(
                List.of("NAME", "PHASE", "SOURCE", "TARGET", "MIGRATED", "TOTAL", "PAUSE", "AGE"),
                List.of("move-pod-a", "Completed", "pod-a", "pod-b", "12", "12", "46.1", "20s")))
        .isEqualTo(
            """
            NAME         PHASE       SOURCE   TARGET   MIGRATED   TOTAL   PAUSE   AGE
            move-pod-a   Completed   pod-a    pod-b    12         12      46.1    20s
            """);
  }
}
