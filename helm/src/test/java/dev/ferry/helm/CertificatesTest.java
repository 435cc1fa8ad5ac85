// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.client.AgentChannels;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.plan.MovePlans;
import dev.ferry.api.plan.PlanSigner;
import dev.ferry.api.tls.ReloadingTls;
import dev.ferry.api.v1alpha1.MovePlan;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.certmanager.api.model.v1.Certificate;
import io.fabric8.certmanager.api.model.v1.Issuer;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.grpc.netty.GrpcSslContexts;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPrivateKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The certificates the chart makes are what the operator and the agents accept: the operator's own
 * TLS code (AgentChannels) and an agent-like server built as the agent builds its own complete a
 * mutual TLS handshake with them, verifying the name ferry-node-agent. An upgrade keeps them;
 * cert-manager is asked for the same.
 */
class CertificatesTest {
  private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
  private static final String CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
  private static final Path CHART_MADE = ValueSet.CHART_CERTIFICATES.file();

  @Test
  void theAgentsCertificateIsNamedFerryNodeAgentForServerAndClient() throws Exception {
    Map<String, String> agent =
        secret(HelmChart.render(ValueSet.CHART_CERTIFICATES), "ferry-agent-tls");
    X509Certificate ca = certificate(agent.get("ca.crt"));
    X509Certificate cert = certificate(agent.get("tls.crt"));
    assertThat(cert.getSubjectX500Principal().getName()).isEqualTo("CN=ferry-node-agent");
    assertThat(cert.getSubjectAlternativeNames())
        .as("verified instead of the node's IP (AgentChannels.AGENT_NAME)")
        .containsExactly(List.of(2, AgentChannels.AGENT_NAME));
    assertThat(cert.getExtendedKeyUsage()).contains(SERVER_AUTH, CLIENT_AUTH);
    assertThat(cert.getBasicConstraints()).as("not a CA").isEqualTo(-1);
    cert.verify(ca.getPublicKey());
    assertThat(ca.getBasicConstraints()).as("the CA is one").isGreaterThanOrEqualTo(0);
    assertKeyIsPkcs8P256For(agent.get("tls.key"), cert);
  }

  @Test
  void theOperatorsCertificateIsNamedFerryOperatorForClientUse() throws Exception {
    Manifests m = HelmChart.render(ValueSet.CHART_CERTIFICATES);
    Map<String, String> operator = secret(m, "ferry-operator-tls");
    X509Certificate cert = certificate(operator.get("tls.crt"));
    assertThat(cert.getSubjectX500Principal().getName())
        .as("the name CallerCheck lets make every call")
        .isEqualTo("CN=ferry-operator");
    assertThat(cert.getExtendedKeyUsage()).contains(CLIENT_AUTH);
    cert.verify(certificate(operator.get("ca.crt")).getPublicKey());
    assertKeyIsPkcs8P256For(operator.get("tls.key"), cert);
    assertThat(operator.get("ca.crt"))
        .as("one CA for both")
        .isEqualTo(secret(m, "ferry-agent-tls").get("ca.crt"))
        .isEqualTo(secret(m, "ferry-ca").get("tls.crt"));
  }

  @Test
  void theOperatorAndAnAgentCompleteAMutualTlsHandshake(@TempDir Path dir) throws Exception {
    Manifests m = HelmChart.render(ValueSet.CHART_CERTIFICATES);
    TlsFiles agent = write(dir.resolve("agent"), secret(m, "ferry-agent-tls"));
    TlsFiles operator = write(dir.resolve("operator"), secret(m, "ferry-operator-tls"));

    // The operator's client context, built by the operator's own code.
    SSLEngine client = handshake(AgentChannels.context(operator), server(agent));
    assertThat(client.getSession().getPeerPrincipal().getName()).isEqualTo("CN=ferry-node-agent");

    // An agent handing states to another agent presents the same certificate as a client.
    assertThat(handshake(AgentChannels.context(agent), server(agent)).getSession().getProtocol())
        .startsWith("TLS");
  }

