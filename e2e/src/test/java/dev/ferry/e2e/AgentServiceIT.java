// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.plan.PlanSigner;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalMessage;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.Endpoint;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.api.v1alpha1.NodeAgentGrpc.NodeAgentBlockingStub;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.api.v1alpha1.PrecopyChunk;
import dev.ferry.api.v1alpha1.SignedPlan;
import dev.ferry.testbed.FakeImds;
import dev.ferry.testbed.RbacCalls;
import dev.ferry.testbed.Shell;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.handler.ssl.SslContextBuilder;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Two real node-agents, as processes in two node namespaces, driven through their gRPC API over
 * mTLS: the demo stream moves from a pod on node A to a pod on node B with the L2 address mover.
 */
class AgentServiceIT {
  // 30 s at 100 tokens/s: long enough that the stream is still going when the CLI, a fresh JVM,
  // moves it back on a busy machine (10 s was not).
  private static final int TOKENS = 3000;
  private static final String STREAM = "/v1/stream?prompt=agents&tokens=" + TOKENS;
  private static AgentCluster cluster;
  private static String reference;

  @BeforeAll
  static void start() throws Exception {
    cluster = AgentCluster.start();
    // Unmoved and fast (the tokens do not depend on the rate): 30 s less than at 100 a second.
    reference = cluster.unmovedOutput(STREAM);
    cluster.a.streamer("--rate", "100");
    cluster.b.streamer("--rate", "100");
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void theDemoStreamMovesBetweenPodsThroughTheAgentsApi() throws Exception {
    try (Calls toA = channel(cluster.a, "admin");
        Calls toB = channel(cluster.b, "admin");
        CurlStream curl = cluster.curl(STREAM)) {
      NodeAgentBlockingStub a = stub(toA);
      NodeAgentBlockingStub b = stub(toB);
      curl.awaitEvents(50, 10_000);
      String id = "move-1";
      String vip = AgentCluster.VIP + "/32";

      MoveRequest move = signer("admin").signed(cluster.a.moveTo(cluster.b, id).build());
      // One call: the agents run the whole move between themselves.
      MoveOutcome moved = a.move(move);
      assertThat(moved.getResult()).as(moved.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(moved.getCommitted()).isTrue();
      assertThat(phases(moved.getSource())).containsExactly(ConnectionPhase.RELEASED);
      assertThat(phases(moved.getTarget())).containsExactly(ConnectionPhase.RESUMED);
      assertThat(moved.getApiCallsDuringPause())
          .as("nobody called the source agent while its client was held")
          .isZero();
      // Idempotent: a caller that timed out asks again and learns how it ended, nothing more.
      MoveOutcome again = a.move(move);
      assertThat(again.getResult()).isEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(phases(again.getTarget())).containsExactly(ConnectionPhase.RESUMED);
      // A rollback after the commit point leaves the connection where it lives.
      MigrationStatus afterCommit = b.rollback(ref(id));
      assertThat(afterCommit.getCommitted()).isTrue();
      assertThat(phases(afterCommit)).containsExactly(ConnectionPhase.RESUMED);

      String firstMove =
          "pause "
              + moved.getPauseMicros()
              + " µs; source phases (µs): "
              + a.status(ref(id)).getPhaseMicrosMap()
              + "; target: "
              + b.status(ref(id)).getPhaseMicrosMap()
              + "; curl's longest gap so far "
              + curl.longestGapMillis()
              + " ms";
      System.out.println("A to B through the API: " + firstMove);

      // And back, with the CLI, while the same stream goes on: the agents are warm now.
      AgentCluster.CliRun back =
          cluster.cli(
              "migrate",
              "--id",
              "move-2",
              "--from",
              cluster.b.api(),
              "--from-pod",
              cluster.b.pod.netns(),
              "--to",
              cluster.a.api(),
              "--to-pod",
              cluster.a.pod.netns(),
              "--from-node",
              cluster.b.name,
              "--to-node",
              cluster.a.name,
              "--port",
              String.valueOf(AgentCluster.PORT),
              "--address",
              vip,
              "--from-host-interface",
              cluster.b.pod.podPort(),
              "--to-host-interface",
              cluster.a.pod.podPort());
      assertThat(back.exitCode(60)).as(back.output()).isZero();
      assertThat(back.output()).contains("migration move-2 completed");
      assertThat(curl.events())
          .as("the stream was still going when it moved back")
          .isLessThan(TOKENS);

      assertThat(curl.exitCode(60)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      System.out.println(
          "B to A with the CLI: source phases (µs): "
              + b.status(ref("move-2")).getPhaseMicrosMap()
              + "; target: "
              + a.status(ref("move-2")).getPhaseMicrosMap()
              + "; curl's longest gap overall "
              + curl.longestGapMillis()
              + " ms");
      String metrics =
          cluster.client.run("curl", "-s", "http://" + cluster.b.ip + ":9400/q/metrics");
      assertThat(metrics).contains("ferry_agent_phase_seconds_count{phase=\"stage\"}");
      assertThat(metrics).contains("ferry_agent_phase_seconds_count{phase=\"resume\"}");
      assertThat(cluster.client.run("curl", "-s", "http://" + cluster.a.ip + ":9400/q/metrics"))
          .contains("ferry_agent_phase_seconds_count{phase=\"export\"}")
          .contains("ferry_agent_phase_seconds_sum{phase=\"freeze\"}");
    }
  }

  @Test
  void anApplicationRunningAsAnUnprivilegedUserCanReachTheHandoffSocket() throws Exception {
    // The socket's directory is the test's private one; in a cluster it is a hostPath (0755).
    Files.setPosixFilePermissions(cluster.dir, PosixFilePermissions.fromString("rwx--x--x"));
    String connect =
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect('"
            + cluster.a.handoffSocket
            + "'); print('connected')";
    Process p =
        cluster
            .a
            .pod
            .process(
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                connect)
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as(out).isZero();
    assertThat(out).contains("connected");
  }

  @Test
  void callersWithoutTheRightCertificateAreRefusedLoggedAndCounted() throws Exception {
    Path rogue = cluster.dir.resolve("rogue");
    Shell.run(Builds.repoFile("scripts/ferry-certs.sh").toString(), "--rogue", rogue.toString());
    MigrationRef nothing = ref("nothing");
    try (Calls none = channel(cluster.a, null);
        Calls untrusted = channel(cluster.a, rogue, "operator");
        Calls peer = channel(cluster.a, "agent-node-b")) {
      assertThatThrownBy(() -> stub(none).status(nothing))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED));
      // A JDK client offers only a certificate from an issuer the server names: the rogue one
      // arrives with none, and is refused as such.
      assertThatThrownBy(() -> stub(untrusted).status(nothing))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED));
      assertThatThrownBy(() -> stub(peer).move(MoveRequest.getDefaultInstance()))
          .as("a peer agent may hand over states, not start a move")
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED));
      assertThatThrownBy(() -> stub(peer).status(nothing))
          .as("but it may ask for a status")
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
    }
    String metrics = cluster.client.run("curl", "-s", "http://" + cluster.a.ip + ":9400/q/metrics");
    assertThat(metrics)
        .contains("ferry_agent_callers_refused_total{reason=\"no-certificate\"} 2.0")
        .contains("ferry_agent_callers_refused_total{reason=\"not-allowed\"} 1.0");
    assertThat(cluster.a.log)
        .anyMatch(l -> l.contains("refused") && l.contains("may not call Move"));
    assertThat(cluster.a.log)
        .anyMatch(l -> l.contains("refused") && l.contains("client certificate"));
  }

  /**
   * The target agent hears of a move only from the source agent; it takes states only for what the
   * operator (or an admin) signed. Any holder of an agent certificate tries here.
   */
  @Test
  void aTargetTakesStatesOnlyForThePodPortsAndAddressOfASignedPlan() throws Exception {
    PodRef podB = PodRef.newBuilder().setNetns(cluster.b.podNetns()).build();
    PlanSigner operator = signer("operator");
    MoveRequest toB = cluster.a.moveTo(cluster.b, "forged").build();
    ArrivalHeader header =
        ArrivalHeader.newBuilder()
            .setMigrationId("forged")
            .setSourceNode("node-a")
            .setTargetPod(podB)
            .setAddress(toB.getAddress())
            .build();
    // A state for the pod's real port and address, offered ahead of a freeze.
    ConnectionId served =
        ConnectionId.newBuilder()
            .setLocal(endpoint(AgentCluster.VIP, AgentCluster.PORT))
            .setRemote(endpoint(AgentCluster.LAN_SELF, 40000))
            .build();
    ArrivalMessage offer =
        ArrivalMessage.newBuilder()
            .setPrecopy(PrecopyChunk.newBuilder().setId(served).setSnapshot(true).setLength(0))
            .build();

    String fromA = "agent-node-a";
    assertThat(arrive(fromA, header, offer))
        .as("no plan")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED))
        .satisfies(s -> assertThat(s.getDescription()).contains("carries no signed plan"));
    assertThat(arrive(fromA, withPlan(header, signer("agent").signed(toB).getPlan()), offer))
        .as("a plan an agent signed")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED))
        .satisfies(s -> assertThat(s.getDescription()).contains("CN=ferry-node-agent"));
    MoveRequest otherPort = toB.toBuilder().clearPorts().addPorts(9).build();
    assertThat(arrive(fromA, withPlan(header, operator.signed(otherPort).getPlan()), offer))
        .as("the operator's plan, for another port")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED))
        .satisfies(s -> assertThat(s.getDescription()).contains("not on the planned ports [9]"));
    MoveRequest elsewhere =
        toB.toBuilder().setTargetPod(PodRef.newBuilder().setNetns("/proc/1/ns/net")).build();
    assertThat(arrive(fromA, withPlan(header, operator.signed(elsewhere).getPlan()), offer))
        .as("the operator's plan, for another pod")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED))
        .satisfies(s -> assertThat(s.getDescription()).contains("target_pod"));
    SignedPlan aToB = operator.signed(toB).getPlan();
    assertThat(arrive("agent-node-b", withPlan(header, aToB), offer))
        .as("the operator's plan, delivered by an agent that is not its source")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED))
        .satisfies(
            s ->
                assertThat(s.getDescription())
                    .contains(
                        "its source is node node-a, and the states come from the agent of"
                            + " node node-b"));
    assertThat(arrive("agent", withPlan(header, aToB), offer))
        .as("the operator's plan, delivered with the certificate all agents once shared")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED))
        .satisfies(s -> assertThat(s.getDescription()).contains("names no agent"));
    MoveRequest bToA = cluster.b.moveTo(cluster.a, "forged").build();
    assertThat(
            arrive(
                "agent-node-b",
                withPlan(
                    header.toBuilder().setSourceNode("node-b").build(),
                    operator.signed(bToA.toBuilder().setTargetPod(podB).build()).getPlan()),
                offer))
        .as("the operator's plan for a move to node-a, delivered to node-b")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED))
        .satisfies(s -> assertThat(s.getDescription()).contains("its target is node node-a"));
    // The control: the operator's plan, from its source's agent, lets the same offer in. While it
    // is under way, only that agent may ask for its status.
    List<Status> peers = new ArrayList<>();
    Status control =
        arrive(
            fromA,
            withPlan(header, aToB),
            offer,
            () -> {
              for (String who : List.of("agent-node-b", fromA)) {
                try (Calls peer = channel(cluster.b, who)) {
                  stub(peer).status(ref("forged"));
                  peers.add(Status.OK);
                } catch (StatusRuntimeException e) {
                  peers.add(e.getStatus());
                } catch (Exception e) {
                  throw new AssertionError(e);
                }
              }
            });
    assertThat(control.getCode())
        .as("the operator's plan for this pod, port and address, from node-a's agent: %s", control)
        .isEqualTo(Status.Code.OK);
    assertThat(peers.get(0).getCode())
        .as("%s", peers.get(0))
        .isEqualTo(Status.Code.PERMISSION_DENIED);
    assertThat(peers.get(0).getDescription()).contains("its states came from node node-a");
    assertThat(peers.get(1).getCode()).as("%s", peers.get(1)).isEqualTo(Status.Code.OK);
    // That stream ended without a commit, so node-b rolled the plan back: its source cannot send
    // it again (a plan runs once). The operator's next attempt at the same migration is signed
    // anew, and gets in.
    assertThat(arrive(fromA, withPlan(header, aToB), offer))
        .as("the control's plan, sent again after its rollback")
        .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION))
        .satisfies(
            s ->
                assertThat(s.getDescription())
                    .contains("was rolled back here, and a plan runs once"));
    assertThat(arrive(fromA, withPlan(header, operator.signed(toB).getPlan()), offer))
        .as("the operator's next attempt at the same migration")
        .satisfies(s -> assertThat(s.getCode()).as("%s", s).isEqualTo(Status.Code.OK));
    // A Move whose caller did not sign it freezes nothing.
    try (Calls toA = channel(cluster.a, "admin")) {
      assertThatThrownBy(() -> stub(toA).move(toB))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
                assertThat(e.getStatus().getDescription()).contains("carries no signed plan");
              });
      assertThatThrownBy(() -> stub(toA).status(ref("forged")))
          .as("the source never began it")
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
    }
  }

  /**
   * A prepared move (prepare_only, as for an EC2 rebalance recommendation) pre-copies the state and
   * freezes nothing; the stream goes on, and its appends go on reaching the target. Asked to move
   * later, it freezes and moves, and the pause carries only what changed since the last append.
   */
  @Test
  void aPreparedMoveHoldsNobodyUntilItIsAskedToMoveAndThenMovesTheStreamIntact() throws Exception {
    try (Calls toA = channel(cluster.a, "admin");
        CurlStream curl = cluster.curl(STREAM)) {
      NodeAgentBlockingStub a = stub(toA);
      curl.awaitEvents(20, 10_000);
      String id = "prepared-then-moved";
      MoveRequest.Builder move = cluster.a.moveTo(cluster.b, id);

      MoveOutcome prepared = prepare(a, move);
      assertThat(prepared.getMessage()).contains("nothing is frozen");
      assertThat(prepared.getSource().getConnectionsList())
          .as("nothing frozen, held or exported on the source")
          .isEmpty();
      assertThat(prepared.getPauseMicros()).isZero();
      // The client streams on while the move waits: 150 tokens at 100 a second.
      int before = curl.events();
      curl.awaitEvents(before + 150, 30_000);
      assertThat(a.move(signer("admin").signed(move.clone().setPrepareOnly(true).build())))
          .as("asked to prepare again, it answers the same")
          .extracting(MoveOutcome::getResult)
          .isEqualTo(MoveOutcome.Result.PREPARED);

      MoveOutcome moved = a.move(signer("admin").signed(move.build()));

      assertThat(moved.getResult()).as(moved.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(phases(moved.getSource())).containsExactly(ConnectionPhase.RELEASED);
      assertThat(phases(moved.getTarget())).containsExactly(ConnectionPhase.RESUMED);
      long inThePause = moved.getSource().getConnections(0).getAppStateBytes();
      long whole = moved.getTarget().getConnections(0).getAppStateBytes();
      assertThat(inThePause)
          .as(
              "state bytes carried inside the pause (%d of the %d the target application holds):"
                  + " the appends of the wait reached the target before the freeze",
              inThePause, whole)
          .isLessThan(whole / 4);
      System.out.printf(
          "prepared, then moved: %d state bytes in the pause of %d; pause %.1f ms%n",
          inThePause, whole, moved.getPauseMicros() / 1e3);
      assertThat(curl.exitCode(60)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output").isEqualTo(reference);
      // The address goes back to node-a, where the other tests expect it: it alone moves now.
      try (Calls toB = channel(cluster.b, "admin")) {
        MoveOutcome back =
            stub(toB)
                .move(signer("admin").signed(cluster.b.moveTo(cluster.a, id + "-back").build()));
        assertThat(back.getResult()).as(back.getMessage()).isEqualTo(MoveOutcome.Result.COMPLETED);
      }
    }
  }

  /**
   * The target's agent restarts while a move waits prepared: the source ends the move at once,
   * having held nobody, and says why to the next caller; the stream goes on from node-a.
   */
  @Test
  void aPreparedMoveWhoseTargetAgentRestartsEndsAtOnceAndItsClientStreamsOn() throws Exception {
    try (Calls toA = channel(cluster.a, "admin");
        CurlStream curl = cluster.curl(STREAM)) {
      NodeAgentBlockingStub a = stub(toA);
      curl.awaitEvents(20, 10_000);
      MoveRequest.Builder move = cluster.a.moveTo(cluster.b, "prepared-target-restarts");
      prepare(a, move);

      cluster.b.killAgent();
      MoveOutcome ended = null;
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (System.nanoTime() < until) {
        ended = a.move(signer("admin").signed(move.clone().setPrepareOnly(true).build()));
        if (ended.getResult() != MoveOutcome.Result.PREPARED) {
          break;
        }
        Thread.sleep(100);
      }
      cluster.b.startAgent();
      cluster.b.awaitRegistered(AgentCluster.PORT);

      assertThat(ended.getResult())
          .as(ended.getMessage())
          .isEqualTo(MoveOutcome.Result.ROLLED_BACK);
      assertThat(ended.getMessage())
          .contains("the stream to the target broke while prepared")
          .contains("nothing was frozen");
      streamsOnIntact(curl);
    }
  }

  /**
   * The stream goes on from node-a, untouched so far: a second more of tokens, every byte as the
   * unmoved stream's, no reset. (Not to its end: the moves above check that, and each 30 s stream
   * awaited is 30 s more of the suite.)
   */
  private static void streamsOnIntact(CurlStream curl) throws InterruptedException {
    curl.awaitEvents(curl.events() + 100, 30_000);
    assertThat(curl.alive()).as("curl still streaming").isTrue();
    assertThat(reference).as("the unmoved stream").startsWith(curl.output());
  }

  /** Move with prepare_only: PREPARED, with the state of the one stream pre-copied. */
  private static MoveOutcome prepare(NodeAgentBlockingStub a, MoveRequest.Builder move)
      throws Exception {
    MoveOutcome prepared =
        a.move(signer("admin").signed(move.clone().setPrepareOnly(true).build()));
    assertThat(prepared.getResult())
        .as(prepared.getMessage())
        .isEqualTo(MoveOutcome.Result.PREPARED);
    assertThat(prepared.getMessage()).contains("the state of 1 connection(s) is pre-copied");
    return prepared;
  }

  /** A prepared move given up (Rollback) has held nobody: its client streams on, on node-a. */
  @Test
  void aPreparedMoveRolledBackHeldNobodyAndCannotBeMovedAfterwards() throws Exception {
    try (Calls toA = channel(cluster.a, "admin");
        CurlStream curl = cluster.curl(STREAM)) {
      NodeAgentBlockingStub a = stub(toA);
      curl.awaitEvents(20, 10_000);
      String id = "prepared-then-rolled-back";
      MoveRequest.Builder move = cluster.a.moveTo(cluster.b, id);
      prepare(a, move);

      MigrationStatus back = a.rollback(ref(id));

      assertThat(back.getCommitted()).isFalse();
      assertThat(back.getConnectionsList())
          .as("nothing was frozen: the one stream stayed, and the status says why")
          .singleElement()
          .satisfies(
              c -> {
                assertThat(c.getPhase()).isEqualTo(ConnectionPhase.STAYED);
                assertThat(c.getReason()).isEqualTo("not frozen: rolled back while prepared");
              });
      MoveOutcome late = a.move(signer("admin").signed(move.build()));
      assertThat(late.getResult())
          .as("a Move after the rollback learns how the move ended: %s", late.getMessage())
          .isEqualTo(MoveOutcome.Result.ROLLED_BACK);
      assertThat(late.getMessage())
          .contains("rolled back while prepared; nothing was frozen: the connections stayed on");
      assertThat(phases(late.getSource())).containsExactly(ConnectionPhase.STAYED);
      streamsOnIntact(curl);
    }
  }

  @Test
  void aMoveTheTargetRefusesBeforeTheFreezeIsRolledBackAndItsClientStreamsOn() throws Exception {
    try (Calls toA = channel(cluster.a, "admin");
        CurlStream curl = cluster.curl(STREAM)) {
      curl.awaitEvents(20, 10_000);
      // A target pod that is gone by the time the move arrives: node-b refuses the header.
      MoveRequest toNowhere =
          cluster.a.moveTo(cluster.b, "refused-by-target").build().toBuilder()
              .setTargetPod(PodRef.newBuilder().setNetns("/var/run/netns/ferry-no-such-pod"))
              .build();
      MoveOutcome o = stub(toA).move(signer("admin").signed(toNowhere));

      assertThat(o.getResult())
          .as("nothing moved, so the move did not complete: %s", o.getMessage())
          .isEqualTo(MoveOutcome.Result.ROLLED_BACK);
      assertThat(o.getCommitted()).isFalse();
      assertThat(o.getMessage())
          .contains("FAILED_PRECONDITION: target_pod: no such pod network namespace on node node-b")
          .contains("ferry-no-such-pod");
      assertThat(o.getMessage()).contains("nothing was frozen: the connections stayed on node-a");
      assertThat(o.getSource().getConnectionsList())
          .as("the stream's connection, named where it stays")
          .singleElement()
          .satisfies(
              c -> {
                assertThat(c.getPhase()).isEqualTo(ConnectionPhase.STAYED);
                assertThat(c.getReason()).startsWith("not frozen: ");
              });
      // Asked only to prepare, it says the same: nothing is prepared for a target that refused.
      MoveRequest prepareForNowhere =
          toNowhere.toBuilder()
              .setMigrationId("prepare-refused-by-target")
              .setPrepareOnly(true)
              .build();
      MoveOutcome p = stub(toA).move(signer("admin").signed(prepareForNowhere));
      assertThat(p.getResult()).as(p.getMessage()).isEqualTo(MoveOutcome.Result.ROLLED_BACK);
      assertThat(p.getMessage()).contains("no such pod network namespace on node node-b");
      assertThat(curl.exitCode(90)).as("curl's exit code").isZero();
      assertThat(curl.output()).as("curl's whole output, served by node-a").isEqualTo(reference);
    }
  }

  /**
   * The application dies while its connection is frozen, and the hold limit passes before the move
   * can export it: the source gives the connection back, finds nobody to take it, resets the client
   * so that it does not take the end for a normal one, and keeps nothing. (A rollback once tried to
   * rebuild such a connection from a state it never had, failed with a NullPointerException, and
   * left its migration unfinished.)
   */
  @Test
  void anApplicationThatDiesWhileItsConnectionIsFrozenLeavesItsClientResetAndNothingHeld()
      throws Exception {
    int port = AgentCluster.PORT + 2;
    String listen = "0.0.0.0:" + port;
    Process dying = cluster.a.streamer("--rate", "100", "--listen", listen, "--name", "dying-a");
    Process standby =
        cluster.b.streamer("--rate", "100", "--listen", listen, "--name", "standby-b");
    try (Calls toA = channel(cluster.a, "admin");
        CurlStream curl = cluster.curl(port, STREAM, java.time.Duration.ofSeconds(120))) {
      cluster.a.awaitRegistered(port);
      cluster.b.awaitRegistered(port);
      curl.awaitEvents(20, 10_000);
      String id = "application-dies-frozen";
      MoveRequest move =
          cluster
              .a
              .moveTo(cluster.b, id)
              .clearPorts()
              .addPorts(port)
              // The move stalls 4 s after the freeze, before the export: the application is
              // killed at once, and its connection's hold limit passes within the stall.
              .setHoldLimitMs(2_500)
              .setFault("source-after-freeze/stall")
              .build();
      int mark = cluster.a.logMark();
      CompletableFuture<MoveOutcome> moved =
          CompletableFuture.supplyAsync(() -> stub(toA).move(signer("admin").signed(move)));
      cluster.a.awaitLine(mark, "fault point source-after-freeze reached: stalling");
      dying.destroyForcibly().waitFor();

      MoveOutcome o = moved.get(90, TimeUnit.SECONDS);

      assertThat(o.getResult()).as(o.getMessage()).isNotEqualTo(MoveOutcome.Result.COMPLETED);
      assertThat(o.getMessage())
          .as("what the caller is told")
          .doesNotContain("rolling back failed")
          .doesNotContain("retry with Rollback");
      assertThat(curl.exitCode(30))
          .as("curl's exit code: 56, the connection was reset (a FIN would be 18, a hang -1)")
          .isEqualTo(56);
      assertThat(o.getSource().getConnectionsList())
          .as("the connection could neither move nor stay")
          .singleElement()
          .satisfies(
              c -> {
                assertThat(c.getPhase()).isEqualTo(ConnectionPhase.FAILED);
                assertThat(c.getReason()).contains("its application is gone");
              });
      // A caller that retries the rollback anyway learns the same, and nothing is rebuilt.
      assertThat(phases(stub(toA).rollback(ref(id)))).containsExactly(ConnectionPhase.FAILED);
    } finally {
      dying.destroyForcibly().waitFor();
      standby.destroyForcibly().waitFor();
    }
  }

  /**
   * One Arrive on node-b's agent, as the peer agent whose certificate is {@code who}: the header,
   * one message, then the stream's end; how it closed.
   */
  private static Status arrive(String who, ArrivalHeader header, ArrivalMessage then)
      throws Exception {
    return arrive(who, header, then, () -> {});
  }

  /** As above; {@code meanwhile} runs once the target answered {@code then}, before the end. */
  private static Status arrive(
      String who, ArrivalHeader header, ArrivalMessage then, Runnable meanwhile) throws Exception {
    try (Calls peer = channel(cluster.b, who)) {
      CompletableFuture<Status> closed = new CompletableFuture<>();
      CompletableFuture<ArrivalReply> answered = new CompletableFuture<>();
      StreamObserver<ArrivalMessage> out =
          NodeAgentGrpc.newStub(peer.channel())
              .withDeadlineAfter(60, TimeUnit.SECONDS)
              .arrive(
                  new StreamObserver<>() {
                    @Override
                    public void onNext(ArrivalReply reply) {
                      answered.complete(reply);
                    }

                    @Override
                    public void onError(Throwable t) {
                      closed.complete(Status.fromThrowable(t));
                    }

                    @Override
                    public void onCompleted() {
                      closed.complete(Status.OK);
                    }
                  });
      out.onNext(ArrivalMessage.newBuilder().setHeader(header).build());
      out.onNext(then);
      CompletableFuture.anyOf(answered, closed).get(90, TimeUnit.SECONDS);
      if (!closed.isDone()) {
        meanwhile.run();
      }
      // Ending the stream without a commit: the target drops what it took, and answers OK.
      out.onCompleted();
      return closed.get(90, TimeUnit.SECONDS);
    }
  }

  private static ArrivalHeader withPlan(ArrivalHeader h, SignedPlan plan) {
    return h.toBuilder().setPlan(plan).build();
  }

  private static PlanSigner signer(String who) {
    return new PlanSigner(TlsFiles.inDirectory(cluster.certs, who));
  }

  private static Endpoint endpoint(String ip, int port) throws Exception {
    return Endpoint.newBuilder()
        .setIp(ByteString.copyFrom(InetAddress.getByName(ip).getAddress()))
        .setPort(port)
        .build();
  }

  @Test
  void theAgentReportsASpotInterruptionFromItsMetadataServiceOnItsNode() throws Exception {
    InetAddress lan = InetAddress.getByName(AgentCluster.LAN_SELF);
    KubernetesMockServer api = ApiServer.server(); // RBAC as the chart grants it
    try (FakeImds imds = FakeImds.start(lan)) {
      api.init(lan, 0);
      KubernetesClient kube = api.createClient();
      kube.nodes()
          .resource(
              new NodeBuilder().withNewMetadata().withName(cluster.b.name).endMetadata().build())
          .create();
      cluster.b.killAgent();
      cluster.b.startAgent(
          Map.of(
              "FERRY_AGENT_IMDS_ENABLED",
              "true",
              "FERRY_AGENT_IMDS_ENDPOINT",
              imds.endpoint().toString(),
              "KUBERNETES_MASTER",
              "http://" + AgentCluster.LAN_SELF + ":" + api.getPort(),
              "KUBERNETES_AUTH_TRYKUBECONFIG",
              "false",
              "KUBERNETES_AUTH_TRYSERVICEACCOUNT",
              "false",
              "KUBERNETES_AUTH_TOKEN",
              // The chart grants an agent these calls only where it watches its IMDS.
              RbacCalls.Caller.of("node-agent").with("imds").token()));
      // Quiet first: the agent polls and finds nothing to report.
      long quietUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
      while (System.nanoTime() < quietUntil) {
        assertThat(condition(kube, "SpotInterruptionNotice")).isNull();
        Thread.sleep(200);
      }
      assertThat(imds.tokensIssued()).as("the agent asked for an IMDSv2 token").isPositive();

      imds.instanceAction("{\"action\": \"terminate\", \"time\": \"2026-11-23T10:02:00Z\"}");
      long announced = System.nanoTime();
      NodeCondition reported = null;
      // The agent polls every 2 s, and reports within 5 s on a quiet machine (printed below); the
      // test waits for the report itself, so that a busy machine does not fail it.
      while (reported == null && System.nanoTime() - announced < TimeUnit.SECONDS.toNanos(60)) {
        reported = condition(kube, "SpotInterruptionNotice");
        Thread.sleep(20);
      }
      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - announced);
      System.out.println("spot interruption on the Node " + millis + " ms after IMDS announced it");
      assertThat(reported).as("the Node's SpotInterruptionNotice condition").isNotNull();
      assertThat(reported.getStatus()).isEqualTo("True");
      assertThat(reported.getMessage()).contains("terminate").contains("2026-11-23T10:02:00Z");
      // The Event follows the condition: Nodes' Events live in the default namespace.
      List<Event> events = List.of();
      long conditionSeen = System.nanoTime();
      while (events.isEmpty() && System.nanoTime() - conditionSeen < TimeUnit.SECONDS.toNanos(60)) {
        events =
            kube.v1().events().inNamespace("default").list().getItems().stream()
                .filter(e -> e.getInvolvedObject().getName().equals(cluster.b.name))
                .filter(e -> e.getReason().equals("SpotInterruption"))
                .toList();
        Thread.sleep(20);
      }
      assertThat(events).as("the SpotInterruption Event on the Node").hasSize(1);
      assertThat(cluster.client.run("curl", "-s", "http://" + cluster.b.ip + ":9400/q/metrics"))
          .contains("ferry_agent_interruption_notices_total");
    } finally {
      api.destroy();
    }
  }

  private static NodeCondition condition(KubernetesClient kube, String type) {
    Node node = kube.nodes().withName(cluster.b.name).get();
    if (node.getStatus() == null || node.getStatus().getConditions() == null) {
      return null;
    }
    return node.getStatus().getConditions().stream()
        .filter(c -> c.getType().equals(type))
        .findFirst()
        .orElse(null);
  }

  private static List<ConnectionPhase> phases(MigrationStatus s) {
    return s.getConnectionsList().stream().map(ConnectionStatus::getPhase).distinct().toList();
  }

  private static MigrationRef ref(String id) {
    return MigrationRef.newBuilder().setMigrationId(id).build();
  }

  /** A channel to one agent, closed after the test. */
  private record Calls(ManagedChannel channel) implements AutoCloseable {
    @Override
    public void close() {
      channel.shutdownNow();
    }
  }

  private static NodeAgentBlockingStub stub(Calls c) {
    return NodeAgentGrpc.newBlockingStub(c.channel()).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  private static Calls channel(AgentCluster.Node node, String who) throws Exception {
    return channel(node, cluster.certs, who);
  }

  /**
   * A channel from the client namespace's point of view: the test process reaches the nodes' LAN
   * through it.
   */
  private static Calls channel(AgentCluster.Node node, Path certs, String who) throws Exception {
    SslContextBuilder tls =
        GrpcSslContexts.forClient().trustManager(cluster.certs.resolve("ca.crt").toFile());
    if (who != null) {
      tls.keyManager(certs.resolve(who + ".crt").toFile(), certs.resolve(who + ".key").toFile());
    }
    return new Calls(
        NettyChannelBuilder.forTarget(node.api())
            .overrideAuthority("ferry-node-agent")
            .sslContext(tls.build())
            .build());
  }
}
