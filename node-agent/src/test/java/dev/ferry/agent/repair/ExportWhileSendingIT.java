// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.RepairSocket;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.TcpSocket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A held client's ACKs stop, but the socket being exported does not stop sending: a paced socket
 * with room in its window sends its queue whenever its pacing timer or anything else pushes it,
 * repair mode or not. From the moment the export begins until the socket is closed or put back,
 * nothing new may leave and nothing may be counted as sent: a segment sent while the export reads
 * the socket would be counted as unsent and sent again by the target at its resume, whose client's
 * ACK then gives the restored socket an RTT sample a second too long ({@code make bench-link} found
 * it: its slow runs were exactly the ones with such copies); a segment marked sent without being
 * sent would wait for loss recovery on a socket put back.
 *
 * <p>When the pacing timer fires is not for a test to choose, so the test pushes the socket itself,
 * as TCP_NODELAY does, once the export has read it: what the export holds the socket to then holds
 * for any push during the reads too, as the window is closed before the first of them (all but a
 * pacing tick inside the send queue's own read: see SocketExporter). Real sockets in namespaces.
 */
class ExportWhileSendingIT {
  private static final long SEED = 29;

  /** Enough to open the window well past what the pacing below lets out in a few milliseconds. */
  private static final int WARM_UP = 16 << 20;

  /** Slow enough that most of the queue is still unsent when the export comes. */
  private static final int PACING_BYTES_PER_SECOND = 2 << 20;

  /** Nothing arrived at the client for this long: what A sent before has all arrived. */
  private static final long QUIET_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

  /**
   * Runs that may find a pacing tick inside the export's read of the send queue (below): the kernel
   * then marks what is due sent without sending it, before the push this test makes, and the run
   * shows nothing about the push. That hole is SocketExporter's, documented there and harmless; one
   * run in about ten met it here (2026-12-05), so three in a row are rare enough.
   */
  private static final int ATTEMPTS = 3;

  @Test
  void nothingLeavesAndNothingIsCountedSentWhileTheExportHoldsTheSocket() throws Exception {
    for (int attempt = 1; !exportWhileSending(); attempt++) {
      assertThat(attempt)
          .as(
              "runs where a pacing tick fell inside the export's read of the send queue, so that"
                  + " the push showed nothing")
          .isLessThan(ATTEMPTS);
    }
  }

  /**
   * One run; false if a pacing tick inside the export's own read marked part of the queue sent
   * (without sending it) before the push.
   */
  private static boolean exportWhileSending() throws Exception {
    try (MigrationLab lab = new MigrationLab(Family.IPV4)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      String service = lab.family.ip(100);
      try (Reader reader = new Reader(client)) {
        // Reno keeps the window the warm-up opened while pacing holds the socket back (BBR would
        // shrink it to the path's few segments): room to send on after the client's ACKs stop.
        new SocketOptions(onA).setCongestion("reno");
        Peers.writeRest(onA, SEED, 0, WARM_UP);
        onA.setMaxPacingRate(PACING_BYTES_PER_SECOND);
        long written = Peers.fill(onA, SEED, WARM_UP, Long.MAX_VALUE);
        Peers.nap(20);
        // The hold's part: from now on nothing the client sends reaches A.
        lab.client.setNeighbour(service, MigrationLab.NOWHERE);
        Peers.nap(5);

        SocketExporter exporter = new SocketExporter();
        SocketState state = exporter.export(onA);
        int unsent = state.sendUnsent().length;
        assertThat(unsent).as("bytes A had not sent yet (else this shows nothing)").isPositive();
        if (RepairSocket.enter(onA).unsentQueueSize() < unsent) {
          return false; // the tick came inside the read: nothing is left for the push to send
        }
        new SocketOptions(onA).setNoDelay(true); // pushes the send queue, as a pacing tick does
        Peers.nap(20);
        reader.awaitQuiet();
        assertThat(reader.total())
            .as("the client's bytes against the end of what the export counts as sent")
            .isLessThanOrEqualTo(written - unsent);
        assertThat(RepairSocket.enter(onA).unsentQueueSize()) // in repair mode already
            .as("A's own count of its unsent bytes, against the export's")
            .isEqualTo(unsent);

        // Put back, the socket carries on as it was: the rest of the stream arrives intact.
        exporter.putBack(onA, state);
        lab.client.setNeighbour(service, lab.a.mac());
        onA.setMaxPacingRate(Integer.MAX_VALUE);
        Peers.writeRest(onA, SEED, written, written + (1 << 20));
        onA.shutdownOutput();
        reader.awaitEnd(written + (1 << 20));
      }
    }
    return true;
  }

  /** Reads the client's end as it comes, checking every byte against the pattern. */
  private static final class Reader implements AutoCloseable {
    private final SocketChannel channel;
    private final AtomicLong total = new AtomicLong();
    private final AtomicLong lastArrival = new AtomicLong(System.nanoTime());
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread thread;
    private volatile boolean ended;

    Reader(SocketChannel channel) {
      this.channel = channel;
      this.thread = new Thread(this::run, "export-while-sending-reader");
      thread.start();
    }

    private void run() {
      ByteBuffer buf = ByteBuffer.allocate(1 << 20);
      try {
        int n;
        while ((n = channel.read(buf)) >= 0) {
          long at = total.get();
          byte[] got = Arrays.copyOf(buf.array(), n);
          buf.clear();
          if (!Arrays.equals(got, Pattern.bytes(SEED, at, n))) {
            throw new AssertionError("the bytes from offset " + at + " are not the stream's");
          }
          total.addAndGet(n);
          lastArrival.set(System.nanoTime());
        }
        ended = true;
      } catch (Throwable t) {
        failure.set(t);
      }
    }

    long total() {
      check();
      return total.get();
    }

    void awaitQuiet() throws InterruptedException {
      while (System.nanoTime() - lastArrival.get() < QUIET_NANOS) {
        check();
        Thread.sleep(10);
      }
    }

    void awaitEnd(long length) throws InterruptedException {
      thread.join(TimeUnit.SECONDS.toMillis(60));
      check();
      assertThat(ended).as("the client read to the end of the stream").isTrue();
      assertThat(total.get()).as("every byte, once").isEqualTo(length);
    }

    private void check() {
      Throwable t = failure.get();
      if (t != null) {
        throw new AssertionError("the client's reader failed", t);
      }
    }

    @Override
    public void close() throws Exception {
      channel.close();
      thread.join(5000);
    }
  }
}
