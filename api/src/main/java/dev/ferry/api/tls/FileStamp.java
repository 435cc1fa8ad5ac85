// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.tls;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * What identifies the current content of some files without reading them: each file's inode,
 * modification time and size, following symbolic links. The kubelet updates a mounted Secret by
 * pointing a symbolic link at a new directory, so every file then has a new inode; a file written
 * in place changes its time or size.
 */
record FileStamp(List<Object> parts) {

  static FileStamp of(Path... files) {
    List<Object> parts = new ArrayList<>();
    for (Path f : files) {
      try {
        BasicFileAttributes a = Files.readAttributes(f, BasicFileAttributes.class);
        parts.add(Objects.requireNonNullElse(a.fileKey(), "no file key"));
        parts.add(a.lastModifiedTime());
        parts.add(a.size());
      } catch (IOException e) {
        // A file missing for a moment (being replaced): a stamp that matches no reading.
        parts.add(f + " unreadable: " + e.getClass().getSimpleName());
      }
    }
    return new FileStamp(List.copyOf(parts));
  }
}