  /** The chart's certificates sign and check move plans as the operator's and agents' code do. */
  @Test
  void theOperatorSignsPlansAnAgentTakesAndAnAgentCannot(@TempDir Path dir) throws Exception {
    Manifests m = HelmChart.render(ValueSet.CHART_CERTIFICATES);
    TlsFiles agent = write(dir.resolve("agent"), secret(m, "ferry-agent-tls"));
    TlsFiles operator = write(dir.resolve("operator"), secret(m, "ferry-operator-tls"));
    MoveRequest move =
        MoveRequest.newBuilder()
            .setMigrationId("m")
            .setTargetPod(PodRef.newBuilder().setName("b"))
            .addPorts(8080)
            .build();
    var agentTrust = new ReloadingTls(agent).trustManager();

    MovePlan plan =
        MovePlans.verify(
            new PlanSigner(operator).signed(move).getPlan(), agentTrust, Instant.now());
    assertThat(plan.getPortsList()).containsExactly(8080);
    assertThatThrownBy(
            () ->
                MovePlans.verify(
                    new PlanSigner(agent).signed(move).getPlan(), agentTrust, Instant.now()))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining("CN=ferry-node-agent, which may not sign plans");
  }

  @Test
  void anAgentRefusesAnOperatorOfAnotherCa(@TempDir Path dir) throws Exception {
    TlsFiles agent =
        write(
            dir.resolve("agent"),
            secret(HelmChart.render(ValueSet.CHART_CERTIFICATES), "ferry-agent-tls"));
    Manifests other = Manifests.parse(HelmChart.template("ferry-other", CHART_MADE));
    TlsFiles stranger = write(dir.resolve("stranger"), secret(other, "ferry-operator-tls"));
    assertThatThrownBy(() -> handshake(AgentChannels.context(stranger), server(agent)))
        .isInstanceOf(SSLException.class)
        .hasMessageContaining("does not chain with any of the trust anchors");
  }

  @Test
  void anUpgradeKeepsTheCertificatesItFinds() {
    // A namespace of its own: lookup finds these Secrets in the mock API server by namespace.
    String ns = "ferry-upgrade";
    Manifests first = Manifests.parse(HelmChart.template(ns, CHART_MADE));
    assertThat(first.all(Secret.class)).hasSize(3);
    try (KubernetesClient api = HelmChart.api()) {
      first.all(Secret.class).forEach(s -> api.resource(s).create());
      try {
        Manifests second = Manifests.parse(HelmChart.template(ns, CHART_MADE));
        for (String name : List.of("ferry-ca", "ferry-operator-tls", "ferry-agent-tls")) {
          assertThat(secret(second, name)).as(name).isEqualTo(secret(first, name));
        }

        // With one of the three gone, all three are made anew: never a leaf of another CA.
        api.secrets().inNamespace(ns).withName("ferry-agent-tls").delete();
        Manifests third = Manifests.parse(HelmChart.template(ns, CHART_MADE));
        assertThat(secret(third, "ferry-ca").get("tls.crt"))
            .isNotEqualTo(secret(first, "ferry-ca").get("tls.crt"));
        assertThat(secret(third, "ferry-operator-tls").get("ca.crt"))
            .isEqualTo(secret(third, "ferry-ca").get("tls.crt"));
      } finally {
        api.secrets().inNamespace(ns).delete();
      }
    }
  }

  @Test
  void anUpgradeRenewsCertificatesThatEndWithinRenewBeforeDaysUnderTheSameCa() throws Exception {
    String ns = "ferry-renew";
    Path tenDays =
        HelmChart.valuesFile(
            "certManager: {enabled: false}\ntls: {validityDays: 10, renewBeforeDays: 5}\n");
    Manifests first = Manifests.parse(HelmChart.template(ns, tenDays));
    try (KubernetesClient api = HelmChart.api()) {
      store(api, ns, first);
      try {
        assertThat(secrets(Manifests.parse(HelmChart.template(ns, tenDays))))
            .as("10 days left, renewed within 5: kept")
            .isEqualTo(secrets(first));

        // The default renewBeforeDays, 30: the leaves are made anew, under the CA they had.
        Manifests renewed = Manifests.parse(HelmChart.template(ns, CHART_MADE));
        assertThat(secret(renewed, "ferry-ca")).isEqualTo(secret(first, "ferry-ca"));
        X509Certificate ca = certificate(secret(first, "ferry-ca").get("tls.crt"));
        for (String name : List.of("ferry-operator-tls", "ferry-agent-tls")) {
          Map<String, String> before = secret(first, name);
          Map<String, String> after = secret(renewed, name);
          assertThat(after.get("ca.crt")).as(name).isEqualTo(before.get("ca.crt"));
          assertThat(after.get("tls.crt")).as(name).isNotEqualTo(before.get("tls.crt"));
          assertThat(after.get("tls.key")).as(name).isNotEqualTo(before.get("tls.key"));
          X509Certificate cert = certificate(after.get("tls.crt"));
          cert.verify(ca.getPublicKey());
          assertThat(cert.getNotAfter().toInstant())
              .as("%s: valid tls.validityDays (365) from now", name)
              .isAfter(Instant.now().plus(Duration.ofDays(364)));
          assertThat(cert.getSubjectX500Principal().getName())
              .isEqualTo(certificate(before.get("tls.crt")).getSubjectX500Principal().getName());
          assertKeyIsPkcs8P256For(after.get("tls.key"), cert);
        }

        // The renewed ones are kept by the next upgrade.
        store(api, ns, renewed);
        assertThat(secrets(Manifests.parse(HelmChart.template(ns, CHART_MADE))))
            .isEqualTo(secrets(renewed));
      } finally {
        api.secrets().inNamespace(ns).delete();
      }
    }
  }

