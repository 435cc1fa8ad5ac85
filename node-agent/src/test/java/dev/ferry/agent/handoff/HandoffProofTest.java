// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.api.MutualTls;
import dev.ferry.agent.api.SecretVolume;
import dev.ferry.protocol.AgentProof;
import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.sdk.FerryAgent;
import dev.ferry.sdk.Handover;
import dev.ferry.sdk.MigrationHandler;
import dev.ferry.sdk.Takeover;
import dev.ferry.sys.NetNamespace;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An application that asks the agent to prove who it is (protocol version 3) talks to the real
 * handoff server through the Java SDK: it opens a session only with an agent whose certificate the
 * cluster CA issued, and whose proof names the application's own network namespace.
 */
class HandoffProofTest {
  private static final int PORT = 18_443;
  @TempDir static Path certs;
  @TempDir Path dir;
  private static Path cluster;
  private static Path otherCluster;
  private HandoffServer server;

  @BeforeAll
  static void certificates() {
    cluster = SecretVolume.newCa(certs.resolve("cluster"));
    otherCluster = SecretVolume.newCa(certs.resolve("other"));
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  void anApplicationOpensASessionOnlyOnceTheAgentHasProvedItself() throws Exception {
    Path socket = serve(key(cluster, "agent"));
    try (FerryAgent ferry = FerryAgent.connect(socket, "proof", cluster.resolve("ca.crt"))) {
      assertThat(ferry.protocolVersion()).isEqualTo(3);
      ferry.register(PORT, declineAll());
      assertThat(server.registrations(ourNetns())).containsKey(PORT);
    }
  }

  @Test
  void anAgentOfAnotherClusterIsRefusedAndToldNothing() throws Exception {
    Path socket = serve(key(otherCluster, "agent"));
    assertThatThrownBy(() -> FerryAgent.connect(socket, "proof", cluster.resolve("ca.crt")))
        .isInstanceOf(AgentProof.Refused.class)
        .hasMessageContaining("is not one the given CA issued");
    assertThat(server.registrations(ourNetns())).isEmpty();
  }

  @Test
  void aCertificateOfTheClusterThatIsNotAnAgentsIsRefused() throws Exception {
    Path socket = serve(key(cluster, "operator"));
    assertThatThrownBy(() -> FerryAgent.connect(socket, "proof", cluster.resolve("ca.crt")))
        .isInstanceOf(AgentProof.Refused.class)
        .hasMessageContaining("CN=ferry-operator, not a Ferry agent's");
  }

  @Test
  void anAgentWithoutAKeyCannotProveAndTheApplicationDoesNotStay() throws Exception {
    Path socket = serve(() -> null);
    assertThatThrownBy(() -> FerryAgent.connect(socket, "proof", cluster.resolve("ca.crt")))
        .isInstanceOf(AgentProof.Refused.class)
        .hasMessageContaining("answered PROVE with ERROR");
    // Without a CA the application asks for nothing, and the session opens as before.
    try (FerryAgent ferry = FerryAgent.connect(socket, "no-proof")) {
      assertThat(ferry.protocolVersion()).isEqualTo(3);
    }
  }

  @Test
  void aProofHoldsOnlyForTheNamespaceAndNonceItWasMadeFor() throws Exception {
    Path socket = serve(key(cluster, "agent"));
    List<java.security.cert.X509Certificate> ca = AgentProof.readCas(cluster.resolve("ca.crt"));
    byte[] nonce = new byte[AgentProof.NONCE_BYTES];
    new SecureRandom().nextBytes(nonce);
    try (TestApp app = new TestApp(socket).hello("raw", 3)) {
      app.send(Frame.PROVE, nonce);
      Frame proof = app.next();
      assertThat(proof.type()).isEqualTo(Frame.PROOF);
      assertThat(ByteBuffer.wrap(proof.payload()).getLong())
          .as("the namespace the agent files this session under")
          .isEqualTo(ourNetns());
      AgentProof.verify(proof.payload(), nonce, ourNetns(), ca, Instant.now());
      // What a process in another pod gets from the agent, relayed to an application here.
      assertThatThrownBy(
              () -> AgentProof.verify(proof.payload(), nonce, ourNetns() + 1, ca, Instant.now()))
          .isInstanceOf(AgentProof.Refused.class)
          .hasMessageContaining("relays the session");
      byte[] other = nonce.clone();
      other[0] ^= 1;
      assertThatThrownBy(
              () -> AgentProof.verify(proof.payload(), other, ourNetns(), ca, Instant.now()))
          .isInstanceOf(AgentProof.Refused.class)
          .hasMessageContaining("not signed by its certificate's key");
      assertThatThrownBy(
              () ->
                  AgentProof.verify(
                      proof.payload(),
                      nonce,
                      ourNetns(),
                      ca,
                      Instant.now().plus(Duration.ofDays(4000))))
          .as("a certificate that has expired")
          .isInstanceOf(AgentProof.Refused.class)
          .hasMessageContaining("not valid now");
      // A nonce of another length is malformed; the session goes on.
      app.send(Frame.PROVE, new byte[16]);
      assertThat(app.nextError()).isEqualTo(Frame.ERR_MALFORMED);
    }
    try (TestApp v2 = new TestApp(socket).hello("v2", 2)) {
      v2.send(Frame.PROVE, nonce);
      assertThat(v2.nextError())
          .as("PROVE in a version 2 session")
          .isEqualTo(Frame.ERR_UNKNOWN_TYPE);
    }
  }

  private Path serve(Supplier<AgentProof.Key> key) throws Exception {
    Path socket = dir.resolve("handoff.sock");
    server =
        HandoffServer.start(
            socket,
            Duration.ofSeconds(5),
            Duration.ofSeconds(30),
            1 << 20,
            HandoffLimits.DEFAULTS,
            reason -> {},
            key);
    return socket;
  }

  /** The key the agent would prove itself with, were its TLS files {@code who}'s. */
  private static Supplier<AgentProof.Key> key(Path dir, String who) throws Exception {
    MutualTls tls =
        new MutualTls(
            dir.resolve(who + ".crt"),
            dir.resolve(who + ".key"),
            dir.resolve("ca.crt"),
            (a, b) -> {});
    return tls::proofKey;
  }

  private static MigrationHandler declineAll() {
    return new MigrationHandler() {
      @Override
      public Handover freeze(Connection connection) {
        return Handover.decline("not in this test");
      }

      @Override
      public Takeover takeover(Connection connection, byte[] state) {
        return Takeover.decline("not in this test");
      }
    };
  }

  private static long ourNetns() throws Exception {
    try (NetNamespace ns = NetNamespace.current()) {
      return ns.inode();
    }
  }
}
