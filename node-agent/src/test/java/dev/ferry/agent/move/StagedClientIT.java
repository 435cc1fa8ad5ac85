// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.repair.MigrationLab;
import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.agent.repair.Pattern;
import dev.ferry.agent.repair.Peers;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.sys.TcpSocket;
import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An upload whose address reaches the target before the resume, as on the AWS path: the client's
 * retransmissions of what it sent while held come to the target while its socket is staged. The
 * target's hold stops them there, so the staged socket takes nothing of the client's before the
 * resume has written the kept bytes (a segment taken between the resume's look at rcv_nxt and its
 * write would be read twice), and what the hold kept of them joins what the source kept. The
 * application reads the whole upload once, in order. Real sockets and the real hold programs, in
 * namespaces.
 */
class StagedClientIT {
  private static final long UP = 23;
  private static final int BEFORE = 1000; // in the receive queue at the export
  private static final int HELD = 3000; // sent while held, lost at the source
  private static final int AFTER = 40_000;
  private static final long DEADLINE_NANOS = TimeUnit.SECONDS.toNanos(60);

  @ParameterizedTest
  @EnumSource(Family.class)
  void theStagedSocketTakesNothingOfTheClientsBeforeTheKeptBytes(Family family) throws Exception {
    movesTheUploadWhole(family, Pattern.bytes(UP, BEFORE, HELD - BEFORE));
  }

  /**
   * The source kept nothing (its ring was full, say): the retransmission the target's hold kept
   * goes into the socket at the resume, and the client sends the rest again.
   */
  @ParameterizedTest
  @EnumSource(Family.class)
  void whatTheTargetsHoldKeptGoesIntoTheSocket(Family family) throws Exception {
    movesTheUploadWhole(family, new byte[0]);
  }

  private static void movesTheUploadWhole(Family family, byte[] keptBySource) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      SocketState state = lab.exportWithUploadHeld(client, onA, UP, BEFORE, HELD);

      ConnectionHold holdB = ConnectionHold.install(lab.bed.bpfPinDir("b"), "eth0", lab.bNs);
      try {
        RestoredSocket staged = lab.bNs.call(() -> lab.track(new SocketRestorer().restore(state)));
        HeldClientBytes keptOnB = new HeldClientBytes(holdB);
        StagedClient held =
            StagedClient.hold(holdB, keptOnB, state, System.nanoTime() + DEADLINE_NANOS);
        int exported = staged.receivedUpTo();

        // The address reaches B before the resume: the client's retransmission comes to B.
        lab.announceB();
        HoldKey key = new HoldKey(state.local(), state.remote());
        long deadline = System.nanoTime() + DEADLINE_NANOS;
        while (holdB.stats(key).orElseThrow().segmentsDropped() == 0
            && staged.receivedUpTo() == exported) {
          assertThat(System.nanoTime())
              .as("the client's retransmission reached B")
              .isLessThan(deadline);
          Peers.nap(20);
        }
        assertThat(staged.receivedUpTo())
            .as("rcv_nxt of the staged socket, which must take nothing of the client's yet")
            .isEqualTo(exported);

        // Cut off again for the resume: whatever the application can read then came from the
        // kept bytes, and nothing but them. B knows the client's MAC already: asking for it would
        // tell the client B's, as a gratuitous ARP does.
        lab.b.setNeighbour(family.ip(1), lab.client.mac());
        lab.client.setNeighbour(family.ip(100), MigrationLab.NOWHERE);
        TcpSocket onB = lab.track(held.resume(staged, keptBySource, null));
        held.release();
        byte[] atResume = readQueued(onB);
        assertThat(atResume.length)
            .as("bytes queued at the resume: the exported queue and the kept bytes")
            .isGreaterThanOrEqualTo(BEFORE + keptBySource.length)
            .isGreaterThan(BEFORE);
        assertThat(atResume).isEqualTo(Pattern.bytes(UP, 0, atResume.length));

        lab.announceB();
        upload(client, HELD, AFTER);
        client.shutdownOutput();
        assertThat(readToEnd(onB))
            .isEqualTo(Pattern.bytes(UP, atResume.length, AFTER - atResume.length));
        assertThat(MigrationLab.resetsSent(lab.b)).as("resets B sent").isZero();
      } finally {
        holdB.uninstall();
      }
    }
  }

  /** What the socket has queued now: reads until nothing more comes within a while. */
  private static byte[] readQueued(TcpSocket server) throws Exception {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    byte[] buf = new byte[65536];
    while (server.awaitReadable(500)) {
      out.write(buf, 0, server.read(buf, 0, buf.length));
    }
    return out.toByteArray();
  }

  private static byte[] readToEnd(TcpSocket server) throws Exception {
    return Peers.readsToEnd(server).get(60, TimeUnit.SECONDS);
  }

  private static void upload(SocketChannel client, int from, int to) throws IOException {
    Peers.upload(client, UP, from, to);
  }
}
