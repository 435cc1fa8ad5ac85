// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.move.ConnectionTable;
import dev.ferry.agent.repair.MigrationLab;
import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.SockDiag;
import dev.ferry.sys.TcpSocket;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * What a move finds on a port, from the kernel's own tables: every connection in every state,
 * sorted into those it takes and those it must name as left behind.
 */
class InventoryIT {
  private static final long AWAIT_NANOS = 30_000_000_000L;

  @ParameterizedTest
  @EnumSource(Family.class)
  void everyConnectionOnThePortIsEitherTakenOrLeftBehindWithItsState(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel open = lab.connect(0);
      lab.accept();
      SocketChannel halfClosed = lab.connect(0);
      TcpSocket halfClosedOnA = lab.accept();
      halfClosed.shutdownOutput();
      MigrationLab.awaitState(halfClosedOnA, SockDiag.TCP_CLOSE_WAIT);
      // A exchange over, A closing first: A keeps its TIME_WAIT, which no one waits on.
      SocketChannel over = lab.connect(0);
      TcpSocket overOnA = lab.accept();
      int overPort = port(over);
      overOnA.shutdownOutput();
      CompletableFuture.runAsync(
              () -> {
                try {
                  while (over.read(ByteBuffer.allocate(64)) >= 0) {}
                  over.close();
                } catch (java.io.IOException e) {
                  throw new java.util.concurrent.CompletionException(e);
                }
              })
          .get(60, TimeUnit.SECONDS);
      MigrationLab.awaitState(overOnA, SockDiag.TCP_CLOSE);
      SocketChannel abandoned = lab.connect(0);
      TcpSocket abandonedOnA = lab.accept();
      // From here A's segments are lost: its SYN-ACK (the handshake stays SYN_RECV) and the FIN
      // of a socket its application closes (an orphan in FIN_WAIT1, held by no descriptor).
      lab.dropServerToClient();
      abandonedOnA.writeFully(new byte[1000]);
      abandonedOnA.close();
      SocketChannel connecting =
          lab.track(
              lab.clientNs.call(
                  () -> {
                    SocketChannel c = SocketChannel.open();
                    c.configureBlocking(false);
                    c.connect(lab.service);
                    return c;
                  }));

      Inventory.Found found = awaitLeftBehind(lab);
      assertThat(found.connections())
          .extracting(c -> c.remote().getPort())
          .containsExactlyInAnyOrder(port(open), port(halfClosed));
      assertThat(found.leftBehind()).hasSize(2);
      Inventory.LeftBehind orphan =
          found.leftBehind().stream()
              .filter(l -> l.state().equals("FIN_WAIT1"))
              .findFirst()
              .orElseThrow();
      assertThat(orphan.connection().remote().getPort()).isEqualTo(port(abandoned));
      Inventory.LeftBehind left =
          found.leftBehind().stream()
              .filter(l -> l.state().equals("SYN_RECV"))
              .findFirst()
              .orElseThrow();
      // Java learns a pending connection's own port only once it is connected: it is the one
      // port that is none of the others.
      assertThat(left.connection().remote().getPort())
          .isNotIn(port(open), port(halfClosed), overPort, port(abandoned));
      assertThat(connecting.isConnectionPending()).isTrue();
      assertThat(left.described()).startsWith("SYN_RECV: ");
    }
  }

  private static Inventory.Found awaitLeftBehind(MigrationLab lab) throws Exception {
    long deadline = System.nanoTime() + AWAIT_NANOS;
    while (true) {
      Inventory.Found found =
          Inventory.sort(ConnectionTable.every(lab.aNs, Set.of(MigrationLab.PORT)));
      if (found.leftBehind().size() >= 2) {
        return found;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no half-open handshake listed on A: " + found);
      }
      Thread.sleep(5);
    }
  }

  private static int port(SocketChannel c) throws java.io.IOException {
    return ((InetSocketAddress) c.getLocalAddress()).getPort();
  }
}
