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
 * The commit point of each migration that arrives on this node: one small durable file, written
 * before any of its sockets resumes here. Every path obeys it. Before it exists, a failure rolls
 * the migration back to the source, which still holds every state. Once it exists, nothing is
 * rebuilt on the source: the target retries forward, or closes a connection and says so.
 *
 * <p>The target writes it only on a COMMIT that arrives on the source's live stream, so a source
 * that restarted (its stream gone) asks here to learn, once and for all, which side won.
 */
public final class CommitRecords {
  private final Path dir;

  public CommitRecords(Path stateDir) throws IOException {
    this.dir = SavedStates.privateDirectory(stateDir.resolve("commits"));
  }

  /** Writes the record of {@code id}; durable (file and directory synced) when this returns. */
  public void write(String id) {
    Path f = dir.resolve(SavedStates.checkId(id));
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
          "writing the commit record of " + id + " failed: " + e.getMessage(), e);
    }
  }

  public boolean exists(String id) {
    return Files.exists(dir.resolve(id));
  }

  /**
   * Drops records older than {@code age}: by then every source that could ask has let go of its
   * states (its hold ended long before).
   */
  public void expire(Duration age) {
    Instant before = Instant.now().minus(age);
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.toList()) {
        FileTime t = Files.getLastModifiedTime(f);
        if (t.toInstant().isBefore(before)) {
          Files.deleteIfExists(f);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("expiring commit records in " + dir + " failed", e);
    }
  }
}
