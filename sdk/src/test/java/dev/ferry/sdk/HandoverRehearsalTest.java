// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class HandoverRehearsalTest {
  @Test
  void theRehearsalLeavesNoDescriptorOpen() throws IOException {
    HandoverRehearsal.run(); // the JVM's own first-use descriptors (the native library) come first
    long before = openDescriptors();

    for (int i = 0; i < 20; i++) {
      HandoverRehearsal.run();
    }

    // Each run opens a socket pair and receives a third descriptor: 20 to 60 more if any stayed
    // open. (A little slack for what another thread of the test JVM may open meanwhile.)
    assertThat(openDescriptors()).isLessThan(before + 10);
  }

  private static long openDescriptors() throws IOException {
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }
}
