// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.TcpSocket;
import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * What a client sent after its socket stopped reading (the hold keeps it, on a real node), put into
 * the restored socket at the resume: the application reads the whole upload once, in order, whether
 * or not the staged socket took some of those bytes from the client itself first (on an agent the
 * target's hold keeps that from happening, StagedClientIT; here no hold stands before the socket).
 */
class KeptClientBytesIT {
  private static final long UP = 21;
  private static final int BEFORE = 1000; // in the receive queue at the export
  private static final int HELD = 3000; // sent while held: the kept bytes end here
  private static final int AFTER = 4000;

  @ParameterizedTest
  @EnumSource(Family.class)
  void keptBytesFollowTheExportedQueue(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      RestoredSocket staged = stageWithBytesSentWhileHeld(lab, client, onA);

      TcpSocket onB = lab.track(staged.resume(Pattern.bytes(UP, BEFORE, HELD - BEFORE)));
      lab.announceB(); // after the resume, as the agents do on a LAN
      upload(client, HELD, AFTER);
      client.shutdownOutput();
      assertThat(readToEnd(onB)).isEqualTo(Pattern.bytes(UP, 0, AFTER));
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void keptBytesTheStagedSocketTookFromTheClientItselfAreNotReadTwice(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      RestoredSocket staged = stageWithBytesSentWhileHeld(lab, client, onA);
      int exported = staged.receivedUpTo();
      // The address reaches B before the resume (as on AWS): the client's retransmission lands in
      // the staged socket.
      lab.announceB();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (staged.receivedUpTo() == exported) {
        assertThat(System.nanoTime())
            .as("the client's retransmission reached the staged socket")
            .isLessThan(deadline);
        Thread.sleep(20);
      }

      // Cut off again before the resume: no hold stands before this socket (an agent's would drop
      // the client's segments until the resume has written the kept bytes, StagedClientIT), and
      // a segment landing between the resume's look at rcv_nxt and its write would be queued
      // twice. B knows the client's MAC already: asking for it would tell the client B's.
      lab.b.setNeighbour(lab.family.ip(1), lab.client.mac());
      lab.client.setNeighbour(lab.family.ip(100), MigrationLab.NOWHERE);
      TcpSocket onB = lab.track(staged.resume(Pattern.bytes(UP, BEFORE, HELD - BEFORE)));
      lab.announceB();
      upload(client, HELD, AFTER);
      client.shutdownOutput();
      assertThat(readToEnd(onB)).isEqualTo(Pattern.bytes(UP, 0, AFTER));
    }
  }

  /**
   * The client sends BEFORE bytes, which wait unread on A; A's cable is pulled and the client sends
   * up to HELD, lost as a hold would drop them; A's socket is exported and staged on B.
   */
  private static RestoredSocket stageWithBytesSentWhileHeld(
      MigrationLab lab, SocketChannel client, TcpSocket onA) throws Exception {
    SocketState state = lab.exportWithUploadHeld(client, onA, UP, BEFORE, HELD);
    return lab.bNs.call(() -> lab.track(new SocketRestorer().restore(state)));
  }

  private static byte[] readToEnd(TcpSocket server) throws Exception {
    return Peers.readsToEnd(server).get(60, TimeUnit.SECONDS);
  }

  private static void upload(SocketChannel client, int from, int to) throws IOException {
    Peers.upload(client, UP, from, to);
  }
}
