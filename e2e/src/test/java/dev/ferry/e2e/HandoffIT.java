// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sys.UnixSocket;
import dev.ferry.testbed.Testbed;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Application handoff end to end: real demo servers (Java and Python) as processes on two nodes,
 * curl as the client, the agents' handoff, hold and repair between them. Every test compares curl's
 * whole output with that of a run that never moved.
 */
class HandoffIT {
  private static final String STREAM = "/v1/stream?prompt=the%20ferry%20demo&tokens=400";

  @BeforeAll
  static void needsRoot() {
    Testbed.requirePrivileges();
  }

  @Test
  void aJavaStreamMovesWithItsStateAndCurlSeesExactlyWhatAnUnmovedRunSees() throws Exception {
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200");
      cluster.javaStreamer(cluster.b(), "--rate", "200");
      String unmoved = unmovedRun(cluster, STREAM);

      try (CurlStream curl = cluster.curl(STREAM)) {
        curl.awaitEvents(100, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).as(moved.outcome()).isTrue();
        assertThat(curl.exitCode(60)).as("curl's exit code (56 would be a reset)").isZero();
        assertThat(curl.output()).isEqualTo(unmoved);
        assertThat(cluster.connections(cluster.a())).as("left behind on node-a").isEmpty();
      }
    }
  }

  @Test
  void aNettyStreamMovesToABlockingServerAndCurlSeesWhatAnUnmovedBlockingRunSees()
      throws Exception {
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200", "--io", "netty");
      cluster.javaStreamer(cluster.b(), "--rate", "200");
      String unmovedNetty = unmovedRun(cluster, STREAM);
      cluster.moveAddress(cluster.a(), cluster.b()); // the same request, to the blocking server
      String unmoved = unmovedRun(cluster, STREAM);
      cluster.moveAddress(cluster.b(), cluster.a());
      assertThat(unmovedNetty)
          .as("the Netty server's bytes against the blocking one's")
          .isEqualTo(unmoved);

      try (CurlStream curl = cluster.curl(STREAM)) {
        curl.awaitEvents(100, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).as(moved.outcome()).isTrue();
        assertThat(curl.exitCode(60)).as("curl's exit code (56 would be a reset)").isZero();
        assertThat(curl.output()).isEqualTo(unmoved);
        assertThat(cluster.connections(cluster.a())).as("left behind on node-a").isEmpty();
      }
    }
  }

  @Test
  void aBlockingStreamMovesToANettyServerAndCurlSeesExactlyWhatAnUnmovedRunSees() throws Exception {
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200");
      cluster.javaStreamer(cluster.b(), "--rate", "200", "--io", "netty");
      String unmoved = unmovedRun(cluster, STREAM);

      try (CurlStream curl = cluster.curl(STREAM)) {
        curl.awaitEvents(100, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).as(moved.outcome()).isTrue();
        assertThat(curl.exitCode(60)).as("curl's exit code (56 would be a reset)").isZero();
        assertThat(curl.output()).isEqualTo(unmoved);
        assertThat(cluster.connections(cluster.a())).as("left behind on node-a").isEmpty();
      }
    }
  }

  @Test
  void aSixtyFourMebibyteStateMovesAndIsVerifiedBeforeTheStreamGoesOn() throws Exception {
    String kv = Integer.toString(64 << 20);
    String stream = "/v1/stream?prompt=big%20cache&tokens=200";
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200", "--kv-bytes", kv);
      cluster.javaStreamer(cluster.b(), "--rate", "200", "--kv-bytes", kv);
      String unmoved = unmovedRun(cluster, stream);

      try (CurlStream curl = cluster.curl(stream)) {
        curl.awaitEvents(50, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).as(moved.outcome()).isTrue();
        assertThat(curl.exitCode(60)).isZero();
        // The tokens after the move are read from the moved cache: a damaged one changes them.
        assertThat(curl.output()).isEqualTo(unmoved);
      }
    }
  }

  @Test
  void anApplicationThatIgnoresTheFreezeKeepsItsConnectionStreaming() throws Exception {
    LocalCluster.Settings quick =
        new LocalCluster.Settings(Duration.ofMillis(500), Duration.ofSeconds(5), 16 << 20);
    try (LocalCluster cluster = LocalCluster.start(quick)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200", "--ignore-freeze");
      cluster.javaStreamer(cluster.b(), "--rate", "200");
      String unmoved = unmovedRun(cluster, STREAM);

      try (CurlStream curl = cluster.curl(STREAM)) {
        curl.awaitEvents(50, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).isFalse();
        assertThat(moved.outcome()).contains("stayed on node-a", "did not answer", "500 ms");
        assertThat(cluster.a().hold().held()).as("the hold never touched it").isEmpty();
        assertThat(curl.exitCode(60)).isZero();
        assertThat(curl.output()).isEqualTo(unmoved);
      }
    }
  }

  @Test
  void aPythonServerTakesOverAStreamFromTheJavaDemo() throws Exception {
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200");
      cluster.pythonStreamer(cluster.b(), "--rate", "200");
      String unmoved = unmovedRun(cluster, STREAM);

      try (CurlStream curl = cluster.curl(STREAM)) {
        curl.awaitEvents(100, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).as(moved.outcome()).isTrue();
        assertThat(curl.exitCode(60)).isZero();
        assertThat(curl.output()).isEqualTo(unmoved);
      }
    }
  }

  @Test
  void aTargetWithoutTheApplicationSendsTheStreamHomeIntact() throws Exception {
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200");
      String unmoved = unmovedRun(cluster, STREAM);

      try (CurlStream curl = cluster.curl(STREAM)) {
        curl.awaitEvents(100, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).isFalse();
        assertThat(moved.outcome())
            .contains("rolled back to node-a", "no application registered port 8080");
        assertThat(curl.exitCode(60)).isZero();
        assertThat(curl.output()).isEqualTo(unmoved);
      }
    }
  }

  @Test
  void garbageOnTheAgentSocketIsRefusedAndTheNextMoveStillWorks() throws Exception {
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      cluster.javaStreamer(cluster.a(), "--rate", "200");
      cluster.javaStreamer(cluster.b(), "--rate", "200");
      String unmoved = unmovedRun(cluster, STREAM);

      try (FrameChannel rogue = new FrameChannel(UnixSocket.connect(cluster.a().handoffSocket()))) {
        rogue.write(Frame.REGISTER, new byte[] {0, 1, 0x1f, (byte) 0x90});
        assertThat(nextError(rogue)).as("anything before HELLO").isEqualTo(Frame.ERR_OUT_OF_ORDER);
        hello(rogue);
        rogue.write(Frame.REGISTER, new byte[] {0, 1, 0x1f, (byte) 0x90});
        assertThat(nextError(rogue)).as("the demo's port").isEqualTo(Frame.ERR_PORT_TAKEN);
        rogue.write(42, new byte[] {1});
        assertThat(nextError(rogue)).as("an unknown type").isEqualTo(Frame.ERR_UNKNOWN_TYPE);
        UnixSocket[] pipe = UnixSocket.pair();
        rogue.write(
            Frame.FROZEN, ByteBuffer.allocate(16).putLong(1).putLong(0).array(), pipe[0].fd());
        assertThat(nextError(rogue))
            .as("an answer to nothing, with a Unix socket")
            .isEqualTo(Frame.ERR_UNKNOWN_REQUEST);
        pipe[0].close();
        pipe[1].close();
        rogue.socket().send(ByteBuffer.allocate(4).putInt(Integer.MAX_VALUE).array());
        assertThat(nextError(rogue)).as("a 2 GiB frame").isEqualTo(Frame.ERR_TOO_LARGE);
      }

      try (CurlStream curl = cluster.curl(STREAM)) {
        curl.awaitEvents(100, 10_000);
        LocalCluster.Moved moved =
            cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());

        assertThat(moved.moved()).as(moved.outcome()).isTrue();
        assertThat(curl.exitCode(60)).isZero();
        assertThat(curl.output()).isEqualTo(unmoved);
      }
    }
  }

  private static String unmovedRun(LocalCluster cluster, String stream) throws Exception {
    try (CurlStream curl = cluster.curl(stream)) {
      assertThat(curl.exitCode(60)).as("the unmoved run's exit code").isZero();
      String out = curl.output();
      assertThat(out).endsWith("data: [DONE]\n\n");
      return out;
    }
  }

  private static Connection only(List<Connection> connections) {
    assertThat(connections).as("the stream's connection on node-a").hasSize(1);
    return connections.get(0);
  }

  private static void hello(FrameChannel channel) throws Exception {
    byte[] name = "rogue".getBytes(StandardCharsets.UTF_8);
    channel.write(
        Frame.HELLO, ByteBuffer.allocate(2 + name.length).putShort((short) 1).put(name).array());
    assertThat(channel.read().type()).isEqualTo(Frame.WELCOME);
  }

  private static int nextError(FrameChannel channel) throws Exception {
    Frame f = channel.read();
    assertThat(f).as("a reply").isNotNull();
    assertThat(f.type()).as("reply type").isEqualTo(Frame.ERROR);
    return ByteBuffer.wrap(f.payload()).getShort();
  }
}
