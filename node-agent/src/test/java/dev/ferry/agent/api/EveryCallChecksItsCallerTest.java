// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.service.AgentMetrics;
import dev.ferry.api.client.AgentChannels;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.testbed.Shell;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.netty.GrpcSslContexts;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.handler.ssl.SslContext;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import javax.net.ssl.SSLException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's API, every method of it, against every kind of caller it must turn away: none reaches
 * the service, and each refusal is counted in {@code ferry_agent_callers_refused_total} with its
 * reason. Through the agent's own TLS and {@link CallerCheck}, on real sockets; the service behind
 * them answers UNIMPLEMENTED to whoever reaches it, so what is asserted is who got through.
 *
 * <p>The method list is read from the service's descriptor: an RPC added without deciding who may
 * call it fails {@link #everyMethodIsClassified}.
 */
class EveryCallChecksItsCallerTest {
  /** What a peer agent may call (the source on the target): the rest is the operator's. */
  private static final Set<String> PEER = Set.of("Arrive", "Rehearse", "Status", "Rollback");

  private static final Set<String> OPERATOR_ONLY =
      Set.of("Move", "Commit", "ListConnections", "MoveAddress");

  @TempDir Path dir;
  private Path cluster;
  private Path rogue;
  private Path intruder;
  private Server server;
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final List<String> reached = new CopyOnWriteArrayList<>();

  @BeforeEach
  void agent() throws Exception {
    cluster = SecretVolume.newCa(dir.resolve("cluster"));
    rogue = dir.resolve("rogue");
    Shell.run(SecretVolume.script().toString(), "--rogue", rogue.toString());
    intruder = intruder(cluster, dir.resolve("intruder"));
    AgentMetrics metrics = new AgentMetrics(registry);
    MutualTls tls = SecretVolume.agentTls(cluster, metrics);
    // CallerCheck first, then the note that a call got in.
    server =
        TestAgentServer.start(
            tls, metrics, new NodeAgentGrpc.NodeAgentImplBase() {}, new Reached(reached));
  }

  @AfterEach
  void stop() throws InterruptedException {
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }

  @Test
  void everyMethodIsClassified() {
    Set<String> all =
        methods().stream().map(MethodDescriptor::getBareMethodName).collect(Collectors.toSet());
    Set<String> classified = new java.util.HashSet<>(PEER);
    classified.addAll(OPERATOR_ONLY);
    assertThat(all)
        .as("decide who may call each RPC (CallerCheck), then list it here")
        .isEqualTo(classified);
  }

  @Test
  void aCallerWithoutACertificateReachesNothing() {
    for (MethodDescriptor<?, ?> m : methods()) {
      assertRefused(m, null, "no-certificate", Status.Code.UNAUTHENTICATED);
    }
  }

  @Test
  void aCallerWithARogueCasCertificateReachesNothing() {
    for (MethodDescriptor<?, ?> m : methods()) {
      // The handshake fails: the call never starts, and the refusal is the TLS alert's.
      assertRefused(
          m,
          new TlsFiles(
              cluster.resolve("ca.crt"),
              rogue.resolve("operator.crt"),
              rogue.resolve("operator.key")),
          "unknown-ca",
          Status.Code.UNAVAILABLE);
    }
  }

  @Test
  void aCertificateOfTheClusterCaWithNoFerryRoleReachesNothing() {
    for (MethodDescriptor<?, ?> m : methods()) {
      assertRefused(m, files(intruder, "intruder"), "not-allowed", Status.Code.PERMISSION_DENIED);
    }
  }

  @Test
  void anAgentReachesOnlyWhatAPeerMayCall() {
    for (MethodDescriptor<?, ?> m : methods()) {
      if (OPERATOR_ONLY.contains(m.getBareMethodName())) {
        assertRefused(m, files(cluster, "agent"), "not-allowed", Status.Code.PERMISSION_DENIED);
      } else {
        assertReached(m, files(cluster, "agent"));
      }
    }
  }

  /** The control: without it, a CallerCheck that refused everyone would pass the others. */
  @Test
  void theOperatorReachesEveryMethod() {
    for (MethodDescriptor<?, ?> m : methods()) {
      assertReached(m, files(cluster, "operator"));
    }
  }

  private void assertRefused(
      MethodDescriptor<?, ?> m, TlsFiles caller, String reason, Status.Code code) {
    double before = refusals(reason);
    int reachedBefore = reached.size();

    Status status = call(m, caller);

    assertThat(status.getCode()).as("%s: %s", m.getBareMethodName(), status).isEqualTo(code);
    assertThat(reached.subList(reachedBefore, reached.size()))
        .as("calls of %s that reached the service", m.getBareMethodName())
        .isEmpty();
    assertThat(refusals(reason))
        .as("ferry_agent_callers_refused_total{reason=%s} after a call of %s", reason, m)
        .isGreaterThan(before);
  }

  private void assertReached(MethodDescriptor<?, ?> m, TlsFiles caller) {
    int reachedBefore = reached.size();

    Status status = call(m, caller);

    assertThat(status.getCode())
        .as("%s: %s", m.getBareMethodName(), status)
        .isEqualTo(Status.Code.UNIMPLEMENTED);
    assertThat(reached.subList(reachedBefore, reached.size()))
        .containsExactly(m.getBareMethodName());
  }

  private double refusals(String reason) {
    Counter c = registry.find("ferry.agent.callers.refused").tag("reason", reason).counter();
    return c == null ? 0 : c.count();
  }

  /**
   * One call of {@code m} with an empty message, on a channel of its own (a fresh handshake: a
   * channel that failed one would fail the next calls without a word to the agent); its status.
   */
  private Status call(MethodDescriptor<?, ?> m, TlsFiles caller) {
    ManagedChannel channel =
        AgentChannels.open(
            "127.0.0.1:" + server.getPort(),
            caller == null
                ? trustingOnly(cluster.resolve("ca.crt"))
                : AgentChannels.context(caller));
    try {
      MethodDescriptor<byte[], byte[]> raw =
          MethodDescriptor.<byte[], byte[]>newBuilder()
              .setType(m.getType())
              .setFullMethodName(m.getFullMethodName())
              .setRequestMarshaller(BYTES)
              .setResponseMarshaller(BYTES)
              .build();
      ClientCall<byte[], byte[]> call =
          channel.newCall(raw, CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS));
      CompletableFuture<Status> closed = new CompletableFuture<>();
      call.start(
          new ClientCall.Listener<>() {
            @Override
            public void onClose(Status status, Metadata trailers) {
              closed.complete(status);
            }
          },
          new Metadata());
      call.request(1);
      call.sendMessage(new byte[0]);
      call.halfClose();
      return closed.get(90, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("calling " + m.getFullMethodName(), e);
    } finally {
      channel.shutdownNow();
    }
  }

  /** A client that trusts the agent and presents no certificate. */
  private static SslContext trustingOnly(Path ca) {
    try {
      return GrpcSslContexts.forClient().trustManager(ca.toFile()).build();
    } catch (SSLException e) {
      throw new IllegalStateException(e);
    }
  }

  private static List<MethodDescriptor<?, ?>> methods() {
    return new ArrayList<>(NodeAgentGrpc.getServiceDescriptor().getMethods());
  }

  private static TlsFiles files(Path dir, String name) {
    return new TlsFiles(
        dir.resolve("ca.crt"), dir.resolve(name + ".crt"), dir.resolve(name + ".key"));
  }

  /** A client certificate the cluster CA signed for a name that is no Ferry role. */
  private static Path intruder(Path ca, Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.copy(ca.resolve("ca.crt"), dir.resolve("ca.crt"));
    Shell.run(
        "bash",
        "-c",
        "cd "
            + dir
            + " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out intruder.key"
            + " && openssl req -new -key intruder.key -subj /CN=ferry-intruder -out i.csr"
            + " && printf 'keyUsage=critical,digitalSignature\\nextendedKeyUsage=clientAuth\\n'"
            + " > i.ext && openssl x509 -req -in i.csr -CA "
            + ca.resolve("ca.crt")
            + " -CAkey "
            + ca.resolve("ca.key")
            + " -CAcreateserial -CAserial i.srl -days 30 -extfile i.ext -out intruder.crt");
    return dir;
  }

  /** Notes each call that got past the checks in front of it. */
  private record Reached(List<String> calls) implements ServerInterceptor {
    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
      calls.add(call.getMethodDescriptor().getBareMethodName());
      return next.startCall(call, headers);
    }
  }

  private static final MethodDescriptor.Marshaller<byte[]> BYTES =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            return stream.readAllBytes();
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      };
}