  @Test
  void anUpgradeReplacesACaThatEndsWithinRenewBeforeDaysWithBothLeaves() throws Exception {
    String ns = "ferry-renew-ca";
    Path twentyDayCa =
        HelmChart.valuesFile(
            "certManager: {enabled: false}\n"
                + "tls: {caValidityDays: 20, validityDays: 10, renewBeforeDays: 5}\n");
    Manifests first = Manifests.parse(HelmChart.template(ns, twentyDayCa));
    try (KubernetesClient api = HelmChart.api()) {
      store(api, ns, first);
      try {
        Manifests renewed = Manifests.parse(HelmChart.template(ns, CHART_MADE));
        X509Certificate ca = certificate(secret(renewed, "ferry-ca").get("tls.crt"));
        assertThat(secret(renewed, "ferry-ca").get("tls.crt"))
            .isNotEqualTo(secret(first, "ferry-ca").get("tls.crt"));
        assertThat(ca.getNotAfter().toInstant()).isAfter(Instant.now().plus(Duration.ofDays(3649)));
        for (String name : List.of("ferry-operator-tls", "ferry-agent-tls")) {
          assertThat(secret(renewed, name).get("ca.crt"))
              .isEqualTo(secret(renewed, "ferry-ca").get("tls.crt"));
          certificate(secret(renewed, name).get("tls.crt")).verify(ca.getPublicKey());
        }
      } finally {
        api.secrets().inNamespace(ns).delete();
      }
    }
  }

  @Test
  void byDefaultCertManagerIssuesTheCertificates() {
    Manifests m = HelmChart.render(ValueSet.DEFAULT);
    assertThat(m.all(Secret.class)).isEmpty();
    assertThat(m.all(Certificate.class))
        .extracting(c -> c.getSpec().getSecretName())
        .containsExactlyInAnyOrder("ferry-ca", "ferry-operator-tls", "ferry-agent-tls");
  }

  @Test
  void certManagerIssuesTheSameCertificates() {
    Manifests m = HelmChart.render(ValueSet.CERT_MANAGER);
    Certificate agent = m.one(Certificate.class, "ferry-agent-tls");
    assertThat(agent.getSpec().getCommonName()).isEqualTo("ferry-node-agent");
    assertThat(agent.getSpec().getDnsNames()).containsExactly("ferry-node-agent");
    assertThat(agent.getSpec().getUsages()).contains("server auth", "client auth");
    Certificate operator = m.one(Certificate.class, "ferry-operator-tls");
    assertThat(operator.getSpec().getCommonName()).isEqualTo("ferry-operator");
    assertThat(operator.getSpec().getUsages())
        .contains("client auth")
        .doesNotContain("server auth");
    for (Certificate c : List.of(agent, operator)) {
      assertThat(c.getSpec().getPrivateKey().getAlgorithm()).isEqualTo("ECDSA");
      assertThat(c.getSpec().getPrivateKey().getSize()).isEqualTo(256);
      assertThat(c.getSpec().getPrivateKey().getEncoding())
          .as("Netty reads PKCS#8 only")
          .isEqualTo("PKCS8");
      assertThat(c.getSpec().getIssuerRef().getName()).isEqualTo("ferry-ca");
      assertThat(c.getSpec().getIssuerRef().getKind()).isEqualTo("Issuer");
    }
    Certificate ca = m.one(Certificate.class, "ferry-ca");
    assertThat(ca.getSpec().getIsCA()).isTrue();
    assertThat(ca.getSpec().getIssuerRef().getName()).isEqualTo("ferry-selfsigned");
    assertThat(m.one(Issuer.class, "ferry-ca").getSpec().getCa().getSecretName())
        .isEqualTo("ferry-ca");
  }

