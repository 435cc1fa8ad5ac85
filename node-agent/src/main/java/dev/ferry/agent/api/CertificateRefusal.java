// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.OpenSslCertificateException;
import io.netty.internal.tcnative.CertificateVerifier;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.PKIXReason;

/**
 * Why a client certificate was refused, as the TLS alert that says it (RFC 8446 §6.2) and as the
 * reason counted in {@code ferry_agent_callers_refused_total}.
 *
 * <p>Netty's OpenSSL engine turns a trust manager's plain {@code CertificateException} into
 * X509_V_ERR_UNSPECIFIED, which BoringSSL sends as {@code internal_error}: the caller then learns
 * nothing, and blames the agent. An {@link OpenSslCertificateException} carrying the verify error
 * makes it send the alert for that error instead ({@code SSL_alert_from_verify_result}).
 */
enum CertificateRefusal {
  /** No chain leads to the cluster CA: another CA signed it, or it signed itself. */
  UNKNOWN_CA("unknown-ca", "unknown_ca"),
  CERTIFICATE_EXPIRED("certificate-expired", "certificate_expired"),
  /** Not valid yet: a clock that is behind, or a certificate issued for later. */
  CERTIFICATE_NOT_YET_VALID("certificate-not-yet-valid", "bad_certificate"),
  /** The CA is right but the certificate is not fit: a bad signature, not for client use, ... */
  BAD_CERTIFICATE("bad-certificate", "bad_certificate");

  private final String reason;
  private final String alert;

  CertificateRefusal(String reason, String alert) {
    this.reason = reason;
    this.alert = alert;
  }

  /** The metric's reason tag. */
  String reason() {
    return reason;
  }

  /** The TLS alert the caller receives. */
  String alert() {
    return alert;
  }

  static CertificateRefusal of(CertificateException e) {
    if (e instanceof CertificateExpiredException) {
      return CERTIFICATE_EXPIRED;
    }
    if (e instanceof CertificateNotYetValidException) {
      return CERTIFICATE_NOT_YET_VALID;
    }
    for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
      // The JDK's PKIX trust manager fails to build a path when no trust anchor is reached, and
      // fails to validate one when a certificate on it is out of date or badly signed.
      if (t instanceof CertPathBuilderException) {
        return UNKNOWN_CA;
      }
      if (t instanceof CertPathValidatorException v) {
        if (v.getReason() == PKIXReason.NO_TRUST_ANCHOR) {
          return UNKNOWN_CA;
        }
        if (v.getReason() == CertPathValidatorException.BasicReason.EXPIRED) {
          return CERTIFICATE_EXPIRED;
        }
        if (v.getReason() == CertPathValidatorException.BasicReason.NOT_YET_VALID) {
          return CERTIFICATE_NOT_YET_VALID;
        }
        return BAD_CERTIFICATE;
      }
    }
    return BAD_CERTIFICATE;
  }

  /**
   * {@code e} as the handshake should fail with it: with OpenSSL, carrying the verify error whose
   * alert is {@link #alert()}; with the JDK's engine, unchanged (it picks its alert itself).
   */
  CertificateException toThrow(CertificateException e) {
    if (!OpenSsl.isAvailable()) {
      return e;
    }
    int code =
        switch (this) {
          case UNKNOWN_CA -> CertificateVerifier.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
          case CERTIFICATE_EXPIRED -> CertificateVerifier.X509_V_ERR_CERT_HAS_EXPIRED;
          case CERTIFICATE_NOT_YET_VALID -> CertificateVerifier.X509_V_ERR_CERT_NOT_YET_VALID;
          case BAD_CERTIFICATE -> CertificateVerifier.X509_V_ERR_CERT_REJECTED;
        };
    return new OpenSslCertificateException(e.getMessage(), e, code);
  }
}
