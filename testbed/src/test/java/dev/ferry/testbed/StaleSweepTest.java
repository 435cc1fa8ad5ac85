// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Root: what a killed test left behind goes when the next testbed is made, and nothing else. */
class StaleSweepTest {

  @Test
  void theNamespacesAndPinsOfAGoneProcessGoWithTheNextTestbedAndALiveOnesStay() throws Exception {
    long gone = goneProcess();
    String staleNs = "fy" + gone + "-1-h";
    Path stalePins = Testbed.mountBpfFs().resolve("fy" + gone + "-1-a");
    Path livePins =
        Testbed.mountBpfFs().resolve("fy" + ProcessHandle.current().pid() + "-999999-a");
    try {
      Shell.run("ip", "netns", "add", staleNs);
      Files.createDirectories(stalePins);
      Files.createDirectories(livePins);

      try (Testbed bed = Testbed.create()) {
        assertThat(Path.of("/run/netns", staleNs)).as("a gone test's namespace").doesNotExist();
        assertThat(stalePins).as("a gone test's pins").doesNotExist();
        assertThat(livePins).as("a running test's pins").exists();
      }
    } finally {
      Shell.attempt(List.of("ip", "netns", "del", staleNs));
      Shell.attempt(List.of("rm", "-rf", stalePins.toString(), livePins.toString()));
    }
  }

  /** The pid of a process that has ended and been reaped. */
  private static long goneProcess() throws Exception {
    Process p = new ProcessBuilder("true").start();
    p.waitFor();
    long pid = p.pid();
    assertThat(ProcessHandle.of(pid)).as("process " + pid + " is gone").isEmpty();
    return pid;
  }
}
