// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.CertificateScript;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.tls.ReloadingTls;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.api.v1alpha1.MovePlan;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.api.v1alpha1.SignedPlan;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import javax.net.ssl.X509TrustManager;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MovePlansTest {
  @TempDir static Path dir;
  private static Path cluster;
  private static Path rogue;
  private static X509TrustManager agentTrust;
  private static final Instant FAR = Instant.parse("2100-01-01T00:00:00Z");

  private static final MoveRequest MOVE =
      MoveRequest.newBuilder()
          .setMigrationId("shop-move-1")
          .setTargetPod(PodRef.newBuilder().setNamespace("shop").setName("api-b").setUid("u-b"))
          .addPorts(8080)
          .addPorts(8443)
          .setAddress(MoveAddressPlan.newBuilder().setCidr("10.0.0.100/32"))
          .build();

  @BeforeAll
  static void certificates() throws Exception {
    cluster = dir.resolve("cluster");
    rogue = dir.resolve("rogue");
    CertificateScript.make(cluster.toString());
    CertificateScript.make("--rogue", rogue.toString());
    agentTrust = new ReloadingTls(TlsFiles.inDirectory(cluster, "agent")).trustManager();
  }

  @Test
  void aPlanTheOperatorOrAnAdminSignedIsTheMovesPlan() {
    for (String who : new String[] {"operator", "admin"}) {
      MoveRequest signed = signer(cluster, who).signed(MOVE);

      MovePlan plan = MovePlans.verify(signed.getPlan(), agentTrust, Instant.now());

      assertThat(plan.getMigrationId()).isEqualTo("shop-move-1");
      assertThat(plan.getTargetPod()).isEqualTo(MOVE.getTargetPod());
      assertThat(plan.getPortsList()).containsExactly(8080, 8443);
      assertThat(plan.getAddressCidr()).isEqualTo("10.0.0.100/32");
      MovePlans.requireOf(plan, signed);
    }
  }

  @Test
  void anAgentsCertificateCannotSignAPlan() {
    SignedPlan byAgent = signer(cluster, "agent").signed(MOVE).getPlan();

    assertRefused(byAgent, "signed by CN=ferry-node-agent, which may not sign plans");
  }

  @Test
  void aSignerOfAnotherCaIsRefused() {
    SignedPlan byRogue = signer(rogue, "operator").signed(MOVE).getPlan();

    assertRefused(byRogue, "its signer's certificate is not the cluster CA's");
  }

  @Test
  void aPlanChangedAfterItWasSignedIsRefused() {
    SignedPlan signed = signer(cluster, "operator").signed(MOVE).getPlan();
    MovePlan widened = MovePlans.of(MOVE.toBuilder().addPorts(22).build(), FAR);
    SignedPlan tampered = signed.toBuilder().setPlan(widened.toByteString()).build();
    SignedPlan truncated =
        signed.toBuilder().setSignature(signed.getSignature().substring(0, 8)).build();

    assertRefused(tampered, "the signature is not CN=ferry-operator's");
    assertThatThrownBy(() -> MovePlans.verify(truncated, agentTrust, Instant.now()))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageStartingWith("plan: the signature");
  }

  @Test
  void aPlanIsGoodForAnHour() {
    Instant signedAt = Instant.parse("2026-12-03T08:00:00Z");
    PlanSigner signer =
        new PlanSigner(
            new ReloadingTls(TlsFiles.inDirectory(cluster, "operator")),
            Clock.fixed(signedAt, ZoneOffset.UTC));
    SignedPlan plan = signer.signed(MOVE).getPlan();

    MovePlans.verify(plan, agentTrust, signedAt.plus(Duration.ofMinutes(59)));
    assertThatThrownBy(
            () -> MovePlans.verify(plan, agentTrust, signedAt.plus(Duration.ofMinutes(61))))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining("expired at 2026-12-03T09:00:00Z");
  }

  @Test
  void eachSigningIsItsOwnPlanEvenInTheSameMillisecond() {
    // A target refuses a plan it rolled back; the operator's next attempt at the same migration,
    // signed again, must not be mistaken for it.
    PlanSigner signer =
        new PlanSigner(
            new ReloadingTls(TlsFiles.inDirectory(cluster, "operator")),
            Clock.fixed(Instant.parse("2026-12-03T08:00:00Z"), ZoneOffset.UTC));
    SignedPlan first = signer.signed(MOVE).getPlan();
    SignedPlan second = signer.signed(MOVE).getPlan();

    assertThat(MovePlans.idOf(first)).isNotEqualTo(MovePlans.idOf(second)).hasSize(64);
    assertThat(MovePlans.idOf(first)).isEqualTo(MovePlans.idOf(first.toBuilder().build()));
    MovePlans.requireOf(
        MovePlans.verify(second, agentTrust, Instant.parse("2026-12-03T08:01:00Z")), MOVE);
  }

  @Test
  void aMoveWithoutAPlanIsRefusedNamingTheFix() {
    assertRefused(SignedPlan.getDefaultInstance(), "the move carries no signed plan");
  }

  @Test
  void aPlanCoversOnlyItsOwnMove() {
    MovePlan plan =
        MovePlans.verify(
            signer(cluster, "operator").signed(MOVE).getPlan(), agentTrust, Instant.now());

    assertThatThrownBy(() -> MovePlans.requireOf(plan, MOVE.toBuilder().addPorts(22).build()))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessage(
            "plan: ports is [8080, 8443] in the signed plan and [8080, 8443, 22] in the move:"
                + " sign the move as it is sent");
    assertThatThrownBy(
            () ->
                MovePlans.requireOf(
                    plan, MOVE.toBuilder().setTargetPod(PodRef.newBuilder().setName("x")).build()))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining("plan: target_pod is");
  }

  @Test
  void aPlanCoversConnectionsOnItsPortsAndAddressOnly() throws Exception {
    MovePlan plan = MovePlans.of(MOVE, FAR);

    assertThat(MovePlans.covers(plan, new InetSocketAddress("10.0.0.100", 8080))).isTrue();
    assertThat(MovePlans.covers(plan, new InetSocketAddress("10.0.0.100", 8443))).isTrue();
    assertThat(MovePlans.covers(plan, new InetSocketAddress("10.0.0.100", 22))).isFalse();
    assertThat(MovePlans.covers(plan, new InetSocketAddress("10.0.0.7", 8080))).isFalse();

    MovePlan v6 =
        MovePlans.of(
            MOVE.toBuilder()
                .setAddress(MoveAddressPlan.newBuilder().setCidr("fd42::100/128"))
                .build(),
            FAR);
    assertThat(MovePlans.covers(v6, new InetSocketAddress("fd42:0::100", 8080))).isTrue();
    assertThat(MovePlans.covers(v6, new InetSocketAddress("10.0.0.100", 8080))).isFalse();

    MovePlan addressStays = MovePlans.of(MOVE.toBuilder().clearAddress().build(), FAR);
    assertThat(MovePlans.covers(addressStays, new InetSocketAddress("10.0.0.7", 8080))).isTrue();
    assertThat(MovePlans.covers(addressStays, new InetSocketAddress("10.0.0.7", 22))).isFalse();
  }

  private static void assertRefused(SignedPlan plan, String why) {
    assertThatThrownBy(() -> MovePlans.verify(plan, agentTrust, Instant.now()))
        .isInstanceOf(MovePlans.Refused.class)
        .hasMessageContaining(why);
  }

  private static PlanSigner signer(Path certs, String who) {
    return new PlanSigner(TlsFiles.inDirectory(certs, who));
  }
}
