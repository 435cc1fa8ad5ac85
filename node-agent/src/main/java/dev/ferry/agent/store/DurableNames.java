// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.stream.Stream;

/**
 * Names written durably into one private directory (0700): an empty 0600 file each, whose name is
 * the record.
 */
final class DurableNames {
  private final Path dir;

  DurableNames(Path dir) throws IOException {
    this.dir = SavedStates.privateDirectory(dir);
  }

  /** Durable (file and directory synced) when this returns. */
  void write(String name) {
    Path f = dir.resolve(SavedStates.checkId(name));
    try {
      if (!Files.exists(f)) {
        Files.createFile(
            f, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      }
      try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
        ch.force(true);
      }
      // The file's name is the record: the directory entry must reach the disk too.
      try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
        d.force(true);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          "writing the record of " + name + " in " + dir + " failed: " + e.getMessage(), e);
    }
  }

  boolean exists(String name) {
    return Files.exists(dir.resolve(name));
  }

  /** Drops the records older than {@code age}. */
  void expire(Duration age) {
    Instant before = Instant.now().minus(age);
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.toList()) {
        FileTime t = Files.getLastModifiedTime(f);
        if (t.toInstant().isBefore(before)) {
          Files.deleteIfExists(f);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("expiring the records in " + dir + " failed", e);
    }
  }
}
