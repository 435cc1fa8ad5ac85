// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.TcpInfo;
import dev.ferry.sys.TcpSocket;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * One connection moved from host A to host B with the client on real kernel TCP throughout:
 * whatever the queues held, the peer sees every byte once, in order, and no reset.
 */
class RepairMigrationIT {
  private static final int DOWNLOAD = 4 << 20;
  private static final int UPLOAD = 4 << 20;

  @ParameterizedTest
  @EnumSource(Family.class)
  void clientReceivesEveryByteWhenMovedMidDownloadWithUnackedAndUnsentData(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(16 * 1024);
      TcpSocket onA = lab.accept();
      ByteArrayOutputStream received = new ByteArrayOutputStream();

      long written = Peers.fill(onA, 1, 0, DOWNLOAD);
      // Never more than was written: the send buffer may not have grown yet, and a read of bytes
      // that were never sent waits for ever.
      Peers.readExactly(client, (int) Math.min(128 * 1024, written), received);
      written = Peers.fill(onA, 1, written, DOWNLOAD);
      // Segments A sends from here on are lost, so they stay sent-but-unacknowledged.
      lab.dropServerToClient();
      assertThat(Peers.drainAvailable(client, received)).isPositive();
      Peers.nap(50);

      lab.freezeA();
      SocketState state = lab.exportAll(List.of(onA)).get(0);
      assertThat(state.sendUnacked()).as("sent but unacknowledged bytes at export").isNotEmpty();
      assertThat(state.sendUnsent()).as("never sent bytes at export").isNotEmpty();
      lab.moveAddressToB();
      TcpSocket onB = lab.restoreAllOnB(List.of(decoded(state))).get(0);

      CompletableFuture<Void> reader =
          CompletableFuture.runAsync(() -> readToEndUnchecked(client, received, true));
      Peers.writeRest(onB, 1, written, DOWNLOAD);
      onB.shutdownOutput();
      reader.get(60, TimeUnit.SECONDS);

      assertThat(received.size()).isEqualTo(DOWNLOAD);
      assertThat(Pattern.firstMismatch(1, received.toByteArray())).isEqualTo(-1);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void serverReceivesEveryByteWhenMovedMidUploadWithAFullReceiveQueue(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      AtomicLong sent = new AtomicLong();
      CompletableFuture<Void> uploader =
          CompletableFuture.runAsync(() -> uploadUnchecked(client, 2, UPLOAD, sent));
      awaitStalled(sent);

      lab.freezeA();
      SocketState state = lab.exportAll(List.of(onA)).get(0);
      assertThat(state.recvQueue()).as("received, unread bytes at export").isNotEmpty();
      lab.moveAddressToB();
      TcpSocket onB = lab.restoreAllOnB(List.of(decoded(state))).get(0);

      byte[] got = Peers.readToEnd(onB);
      uploader.get(60, TimeUnit.SECONDS);
      assertThat(got.length).isEqualTo(UPLOAD);
      assertThat(Pattern.firstMismatch(2, got)).isEqualTo(-1);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void bothDirectionsArriveWholeAndTheConnectionClosesCleanlyAfterTheMove(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(32 * 1024);
      TcpSocket onA = lab.accept();
      ByteArrayOutputStream downloaded = new ByteArrayOutputStream();
      AtomicLong sent = new AtomicLong();
      CompletableFuture<Void> uploader =
          CompletableFuture.runAsync(() -> uploadUnchecked(client, 4, UPLOAD, sent));
      long written = Peers.fill(onA, 3, 0, DOWNLOAD);
      awaitStalled(sent);

      lab.freezeA();
      SocketState state = lab.exportAll(List.of(onA)).get(0);
      assertThat(state.recvQueue()).isNotEmpty();
      assertThat(state.sendUnsent()).isNotEmpty();
      lab.moveAddressToB();
      TcpSocket onB = lab.restoreAllOnB(List.of(decoded(state))).get(0);

      CompletableFuture<byte[]> serverReads =
          CompletableFuture.supplyAsync(() -> readUnchecked(onB));
      CompletableFuture<Void> clientReads =
          CompletableFuture.runAsync(() -> readToEndUnchecked(client, downloaded, false));
      Peers.writeRest(onB, 3, written, DOWNLOAD);
      uploader.get(60, TimeUnit.SECONDS); // the client sends FIN after its upload
      onB.shutdownOutput(); // and the server answers with its own FIN
      byte[] uploaded = serverReads.get(60, TimeUnit.SECONDS);
      clientReads.get(60, TimeUnit.SECONDS); // ends at FIN; a reset would throw here

      assertThat(uploaded.length).isEqualTo(UPLOAD);
      assertThat(Pattern.firstMismatch(4, uploaded)).isEqualTo(-1);
      assertThat(downloaded.size()).isEqualTo(DOWNLOAD);
      assertThat(Pattern.firstMismatch(3, downloaded.toByteArray())).isEqualTo(-1);
      assertThat(client.read(ByteBuffer.allocate(1))).as("client sees end of stream").isEqualTo(-1);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void restoredSocketKeepsMssWindowScaleSackAndTimestamps(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      onA.writeFully("before\n".getBytes(StandardCharsets.US_ASCII));
      Peers.readExactly(client, 7, new ByteArrayOutputStream());
      TcpInfo before = onA.info();
      assertThat(before.timestamps() && before.sack() && before.windowScaling())
          .as("the kernel negotiated timestamps, SACK and window scaling: %s", before)
          .isTrue();

      TcpSocket onB = lab.migrate(onA);
      onB.writeFully("after\n".getBytes(StandardCharsets.US_ASCII));
      Peers.readExactly(client, 6, new ByteArrayOutputStream());
      TcpInfo after = onB.info();

      assertThat(after.options()).isEqualTo(before.options());
      assertThat(after.sndWscale()).isEqualTo(before.sndWscale());
      assertThat(after.rcvWscale()).isEqualTo(before.rcvWscale());
      assertThat(after.sndMss())
          .as("MSS of the segments the server sends")
          .isEqualTo(before.sndMss());
      // tcpi_advmss is not compared: a passive socket subtracts the timestamp option from it,
      // a repaired one cannot, and it only rounds the receive window.
      assertThat(after.stateName()).isEqualTo("ESTABLISHED");
      String ss =
          lab.b.run("ss", "-tinH", "state", "established", "sport", "= :" + MigrationLab.PORT);
      // An independent reading through sock_diag. (This iproute2 prints no ts/sack flags even
      // for fresh connections on this kernel; TCP_INFO above covers those.)
      assertThat(ss)
          .contains("wscale:" + before.sndWscale() + "," + before.rcvWscale())
          .contains(" mss:" + before.sndMss() + " ");
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void restoreWhereTheConnectionStillExistsWaitsForItsOldSocketToGo(Family family)
      throws Exception {
    // A source rolling back rebuilds a connection whose application was told a moment before
    // that it left, and may still hold its descriptor of the original (FaultMatrixIT saw it).
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket original = lab.accept();
      lab.freezeA();
      SocketState state = new SocketExporter().export(original); // still open, in repair mode

      assertThatThrownBy(() -> new SocketRestorer().restore(state, lab.aNs))
          .isInstanceOf(ConnectionStillThere.class)
          .hasMessageContaining("failed to connect")
          .hasMessageContaining("this connection still exists in netns " + lab.a.netns());
      CompletableFuture<RestoredSocket> rebuilt =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return new SocketRestorer().restore(state, lab.aNs, Duration.ofSeconds(30));
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });
      Thread.sleep(200);
      assertThat(rebuilt).as("waiting while the original is open").isNotDone();
      original.close(); // in repair mode: silent, as the application's close is

      TcpSocket live = lab.track(rebuilt.get(30, TimeUnit.SECONDS).resume());
      lab.bed.plug(lab.a);
      live.writeFully("rebuilt\n".getBytes(StandardCharsets.US_ASCII));
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      Peers.readExactly(client, 8, got);
      assertThat(got.toString(StandardCharsets.US_ASCII)).isEqualTo("rebuilt\n");
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void restoreWhereTheAddressIsMissingFailsClearlyAndLeavesNoSocket(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      lab.freezeA();
      SocketState state = lab.exportAll(List.of(onA)).get(0);
      Set<String> socketsBefore = openSockets();

      assertThatThrownBy(() -> new SocketRestorer().restore(state, lab.bNs))
          .isInstanceOf(RestoreException.class)
          .hasMessageContaining("failed to bind")
          .hasMessageContaining("EADDRNOTAVAIL")
          .hasMessageContaining("is not on any interface in netns " + lab.b.netns());
      assertThat(openSockets()).as("sockets this process holds").isSubsetOf(socketsBefore);
      assertThat(lab.b.run("ss", "-tanH")).doesNotContain(":" + MigrationLab.PORT);

      // Nothing was lost: once the address is there, the same state restores and works.
      lab.moveAddressToB();
      TcpSocket onB = lab.restoreAllOnB(List.of(state)).get(0);
      onB.writeFully("still here\n".getBytes(StandardCharsets.US_ASCII));
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      Peers.readExactly(client, 11, got);
      assertThat(got.toString(StandardCharsets.US_ASCII)).isEqualTo("still here\n");
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void restoresBesideTheTargetApplicationListeningOnTheSamePort(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      lab.freezeA();
      SocketState state = lab.exportAll(List.of(onA)).get(0);
      lab.moveAddressToB();
      try (TcpSocket targetApp = lab.bNs.call(() -> TcpSocket.open(lab.service.getAddress()))) {
        targetApp.setReuseAddress();
        targetApp.bind(lab.service);
        targetApp.listen(16);

        TcpSocket onB = lab.restoreAllOnB(List.of(state)).get(0);
        onB.writeFully("moved\n".getBytes(StandardCharsets.US_ASCII));
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        Peers.readExactly(client, 6, got);
        assertThat(got.toString(StandardCharsets.US_ASCII)).isEqualTo("moved\n");
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void applicationCanListenAgainAfterARestoredConnectionEndsInTimeWait(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onB = lab.migrate(lab.accept());
      onB.close(); // the server closes first, so its side lingers in TIME_WAIT
      assertThat(client.read(ByteBuffer.allocate(1))).isEqualTo(-1);
      client.close();
      Peers.nap(50);
      assertThat(lab.b.run("ss", "-tanH", "state", "time-wait")).contains(":" + MigrationLab.PORT);

      try (TcpSocket listener = lab.bNs.call(() -> TcpSocket.open(lab.service.getAddress()))) {
        listener.setReuseAddress();
        listener.bind(lab.service);
        listener.listen(1);
      }
    }
  }

  private static SocketState decoded(SocketState state) throws Exception {
    return SocketStateCodec.decode(SocketStateCodec.encode(state));
  }

  /** Waits until an uploader has stopped making progress: every buffer on the way is full. */
  private static void awaitStalled(AtomicLong progress) {
    long last = -1;
    for (int i = 0; i < 200; i++) {
      Peers.nap(50);
      long now = progress.get();
      if (now > 0 && now == last) {
        return;
      }
      last = now;
    }
    throw new AssertionError("the upload never stalled; sent " + progress.get());
  }

  private static void uploadUnchecked(SocketChannel ch, long seed, int total, AtomicLong sent) {
    try {
      for (long pos = 0; pos < total; ) {
        ByteBuffer chunk =
            ByteBuffer.wrap(Pattern.bytes(seed, pos, (int) Math.min(16384, total - pos)));
        while (chunk.hasRemaining()) {
          pos += ch.write(chunk);
          sent.set(pos);
        }
      }
      ch.shutdownOutput();
    } catch (Exception e) {
      throw new IllegalStateException("upload failed after " + sent.get() + " bytes", e);
    }
  }

  private static void readToEndUnchecked(
      SocketChannel ch, ByteArrayOutputStream into, boolean slowly) {
    try {
      Peers.readToEnd(ch, into, slowly);
    } catch (Exception e) {
      throw new IllegalStateException("client read failed after " + into.size() + " bytes", e);
    }
  }

  private static byte[] readUnchecked(TcpSocket s) {
    try {
      return Peers.readToEnd(s);
    } catch (Exception e) {
      throw new IllegalStateException("server read failed", e);
    }
  }

  /** The sockets this process holds, as "socket:[inode]" (other threads may close some). */
  private static Set<String> openSockets() throws Exception {
    Set<String> out = new HashSet<>();
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      for (Path fd : fds.toList()) {
        try {
          String target = Files.readSymbolicLink(fd).toString();
          if (target.startsWith("socket:")) {
            out.add(target);
          }
        } catch (java.io.IOException closedMeanwhile) {
          // Listing and reading race with other threads; a vanished fd is not ours to count.
        }
      }
    }
    return out;
  }
}