  @Test
  void certManagerCanUseAnIssuerOfYourOwn(@TempDir Path dir) throws Exception {
    Path values = dir.resolve("values.yaml");
    Files.writeString(
        values,
        """
        certManager:
          enabled: true
          issuerRef:
            name: corp-ca
            kind: ClusterIssuer
        """);
    Manifests m = Manifests.parse(HelmChart.template(HelmChart.NAMESPACE, values));
    assertThat(m.all(Issuer.class)).isEmpty();
    assertThat(m.all(Certificate.class))
        .extracting(
            c -> c.getSpec().getIssuerRef().getKind() + "/" + c.getSpec().getIssuerRef().getName())
        .containsExactly("ClusterIssuer/corp-ca", "ClusterIssuer/corp-ca");
  }

  /**
   * With certManager.csiDriver each agent asks cert-manager's csi-driver, in its pod's volume, for
   * a certificate of its own: the agent's Certificate is not made, the operator's is, and the
   * driver is asked for what the shared certificate carried (same issuer, names, usages, key,
   * validity, files) plus the URI naming the pod, which the agent's AgentIdentity reads.
   */
  @Test
  void withTheCsiDriverEachAgentAsksTheChartsIssuerForACertificateOfItsOwn() throws Exception {
    Manifests m = HelmChart.render(ValueSet.CSI_DRIVER);
    assertThat(m.all(Secret.class)).isEmpty();
    assertThat(m.all(Certificate.class))
        .as("no shared agent certificate")
        .extracting(c -> c.getSpec().getSecretName())
        .containsExactlyInAnyOrder("ferry-ca", "ferry-operator-tls");
    Certificate operator = m.one(Certificate.class, "ferry-operator-tls");
    assertThat(operator.getSpec().getIssuerRef().getName()).isEqualTo("ferry-ca");
    assertThat(m.one(Issuer.class, "ferry-ca").getMetadata().getNamespace())
        .as("an Issuer in the agents' namespace, where the driver makes its CertificateRequest")
        .isEqualTo(HelmChart.NAMESPACE);

    Map<String, String> attributes = csiAttributes(m);
    assertThat(attributes)
        .containsExactlyInAnyOrderEntriesOf(
            Map.ofEntries(
                Map.entry("csi.cert-manager.io/issuer-name", "ferry-ca"),
                Map.entry("csi.cert-manager.io/issuer-kind", "Issuer"),
                Map.entry("csi.cert-manager.io/issuer-group", "cert-manager.io"),
                Map.entry("csi.cert-manager.io/common-name", AgentChannels.AGENT_NAME),
                Map.entry("csi.cert-manager.io/dns-names", AgentChannels.AGENT_NAME),
                Map.entry(
                    "csi.cert-manager.io/uri-sans",
                    "spiffe://ferry.dev/ns/${POD_NAMESPACE}/pod/${POD_NAME}"),
                Map.entry(
                    "csi.cert-manager.io/key-usages", "digital signature,server auth,client auth"),
                Map.entry("csi.cert-manager.io/key-algorithm", "ECDSA"),
                Map.entry("csi.cert-manager.io/key-size", "256"),
                Map.entry("csi.cert-manager.io/key-encoding", "PKCS8"),
                Map.entry("csi.cert-manager.io/duration", "2160h"),
                Map.entry("csi.cert-manager.io/renew-before", "360h"),
                Map.entry("csi.cert-manager.io/ca-file", "ca.crt"),
                Map.entry("csi.cert-manager.io/certificate-file", "agent.crt"),
                Map.entry("csi.cert-manager.io/privatekey-file", "agent.key")));
    JsonNode values =
        Manifests.yaml(Files.readString(Repo.chart().resolve("values.yaml"))).get("certManager");
    assertThat(attributes)
        .as("the validity of the chart's other certificates (certManager.duration, renewBefore)")
        .containsEntry("csi.cert-manager.io/duration", values.get("duration").asText())
        .containsEntry("csi.cert-manager.io/renew-before", values.get("renewBefore").asText());

    // The files land where the agent's settings point.
    Container agent =
        m.one(DaemonSet.class, "ferry-node-agent")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0);
    String dir =
        agent.getVolumeMounts().stream()
            .filter(v -> v.getName().equals("tls"))
            .findFirst()
            .orElseThrow()
            .getMountPath();
    for (String[] file :
        new String[][] {
          {"FERRY_AGENT_TLS_CA", "ca-file"},
          {"FERRY_AGENT_TLS_CERT", "certificate-file"},
          {"FERRY_AGENT_TLS_KEY", "privatekey-file"}
        }) {
      assertThat(Manifests.env(agent.getEnv(), file[0]))
          .as(file[0])
          .isEqualTo(dir + "/" + attributes.get("csi.cert-manager.io/" + file[1]));
    }

