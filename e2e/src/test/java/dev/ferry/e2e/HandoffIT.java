// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.UnixSocket;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Application handoff end to end: real demo servers (Java blocking, Java Netty, Python) in the pods
 * of two nodes, each node with its real node-agent process, curl as the client, and the source
 * agent's Move (the one implementation of the migration sequence) between them. Every test compares
 * curl's whole output with that of a run that never moved.
 */
class HandoffIT {
  // 7.5 s at 200 tokens/s: moved after 100 tokens, the stream is still going when the test
  // looks for its connection on the nodes after the move (the test checks that it was).
  private static final int TOKENS = 1500;
  private static final String STREAM = "/v1/stream?prompt=the%20ferry%20demo&tokens=" + TOKENS;
  private static final String CLIENT = AgentCluster.Layout.TESTS.subnet() + ".1";
  private AgentCluster cluster;

  @BeforeAll
  static void needsRoot() {
    Testbed.requirePrivileges();
  }

  @BeforeEach
  void start() throws Exception {
    cluster = AgentCluster.start();
  }

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void aJavaStreamMovesWithItsStateAndCurlSeesExactlyWhatAnUnmovedRunSees() throws Exception {
    cluster.a.streamer("--rate", "200");
    cluster.b.streamer("--rate", "200");
    movesIntact(STREAM, TOKENS, unmovedRun(STREAM));
  }

  @Test
  void aNettyStreamMovesToABlockingServerAndCurlSeesWhatAnUnmovedBlockingRunSees()
      throws Exception {
    cluster.a.streamer("--rate", "200", "--io", "netty");
    cluster.b.streamer("--rate", "200");
    String unmovedNetty = unmovedRun(STREAM);
    // The same request to the blocking server: the address alone moves there and back, by Move.
    addressOnly("address-to-b", cluster.a, cluster.b);
    String unmoved = unmovedRun(STREAM);
    addressOnly("address-to-a", cluster.b, cluster.a);
    assertThat(unmovedNetty)
        .as("the Netty server's bytes against the blocking one's")
        .isEqualTo(unmoved);

    movesIntact(STREAM, TOKENS, unmoved);
  }

  @Test
  void aBlockingStreamMovesToANettyServerAndCurlSeesExactlyWhatAnUnmovedRunSees() throws Exception {
    cluster.a.streamer("--rate", "200");
    cluster.b.streamer("--rate", "200", "--io", "netty");
    movesIntact(STREAM, TOKENS, unmovedRun(STREAM));
  }

  @Test
  void aSixtyFourMebibyteStateMovesAndIsVerifiedBeforeTheStreamGoesOn() throws Exception {
    int kv = 64 << 20;
    // Longer: 64 MiB cross before the freeze, which takes seconds on a busy machine.
    int tokens = 2500;
    String stream = "/v1/stream?prompt=big%20cache&tokens=" + tokens;
    cluster.a.streamer("--rate", "200", "--kv-bytes", Integer.toString(kv));
    cluster.b.streamer("--rate", "200", "--kv-bytes", Integer.toString(kv));

    // The tokens after the move are read from the moved cache: a damaged one changes them, and
    // the target application checks the state's checksum before it takes the connection.
    MoveOutcome o = movesIntact(stream, tokens, unmovedRun(stream));
    assertThat(o.getTarget().getConnections(0).getAppStateBytes())
        .as("the state the target application took, whole")
        .isGreaterThanOrEqualTo(kv);
  }

