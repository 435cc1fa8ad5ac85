// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The content the Python streamer's WebSocket stream and download carry (examples/README.md), made
 * again here to check what a client received: SHA-256(name || u64 k) for k = 0, 1, 2, …, one
 * 32-byte block after another.
 */
public final class StreamContent {
  private static final int BLOCK = 32;
  private static final int CHUNK = 1 << 20; // a multiple of BLOCK

  private StreamContent() {}

  /**
   * The first offset at which {@code file} differs from the first {@code length} bytes of the
   * content named {@code name}, or -1 if it holds exactly those bytes. A file cut short, or longer,
   * differs where the shorter of the two ends.
   */
  public static long firstDifference(Path file, String name, long length) throws IOException {
    MessageDigest sha256 = sha256();
    byte[] seed = name.getBytes(StandardCharsets.UTF_8);
    byte[] got = new byte[CHUNK];
    byte[] want = new byte[CHUNK];
    long offset = 0;
    try (InputStream in = Files.newInputStream(file)) {
      while (true) {
        int n = in.readNBytes(got, 0, CHUNK);
        int expected = (int) Math.min(CHUNK, length - offset);
        for (int b = 0; b < expected; b += BLOCK) {
          sha256.update(seed);
          sha256.update(ByteBuffer.allocate(8).putLong((offset + b) / BLOCK).array());
          byte[] block = sha256.digest();
          System.arraycopy(block, 0, want, b, Math.min(BLOCK, expected - b));
        }
        for (int i = 0; i < Math.min(n, expected); i++) {
          if (got[i] != want[i]) {
            return offset + i;
          }
        }
        if (n != expected) {
          return offset + Math.min(n, expected);
        }
        offset += n;
        if (offset == length) {
          return in.read() < 0 ? -1 : length;
        }
      }
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }
}
