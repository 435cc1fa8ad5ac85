// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.ferry.api.client.AgentChannels;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.testbed.Shell;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A caller whose certificate the agent's API refuses learns why from the TLS alert ({@code
 * unknown_ca}, {@code bad_certificate}; not {@code internal_error}), and the agent counts the
 * refusal with the caller's address (not {@code null:-1}). Through the agent's own gRPC server
 * setup, on real sockets, with BoringSSL as in the agent's image.
 */
class RefusedCallerTest {
  @TempDir Path dir;
  private Path cluster;
  private Server server;
  private ManagedChannel channel;
  private final List<String> refused = new CopyOnWriteArrayList<>();

  @BeforeEach
  void agent() throws Exception {
    cluster = SecretVolume.newCa(dir.resolve("cluster"));
    MutualTls tls =
        new MutualTls(
            cluster.resolve("agent.crt"),
            cluster.resolve("agent.key"),
            cluster.resolve("ca.crt"),
            (reason, caller) -> refused.add(reason + " " + caller));
    server =
        NettyServerBuilder.forAddress(
                new InetSocketAddress("127.0.0.1", 0), tls.serverCredentials())
            .addService(
                ServerInterceptors.intercept(
                    new NodeAgentGrpc.NodeAgentImplBase() {},
                    new CallerCheck((reason, caller) -> refused.add(reason + " " + caller))))
            .build()
            .start();
  }

  @AfterEach
  void stop() throws InterruptedException {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }

  @Test
  void aCallerOfAnotherCaHearsUnknownCaAndIsCountedWithItsAddress() throws Exception {
    Path rogue = dir.resolve("rogue");
    Shell.run(SecretVolume.script().toString(), "--rogue", rogue.toString());

    String failure = callPresenting(rogue.resolve("operator.crt"), rogue.resolve("operator.key"));

    assertThat(failure)
        .containsIgnoringCase("unknown_ca")
        .doesNotContainIgnoringCase("alert_internal_error");
    // gRPC may try the connection more than once before the call fails: each is refused alike.
    assertThat(refused).isNotEmpty().allMatch(r -> r.matches("unknown-ca 127\\.0\\.0\\.1:\\d+"));
  }

  @Test
  void aCertificateOfTheClusterCaNotMadeForClientsHearsBadCertificate() throws Exception {
    // Signed by the cluster CA, but for servers only (extendedKeyUsage=serverAuth).
    Path serverOnly = dir.resolve("server-only");
    Files.createDirectories(serverOnly);
    Shell.run(
        "bash",
        "-c",
        "cd "
            + serverOnly
            + " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out op.key"
            + " && openssl req -new -key op.key -subj /CN=ferry-operator -out op.csr"
            + " && printf 'keyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\n'"
            + " > op.ext && openssl x509 -req -in op.csr -CA "
            + cluster.resolve("ca.crt")
            + " -CAkey "
            + cluster.resolve("ca.key")
            + " -CAcreateserial -CAserial op.srl -days 30 -extfile op.ext -out op.crt");

    String failure = callPresenting(serverOnly.resolve("op.crt"), serverOnly.resolve("op.key"));

    assertThat(failure)
        .containsIgnoringCase("bad_certificate")
        .doesNotContainIgnoringCase("alert_internal_error");
    assertThat(refused)
        .isNotEmpty()
        .allMatch(r -> r.matches("bad-certificate 127\\.0\\.0\\.1:\\d+"));
  }

  /** Calls the agent presenting {@code cert}, trusting the cluster CA; returns the failure. */
  private String callPresenting(Path cert, Path key) {
    channel =
        AgentChannels.open(
            "127.0.0.1:" + server.getPort(),
            AgentChannels.context(new TlsFiles(cluster.resolve("ca.crt"), cert, key)));
    Throwable t =
        catchThrowable(
            () ->
                NodeAgentGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(30, TimeUnit.SECONDS)
                    .status(MigrationRef.newBuilder().setMigrationId("m").build()));
    assertThat(t).as("the call is refused").isNotNull();
    StringWriter out = new StringWriter();
    t.printStackTrace(new PrintWriter(out));
    return out.toString();
  }
}
