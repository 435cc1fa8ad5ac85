// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.CertificateScript;
import dev.ferry.api.client.TlsFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What ReloadingTls presents as its files change, and how it refuses files it cannot use. The
 * handshakes themselves, on real sockets, are node-agent's CertificateReloadTest.
 */
class ReloadingTlsTest {
  @TempDir Path dir;
  private Path a;
  private Path b;

  @BeforeEach
  void certificates() throws Exception {
    a = certs(dir.resolve("a"), null);
    b = certs(dir.resolve("b"), a);
  }

  @Test
  void presentsTheCertificateTheFilesHoldNow() throws Exception {
    Path live = copy(a, dir.resolve("live"));
    List<X509Certificate> reloads = new ArrayList<>();
    ReloadingTls tls = new ReloadingTls(TlsFiles.inDirectory(live, "agent"), reloads::add);
    String first = tls.keyManager().chooseServerAlias("EC", null, null);
    assertThat(tls.keyManager().getCertificateChain(first)[0].getSerialNumber())
        .isEqualTo(tls.certificate().getSerialNumber());

    replace(b, live, "agent.crt", "agent.key");
    String second = tls.keyManager().chooseServerAlias("EC", null, null);
    X509Certificate now = tls.keyManager().getCertificateChain(second)[0];
    assertThat(now.getSerialNumber()).isNotEqualTo(serialOf(a)).isEqualTo(serialOf(b));
    assertThat(tls.keyManager().getPrivateKey(second)).isNotNull();
    assertThat(reloads).singleElement().isEqualTo(now);
    // A handshake that chose its alias before the change still gets that reading's pair.
    assertThat(tls.keyManager().getCertificateChain(first)[0].getSerialNumber())
        .isEqualTo(serialOf(a));
  }

  @Test
  void aKeyOfAnotherCertificateIsRefusedNamingBoth() throws Exception {
    Path mixed = copy(a, dir.resolve("mixed"));
    Files.copy(
        b.resolve("agent.key"), mixed.resolve("agent.key"), StandardCopyOption.REPLACE_EXISTING);
    assertThatThrownBy(() -> new ReloadingTls(TlsFiles.inDirectory(mixed, "agent")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(mixed.resolve("agent.key") + " does not belong to the certificate")
        .hasMessageContaining(mixed.resolve("agent.crt").toString());
  }

  @Test
  void aKeyThatIsNotPkcs8IsRefusedSayingHowToConvertIt() throws Exception {
    Path sec1 = copy(a, dir.resolve("sec1"));
    CertificateScript.run(
        "openssl",
        "ec",
        "-in",
        a.resolve("agent.key").toString(),
        "-out",
        sec1.resolve("agent.key").toString());
    assertThat(Files.readString(sec1.resolve("agent.key"))).contains("BEGIN EC PRIVATE KEY");
    assertThatThrownBy(() -> new ReloadingTls(TlsFiles.inDirectory(sec1, "agent")))
        .hasMessageContaining(sec1.resolve("agent.key").toString())
        .hasMessageContaining("openssl pkcs8 -topk8 -nocrypt");
  }

  @Test
  void aMissingFileIsNamed() throws Exception {
    Path none = copy(a, dir.resolve("none"));
    Files.delete(none.resolve("ca.crt"));
    assertThatThrownBy(() -> new ReloadingTls(TlsFiles.inDirectory(none, "agent")))
        .hasMessageContaining(none.resolve("ca.crt") + " is missing or unreadable");
  }

  private static java.math.BigInteger serialOf(Path certs) throws Exception {
    try (var in = Files.newInputStream(certs.resolve("agent.crt"))) {
      return ((X509Certificate)
              java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in))
          .getSerialNumber();
    }
  }

  /** Writes each file beside its target and renames it over, as a new inode. */
  private static void replace(Path from, Path to, String... names) throws IOException {
    for (String n : names) {
      Path tmp = to.resolve(n + ".tmp");
      Files.copy(from.resolve(n), tmp);
      Files.move(
          tmp, to.resolve(n), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
  }

  private static Path copy(Path from, Path to) throws IOException {
    Files.createDirectories(to);
    for (String n : List.of("ca.crt", "agent.crt", "agent.key")) {
      Files.copy(from.resolve(n), to.resolve(n));
    }
    return to;
  }

  /** scripts/ferry-certs.sh into {@code dir}: a new CA, or {@code caOf}'s CA when given. */
  private static Path certs(Path dir, Path caOf) throws Exception {
    Files.createDirectories(dir);
    if (caOf != null) {
      Files.copy(caOf.resolve("ca.crt"), dir.resolve("ca.crt"));
      Files.copy(caOf.resolve("ca.key"), dir.resolve("ca.key"));
    }
    CertificateScript.make(dir.toString());
    return dir;
  }
}
