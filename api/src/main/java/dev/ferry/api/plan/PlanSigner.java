// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.plan;

import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.tls.ReloadingTls;
import dev.ferry.api.v1alpha1.MoveRequest;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Clock;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * Signs every Move a caller sends with the key of the certificate it presents (read again when the
 * files change, as {@link ReloadingTls} does for TLS). The operator, the CLI and the test beds send
 * Moves only through one.
 */
public final class PlanSigner {
  private static final String[] KEY_TYPES = {"EC", "RSA"};

  private final ReloadingTls tls;
  private final Clock clock;

  public PlanSigner(TlsFiles files) {
    this(new ReloadingTls(files), Clock.systemUTC());
  }

  PlanSigner(ReloadingTls tls, Clock clock) {
    this.tls = tls;
    this.clock = clock;
  }

  /** {@code req} with its plan, signed now. */
  public MoveRequest signed(MoveRequest req) {
    tls.certificate(); // reads the files again if they changed
    X509ExtendedKeyManager keys = tls.keyManager();
    String alias = keys.chooseClientAlias(KEY_TYPES, null, null);
    PrivateKey key = alias == null ? null : keys.getPrivateKey(alias);
    X509Certificate[] chain = alias == null ? null : keys.getCertificateChain(alias);
    if (key == null || chain == null || chain.length == 0) {
      throw new IllegalStateException("no key to sign the move plan with");
    }
    return req.toBuilder()
        .setPlan(
            MovePlans.sign(MovePlans.of(req, clock.instant().plus(MovePlans.GOOD_FOR)), key, chain))
        .build();
  }
}
