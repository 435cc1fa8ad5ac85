// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.plan;

import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.tls.ReloadingTls;
import dev.ferry.api.v1alpha1.MoveRequest;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.Arrays;

/**
 * Signs every Move a caller sends with the key of the certificate it presents (read again when the
 * files change, as {@link ReloadingTls} does for TLS). The operator, the CLI and the test beds send
 * Moves only through one.
 */
public final class PlanSigner {
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
    KeyStore.PrivateKeyEntry own = tls.ownKey();
    return req.toBuilder()
        .setPlan(
            MovePlans.sign(
                MovePlans.of(req, clock.instant().plus(MovePlans.GOOD_FOR)),
                own.getPrivateKey(),
                Arrays.copyOf(
                    own.getCertificateChain(),
                    own.getCertificateChain().length,
                    X509Certificate[].class)))
        .build();
  }
}
