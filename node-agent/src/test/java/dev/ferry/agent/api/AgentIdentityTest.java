// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.plan.MovePlans;
import dev.ferry.testbed.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AgentIdentityTest {
  @TempDir static Path dir;
  private static X509Certificate shared;
  private static X509Certificate nodeA;
  private static X509Certificate agentPod;
  private static X509Certificate tenantPod;
  private static X509Certificate operator;

  /** The API server as the identity sees it: agent pods of namespace ferry, and their nodes. */
  private final Map<String, String> agentPods = Map.of("ferry-agent-x2k9p", "node-c");

  private final List<String> lookedUp = new ArrayList<>();
  private final AgentIdentity.AgentPods pods =
      (ns, pod) -> {
        lookedUp.add(ns + "/" + pod);
        return Optional.ofNullable(agentPods.get(pod));
      };

  @BeforeAll
  static void certificates() throws Exception {
    Path ca = SecretVolume.newCa(dir.resolve("ca"));
    Shell.run(SecretVolume.script().toString(), "--node", "node-a", ca.toString());
    shared = SecretVolume.certificate(ca.resolve("agent.crt"));
    nodeA = SecretVolume.certificate(ca.resolve("agent-node-a.crt"));
    operator = SecretVolume.certificate(ca.resolve("operator.crt"));
    agentPod = leaf(ca, "pod", "URI:spiffe://ferry.dev/ns/ferry/pod/ferry-agent-x2k9p");
    tenantPod = leaf(ca, "tenant", "URI:spiffe://ferry.dev/ns/shop/pod/ferry-agent-x2k9p");
  }

  @Test
  void aCertificateMadeForANodeNamesIt() {
    assertThat(required().nodeOf(nodeA)).contains("node-a");
    assertThat(lookedUp).as("no API call for a node identity").isEmpty();
  }

  @Test
  void aCertificateNamingAnAgentPodNamesThePodsNodeAsTheApiServerSays() {
    AgentIdentity identity = required();

    assertThat(identity.nodeOf(agentPod)).contains("node-c");
    assertThat(identity.nodeOf(agentPod)).contains("node-c");
    assertThat(lookedUp).as("a pod's node never changes: looked up once").hasSize(1);
  }

  @Test
  void aPodOutsideTheAgentsNamespaceOrNoAgentPodIsNoAgent() {
    assertThatThrownBy(() -> required().nodeOf(tenantPod))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining("outside this agent's namespace");
    AgentIdentity noPods =
        new AgentIdentity(AgentIdentity.Mode.REQUIRED, "ferry", (n, p) -> Optional.empty());
    assertThatThrownBy(() -> noPods.nodeOf(agentPod))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining("which is no running agent pod of namespace ferry");
  }

  @Test
  void theSharedCertificateNamesNoAgentAndTheRefusalSaysWhatToDo() {
    assertThatThrownBy(() -> required().nodeOf(shared))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining("names no agent")
        .hasMessageContaining("ferry.agent.peer-identity=off");
  }

  @Test
  void theOperatorIsNoPeerAndOffChecksNobody() {
    assertThat(required().nodeOf(operator)).isEmpty();
    AgentIdentity off = new AgentIdentity(AgentIdentity.Mode.OFF, "ferry", pods);
    assertThat(off.nodeOf(shared)).isEmpty();
    assertThat(off.nodeOf(nodeA)).isEmpty();
  }

  private AgentIdentity required() {
    return new AgentIdentity(AgentIdentity.Mode.REQUIRED, "ferry", pods);
  }

  /** An agent certificate with {@code san}, signed by the CA in {@code ca}, as csi-driver makes. */
  private static X509Certificate leaf(Path ca, String name, String san) throws Exception {
    Path key = ca.resolve(name + ".key");
    Path csr = ca.resolve(name + ".csr");
    Path ext = ca.resolve(name + ".ext");
    Path crt = ca.resolve(name + ".crt");
    Shell.run(
        "openssl",
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.toString());
    Shell.run(
        "openssl",
        "req",
        "-new",
        "-key",
        key.toString(),
        "-subj",
        "/CN=ferry-node-agent",
        "-out",
        csr.toString());
    Files.writeString(
        ext,
        "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:ferry-node-agent,"
            + san
            + "\n");
    Shell.run(
        "openssl",
        "x509",
        "-req",
        "-in",
        csr.toString(),
        "-CA",
        ca.resolve("ca.crt").toString(),
        "-CAkey",
        ca.resolve("ca.key").toString(),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        ext.toString(),
        "-out",
        crt.toString());
    return SecretVolume.certificate(crt);
  }
}
