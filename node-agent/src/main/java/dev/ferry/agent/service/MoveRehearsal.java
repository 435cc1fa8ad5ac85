// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.move.Departure;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketExporter;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.store.SavedStates;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.TcpSocket;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Moves loopback connections within the agent's own network namespace when it starts, through the
 * source's and the target's own code: export in repair mode, the states saved and read back as a
 * source saves them, restore, resume; then checks every byte both ways. Nothing else sees them: the
 * sockets are the agent's own, on 127.0.0.1, and the saved states live in a scratch directory that
 * recovery never reads and that is removed afterwards.
 *
 * <p>Why: a node's agent moves connections rarely, and its first move ran that code cold. In {@code
 * make bench} (one stream) each agent's first move as a source held its client 80–98 ms, where warm
 * moves paused theirs 44–46 ms: much of the difference is the JVM loading, linking and interpreting
 * code for the first time while a client is held (export alone took 9–17 ms for one socket, against
 * 1–5 ms warm). A rehearsal at start pays that before any client is held.
 */
final class MoveRehearsal {
  private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
  private static final int TIMEOUT_MS = 2_000;

  /**
   * What a rehearsal did: the connections moved and the bytes checked on them.
   *
   * @param sample the last connection's state as its export left it, with an application state of 4
   *     KB: what {@link PeerRehearsal} sends (its socket is long closed)
   */
  record Result(int moves, long bytesChecked, Departure.Departed sample) {}

  private MoveRehearsal() {}

  /**
   * Moves {@code moves} loopback connections one after another.
   *
   * @param scratch a directory of the agent's own for the states, removed afterwards
   * @throws IOException if a step fails or a byte differs: the agent works as before, colder
   */
  static Result run(int moves, Path scratch) throws IOException {
    SocketExporter exporter = new SocketExporter();
    SocketRestorer restorer = new SocketRestorer();
    long checked = 0;
    Departure.Departed sample = null;
    try (TcpSocket listener = TcpSocket.open(LOOPBACK)) {
      listener.bind(new InetSocketAddress(LOOPBACK, 0));
      listener.listen(1);
      InetSocketAddress at = listener.localAddress();
      SavedStates saved = new SavedStates(scratch);
      for (int i = 0; i < moves; i++) {
        Moved m = moveOne(listener, at, exporter, restorer, saved, "rehearsal-" + i, i);
        checked += m.bytesChecked();
        sample = m.exported();
      }
    } finally {
      SavedStates.deleteTree(scratch);
    }
    return new Result(moves, checked, sample);
  }

  /**
   * One connection's rehearsal: the bytes checked, and its state as exported (4 KB of app state).
   */
  private record Moved(long bytesChecked, Departure.Departed exported) {}

  private static Moved moveOne(
      TcpSocket listener,
      InetSocketAddress at,
      SocketExporter exporter,
      SocketRestorer restorer,
      SavedStates saved,
      String id,
      int seed)
      throws IOException {
    byte[] fromClient = pattern(3_000 + seed % 97, seed);
    byte[] fromServer = pattern(5_000 + seed % 89, seed + 1);
    try (TcpSocket client = TcpSocket.open(LOOPBACK)) {
      client.connect(at);
      SocketState state;
      try (TcpSocket server = listener.accept()) {
        client.writeFully(fromClient); // left unread: the server's receive queue
        server.writeFully(fromServer);
        state = exporter.export(server);
      } // closed in repair mode: the client hears nothing
      Connection c = new Connection(state.local(), state.remote());
      saved.save(
          new SavedStates.Migration(id, "source", "", "", "", MoveAddressPlan.getDefaultInstance()),
          List.of(new Departure.Departed(c, state, new byte[0])));
      List<Departure.Departed> back = saved.load(id);
      saved.forget(id);
      if (back.size() != 1) {
        throw new IOException(id + ": saved 1 state, read back " + back.size());
      }
      try (RestoredSocket restored = restorer.restore(back.get(0).socket());
          TcpSocket moved = restored.resume()) {
        byte[] more = pattern(1_000, seed + 2);
        moved.writeFully(more);
        expect(moved, fromClient, id + ": what the client sent before the move");
        expect(client, concat(fromServer, more), id + ": what the server sent");
        return new Moved(
            fromClient.length + fromServer.length + more.length,
            new Departure.Departed(c, state, pattern(4_096, seed)));
      }
    }
  }

  private static void expect(TcpSocket from, byte[] wanted, String what) throws IOException {
    byte[] got = new byte[wanted.length];
    int off = 0;
    while (off < got.length) {
      if (!from.awaitReadable(TIMEOUT_MS)) {
        throw new IOException(what + ": " + off + " of " + got.length + " bytes came");
      }
      int n = from.read(got, off, got.length - off);
      if (n < 0) {
        throw new IOException(what + ": the stream ended after " + off + " bytes");
      }
      off += n;
    }
    if (!Arrays.equals(got, wanted)) {
      throw new IOException(what + ": the bytes differ");
    }
  }

  private static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (i * 31 + seed);
    }
    return b;
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
