// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.tls;

import dev.ferry.api.client.TlsFiles;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * One reading of a {@link TlsFiles}: the certificate and key to present, the CA to trust, and the
 * files' stamp when they were read. Only a whole, consistent set is ever made: a key that does not
 * belong to the certificate (files caught half replaced) is refused.
 */
final class TlsMaterial {
  /** The in-memory key store's; a key entry wants one, and nothing is ever written. */
  private static final char[] PASSWORD = "ferry".toCharArray();

  /**
   * The in-memory key store for the key and its chain: JKS, not PKCS#12, whose key entries are
   * encrypted as they are put and decrypted as the key manager reads them, each time with 10,000
   * rounds of PBKDF2: 50-66 ms of CPU a load that way against 10-16 (C1, a loop of loads), and the
   * operator loads the files twice at its first migration (its Move signer, its channels), an agent
   * at its start and at each rotation, the CLI at each run. The store never leaves memory, so its
   * protection buys nothing.
   */
  private static final String KEY_STORE_TYPE = "JKS";

  final int generation;
  final FileStamp stamp;
  final X509Certificate certificate;
  final X509ExtendedKeyManager keys;
  final X509ExtendedTrustManager trust;

  private TlsMaterial(
      int generation,
      FileStamp stamp,
      X509Certificate certificate,
      X509ExtendedKeyManager keys,
      X509ExtendedTrustManager trust) {
    this.generation = generation;
    this.stamp = stamp;
    this.certificate = certificate;
    this.keys = keys;
    this.trust = trust;
  }

  /**
   * Reads the files. The stamp is taken first, so a change made while they are read shows as a
   * change the next time.
   *
   * @throws IllegalArgumentException naming the file that is missing, unreadable or unusable
   */
  static TlsMaterial load(TlsFiles files, int generation) {
    files.check();
    FileStamp stamp = FileStamp.of(files.ca(), files.cert(), files.key());
    List<X509Certificate> chain = certificates(files.cert(), "certificate");
    List<X509Certificate> cas = certificates(files.ca(), "CA certificate");
    PrivateKey key = privateKey(files.key());
    requireKeyOf(chain.get(0), key, files);
    try {
      KeyStore keyStore = KeyStore.getInstance(KEY_STORE_TYPE);
      keyStore.load(null, null);
      keyStore.setKeyEntry("ferry", key, PASSWORD, chain.toArray(new Certificate[0]));
      KeyManagerFactory kmf =
          KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keyStore, PASSWORD);

      KeyStore trustStore = KeyStore.getInstance("PKCS12");
      trustStore.load(null, null);
      for (int i = 0; i < cas.size(); i++) {
        trustStore.setCertificateEntry("ca-" + i, cas.get(i));
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(trustStore);
      return new TlsMaterial(
          generation,
          stamp,
          chain.get(0),
          only(X509ExtendedKeyManager.class, kmf.getKeyManagers()),
          only(X509ExtendedTrustManager.class, tmf.getTrustManagers()));
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException("cannot use " + files + ": " + e.getMessage(), e);
    }
  }

  private static List<X509Certificate> certificates(Path file, String what) {
    try (InputStream in = Files.newInputStream(file)) {
      List<X509Certificate> out =
          CertificateFactory.getInstance("X.509").generateCertificates(in).stream()
              .map(X509Certificate.class::cast)
              .toList();
      if (out.isEmpty()) {
        throw new IllegalArgumentException("the " + what + " " + file + " holds no certificate");
      }
      return out;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalArgumentException(
          "the " + what + " " + file + " is not usable PEM: " + e.getMessage(), e);
    }
  }

  /**
   * A PKCS#8 key ("BEGIN PRIVATE KEY"), EC or RSA: what the chart, cert-manager and the script
   * write.
   */
  private static PrivateKey privateKey(Path file) {
    String pem;
    try {
      pem = Files.readString(file, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the private key " + file + ": " + e, e);
    }
    int begin = pem.indexOf("-----BEGIN PRIVATE KEY-----");
    int end = pem.indexOf("-----END PRIVATE KEY-----");
    if (begin < 0 || end < begin) {
      throw new IllegalArgumentException(
          "the private key "
              + file
              + " is not PKCS#8 PEM (BEGIN PRIVATE KEY): convert it with"
              + " `openssl pkcs8 -topk8 -nocrypt`");
    }
    byte[] der =
        Base64.getMimeDecoder()
            .decode(pem.substring(begin + "-----BEGIN PRIVATE KEY-----".length(), end));
    for (String algorithm : List.of("EC", "RSA")) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
      } catch (GeneralSecurityException e) {
        // try the next algorithm
      }
    }
    throw new IllegalArgumentException("the private key " + file + " is neither EC nor RSA PKCS#8");
  }

  /** Signs with the key and verifies with the certificate: they belong together, or fail. */
  private static void requireKeyOf(X509Certificate cert, PrivateKey key, TlsFiles files) {
    String algorithm = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
    byte[] probe = "ferry".getBytes(StandardCharsets.US_ASCII);
    boolean matches;
    try {
      Signature s = Signature.getInstance(algorithm);
      s.initSign(key);
      s.update(probe);
      byte[] signature = s.sign();
      s.initVerify(cert.getPublicKey());
      s.update(probe);
      matches = s.verify(signature);
    } catch (GeneralSecurityException e) {
      matches = false;
    }
    if (!matches) {
      throw new IllegalArgumentException(
          "the private key " + files.key() + " does not belong to the certificate " + files.cert());
    }
  }

  private static <T> T only(Class<T> kind, Object[] managers) {
    for (Object m : managers) {
      if (kind.isInstance(m)) {
        return kind.cast(m);
      }
    }
    throw new IllegalStateException("the JDK made no " + kind.getSimpleName());
  }
}