    // The URI the driver writes for an agent pod (os.Expand of the pod's namespace and name) is
    // one the agent takes for a pod of its own namespace.
    String uri =
        attributes
            .get("csi.cert-manager.io/uri-sans")
            .replace("${POD_NAMESPACE}", HelmChart.NAMESPACE)
            .replace("${POD_NAME}", "ferry-node-agent-x7k2p");
    assertThat(uri).doesNotContain("$");
    Matcher pod = agentPodUri().matcher(uri);
    assertThat(pod.matches()).as("%s matches AgentIdentity's %s", uri, agentPodUri()).isTrue();
    assertThat(pod.group(1)).isEqualTo(HelmChart.NAMESPACE);
    assertThat(pod.group(2)).isEqualTo("ferry-node-agent-x7k2p");
  }

  @Test
  void theCsiDriverAsksAnIssuerOfYourOwnForTheValidityYouSet() {
    Manifests m =
        HelmChart.renderWith(
            """
            certManager:
              enabled: true
              issuerRef:
                name: corp-ca
                kind: ClusterIssuer
              duration: 720h
              renewBefore: 240h
              csiDriver:
                enabled: true
            """);
    assertThat(m.all(Issuer.class)).isEmpty();
    assertThat(m.all(Certificate.class))
        .extracting(
            c -> c.getSpec().getIssuerRef().getKind() + "/" + c.getSpec().getIssuerRef().getName())
        .as("the operator's alone")
        .containsExactly("ClusterIssuer/corp-ca");
    assertThat(csiAttributes(m))
        .containsEntry("csi.cert-manager.io/issuer-name", "corp-ca")
        .containsEntry("csi.cert-manager.io/issuer-kind", "ClusterIssuer")
        .containsEntry("csi.cert-manager.io/issuer-group", "cert-manager.io")
        .containsEntry("csi.cert-manager.io/duration", "720h")
        .containsEntry("csi.cert-manager.io/renew-before", "240h");
  }

  /** The agent's tls volume: cert-manager's csi-driver, read-only, and what it is asked for. */
  private static Map<String, String> csiAttributes(Manifests m) {
    Volume tls =
        m
            .one(DaemonSet.class, "ferry-node-agent")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getVolumes()
            .stream()
            .filter(v -> v.getName().equals("tls"))
            .findFirst()
            .orElseThrow();
    assertThat(tls.getSecret()).isNull();
    assertThat(tls.getCsi().getDriver()).isEqualTo("csi.cert-manager.io");
    assertThat(tls.getCsi().getReadOnly()).isTrue();
    return tls.getCsi().getVolumeAttributes();
  }

  /** AgentIdentity's pattern of a pod's URI, read from the agent's source. */
  private static Pattern agentPodUri() throws Exception {
    String source =
        Files.readString(
            Repo.path("node-agent/src/main/java/dev/ferry/agent/api/AgentIdentity.java"));
    Matcher m = Pattern.compile("POD =\\s*Pattern\\.compile\\(\"(.*?)\"\\);").matcher(source);
    assertThat(m.find()).as("AgentIdentity.POD").isTrue();
    return Pattern.compile(m.group(1).replace("\\\\", "\\"));
  }

  private static SslContext server(TlsFiles agent) throws SSLException {
    // As the agent builds its server context (MutualTls.serverContext), requiring the client's
    // certificate outright, which the agent leaves to CallerCheck.
    return GrpcSslContexts.forServer(agent.cert().toFile(), agent.key().toFile())
        .trustManager(agent.ca().toFile())
        .clientAuth(ClientAuth.REQUIRE)
        .build();
  }

  /**
   * Runs a handshake between two engines in memory; returns the client's engine. The client checks
   * the server's name as grpc-java does with overrideAuthority(ferry-node-agent).
   */
  private static SSLEngine handshake(SslContext clientContext, SslContext serverContext)
      throws Exception {
    SSLEngine client =
        clientContext.newEngine(ByteBufAllocator.DEFAULT, AgentChannels.AGENT_NAME, 9443);
    SSLParameters p = client.getSSLParameters();
    p.setEndpointIdentificationAlgorithm("HTTPS");
    client.setSSLParameters(p);
    SSLEngine server = serverContext.newEngine(ByteBufAllocator.DEFAULT);
    ByteBuffer toServer = ByteBuffer.allocate(1 << 17);
    ByteBuffer toClient = ByteBuffer.allocate(1 << 17);
    ByteBuffer sink = ByteBuffer.allocate(1 << 17);
    client.beginHandshake();
    server.beginHandshake();
    for (int i = 0; i < 100; i++) {
      step(client, toServer, toClient, sink);
      step(server, toClient, toServer, sink);
      if (done(client) && done(server)) {
        return client;
      }
    }
    throw new AssertionError(
        "no handshake: client "
            + client.getHandshakeStatus()
            + ", server "
            + server.getHandshakeStatus());
  }

  private static void step(SSLEngine e, ByteBuffer out, ByteBuffer in, ByteBuffer sink)
      throws SSLException {
    for (int i = 0; i < 10; i++) {
      HandshakeStatus hs = e.getHandshakeStatus();
      if (hs == HandshakeStatus.NEED_TASK) {
        for (Runnable t; (t = e.getDelegatedTask()) != null; ) {
          t.run();
        }
      } else if (hs == HandshakeStatus.NEED_WRAP) {
        e.wrap(ByteBuffer.allocate(0), out);
      } else if (hs == HandshakeStatus.NEED_UNWRAP && in.position() > 0) {
        in.flip();
        e.unwrap(in, sink);
        in.compact();
        sink.clear();
      } else {
        return;
      }
    }
  }

  private static boolean done(SSLEngine e) {
    HandshakeStatus hs = e.getHandshakeStatus();
    return hs == HandshakeStatus.NOT_HANDSHAKING || hs == HandshakeStatus.FINISHED;
  }

  private static void assertKeyIsPkcs8P256For(String pem, X509Certificate cert) throws Exception {
    assertThat(pem)
        .startsWith("-----BEGIN PRIVATE KEY-----\n")
        .endsWith("-----END PRIVATE KEY-----\n");
    String body = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    PrivateKey key =
        KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(decode(body)));
    assertThat(((ECPrivateKey) key).getParams().getCurve().getField().getFieldSize())
        .isEqualTo(256);
    // The key is the certificate's: what it signs, the certificate's public key verifies.
    byte[] data = "ferry".getBytes(StandardCharsets.UTF_8);
    Signature s = Signature.getInstance("SHA256withECDSA");
    s.initSign(key);
    s.update(data);
    byte[] signature = s.sign();
    s.initVerify(cert.getPublicKey());
    s.update(data);
    assertThat(s.verify(signature)).isTrue();
  }

  /** Puts {@code m}'s Secrets where the chart's lookup finds them, replacing what is there. */
  private static void store(KubernetesClient api, String ns, Manifests m) {
    for (Secret s : m.all(Secret.class)) {
      api.secrets().inNamespace(ns).withName(s.getMetadata().getName()).delete();
      api.resource(s).inNamespace(ns).create();
    }
  }

  private static Map<String, Map<String, String>> secrets(Manifests m) {
    return m.all(Secret.class).stream()
        .collect(
            Collectors.toMap(
                s -> s.getMetadata().getName(), s -> secret(m, s.getMetadata().getName())));
  }

  /** The Secret's data, decoded. */
  private static Map<String, String> secret(Manifests m, String name) {
    Secret s = m.one(Secret.class, name);
    assertThat(s.getType()).isEqualTo("kubernetes.io/tls");
    return s.getData().entrySet().stream()
        .collect(
            Collectors.toMap(
                Map.Entry::getKey, e -> new String(decode(e.getValue()), StandardCharsets.UTF_8)));
  }

  private static TlsFiles write(Path dir, Map<String, String> secret) throws Exception {
    Files.createDirectories(dir);
    TlsFiles files =
        new TlsFiles(dir.resolve("ca.crt"), dir.resolve("tls.crt"), dir.resolve("tls.key"));
    Files.writeString(files.ca(), secret.get("ca.crt"));
    Files.writeString(files.cert(), secret.get("tls.crt"));
    Files.writeString(files.key(), secret.get("tls.key"));
    return files;
  }

  private static X509Certificate certificate(String pem) throws Exception {
    return (X509Certificate)
        CertificateFactory.getInstance("X.509")
            .generateCertificate(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
  }

  private static byte[] decode(String base64) {
    return Base64.getDecoder().decode(base64);
  }
}
