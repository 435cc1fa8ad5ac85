// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import org.junit.jupiter.api.Test;

/**
 * A client uploading through a move: what it sends while it is held is kept by the source's hold
 * (its XDP program copies the payload it drops), sent to the target and put into the restored
 * socket's receive queue, so that the resume acknowledges it and the upload goes on at once.
 * Without that the client would send it again only when its retransmission timer fires, which a
 * route here sets to at least 3 s: a stall that ends within a second of the resume did not wait for
 * it.
 */
class HeldUploadIT {
  // 4 MiB/s, paced by the client's kernel, for 30 s: segments are in flight at most moments. The
  // hold begins only once the application has answered the freeze, and until then the socket takes
  // what comes: a busy machine may let the receive window fill first, or send the client a zero
  // window, and then the client sends nothing while held, and nothing is kept (the test says so).
  // The upload outlasts a move on a busy machine.
  private static final long PACING = 4L << 20;
  private static final long BYTES = 30 * PACING;
  private static final long MOVE_AFTER = 4L << 20;
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
      UploadMove.Result r =
          UploadMove.run(cluster, cluster.a, cluster.b, "upload-to-b", BYTES, PACING, MOVE_AFTER);
      assertThat(r.moved().getResult())
          .as(r.moved().getMessage())
          .isEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(r.moved().getTarget().getConnectionsList())
          .extracting(ConnectionStatus::getPhase)
          .containsExactly(ConnectionPhase.RESUMED);
      assertThat(r.exitCode())
          .as("the server counted every byte, in order, once: " + r.lines())
          .isZero();
      System.out.println(
          "upload moved: pause "
              + r.moved().getPauseMicros()
              + " µs; the client's acknowledgements stopped for "
              + r.stall().micros()
              + " µs, and the one that ended the stall came "
              + r.stallEndAfterResumeMicros()
              + " µs from the resume (the agents' clock), acknowledging "
              + r.stall().endBytes()
              + " bytes at once; "
              + (r.keptBytesSent()
                  ? "the source sent the bytes the held client had sent"
                  : "the client had sent nothing while held (its window was full, or a zero"
                      + " window reached it first): nothing was kept")
              + "; source phases (µs): "
              + r.source().getPhaseMicrosMap());
      if (r.keptBytesSent()) {
        assertThat(r.stallEndAfterResumeMicros())
            .as(
                "µs from the resume to the acknowledgement that ended the client's stall (its"
                    + " rto_min is "
                    + RTO_MIN
                    + ")")
            .isLessThan(WITHIN_MICROS);
      }
    }
  }
}