  @Test
  void anApplicationThatIgnoresTheFreezeKeepsItsConnectionStreaming() throws Exception {
    // The source agent waits half a second for the application's answer, not the default 2 s.
    cluster.a.killAgent();
    cluster.a.startAgent(Map.of("FERRY_AGENT_ANSWER_TIMEOUT", "PT0.5S"));
    cluster.a.streamer("--rate", "200", "--ignore-freeze");
    cluster.b.streamer("--rate", "200");
    String unmoved = unmovedRun(STREAM);

    try (CurlStream curl = cluster.curl(STREAM)) {
      curl.awaitEvents(50, 30_000);
      MoveOutcome o = move("ignored", cluster.a, cluster.b);

      assertThat(o.getResult()).as(o.getMessage()).isEqualTo(MoveOutcome.Result.NOTHING_TO_MOVE);
      assertThat(o.getMessage()).contains("kept by its application");
      assertThat(o.getCommitted()).isFalse();
      ConnectionStatus stayed = only(o.getSource());
      assertThat(stayed.getPhase()).as(stayed.getReason()).isEqualTo(ConnectionPhase.STAYED);
      Matcher silence =
          Pattern.compile("sent nothing for (\\d+) ms and did not answer")
              .matcher(stayed.getReason());
      assertThat(silence.find()).as(stayed.getReason()).isTrue();
      assertThat(Long.parseLong(silence.group(1)))
          .as("the agent waited its answer timeout (FERRY_AGENT_ANSWER_TIMEOUT) at least")
          .isGreaterThanOrEqualTo(500);
      assertThat(held(cluster.a)).as("the hold never touched it").isEmpty();
      assertThat(clientsOf(cluster.a.pod)).as("the stream on node-a").hasSize(1);
      assertThat(clientsOf(cluster.b.pod)).as("nothing on node-b").isEmpty();
      addressOnlyOnA();
      assertThat(curl.events())
          .as("the stream was still going when it was looked for")
          .isLessThan(TOKENS);
      assertThat(curl.exitCode(120)).as("curl's exit code").isZero();
      assertThat(curl.output()).isEqualTo(unmoved);
    }
  }

  /**
   * The Python module opens its session again when its agent restarts (an upgrade, say), with every
   * port registered again: the server can still take connections over.
   */
  @Test
  void aPythonServerWhoseAgentRestartedTakesOverAStreamFromTheJavaDemo() throws Exception {
    cluster.a.streamer("--rate", "200");
    cluster.b.pythonStreamer("--rate", "200");
    cluster.b.stopAgent();
    cluster.b.startAgent();
    cluster.b.awaitRegistered(AgentCluster.PORT);
    movesIntact(STREAM, TOKENS, unmovedRun(STREAM));
  }

