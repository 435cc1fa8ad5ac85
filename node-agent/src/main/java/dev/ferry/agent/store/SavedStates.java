// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.store;

import dev.ferry.agent.migration.BadRequest;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.repair.InvalidSocketStateException;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.protocol.Connection;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The states of a source node's exported connections, on disk until the connection is live
 * somewhere: a socket read in repair mode and closed exists nowhere else, so an agent that restarts
 * must find it here. One directory per migration (mode 0700) holding two files (mode 0600): what
 * the migration is, and every state of it in one batch.
 *
 * <p>The batch is written once per migration, with one write and no fsync, before the sockets are
 * closed. That survives what it must: an agent process that dies leaves the page cache to the
 * kernel. A node that dies takes its held clients' path with it, and the target then has the only
 * copy anyway. The one fsync of a migration is the target's commit record ({@link CommitRecords}).
 *
 * <p>The files hold user data (socket queues and application state): they are removed when the
 * migration ends, however it ends. A record that cannot be read is set aside under {@code
 * set-aside/}, reported, and skipped: one bad file must not keep the agent, and every other hold on
 * the node, from starting.
 */
public final class SavedStates {
  private static final Pattern ID = Pattern.compile("[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?");
  private static final int MAGIC = 0x46534232; // "FSB2": a batch of states
  private static final String STATES = "states.bin";
  private static final String META = "migration.properties";
  private static final String COMMIT_SENT = "commit-sent";

  /** What the agent must remember of a migration besides its sockets. */
  public record Migration(
      String id,
      String role,
      String podNetns,
      String podUid,
      String targetAgent,
      MoveAddressPlan address) {}

  private final Path root;
  private final Path setAside;

  public SavedStates(Path root) throws IOException {
    this.root = privateDirectory(root.resolve("migrations"));
    this.setAside = root.resolve("set-aside");
  }

  public static String checkId(String id) {
    if (!ID.matcher(id).matches()) {
      throw new BadRequest(
          "migration_id must be a DNS-1123 name (lower-case letters, digits, '-', '.'; at most 253),"
              + " got '"
              + id
              + "'");
    }
    return id;
  }

  /**
   * Saves every state of migration {@code m} in one batch, replacing any earlier batch: the
   * connections still to keep. Written whole or not at all.
   */
  public void save(Migration m, List<Departure.Departed> states) {
    try {
      Path dir = privateDirectory(root.resolve(checkId(m.id())));
      Map<String, String> p = new LinkedHashMap<>();
      p.put("role", m.role());
      p.put("pod.netns", m.podNetns());
      p.put("pod.uid", m.podUid());
      p.put("target.agent", m.targetAgent());
      p.put("address.cidr", m.address().getCidr());
      p.put("address.interface", m.address().getInterface());
      p.put("address.host-interface", m.address().getSourceHostInterface());
      p.put("address.host-route", String.valueOf(m.address().getHostRoute()));
      p.put("address.announce", String.valueOf(m.address().getAnnounce()));
      byte[] meta = PropertiesText.encode(p);
      writeAtomically(dir.resolve(META), out -> out.write(meta));
      writeAtomically(
          dir.resolve(STATES),
          raw -> {
            DataOutputStream out = new DataOutputStream(raw);
            out.writeInt(MAGIC);
            out.writeInt(states.size());
            for (Departure.Departed d : states) {
              byte[] socket = SocketStateCodec.encode(d.socket());
              out.writeInt(socket.length);
              out.write(socket);
              out.writeLong(d.applicationState().length);
              out.write(d.applicationState());
              out.writeBoolean(d.appendsToPrecopy());
            }
            out.flush();
          });
    } catch (IOException e) {
      throw new UncheckedIOException("saving the states of migration " + m.id() + " failed", e);
    }
  }

