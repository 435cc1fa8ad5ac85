// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.client;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The PEM files a caller of an agent presents: the cluster's Ferry CA, its certificate and its
 * PKCS#8 key. The chart mounts them; {@code scripts/ferry-certs.sh} writes them for a test bed.
 */
public record TlsFiles(Path ca, Path cert, Path key) {

  /** {@code DIR/ca.crt}, {@code DIR/WHO.crt} and {@code DIR/WHO.key}, as the script names them. */
  public static TlsFiles inDirectory(Path dir, String who) {
    return new TlsFiles(
        dir.resolve("ca.crt"), dir.resolve(who + ".crt"), dir.resolve(who + ".key"));
  }

  /**
   * Fails naming the first file that is missing or unreadable, so that a wrong mount is reported as
   * such and not as a TLS handshake failure later.
   */
  public TlsFiles check() {
    require("CA certificate", ca);
    require("certificate", cert);
    require("private key", key);
    return this;
  }

  private static void require(String what, Path file) {
    if (!Files.isReadable(file)) {
      throw new IllegalArgumentException(
          "the "
              + what
              + " "
              + file
              + " is missing or unreadable: mount the Ferry certificates there, or create them with"
              + " scripts/ferry-certs.sh DIR");
    }
  }
}