  /**
   * A target slow to take the header (its plan's check, the pod, the address: a cold agent's first
   * took 172 ms) holds nobody up: the source freezes once the target has answered it, so that time
   * is not in the clients' pause (before, the states waited behind the header, the clients held).
   */
  @Test
  void aTargetSlowToTakeTheHeaderIsWaitedForBeforeTheFreeze() throws Exception {
    // Netty servers: no pre-copy, whose wait for the target (its PRECOPY_HELD answers, behind
    // the header) would cover the header's time before the freeze anyway.
    cluster.a.streamer("--rate", "200", "--io", "netty");
    cluster.b.streamer("--rate", "200", "--io", "netty");
    String unmoved = unmovedRun(STREAM);
    try (CurlStream curl = cluster.curl(STREAM)) {
      curl.awaitEvents(100, 30_000);
      MoveRequest req = cluster.a.moveTo(cluster.b, "slow-header").setFault(SLOW_HEADER).build();
      MoveOutcome o;
      try (AgentClient agent = cluster.a.client("admin")) {
        o = agent.call("Move", s -> s.move(req));
      }

      assertThat(o.getResult()).as(o.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
      // Frozen after the answer: from the header's send to the answer is at least the target's
      // 600 ms (the source's own wait is that less its inventory meanwhile), and the answer came
      // before the 2 s after which the source freezes anyway (SourceMove.READY_WAIT, for an older
      // target).
      var phases = o.getSource().getPhaseMicrosMap();
      assertThat(phases.get("header-answered"))
          .as("from the header's send to the target's ready, in µs, seen before the freeze")
          .isGreaterThanOrEqualTo(600_000L);
      assertThat(phases.get("target-ready"))
          .as("the source's wait for that answer, in µs")
          .isLessThan(2_000_000L);
      assertThat(clientsOf(cluster.b.pod)).as("the stream, on node-b").hasSize(1);
      awaitNoClients(cluster.a.pod);
      assertThat(curl.exitCode(120)).as("curl's exit code (56 would be a reset)").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(unmoved);
    }
  }

  /** The target stalls 600 ms with the header (FaultPoints.HEADER_STALL). */
  private static final String SLOW_HEADER = "target-stalls-on-header";

  @Test
  void aTargetWithoutTheApplicationSendsTheStreamHomeIntact() throws Exception {
    assertThat(targetWithoutTheApplication().getSource().getPhaseMicrosMap())
        .as("COMMIT waited for STAGED")
        .doesNotContainKey("states-to-commit");
  }

  private MoveOutcome targetWithoutTheApplication() throws Exception {
    cluster.a.streamer("--rate", "200");
    String unmoved = unmovedRun(STREAM);

    try (CurlStream curl = cluster.curl(STREAM)) {
      curl.awaitEvents(100, 30_000);
      MoveOutcome o = move("no-target-app", cluster.a, cluster.b);

      assertThat(o.getResult()).as(o.getMessage()).isEqualTo(MoveOutcome.Result.ROLLED_BACK);
      assertThat(o.getMessage())
          .contains("staging on node-b failed", "no application registered port 8080")
          .contains("every connection went back to node-a");
      assertThat(o.getCommitted()).isFalse();
      ConnectionStatus home = only(o.getSource());
      assertThat(home.getPhase()).as(home.getReason()).isEqualTo(ConnectionPhase.ROLLED_BACK);
      assertThat(clientsOf(cluster.a.pod)).as("the stream, back on node-a").hasSize(1);
      assertThat(clientsOf(cluster.b.pod)).as("nothing on node-b").isEmpty();
      addressOnlyOnA();
      assertThat(held(cluster.a)).as("the client is no longer held").isEmpty();
      assertThat(curl.events())
          .as("the stream was still going when it was looked for")
          .isLessThan(TOKENS);
      assertThat(curl.exitCode(120)).as("curl's exit code (56 would be a reset)").isZero();
      assertThat(curl.output()).isEqualTo(unmoved);
      return o;
    }
  }

  /**
   * With ferry.agent.commit-with-states, COMMIT follows the states without waiting for STAGED (the
   * source's status times "states-to-commit" only then): the stream moves as intact as with the two
   * steps.
   */
  @Test
  void withCommitBehindTheStatesAJavaStreamMovesIntact() throws Exception {
    commitWithStates();
    cluster.a.streamer("--rate", "200");
    cluster.b.streamer("--rate", "200");
    MoveOutcome o = movesIntact(STREAM, TOKENS, unmovedRun(STREAM));
    assertThat(o.getSource().getPhaseMicrosMap()).containsKey("states-to-commit");
  }

  /**
   * With ferry.agent.commit-with-states, a COMMIT that went behind the states to a target that
   * could not stage is refused there: the stream goes home intact, as when the source waits for
   * STAGED.
   */
  @Test
  void withCommitBehindTheStatesATargetWithoutTheApplicationRefusesItAndTheStreamGoesHome()
      throws Exception {
    commitWithStates();
    assertThat(targetWithoutTheApplication().getSource().getPhaseMicrosMap())
        .as("COMMIT went behind the states")
        .containsKey("states-to-commit");
  }

  /** Both agents started again with ferry.agent.commit-with-states on. */
  private void commitWithStates() throws Exception {
    for (AgentCluster.Node n : List.of(cluster.a, cluster.b)) {
      n.killAgent();
      n.startAgent(Map.of("FERRY_AGENT_COMMIT_WITH_STATES", "true"));
    }
  }

  @Test
  void garbageOnTheAgentSocketIsRefusedAndTheNextMoveStillWorks() throws Exception {
    cluster.a.streamer("--rate", "200");
    cluster.b.streamer("--rate", "200");
    String unmoved = unmovedRun(STREAM);

    try (FrameChannel rogue = new FrameChannel(UnixSocket.connect(cluster.a.handoffSocket))) {
      rogue.write(Frame.REGISTER, new byte[] {0, 1, 0x1f, (byte) 0x90});
      assertThat(nextError(rogue)).as("anything before HELLO").isEqualTo(Frame.ERR_OUT_OF_ORDER);
      hello(rogue);
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

    // A squatter outside the pod (this test's process) registers the demo's port: registrations are
    // per network namespace, so it may, and it is never asked for the pod's connection.
    try (FrameChannel squatter = new FrameChannel(UnixSocket.connect(cluster.a.handoffSocket))) {
      hello(squatter);
      squatter.write(Frame.REGISTER, new byte[] {0, 1, 0x1f, (byte) 0x90});
      assertThat(squatter.read().type())
          .as("the demo's port, in another network namespace")
          .isEqualTo(Frame.REGISTERED);
      movesIntact(STREAM, TOKENS, unmoved);
      assertThat(squatter.socket().awaitReadable(0))
          .as("the squatter heard nothing of the move")
          .isFalse();
    }
  }

  /**
   * Starts curl on {@code stream} (of {@code tokens} tokens), moves its connection from node A to
   * node B with node A's Move once 100 tokens have arrived, and checks that it moved, where it
   * lives afterwards, and that curl saw exactly {@code unmoved}.
   */
  private MoveOutcome movesIntact(String stream, int tokens, String unmoved) throws Exception {
    try (CurlStream curl = cluster.curl(stream)) {
      curl.awaitEvents(100, 30_000);
      MoveOutcome o = move("handoff", cluster.a, cluster.b);

      assertThat(o.getResult()).as(o.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(o.getCommitted()).isTrue();
      assertThat(only(o.getSource()).getPhase()).isEqualTo(ConnectionPhase.RELEASED);
      ConnectionStatus arrived = only(o.getTarget());
      assertThat(arrived.getPhase()).as(arrived.getReason()).isEqualTo(ConnectionPhase.RESUMED);
      assertThat(arrived.getId()).as("the same connection").isEqualTo(only(o.getSource()).getId());
      assertThat(clientsOf(cluster.b.pod)).as("the stream, on node-b").hasSize(1);
      assertThat(curl.events())
          .as("the stream was still going when it was looked for")
          .isLessThan(tokens);
      awaitNoClients(cluster.a.pod);
      assertThat(held(cluster.a)).as("node-a's hold let go of the client").isEmpty();
      assertThat(curl.exitCode(120)).as("curl's exit code (56 would be a reset)").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(unmoved);
      return o;
    }
  }

  /** The source agent's Move of every connection on the port, and the service address. */
  private MoveOutcome move(String id, AgentCluster.Node from, AgentCluster.Node to) {
    MoveRequest req = from.moveTo(to, id).build();
    try (AgentClient agent = from.client("admin")) {
      return agent.call("Move", s -> s.move(req));
    }
  }

  /** A Move with no connection open: the service address alone goes to the other pod. */
  private void addressOnly(String id, AgentCluster.Node from, AgentCluster.Node to)
      throws Exception {
    assertThat(clientsOf(from.pod)).as("no connection while the address moves").isEmpty();
    MoveOutcome o = move(id, from, to);
    assertThat(o.getResult()).as(o.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
    assertThat(o.getSource().getConnectionsList()).isEmpty();
  }

  private String unmovedRun(String stream) throws Exception {
    try (CurlStream curl = cluster.curl(stream)) {
      assertThat(curl.exitCode(120)).as("the unmoved run's exit code").isZero();
      String out = curl.output();
      assertThat(out).endsWith("data: [DONE]\n\n");
      // A run ends when the server closes: the next one must not find this one on the nodes.
      awaitNoClients(cluster.a.pod);
      awaitNoClients(cluster.b.pod);
      return out;
    }
  }

  /**
   * The pod's established connections on the service port from the client (ss's lines, IPv4-mapped
   * addresses of dual-stack sockets written as IPv4).
   */
  private static List<String> clientsOf(Host pod) {
    return pod.run("ss", "-Htn", "state", "established", "( sport = :" + AgentCluster.PORT + " )")
        .lines()
        .map(l -> l.replace("[::ffff:", "").replace("]", ""))
        .filter(l -> l.contains(" " + CLIENT + ":"))
        .toList();
  }

  /**
   * Checks that the service address is on pod A, and waits until it leaves pod B: the target puts
   * it there (unrouted) when the move starts, and drops it when the move ends without a commit.
   */
  private void addressOnlyOnA() throws InterruptedException {
    String vip = " " + AgentCluster.VIP + "/32 ";
    assertThat(cluster.a.pod.run("ip", "-o", "addr", "show")).as("pod A's addresses").contains(vip);
    long deadline = System.currentTimeMillis() + 30_000;
    while (cluster.b.pod.run("ip", "-o", "addr", "show").contains(vip)) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("the service address is still on pod B");
      }
      Thread.sleep(20);
    }
  }

  /** Waits until the pod has no connection from the client (a closing socket takes a moment). */
  private static void awaitNoClients(Host pod) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 30_000;
    List<String> left = clientsOf(pod);
    while (!left.isEmpty()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError(pod + " still has connections from the client: " + left);
      }
      Thread.sleep(20);
      left = clientsOf(pod);
    }
  }

  /** The connections the node's hold (its agent's pinned BPF map) holds now. */
  private static List<?> held(AgentCluster.Node node) throws Exception {
    try (NetNamespace ns = NetNamespace.named(node.host.netns());
        ConnectionHold hold = ConnectionHold.reopen(node.pinDir, "eth0", ns)) {
      return hold.held();
    }
  }

  private static ConnectionStatus only(MigrationStatus s) {
    assertThat(s.getConnectionsList()).as("the stream's connection on " + s.getNode()).hasSize(1);
    return s.getConnections(0);
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
