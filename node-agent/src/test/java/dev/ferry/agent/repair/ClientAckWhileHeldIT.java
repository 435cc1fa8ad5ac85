// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.io.ByteArrayOutputStream;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A download in flight at the freeze: the client receives the bytes and acknowledges them, and the
 * source's hold absorbs those ACKs. The hold notes the last of them; handed to the restored socket
 * at the resume, it frees what the socket counted as in flight, so the socket goes on at once
 * instead of waiting for the client's answer to its window probe. The client cannot reach the
 * target until the socket has taken it, so nothing else could have told the socket. Real sockets
 * and the real hold programs, in namespaces.
 */
class ClientAckWhileHeldIT {
  private static final long SEED = 41;
  private static final int WARM_UP = 1 << 20; // opens the window past what the freeze sends
  private static final int IN_FLIGHT = 100_000; // sent after the freeze, acknowledged to the hold
  private static final int AFTER = 1 << 20; // sent from B once the client reaches it
  private static final long DEADLINE_NANOS = TimeUnit.SECONDS.toNanos(30);

  @ParameterizedTest
  @EnumSource(Family.class)
  void whatTheClientAcknowledgedToTheHoldIsHandedToTheRestoredSocket(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      ConnectionHold holdA = ConnectionHold.install(lab.bed.bpfPinDir("a"), "eth0", lab.aNs);
      try {
        ByteArrayOutputStream received = new ByteArrayOutputStream();
        send(onA, 0, WARM_UP, client, received);
        HoldKey key = new HoldKey(onA.localAddress(), onA.remoteAddress());
        long deadline = System.nanoTime() + DEADLINE_NANOS;
        holdA.freeze(key, System.nanoTime() + DEADLINE_NANOS);
        // Sent after the freeze: the client has it all, and its ACKs go no further than the hold.
        send(onA, WARM_UP, WARM_UP + IN_FLIGHT, client, received);
        SocketState state = new SocketExporter().export(onA);
        onA.close();
        holdA.answer(state, System.nanoTime(), deadline);
        int sndNxt = state.sendQueueSeq() + state.sendUnacked().length;
        assertThat(state.sendUnacked().length)
            .as("bytes the exported socket counts as in flight (else this shows nothing)")
            .isPositive();
        ClientAck ack = awaitAck(holdA, key, sndNxt, deadline);

        lab.moveAddressToB();
        // Until the announcement below, nothing the client sends reaches B. B knows the client's
        // MAC already: asking for it would tell the client B's, as a gratuitous ARP does.
        lab.b.setNeighbour(lab.family.ip(1), lab.client.mac());
        lab.client.setNeighbour(lab.family.ip(100), MigrationLab.NOWHERE);
        RestoredSocket staged = lab.bNs.call(() -> new SocketRestorer().restore(state));
        lab.track(staged);
        assertThat(staged.clientAcknowledged(ack)).as("the acknowledgment is taken").isTrue();
        TcpSocket onB;
        try (PeerSegments peers = PeerSegments.open(lab.bNs, List.of(state.local()))) {
          onB = lab.track(staged.resume(new byte[0], peers.forAddress(state.local())));
        }
        while (onB.info().unacked() > 0) {
          assertThat(System.nanoTime())
              .as("B's socket still counts %d segments in flight", onB.info().unacked())
              .isLessThan(deadline);
          Peers.nap(2);
        }
        holdA.release(key);

        lab.announceB();
        Peers.finishDownload(
            client, received, onB, SEED, WARM_UP + IN_FLIGHT, WARM_UP + IN_FLIGHT + AFTER);
        assertThat(MigrationLab.resetsSent(lab.b)).as("resets B sent").isZero();
      } finally {
        holdA.uninstall();
      }
    }
  }

  /** Writes pattern bytes [from, to) on {@code server} while the client reads them all. */
  private static void send(
      TcpSocket server, long from, long to, SocketChannel client, ByteArrayOutputStream received)
      throws Exception {
    CompletableFuture<Void> writer =
        CompletableFuture.runAsync(
            () -> {
              try {
                Peers.writeRest(server, SEED, from, to);
              } catch (SyscallException e) {
                throw new IllegalStateException(e);
              }
            });
    Peers.readExactly(client, (int) (to - from), received);
    writer.get(30, TimeUnit.SECONDS);
  }

  /** The hold sees the client's ACKs as they come: waits for the one of everything sent. */
  private static ClientAck awaitAck(ConnectionHold hold, HoldKey key, int sndNxt, long deadline)
      throws Exception {
    while (true) {
      Optional<ClientAck> ack = hold.clientAck(key);
      if (ack.isPresent() && ack.get().ack() == sndNxt) {
        return ack.get();
      }
      assertThat(System.nanoTime())
          .as("the hold's note of the client's acknowledgment, %s, against %d", ack, sndNxt)
          .isLessThan(deadline);
      Peers.nap(2);
    }
  }
}
