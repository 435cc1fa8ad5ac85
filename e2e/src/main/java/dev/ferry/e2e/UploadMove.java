// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * One upload moved mid-stream, the way HeldUploadIT and {@code make bench-upload} both run it: the
 * client (e2e/clients/http-upload.py) PUTs to the Python streamer on {@code from} at a paced rate,
 * and once {@code moveAfter} bytes are acknowledged the agents move it to {@code to} in one Move;
 * the client's acknowledgement samples then say how long it stalled, and when the stall ended
 * against the target's resume.
 */
public final class UploadMove {
  /** How it went: the move, the source's view of it, the client's stall and its exit. */
  public record Result(
      MoveOutcome moved, MigrationStatus source, AckStall stall, int exitCode, List<String> lines) {
    /** Whether the source sent the target bytes the held client had sent. */
    public boolean keptBytesSent() {
      return source.getPhaseMicrosMap().containsKey("send-kept");
    }

    /** µs from the target's resume to the acknowledgement that ended the client's stall. */
    public long stallEndAfterResumeMicros() {
      return stall.endMicros() - moved.getResumedUnixMicros();
    }
  }

  private UploadMove() {}

  public static Result run(
      AgentCluster cluster,
      AgentCluster.Node from,
      AgentCluster.Node to,
      String id,
      long bytes,
      long pacing,
      long moveAfter)
      throws Exception {
    Path samples = cluster.dir.resolve(id + "-acks.txt");
    try (ByteClient upload = cluster.upload("/v1/upload?name=" + id, bytes, pacing, samples);
        AgentClient agent = from.client("admin")) {
      upload.awaitReceived(moveAfter, 60_000);
      MoveOutcome moved = agent.call("move", s -> s.move(from.moveTo(to, id).build()));
      MigrationStatus source =
          agent.call("status", s -> s.status(MigrationRef.newBuilder().setMigrationId(id).build()));
      int exit = upload.exitCode(bytes / pacing + 120);
      AckStall stall =
          moved.getResult() == MoveOutcome.Result.COMPLETED
              ? AckStall.in(
                  samples, moved.getFreezeStartedUnixMicros(), moved.getResumedUnixMicros())
              : null;
      return new Result(moved, source, stall, exit, upload.lines());
    } finally {
      Files.deleteIfExists(samples);
    }
  }

  /**
   * The client's stall through the move, from its samples ("UNIX_MICROS BYTES_ACKED" lines): from
   * its last acknowledgement before the middle of the pause to its first one after. While the hold
   * drops the client's segments nothing is acknowledged, and the middle of the pause lies inside
   * the hold (the freeze, before the hold begins, is a small part of the pause), so this is the
   * stall the move caused: it ends with the resume when the held bytes were kept, or when the
   * client sent them again. {@code endBytes} is how many bytes the acknowledgement that ended it
   * covered.
   */
  public record AckStall(long micros, long endMicros, long endBytes) {
    static AckStall in(Path samples, long freezeMicros, long resumedMicros) throws Exception {
      List<long[]> rows =
          Files.readAllLines(samples).stream()
              .map(l -> l.split(" "))
              .filter(f -> f.length == 2)
              .map(f -> new long[] {Long.parseLong(f[0]), Long.parseLong(f[1])})
              .toList();
      long middle = freezeMicros + (resumedMicros - freezeMicros) / 2;
      long[] last = null; // the sample of the last new acknowledgement before the middle
      for (long[] r : rows) {
        if (r[0] <= middle) {
          if (last == null || r[1] > last[1]) {
            last = r;
          }
        } else if (last != null && r[1] > last[1]) {
          return new AckStall(r[0] - last[0], r[0], r[1] - last[1]);
        }
      }
      throw new IllegalStateException(
          "no acknowledgement after the middle of the pause ("
              + middle
              + ") in "
              + rows.size()
              + " samples"
              + (last == null ? ", and none before it" : ""));
    }
  }
}
