// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.ferry.sys.UnixSocket;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Opening a session with an agent that is not well: the server hears why and is never stuck. */
class FerryAgentSessionTest {

  @Test
  void anAgentThatAcceptsButNeverAnswersIsReportedNotWaitedForForever(@TempDir Path dir)
      throws Exception {
    Path path = dir.resolve("handoff.sock");
    try (UnixSocket mute = UnixSocket.listen(path, 4)) {
      assertTimeoutPreemptively(
          Duration.ofSeconds(20),
          () ->
              assertThatThrownBy(() -> FerryAgent.connect(path, "test-server"))
                  .isInstanceOf(IOException.class)
                  .hasMessageContaining("did not answer HELLO"));
    }
  }

  @Test
  void noAgentAtThePathNamesTheMount(@TempDir Path dir) {
    assertThatThrownBy(() -> FerryAgent.connect(dir.resolve("none.sock"), "test-server"))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("is the agent's handoff socket mounted into this pod?");
  }
}
