// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sys.UnixSocket;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A process that floods the handoff socket with sessions, each starting a 1 MiB frame and stalling,
 * gets at most its namespace's share: the agent's session threads stay within the limit, every
 * extra session is refused at once with ERROR 10 and counted, and an application in another network
 * namespace (another pod) still connects and registers.
 */
@Timeout(120)
class HandoffFloodIT {
  private static final int MAX_SESSIONS = 16;
  private static final int PER_NAMESPACE = 8;
  private static final int FLOOD = 300;

  /** HELLO 2, then REGISTER 8080, raw on the socket; prints what it got back. */
  private static final String POD_APP =
      """
      import socket, struct, sys
      s = socket.socket(socket.AF_UNIX)
      s.connect(sys.argv[1])
      def frame():
          b = b""
          while len(b) < 4:
              b += s.recv(4 - len(b))
          n = struct.unpack(">I", b)[0]
          b = b""
          while len(b) < n:
              b += s.recv(n - len(b))
          return b[0], b[1:]
      s.sendall(struct.pack(">IBH", 3 + 7, 1, 2) + b"pod-app")
      t, p = frame()
      if t != 2:
          sys.exit("HELLO answered with type %d: %r" % (t, p))
      s.sendall(struct.pack(">IBHH", 5, 3, 1, 8080))
      t, p = frame()
      if t != 4:
          sys.exit("REGISTER answered with type %d: %r" % (t, p))
      print("registered")
      """;

  private Path dir;
  private Path socketPath;
  private HandoffServer server;
  private final List<String> refused = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void root() {
    Testbed.requirePrivileges();
  }

  @BeforeEach
  void start() throws Exception {
    dir = Files.createTempDirectory("ferry-flood");
    socketPath = dir.resolve("handoff.sock");
    // The frame timeout outlasts the test: the flood's stalled frames hold their sessions.
    server =
        HandoffServer.start(
            socketPath,
            Duration.ofSeconds(2),
            Duration.ofSeconds(30),
            128L << 20,
            new HandoffLimits(MAX_SESSIONS, PER_NAMESPACE, Duration.ofMinutes(5)),
            refused::add);
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    Files.deleteIfExists(socketPath);
    Files.deleteIfExists(dir);
  }

  @Test
  void aFloodOfStalledSessionsLeavesTheAgentServingAnotherPodWithinBoundedThreads()
      throws Exception {
    List<FrameChannel> flood = new ArrayList<>();
    try (Testbed bed = Testbed.create()) {
      Host pod = bed.host("pod", "198.18.0.50/24");
      int welcomed = 0;
      int turnedAway = 0;
      for (int i = 0; i < FLOOD; i++) {
        FrameChannel c = new FrameChannel(UnixSocket.connect(socketPath));
        flood.add(c);
        // A frame announcing 1 MiB, of which 3 bytes come.
        c.socket().send(ByteBuffer.allocate(7).putInt(Frame.MAX_FRAME).put(new byte[3]).array());
      }
      for (FrameChannel c : flood) {
        // A session the agent serves says nothing (it waits for the frame's rest); a refused one
        // is answered ERROR 10 and closed at once.
        if (c.socket().awaitReadable(0) || welcomed >= PER_NAMESPACE) {
          Frame f = c.read();
          assertThat(f).as("an answer to a session over the limit").isNotNull();
          assertThat(f.type()).isEqualTo(Frame.ERROR);
          assertThat(ByteBuffer.wrap(f.payload()).getShort())
              .isEqualTo((short) Frame.ERR_TOO_MANY_SESSIONS);
          assertThat(c.read()).as("closed after ERROR 10").isNull();
          turnedAway++;
        } else {
          welcomed++;
        }
      }
      assertThat(welcomed).as("sessions the flood holds").isEqualTo(PER_NAMESPACE);
      assertThat(turnedAway).isEqualTo(FLOOD - PER_NAMESPACE);
      assertThat(refused).hasSize(FLOOD - PER_NAMESPACE).containsOnly("too-many-sessions");
      assertThat(sessionThreads())
          .as("the agent's session threads, flood and all")
          .isLessThanOrEqualTo(MAX_SESSIONS);

      // Another pod, its own network namespace: its share is untouched.
      String out = pod.run("python3", "-c", POD_APP, socketPath.toString());
      assertThat(out)
          .as("the other pod's application was welcomed and registered")
          .contains("registered");
    } finally {
      flood.forEach(FrameChannel::close);
    }
  }

  private static long sessionThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith("handoff-") && !t.getName().equals("handoff-accept"))
        .count();
  }
}
