// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A client uploading through a move: what it sends while it is held is kept by the source's hold
 * (its XDP program copies the payload it drops), sent to the target and put into the restored
 * socket's receive queue, so that the resume acknowledges it and the upload goes on at once.
 * Without that the client would send it again only when its retransmission timer fires, which a
 * route here sets to at least 3 s: an upload that carries on within a second of the resume did not
 * wait for it.
 */
class HeldUploadIT {
  // 16 MiB/s, paced by the client's kernel, for 30 s: segments are in flight at every moment, as
  // on a long link, and the upload outlasts a move on a busy machine.
  private static final long PACING = 16L << 20;
  private static final long BYTES = 30 * PACING;
  private static final long MOVE_AFTER = 16L << 20;
  private static final String RTO_MIN = "3s";
  private static final long WITHIN_MICROS = 1_000_000;
  // A LAN of its own: it can run beside the tests on 198.18.0.
  private static final AgentCluster.Layout LAN = new AgentCluster.Layout("198.18.7", null, null);

  @Test
  void anUploadMovedMidStreamGoesOnAtTheResumeWithEveryByteCounted() throws Exception {
    try (AgentCluster cluster = AgentCluster.start(LAN)) {
      cluster.a.pythonStreamer();
      cluster.b.pythonStreamer();
      cluster.slowClientRetransmissions(RTO_MIN);
      Path samples = cluster.dir.resolve("upload-acks.txt");
      try (ByteClient upload = cluster.upload("/v1/upload?name=held", BYTES, PACING, samples);
          AgentClient a = cluster.a.client("admin")) {
        upload.awaitReceived(MOVE_AFTER, 60_000);
        MoveOutcome moved =
            a.call("move", s -> s.move(cluster.a.moveTo(cluster.b, "upload-to-b").build()));
        assertThat(moved.getResult())
            .as(moved.getMessage())
            .isEqualTo(MoveOutcome.Result.COMPLETED);
        assertThat(phases(moved.getTarget())).containsExactly(ConnectionPhase.RESUMED);
        MigrationStatus source =
            a.call(
                "status",
                s -> s.status(MigrationRef.newBuilder().setMigrationId("upload-to-b").build()));

        assertThat(upload.exitCode(120))
            .as("the server counted every byte, in order, once: " + upload.lines())
            .isZero();
        long resumed = moved.getResumedUnixMicros();
        Pause pause = Pause.in(samples, moved.getFreezeStartedUnixMicros());
        System.out.println(
            "upload moved: pause "
                + moved.getPauseMicros()
                + " µs; the client's acknowledgements stopped for "
                + pause.micros()
                + " µs, and the one that ended the stall came "
                + (pause.endMicros() - resumed)
                + " µs from the resume (the agents' clock), acknowledging "
                + pause.endBytes()
                + " bytes at once; source phases (µs): "
                + source.getPhaseMicrosMap());
        assertThat(pause.endMicros() - resumed)
            .as(
                "µs from the resume to the acknowledgement that ended the client's stall (its"
                    + " rto_min is "
                    + RTO_MIN
                    + ")")
            .isLessThan(WITHIN_MICROS);
        assertThat(source.getPhaseMicrosMap())
            .as("the source sent the target what the held client had sent")
            .containsKey("send-kept");
      }
    }
  }

  /**
   * The client's stall through the move, from the samples: the longest time without a new
   * acknowledgement, among those that ended after the freeze began. {@code endBytes} is how many
   * bytes the acknowledgement that ended it covered.
   */
  private record Pause(long micros, long endMicros, long endBytes) {
    static Pause in(Path samples, long freezeMicros) throws Exception {
      List<long[]> rows =
          Files.readAllLines(samples).stream()
              .map(l -> l.split(" "))
              .filter(f -> f.length == 2)
              .map(f -> new long[] {Long.parseLong(f[0]), Long.parseLong(f[1])})
              .toList();
      Pause longest = null;
      long[] last = null; // the sample of the last new acknowledgement
      for (long[] r : rows) {
        if (last != null && r[1] > last[1]) {
          if (r[0] > freezeMicros && (longest == null || r[0] - last[0] > longest.micros)) {
            longest = new Pause(r[0] - last[0], r[0], r[1] - last[1]);
          }
          last = r;
        } else if (last == null) {
          last = r;
        }
      }
      if (longest == null) {
        throw new AssertionError(
            "no new acknowledgement after the freeze at "
                + freezeMicros
                + " in "
                + rows.size()
                + " samples");
      }
      return longest;
    }
  }

  private static List<ConnectionPhase> phases(MigrationStatus s) {
    return s.getConnectionsList().stream().map(ConnectionStatus::getPhase).distinct().toList();
  }
}
