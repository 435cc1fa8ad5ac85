// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import static dev.ferry.agent.api.SecretVolume.certificate;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.client.AgentChannels;
import dev.ferry.api.client.TlsFiles;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A renewed certificate is used from the next connection on, with no restart: the agent's server
 * and its peer client (MutualTls) and the operator's client (AgentChannels) read their files again
 * when the kubelet swaps a mounted Secret's files, on real sockets through Netty's TLS (BoringSSL
 * here, as in the agent's image).
 */
class CertificateReloadTest {
  @TempDir Path dir;
  private Path a;
  private Path b;
  private SecretVolume volume;
  private TlsEndpoints endpoints;
  private final List<String> refused = new ArrayList<>();

  @BeforeEach
  void certificates() throws Exception {
    a = SecretVolume.newCa(dir.resolve("a"));
    b = SecretVolume.newLeaves(a, dir.resolve("b"));
    volume = new SecretVolume(dir.resolve("mounted"));
    volume.publish(a);
    endpoints = new TlsEndpoints();
  }

  @AfterEach
  void close() {
    endpoints.close();
  }

  @Test
  void theAgentsServerPresentsARenewedCertificateToTheNextConnection() throws Exception {
    int port = endpoints.serve(agentTls().serverContext());
    SslContext operator = AgentChannels.context(operatorFiles(a));

    assertThat(serial(endpoints.connect(operator, port))).isEqualTo(serial(a, "agent.crt"));

    volume.publish(b);
    assertThat(serial(endpoints.connect(operator, port)))
        .as("the same server, after the mounted files changed")
        .isEqualTo(serial(b, "agent.crt"))
        .isNotEqualTo(serial(a, "agent.crt"));
  }

  @Test
  void theAgentsPeerClientPresentsARenewedCertificateToTheNextConnection() throws Exception {
    int port = endpoints.serve(requiringClients(a));
    SslContext peer = agentTls().clientContext();

    endpoints.connect(peer, port);
    assertThat(serial((X509Certificate) endpoints.nextClient())).isEqualTo(serial(a, "agent.crt"));

    volume.publish(b);
    endpoints.connect(peer, port);
    assertThat(serial((X509Certificate) endpoints.nextClient())).isEqualTo(serial(b, "agent.crt"));
  }

  @Test
  void theOperatorsClientPresentsARenewedCertificateToTheNextConnection() throws Exception {
    int port = endpoints.serve(requiringClients(a));
    SslContext operator =
        AgentChannels.context(
            new TlsFiles(
                volume.file("ca.crt"), volume.file("operator.crt"), volume.file("operator.key")));

    endpoints.connect(operator, port);
    assertThat(serial((X509Certificate) endpoints.nextClient()))
        .isEqualTo(serial(a, "operator.crt"));

    volume.publish(b);
    endpoints.connect(operator, port);
    assertThat(serial((X509Certificate) endpoints.nextClient()))
        .isEqualTo(serial(b, "operator.crt"));
  }

  @Test
  void aNewCaIsTrustedFromTheNextConnection() throws Exception {
    Path other = SecretVolume.newCa(dir.resolve("other-ca"));
    int port = endpoints.serve(agentTls().serverContext());
    SslContext operatorOfTheNewCa = AgentChannels.context(operatorFiles(other));

    assertThatThrownBy(() -> endpoints.connect(operatorOfTheNewCa, port))
        .as("the two sides trust different CAs");
    assertThat(endpoints.nextClient()).isInstanceOf(Throwable.class);

    volume.publish(other);
    assertThat(serial(endpoints.connect(operatorOfTheNewCa, port)))
        .isEqualTo(serial(other, "agent.crt"));
  }

  @Test
  void filesCaughtHalfReplacedLeaveTheLastGoodCertificateInUse() throws Exception {
    // Written in place, one file after the other, as a careless tool would: between the two, the
    // key does not belong to the certificate.
    Path flat = Files.createDirectories(dir.resolve("flat"));
    for (String f : SecretVolume.FILES) {
      Files.copy(a.resolve(f), flat.resolve(f));
    }
    MutualTls agent =
        new MutualTls(
            flat.resolve("agent.crt"),
            flat.resolve("agent.key"),
            flat.resolve("ca.crt"),
            (reason, caller) -> refused.add(reason));
    int port = endpoints.serve(agent.serverContext());
    SslContext operator = AgentChannels.context(operatorFiles(a));

    Files.copy(
        b.resolve("agent.crt"), flat.resolve("agent.crt"), StandardCopyOption.REPLACE_EXISTING);
    assertThat(serial(endpoints.connect(operator, port)))
        .as("the new certificate without its key is not used")
        .isEqualTo(serial(a, "agent.crt"));

    Files.copy(
        b.resolve("agent.key"), flat.resolve("agent.key"), StandardCopyOption.REPLACE_EXISTING);
    assertThat(serial(endpoints.connect(operator, port))).isEqualTo(serial(b, "agent.crt"));
  }

  private MutualTls agentTls() throws Exception {
    return new MutualTls(
        volume.file("agent.crt"),
        volume.file("agent.key"),
        volume.file("ca.crt"),
        (reason, caller) -> refused.add(reason));
  }

  /** A server that requires a client certificate of {@code certs}' CA, presenting its agent one. */
  private static SslContext requiringClients(Path certs) throws Exception {
    return SslContextBuilder.forServer(
            certs.resolve("agent.crt").toFile(), certs.resolve("agent.key").toFile())
        .trustManager(certs.resolve("ca.crt").toFile())
        .clientAuth(ClientAuth.REQUIRE)
        .build();
  }

  private static TlsFiles operatorFiles(Path certs) {
    return TlsFiles.inDirectory(certs, "operator");
  }

  private static String serial(Path certs, String file) throws Exception {
    return serial(certificate(certs.resolve(file)));
  }

  private static String serial(X509Certificate c) {
    return c.getIssuerX500Principal().getName() + " #" + c.getSerialNumber().toString(16);
  }
}
