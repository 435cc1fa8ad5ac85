// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.testbed.Testbed;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Clients no one here wrote, moved through the operator: a WebSocket stream read by the {@code ws}
 * package on Node.js, and a 64 MiB download read by Python's {@code http.client} without Range,
 * each served by the Python example server (examples/python, byte_streams.py) in pod-a, moved to
 * pod-b mid-stream by a MigrationRequest, and checked byte for byte against the content it must
 * carry (examples/README.md).
 */
class RealClientsIT {
  // 64 MiB at 2 MiB/s: 32 s, long enough to outlast a cold operator's first migration on a busy
  // machine (13 s from the request to its end, seen here); each request is made once the client
  // has 8 MiB.
  private static final String BYTE_RATE = String.valueOf(2 << 20);
  private static final long MOVE_AFTER = 8L << 20;
  private static final int MESSAGES = 1024;
  private static final int SIZE = 65536;
  private static final int FRAME = 10 + SIZE; // a 64-bit length: RFC 6455, section 5.2
  private static final long FILE_BYTES = 64L << 20;

  private static final Pattern WS_TAKEN =
      Pattern.compile(
          "taking over (\\S+ <- \\S+) at message (\\d+) of "
              + MESSAGES
              + ", (\\d+) of its "
              + FRAME
              + " frame bytes written, checksum verified");
  private static final Pattern FILE_TAKEN =
      Pattern.compile(
          "taking over (\\S+ <- \\S+) at byte (\\d+) of " + FILE_BYTES + ", checksum verified");

  private static OperatorCluster cluster;

  /** What the server in pod-b prints: where it took each stream over. */
  private static final List<String> targetLog = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    Testbed.requirePrivileges();
    cluster = OperatorCluster.start();
    cluster.agents.a.pythonStreamer("--byte-rate", BYTE_RATE);
    cluster.agents.b.pythonStreamer(targetLog, "--byte-rate", BYTE_RATE);
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void aWebSocketStreamReadByTheWsPackageMovesInTheMiddleOfAFrameAndEveryByteArrives()
      throws Exception {
    long total = (long) MESSAGES * SIZE;
    Path out = cluster.agents.dir.resolve("websocket.bin");
    try (ByteClient ws =
        cluster.agents.wsClient(
            "/v1/ws?name=websocket&messages=" + MESSAGES + "&size=" + SIZE, out)) {
      ws.awaitReceived(MOVE_AFTER, 60_000);
      MigrationRequestStatus st = moveToB("websocket-to-b", ws, total);

      assertThat(ws.exitCode(120)).as("the ws client's exit code: " + ws.lines()).isZero();
      assertThat(ws.lastLine())
          .as("a close handshake with status 1000, no error, every message whole")
          .isEqualTo(
              "closed 1000 clean after "
                  + total
                  + " bytes in "
                  + MESSAGES
                  + " messages, sizes "
                  + SIZE
                  + ".."
                  + SIZE);
      assertThat(StreamContent.firstDifference(out, "websocket", total))
          .as("the first byte the client got wrong (-1: none)")
          .isEqualTo(-1);
      Matcher taken = taken(WS_TAKEN);
      assertThat(Long.parseLong(taken.group(3)))
          .as("bytes of the partial frame written before the move: " + taken.group())
          .isPositive();
      awaitDone(taken.group(1));
      System.out.println(
          "websocket: pause " + st.getPauseMillis() + " ms, phases " + st.getPhaseMillis());
    }
    cluster.moveBack("websocket-back");
  }

  @Test
  void aPythonHttpClientDownloadWithoutRangeMovesInTheMiddleOfTheBodyAndEveryByteArrives()
      throws Exception {
    Path out = cluster.agents.dir.resolve("download.bin");
    try (ByteClient download =
        cluster.agents.download("/v1/file?name=download&bytes=" + FILE_BYTES, out)) {
      download.awaitReceived(MOVE_AFTER, 60_000);
      MigrationRequestStatus st = moveToB("download-to-b", download, FILE_BYTES);

      assertThat(download.exitCode(120))
          .as("http.client's exit code: " + download.lines())
          .isZero();
      assertThat(download.lastLine())
          .as("the whole Content-Length, no reset")
          .isEqualTo("done " + FILE_BYTES + " bytes of " + FILE_BYTES);
      assertThat(StreamContent.firstDifference(out, "download", FILE_BYTES))
          .as("the first byte the client got wrong (-1: none)")
          .isEqualTo(-1);
      awaitDone(taken(FILE_TAKEN).group(1));
      System.out.println(
          "download: pause " + st.getPauseMillis() + " ms, phases " + st.getPhaseMillis());
    }
    cluster.moveBack("download-back");
  }

  /**
   * Asks the operator to move pod-a's connections, and the address, to pod-b while {@code client}
   * reads; the request must complete with the one connection moved before the client had all of its
   * {@code total} bytes.
   */
  private static MigrationRequestStatus moveToB(String name, ByteClient client, long total)
      throws InterruptedException {
    MigrationRequest mr = cluster.request(name, s -> s.setTarget(new PodReference("pod-b")));
    MigrationRequestStatus st = cluster.awaitEnd(mr.getMetadata().getName(), 90);
    long received = client.received();
    assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
    assertThat(st.getConnections().getTotal()).isEqualTo(1);
    assertThat(st.getConnections().getMigrated()).isEqualTo(1);
    assertThat(st.getConnectionDetails())
        .singleElement()
        .satisfies(d -> assertThat(d.getOutcome()).isEqualTo("Migrated"));
    assertThat(received)
        .as("bytes the client had when the request completed: it moved mid-stream")
        .isLessThan(total);
    return st;
  }

  /**
   * Waits for pod-b's server to say it ended the stream on {@code connection} itself (for the
   * WebSocket, after the client's close frame), not that the connection broke.
   */
  private static void awaitDone(String connection) throws InterruptedException {
    String done = "stream " + connection + " done";
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (targetLog.stream().noneMatch(l -> l.endsWith(done))) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("pod-b's server never said '" + done + "'; it said " + targetLog);
      }
      Thread.sleep(20);
    }
  }

  /** The line in which pod-b's server took the stream over, as {@code pattern} matches it. */
  private static Matcher taken(Pattern pattern) {
    for (String line : targetLog) {
      Matcher m = pattern.matcher(line);
      if (m.find()) {
        return m;
      }
    }
    throw new AssertionError("pod-b's server never said " + pattern + "; it said " + targetLog);
  }
}
