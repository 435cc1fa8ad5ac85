// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import dev.ferry.testbed.Shell;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.List;

/**
 * A directory laid out as the kubelet lays out a mounted Secret: each file is a symbolic link
 * through {@code ..data}, itself a link to a directory holding one version; a new version is
 * written to a new directory and {@code ..data} is swapped to it in one rename. Versions are made
 * by scripts/ferry-certs.sh, the repository's certificate maker.
 */
public final class SecretVolume {
  static final List<String> FILES =
      List.of("ca.crt", "agent.crt", "agent.key", "operator.crt", "operator.key");

  private final Path dir;
  private int versions;

  SecretVolume(Path dir) throws IOException {
    this.dir = Files.createDirectories(dir);
  }

  Path dir() {
    return dir;
  }

  /** Certificates of a new CA in {@code dir}: ca, agent, operator (and admin). */
  public static Path newCa(Path dir) {
    Shell.run(script().toString(), dir.toString());
    return dir;
  }

  /** The agent's mutual TLS from the certificates {@link #newCa} made in {@code certs}. */
  public static MutualTls agentTls(Path certs, dev.ferry.agent.service.AgentMetrics metrics)
      throws IOException {
    return new MutualTls(
        certs.resolve("agent.crt"),
        certs.resolve("agent.key"),
        certs.resolve("ca.crt"),
        metrics::refused);
  }

  /** New leaf certificates in {@code dir}, signed by the CA of {@code ca}. */
  static Path newLeaves(Path ca, Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.copy(ca.resolve("ca.crt"), dir.resolve("ca.crt"));
    Files.copy(ca.resolve("ca.key"), dir.resolve("ca.key"));
    Shell.run(script().toString(), dir.toString());
    return dir;
  }

  /** Makes {@code from}'s files the volume's, as the kubelet does after the Secret changed. */
  void publish(Path from) throws IOException {
    Path version = Files.createDirectory(dir.resolve("..version-" + ++versions));
    for (String f : FILES) {
      Files.copy(from.resolve(f), version.resolve(f));
    }
    Path link = dir.resolve("..data_tmp");
    Files.createSymbolicLink(link, version.getFileName());
    Files.move(link, dir.resolve("..data"), StandardCopyOption.ATOMIC_MOVE);
    for (String f : FILES) {
      Path file = dir.resolve(f);
      if (!Files.isSymbolicLink(file)) {
        Files.createSymbolicLink(file, Path.of("..data", f));
      }
    }
  }

  Path file(String name) {
    return dir.resolve(name);
  }

  static X509Certificate certificate(Path file) throws Exception {
    try (InputStream in = Files.newInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  static Path script() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path s = d.resolve("scripts/ferry-certs.sh");
      if (Files.isExecutable(s)) {
        return s;
      }
    }
    throw new IllegalStateException(
        "scripts/ferry-certs.sh is not above " + Path.of("").toAbsolutePath());
  }
}
