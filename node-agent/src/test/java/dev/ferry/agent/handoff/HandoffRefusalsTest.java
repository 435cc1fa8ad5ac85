// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Frame;
import dev.ferry.sys.SyscallException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What the agent refuses on the handoff socket, with which ERROR code, whether the session goes on,
 * and that every refusal is counted; and that sessions and frames are bounded.
 */
@Timeout(60)
class HandoffRefusalsTest {
  private static final int MAX_SESSIONS = 4;
  private static final Duration FRAME_TIMEOUT = Duration.ofMillis(300);

  private Path dir;
  private Path socketPath;
  private HandoffServer server;
  private final List<String> refused = new CopyOnWriteArrayList<>();

  @BeforeEach
  void start() throws Exception {
    dir = Files.createTempDirectory("ferry-refusals");
    socketPath = dir.resolve("handoff.sock");
    server =
        HandoffServer.start(
            socketPath,
            Duration.ofMillis(500),
            Duration.ofSeconds(30),
            128L << 20,
            new HandoffLimits(MAX_SESSIONS, MAX_SESSIONS, FRAME_TIMEOUT),
            refused::add);
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    Files.deleteIfExists(socketPath);
    Files.deleteIfExists(dir);
  }

  @Test
  void everyLengthOverTheLargestFrameIsTooLargeAndZeroIsMalformed() throws Exception {
    // 0xFFFFFFFF is a length, read unsigned: the largest one there is, not -1.
    for (long length : new long[] {0xFFFFFFFFL, Frame.MAX_FRAME + 1L, 0x80000000L}) {
      try (TestApp app = new TestApp(socketPath)) {
        app.channel
            .socket()
            .send(ByteBuffer.allocate(5).putInt((int) length).put((byte) 1).array());
        assertThat(app.nextError())
            .as("length " + Long.toHexString(length))
            .isEqualTo(Frame.ERR_TOO_LARGE);
        assertThat(app.next()).as("closed after length " + Long.toHexString(length)).isNull();
      }
    }
    try (TestApp app = new TestApp(socketPath)) {
      app.channel.socket().send(new byte[] {0, 0, 0, 0});
      assertThat(app.nextError()).as("length 0").isEqualTo(Frame.ERR_MALFORMED);
      assertThat(app.next()).isNull();
    }
    assertThat(refused).containsExactly("too-large", "too-large", "too-large", "malformed");
  }

  @Test
  void aNameOverTheLimitIsRefusedAndTheApplicationMaySayHelloAgain() throws Exception {
    try (TestApp app = new TestApp(socketPath)) {
      app.sendHello("x".repeat(Frame.MAX_FRAME - 3), 2); // the largest frame HELLO can be
      assertThat(app.nextError()).isEqualTo(Frame.ERR_TOO_LARGE);
      app.sendHello("y".repeat(Frame.MAX_NAME + 1), 2);
      assertThat(app.nextError()).as("one byte over").isEqualTo(Frame.ERR_TOO_LARGE);

      app.hello("z".repeat(Frame.MAX_NAME), 2);
    }
    assertThat(refused).containsExactly("too-large", "too-large");
  }

  @Test
  void aFrameThatStallsHalfWayIsTimedOutAndItsSessionClosed() throws Exception {
    try (TestApp app = new TestApp(socketPath).hello("staller", 2)) {
      // 1 MiB announced, 3 bytes sent, then nothing.
      app.channel
          .socket()
          .send(ByteBuffer.allocate(7).putInt(Frame.MAX_FRAME).put(new byte[3]).array());
      assertThat(app.nextError()).isEqualTo(Frame.ERR_TIMED_OUT);
      assertThat(app.next()).as("the session is closed").isNull();
    }
    try (TestApp app = new TestApp(socketPath).hello("half-a-length", 2)) {
      app.channel.socket().send(new byte[] {0, 0});
      assertThat(app.nextError()).isEqualTo(Frame.ERR_TIMED_OUT);
      assertThat(app.next()).isNull();
    }
    assertThat(refused).containsExactly("timed-out", "timed-out");
  }

  @Test
  void anIdleSessionBetweenFramesIsNotTimedOut() throws Exception {
    try (TestApp app = new TestApp(socketPath).hello("idle", 2)) {
      assertThat(app.channel.socket().awaitReadable((int) FRAME_TIMEOUT.toMillis() * 3))
          .as("nothing comes to a session that sends nothing")
          .isFalse();
      app.register(8080);
    }
    assertThat(refused).isEmpty();
  }

  @Test
  void sessionsOverTheLimitAreRefusedAndOneClosedMakesRoom() throws Exception {
    List<TestApp> open = new ArrayList<>();
    try {
      for (int i = 0; i < MAX_SESSIONS; i++) {
        open.add(new TestApp(socketPath).hello("app-" + i, 2));
      }
      try (TestApp extra = new TestApp(socketPath)) {
        assertThat(extra.nextError()).isEqualTo(Frame.ERR_TOO_MANY_SESSIONS);
        assertThat(extra.next()).as("closed").isNull();
      }
      assertThat(refused).containsExactly("too-many-sessions");

      open.remove(0).close();
      // The agent sees the close on the session's own thread: until then, a newcomer is refused.
      while (true) {
        TestApp next = new TestApp(socketPath);
        Frame f;
        try {
          next.sendHello("newcomer", 2);
          f = next.next();
        } catch (SyscallException e) {
          f = null; // refused, its HELLO arriving as the agent closed: a reset, not the ERROR
        }
        if (f != null && f.type() == Frame.WELCOME) {
          open.add(next);
          break;
        }
        if (f != null) {
          assertThat(ByteBuffer.wrap(f.payload()).getShort())
              .isEqualTo((short) Frame.ERR_TOO_MANY_SESSIONS);
        }
        next.close();
        Thread.sleep(10);
      }
      assertThat(open).hasSize(MAX_SESSIONS);
    } finally {
      open.forEach(TestApp::close);
    }
  }
}
