// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StreamContentTest {
  @TempDir Path dir;

  /** The content as examples/README.md defines it, one block at a time. */
  private static byte[] content(String name, int length) throws Exception {
    ByteBuffer out = ByteBuffer.allocate(length + 32);
    for (long k = 0; out.position() < length; k++) {
      MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
      sha256.update(name.getBytes(StandardCharsets.UTF_8));
      sha256.update(ByteBuffer.allocate(8).putLong(k).array());
      out.put(sha256.digest());
    }
    return Arrays.copyOf(out.array(), length);
  }

  @Test
  void aFileWithExactlyTheContentHasNoDifferenceAndAnyChangeIsFoundWhereItIs() throws Exception {
    int length = (3 << 20) + 17; // past a chunk, not a whole block
    byte[] bytes = content("n", length);
    Path file = Files.write(dir.resolve("got"), bytes);
    assertThat(StreamContent.firstDifference(file, "n", length)).isEqualTo(-1);
    assertThat(StreamContent.firstDifference(file, "m", length)).isEqualTo(0);

    bytes[(1 << 20) + 5] ^= 1;
    Files.write(file, bytes);
    assertThat(StreamContent.firstDifference(file, "n", length)).isEqualTo((1 << 20) + 5);

    bytes[(1 << 20) + 5] ^= 1;
    Files.write(file, Arrays.copyOf(bytes, length - 3));
    assertThat(StreamContent.firstDifference(file, "n", length))
        .as("cut short")
        .isEqualTo(length - 3);
    Files.write(file, Arrays.copyOf(bytes, length + 1));
    assertThat(StreamContent.firstDifference(file, "n", length)).as("too long").isEqualTo(length);
  }
}