  /**
   * Notes that the target may be told to commit {@code id}: a source agent that restarts then asks
   * the target before it rebuilds anything. No fsync: it must survive the agent, not the node.
   */
  public void commitMayHappen(String id) {
    try {
      Path f = root.resolve(checkId(id)).resolve(COMMIT_SENT);
      if (!Files.exists(f)) {
        Files.createFile(
            f, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("noting the commit of migration " + id + " failed", e);
    }
  }

  public boolean commitMayHaveHappened(String id) {
    return Files.exists(root.resolve(id).resolve(COMMIT_SENT));
  }

  /** Deletes a migration once nothing of it is left to keep. */
  public void forget(String migrationId) {
    try {
      deleteTree(root.resolve(migrationId));
    } catch (IOException e) {
      throw new UncheckedIOException("deleting migration " + migrationId + " failed", e);
    }
  }

  /** Deletes {@code dir} and everything under it; nothing if it is not there. */
  public static void deleteTree(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return;
    }
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  public List<String> migrations() throws IOException {
    try (Stream<Path> dirs = Files.list(root)) {
      return dirs.filter(Files::isDirectory).map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  /**
   * Whether any state of {@code id} was saved. A migration directory can exist without one: the
   * pre-copied application states are written there before the freeze, and an agent that stops
   * before the save (or in the middle of it) leaves them, or a temporary file, behind. Its sockets
   * were never closed, since that happens only once the save has returned: nothing of it needs
   * keeping.
   */
  public boolean anySaved(String id) {
    return Files.exists(root.resolve(id).resolve(META));
  }

  public Migration migration(String id) throws IOException {
    Properties p = new Properties();
    try (InputStream in = Files.newInputStream(root.resolve(id).resolve(META))) {
      p.load(in);
    } catch (IllegalArgumentException e) {
      throw new IOException(root.resolve(id).resolve(META) + ": " + e.getMessage(), e);
    }
    String role = p.getProperty("role", "");
    if (!role.equals("source")) {
      throw new IOException(root.resolve(id).resolve(META) + ": role '" + role + "' is unknown");
    }
    return new Migration(
        id,
        role,
        p.getProperty("pod.netns", ""),
        p.getProperty("pod.uid", ""),
        p.getProperty("target.agent", ""),
        MoveAddressPlan.newBuilder()
            .setCidr(p.getProperty("address.cidr", ""))
            .setInterface(p.getProperty("address.interface", ""))
            .setSourceHostInterface(p.getProperty("address.host-interface", ""))
            .setHostRoute(Boolean.parseBoolean(p.getProperty("address.host-route", "false")))
            .setAnnounce(Boolean.parseBoolean(p.getProperty("address.announce", "false")))
            .build());
  }

  /** Every connection saved for {@code id}; a file that cannot be read is named in the error. */
  public List<Departure.Departed> load(String id) throws IOException {
    Path f = root.resolve(id).resolve(STATES);
    List<Departure.Departed> out = new ArrayList<>();
    if (!Files.exists(f)) {
      return out;
    }
    try (DataInputStream in =
        new DataInputStream(new BufferedInputStream(Files.newInputStream(f)))) {
      if (in.readInt() != MAGIC) {
        throw new IOException(f + " is not a batch of saved connection states");
      }
      int count = in.readInt();
      if (count < 0) {
        throw new IOException(f + ": " + count + " connections is impossible");
      }
      for (int i = 0; i < count; i++) {
        int socketLength = in.readInt();
        if (socketLength < 0 || socketLength > 1 << 24) {
          throw new IOException(f + ": socket state length " + socketLength + " is impossible");
        }
        byte[] socket = in.readNBytes(socketLength);
        long appLength = in.readLong();
        if (appLength < 0 || appLength > Integer.MAX_VALUE - 8) {
          throw new IOException(f + ": application state length " + appLength + " is impossible");
        }
        byte[] app = in.readNBytes((int) appLength);
        if (socket.length != socketLength || app.length != appLength) {
          throw new IOException(f + " is cut short at connection " + i + " of " + count);
        }
        boolean appends = in.readBoolean();
        SocketState state = SocketStateCodec.decode(socket);
        Departure.Departed d =
            new Departure.Departed(
                new Connection(state.local(), state.remote()), state, app, appends);
        out.add(appends ? whole(id, d) : d);
      }
    } catch (EOFException e) {
      throw new IOException(f + " is cut short", e);
    } catch (InvalidSocketStateException e) {
      throw new IOException(f + ": " + e.getMessage(), e);
    }
    return out;
  }

  /**
   * Where the state a connection's application offered ahead of its freeze is kept as it arrives
   * (before the freeze, so never in the pause): the batch then holds only what changed since.
   */
  public PrecopyFile precopy(String id, Connection c) throws IOException {
    Path dir = privateDirectory(privateDirectory(root.resolve(checkId(id))).resolve("precopy"));
    return new PrecopyFile(dir.resolve(name(c)));
  }

  /** The whole state of {@code d}: its pre-copied bytes, then its own (the freeze's append). */
  public Departure.Departed whole(String id, Departure.Departed d) throws IOException {
    if (!d.appendsToPrecopy()) {
      return d;
    }
    Path f = root.resolve(id).resolve("precopy").resolve(name(d.connection()));
    long size = Files.size(f);
    long total = size + d.applicationState().length;
    if (total > Integer.MAX_VALUE - 8) {
      throw new IOException(f + ": a state of " + total + " bytes is more than one array holds");
    }
    byte[] out = new byte[(int) total];
    try (InputStream in = Files.newInputStream(f)) {
      if (in.readNBytes(out, 0, (int) size) != size) {
        throw new IOException(f + " is cut short");
      }
    }
    System.arraycopy(d.applicationState(), 0, out, (int) size, d.applicationState().length);
    return new Departure.Departed(d.connection(), d.socket(), out);
  }

  /**
   * One connection's pre-copied state on disk: a snapshot replaces it, appends extend it. Holds no
   * descriptor between writes: at 10,000 connections, a file held open for each one beside the
   * frozen sockets ran the agent out of descriptors.
   */
  public static final class PrecopyFile implements AutoCloseable {
    private final Path path;

    PrecopyFile(Path path) {
      this.path = path;
    }

    /** A snapshot begins: what was kept is void. */
    public synchronized void reset() throws IOException {
      Files.deleteIfExists(path);
      Files.createFile(
          path, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    }

    public synchronized void append(byte[] data) throws IOException {
      try (FileChannel ch =
          FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(data);
        while (b.hasRemaining()) {
          ch.write(b);
        }
      }
    }

    @Override
    public void close() {}
  }

  private static String name(Connection c) {
    return (c.local().getAddress().getHostAddress()
            + "_"
            + c.local().getPort()
            + "_"
            + c.remote().getAddress().getHostAddress()
            + "_"
            + c.remote().getPort())
        .replace(':', '.');
  }

  /**
   * Moves a migration that cannot be read out of the way, kept for a person to look at (still mode
   * 0600 in a 0700 directory), so that the agent starts without it.
   *
   * @return where it went
   */
  public Path setAside(String id) throws IOException {
    Path to = privateDirectory(setAside).resolve(id + "-" + Instant.now().toEpochMilli());
    Files.move(root.resolve(id), to, StandardCopyOption.ATOMIC_MOVE);
    return to;
  }

  /** A directory only the agent (root) may enter. */
  public static Path privateDirectory(Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    return dir;
  }

  private interface Writer {
    void write(OutputStream out) throws IOException;
  }

  private static void writeAtomically(Path target, Writer writer) throws IOException {
    Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
    Files.deleteIfExists(tmp);
    Files.createFile(
        tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE);
        OutputStream out =
            new java.io.BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16)) {
      writer.write(out);
    } catch (IOException | RuntimeException e) {
      // A full disk, most often: no half-written copy of user data stays behind.
      Files.deleteIfExists(tmp);
      throw e;
    }
    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}
