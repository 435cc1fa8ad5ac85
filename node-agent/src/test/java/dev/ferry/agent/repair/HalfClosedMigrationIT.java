// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.SockDiag;
import dev.ferry.sys.TcpSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A connection moved in each half-closed state, brought there by real kernel TCP on both ends,
 * finishes its exchange on host B: every byte and each FIN arrive once, in order, and neither end
 * sends a reset. Host A's half is held where a FIN must stay unacknowledged (FIN_WAIT1, CLOSING,
 * LAST_ACK) by losing everything A sends, as a frozen node would.
 */
class HalfClosedMigrationIT {
  /** Server to client: more than a window, so that part of it is never sent before the move. */
  private static final int DOWNLOAD = 2 << 20;

  /** Client to server: small enough to sit whole in the server's receive queue. */
  private static final int UPLOAD = 8 * 1024;

  private static final long DOWN = 11;
  private static final long UP = 12;
  private static final int SECONDS = 60;

  @ParameterizedTest
  @EnumSource(Family.class)
  void closeWaitServerFinishesItsResponseOnTheTarget(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(16 * 1024);
      TcpSocket onA = lab.accept();
      long written = Peers.fill(onA, DOWN, 0, DOWNLOAD);
      upload(client, 0, UPLOAD);
      client.shutdownOutput(); // the request is whole: the client's FIN
      MigrationLab.awaitState(onA, SockDiag.TCP_CLOSE_WAIT);

      SocketState state = export(lab, onA, MovableState.CLOSE_WAIT);
      assertThat(state.recvQueue()).as("the request, unread at export").hasSize(UPLOAD);
      TcpSocket onB = restore(lab, state);

      CompletableFuture<byte[]> response = readToEnd(client);
      assertThat(readToEnd(onB))
          .as("the request, then EOF")
          .isEqualTo(Pattern.bytes(UP, 0, UPLOAD));
      run(() -> Peers.writeRest(onB, DOWN, written, DOWNLOAD));
      onB.shutdownOutput();

      assertWhole(response.get(SECONDS, TimeUnit.SECONDS), DOWN, DOWNLOAD);
      assertClosedWithoutReset(lab, client, onB);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void finWait2ServerReadsTheRestOfTheUploadOnTheTarget(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      CompletableFuture<byte[]> response = readToEnd(client);
      onA.writeFully(Pattern.bytes(DOWN, 0, UPLOAD));
      onA.shutdownOutput();
      assertWhole(response.get(SECONDS, TimeUnit.SECONDS), DOWN, UPLOAD);
      MigrationLab.awaitState(onA, SockDiag.TCP_FIN_WAIT2);
      upload(client, 0, UPLOAD / 2);
      lab.awaitUnreadOnA(UPLOAD / 2);

      SocketState state = export(lab, onA, MovableState.FIN_WAIT2);
      assertThat(state.recvQueue()).hasSize(UPLOAD / 2);
      TcpSocket onB = restore(lab, state);

      CompletableFuture<byte[]> request = serverReads(onB);
      upload(client, UPLOAD / 2, UPLOAD);
      client.shutdownOutput();
      assertThat(request.get(SECONDS, TimeUnit.SECONDS)).isEqualTo(Pattern.bytes(UP, 0, UPLOAD));
      assertClosedWithoutReset(lab, client, onB);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void finWait1ServerDeliversItsUnackedAndUnsentBytesAndFinFromTheTarget(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(16 * 1024);
      TcpSocket onA = lab.accept();
      lab.dropServerToClient();
      long written = Peers.fill(onA, DOWN, 0, DOWNLOAD);
      onA.shutdownOutput(); // behind bytes never sent: the FIN is unsent too
      MigrationLab.awaitState(onA, SockDiag.TCP_FIN_WAIT1);
      upload(client, 0, UPLOAD);
      lab.awaitUnreadOnA(UPLOAD);

      SocketState state = export(lab, onA, MovableState.FIN_WAIT1);
      assertThat(state.sendUnacked()).as("sent, lost, unacknowledged").isNotEmpty();
      assertThat(state.sendUnsent()).as("never sent").isNotEmpty();
      assertThat(state.sendUnacked().length + state.sendUnsent().length).isEqualTo((int) written);
      TcpSocket onB = restore(lab, state);

      CompletableFuture<byte[]> response = readToEnd(client);
      assertWhole(response.get(SECONDS, TimeUnit.SECONDS), DOWN, (int) written);
      client.shutdownOutput();
      assertThat(readToEnd(onB)).isEqualTo(Pattern.bytes(UP, 0, UPLOAD));
      assertClosedWithoutReset(lab, client, onB);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void lastAckServerDeliversItsResponseAndFinFromTheTarget(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(16 * 1024);
      TcpSocket onA = lab.accept();
      upload(client, 0, UPLOAD);
      client.shutdownOutput();
      MigrationLab.awaitState(onA, SockDiag.TCP_CLOSE_WAIT);
      lab.dropServerToClient();
      long written = Peers.fill(onA, DOWN, 0, DOWNLOAD);
      onA.shutdownOutput();
      MigrationLab.awaitState(onA, SockDiag.TCP_LAST_ACK);

      SocketState state = export(lab, onA, MovableState.LAST_ACK);
      assertThat(state.sendUnsent()).isNotEmpty();
      assertThat(state.recvQueue()).hasSize(UPLOAD);
      TcpSocket onB = restore(lab, state);

      CompletableFuture<byte[]> response = readToEnd(client);
      assertThat(readToEnd(onB)).isEqualTo(Pattern.bytes(UP, 0, UPLOAD));
      assertWhole(response.get(SECONDS, TimeUnit.SECONDS), DOWN, (int) written);
      assertClosedWithoutReset(lab, client, onB);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void closingServerFinishesTheSimultaneousCloseOnTheTarget(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(16 * 1024);
      TcpSocket onA = lab.accept();
      lab.dropServerToClient();
      long written = Peers.fill(onA, DOWN, 0, DOWNLOAD);
      onA.shutdownOutput();
      // The client closes too without having seen A's FIN: both FINs cross.
      upload(client, 0, UPLOAD);
      client.shutdownOutput();
      MigrationLab.awaitState(onA, SockDiag.TCP_CLOSING);

      SocketState state = export(lab, onA, MovableState.CLOSING);
      assertThat(state.sendUnsent()).isNotEmpty();
      assertThat(state.recvQueue()).hasSize(UPLOAD);
      TcpSocket onB = restore(lab, state);

      CompletableFuture<byte[]> response = readToEnd(client);
      assertThat(readToEnd(onB)).isEqualTo(Pattern.bytes(UP, 0, UPLOAD));
      assertWhole(response.get(SECONDS, TimeUnit.SECONDS), DOWN, (int) written);
      assertClosedWithoutReset(lab, client, onB);
    }
  }

  /** Freezes A and exports its socket, which must be in {@code expected}. */
  private static SocketState export(MigrationLab lab, TcpSocket onA, MovableState expected)
      throws IOException {
    lab.freezeA();
    SocketState state = lab.exportAll(List.of(onA)).get(0);
    assertThat(state.tcpState()).isEqualTo(expected);
    return state;
  }

  /** Ships the state as agents do, moves the address and resumes the socket on B. */
  private static TcpSocket restore(MigrationLab lab, SocketState state) throws Exception {
    SocketState shipped = SocketStateCodec.decode(SocketStateCodec.encode(state));
    lab.moveAddressToB();
    return lab.restoreAllOnB(List.of(shipped)).get(0);
  }

  /** Each end has seen the other's FIN and its own acknowledged, and no reset was sent. */
  private static void assertClosedWithoutReset(
      MigrationLab lab, SocketChannel client, TcpSocket onB) throws Exception {
    // A socket whose exchange is over is CLOSE, whichever end keeps the TIME_WAIT.
    MigrationLab.awaitState(onB, SockDiag.TCP_CLOSE);
    assertThat(client.read(ByteBuffer.allocate(1)))
        .as("the client's stream stays ended")
        .isEqualTo(-1);
    // The client's end is over too: gone, or in TIME_WAIT if it closed first. A client that closed
    // second may wait a moment in LAST_ACK for B's ACK.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SECONDS);
    while (!Set.of("TIME-WAIT").containsAll(lab.clientStates()) && System.nanoTime() < deadline) {
      Peers.nap(5);
    }
    assertThat(lab.clientStates()).as("the client's connection states").isSubsetOf("TIME-WAIT");
    assertThat(MigrationLab.resetsSent(lab.client)).as("resets the client sent").isZero();
    assertThat(MigrationLab.resetsSent(lab.b)).as("resets host B sent").isZero();
  }

  private static void assertWhole(byte[] got, long seed, int length) {
    assertThat(got.length).as("bytes received").isEqualTo(length);
    assertThat(Pattern.firstMismatch(seed, got)).as("first wrong byte").isEqualTo(-1);
  }

  private static void upload(SocketChannel client, int from, int to) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(Pattern.bytes(UP, from, to - from));
    run(
        () -> {
          while (buf.hasRemaining()) {
            client.write(buf);
          }
        });
  }

  /** The client's read to end of stream; a reset fails it. */
  private static CompletableFuture<byte[]> readToEnd(SocketChannel client) {
    return CompletableFuture.supplyAsync(
        () -> {
          ByteArrayOutputStream out = new ByteArrayOutputStream();
          try {
            Peers.readToEnd(client, out, false);
          } catch (IOException e) {
            throw new CompletionException("client read failed after " + out.size() + " bytes", e);
          }
          return out.toByteArray();
        });
  }

  /** The server's read to end of stream, bounded. */
  private static byte[] readToEnd(TcpSocket server) throws Exception {
    return serverReads(server).get(SECONDS, TimeUnit.SECONDS);
  }

  private static CompletableFuture<byte[]> serverReads(TcpSocket server) {
    return Peers.readsToEnd(server);
  }

  private interface Step {
    void run() throws IOException;
  }

  /** A blocking step, bounded: a peer that stops reading fails the test instead of hanging it. */
  private static void run(Step step) throws IOException {
    try {
      CompletableFuture.runAsync(
              () -> {
                try {
                  step.run();
                } catch (IOException e) {
                  throw new CompletionException(e);
                }
              })
          .get(SECONDS, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IOException("step did not finish within " + SECONDS + " s", e);
    }
  }
}
