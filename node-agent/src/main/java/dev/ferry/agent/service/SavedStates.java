// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.move.Departure;
import dev.ferry.agent.repair.InvalidSocketStateException;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.protocol.Connection;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The states of exported (source) and received (target) connections, on disk until the connection
 * is live somewhere: a socket in repair mode exists nowhere else, so an agent that restarts must
 * find it here. One directory per migration; one file per connection, written whole or not at all.
 */
final class SavedStates {
  private static final Pattern ID = Pattern.compile("[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?");
  private static final int MAGIC = 0x46534331; // "FSC1"

  /** What the agent must remember of a migration besides its sockets. */
  record Migration(String id, String role, String podNetns, String podUid) {}

  private final Path root;

  SavedStates(Path root) throws IOException {
    this.root = Files.createDirectories(root.resolve("migrations"));
  }

  static String checkId(String id) {
    if (!ID.matcher(id).matches()) {
      throw new BadRequest(
          "migration_id must be a DNS-1123 name (lower-case letters, digits, '-', '.'; at most 253),"
              + " got '"
              + id
              + "'");
    }
    return id;
  }

  void begin(Migration m) {
    Properties p = new Properties();
    p.setProperty("role", m.role());
    p.setProperty("pod.netns", m.podNetns());
    p.setProperty("pod.uid", m.podUid());
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try {
      p.store(bytes, "ferry migration " + m.id());
      writeAtomically(dir(m.id()).resolve("migration.properties"), bytes.toByteArray());
    } catch (IOException e) {
      throw new UncheckedIOException("saving migration " + m.id() + " failed", e);
    }
  }

  /** Saves one departed connection; durable when this returns. */
  void save(String migrationId, Departure.Departed d) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(d.applicationState().length + 4096);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      byte[] socket = SocketStateCodec.encode(d.socket());
      out.writeInt(MAGIC);
      out.writeInt(socket.length);
      out.write(socket);
      out.writeLong(d.applicationState().length);
      out.write(d.applicationState());
      writeAtomically(file(migrationId, d.connection()), bytes.toByteArray());
    } catch (IOException e) {
      throw new UncheckedIOException(
          "saving the state of " + d.connection() + " in " + migrationId + " failed", e);
    }
  }

  void delete(String migrationId, Connection c) {
    try {
      Files.deleteIfExists(file(migrationId, c));
    } catch (IOException e) {
      throw new UncheckedIOException("deleting the state of " + c + " failed", e);
    }
  }

  /** Deletes a migration once nothing of it is left to keep. */
  void forget(String migrationId) {
    Path dir = root.resolve(migrationId);
    if (!Files.isDirectory(dir)) {
      return;
    }
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("deleting migration " + migrationId + " failed", e);
    }
  }

  List<String> migrations() throws IOException {
    try (Stream<Path> dirs = Files.list(root)) {
      return dirs.filter(Files::isDirectory).map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  Migration migration(String id) throws IOException {
    Properties p = new Properties();
    try (InputStream in = Files.newInputStream(root.resolve(id).resolve("migration.properties"))) {
      p.load(in);
    }
    return new Migration(
        id,
        p.getProperty("role", ""),
        p.getProperty("pod.netns", ""),
        p.getProperty("pod.uid", ""));
  }

  /** Every connection saved for {@code id}; a file that cannot be read is named in the error. */
  List<Departure.Departed> load(String id) throws IOException {
    List<Departure.Departed> out = new ArrayList<>();
    try (Stream<Path> files = Files.list(root.resolve(id))) {
      for (Path f : files.filter(p -> p.toString().endsWith(".conn")).sorted().toList()) {
        out.add(read(f));
      }
    }
    return out;
  }

  private static Departure.Departed read(Path f) throws IOException {
    try (DataInputStream in = new DataInputStream(Files.newInputStream(f))) {
      if (in.readInt() != MAGIC) {
        throw new IOException(f + " is not a saved connection state");
      }
      byte[] socket = in.readNBytes(in.readInt());
      long appLength = in.readLong();
      if (appLength < 0 || appLength > Integer.MAX_VALUE - 8) {
        throw new IOException(f + ": application state length " + appLength + " is impossible");
      }
      byte[] app = in.readNBytes((int) appLength);
      if (app.length != appLength) {
        throw new IOException(f + " is cut short");
      }
      SocketState state = SocketStateCodec.decode(socket);
      return new Departure.Departed(new Connection(state.local(), state.remote()), state, app);
    } catch (InvalidSocketStateException e) {
      throw new IOException(f + ": " + e.getMessage(), e);
    }
  }

  private Path dir(String id) throws IOException {
    return Files.createDirectories(root.resolve(checkId(id)));
  }

  private Path file(String id, Connection c) throws IOException {
    String name =
        (c.local().getAddress().getHostAddress()
                + "_"
                + c.local().getPort()
                + "_"
                + c.remote().getAddress().getHostAddress()
                + "_"
                + c.remote().getPort())
            .replace(':', '.');
    return dir(id).resolve(name + ".conn");
  }

  private static void writeAtomically(Path target, byte[] bytes) throws IOException {
    Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
    try (FileChannel ch =
        FileChannel.open(
            tmp,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      ByteBuffer buf = ByteBuffer.wrap(bytes);
      while (buf.hasRemaining()) {
        ch.write(buf);
      }
      ch.force(true);
    }
    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}
