// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.tls;

import dev.ferry.api.client.TlsFiles;
import java.net.Socket;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.function.Consumer;
import java.util.logging.Logger;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * A certificate, key and CA read from files, and read again when the files change: cert-manager (or
 * a chart upgrade) renews the Secret, the kubelet updates the mounted files, and the next TLS
 * handshake presents the new certificate and trusts the new CA, with no restart. Connections made
 * before keep the identity they were made with.
 *
 * <p>The check is a stat of the three files at each handshake ({@link FileStamp}). Files that
 * cannot be read, or a key that does not belong to its certificate (caught while being replaced),
 * leave the last good reading in use, with a warning, and are tried again at the next handshake.
 *
 * <p>Give {@link #keyManager()} and {@link #trustManager()} to Netty's {@code SslContextBuilder}
 * ({@code keyManager(KeyManager)}, {@code forServer(KeyManager)}, {@code
 * trustManager(TrustManager)}); both Netty providers, the JDK's and OpenSSL, ask the key manager at
 * every handshake.
 */
public final class ReloadingTls {
  private static final Logger LOG = Logger.getLogger(ReloadingTls.class.getName());

  private final TlsFiles files;
  private final Consumer<X509Certificate> onReload;
  private final Keys keys = new Keys();
  private final Trust trust = new Trust();
  private volatile TlsMaterial current;
  private volatile TlsMaterial previous;
  private volatile FileStamp refused;

  /**
   * Reads the files now.
   *
   * @throws IllegalArgumentException naming the file that is missing or unusable
   */
  public ReloadingTls(TlsFiles files) {
    this(files, c -> {});
  }

  /**
   * @param onReload told the new certificate each time the files are read again
   */
  public ReloadingTls(TlsFiles files, Consumer<X509Certificate> onReload) {
    this.files = files;
    this.onReload = onReload;
    this.current = TlsMaterial.load(files, 1);
  }

  /** The key manager presenting the files' current certificate. */
  public X509ExtendedKeyManager keyManager() {
    return keys;
  }

  /** The trust manager trusting the files' current CA. */
  public X509ExtendedTrustManager trustManager() {
    return trust;
  }

  /** The certificate presented now, after reading the files again if they changed. */
  public X509Certificate certificate() {
    return fresh().certificate;
  }

  /**
   * The key of the certificate presented now and its chain, its own first, after reading the files
   * again if they changed: for what this end signs besides its handshakes.
   *
   * @throws IllegalStateException when the files hold no EC or RSA key
   */
  public KeyStore.PrivateKeyEntry ownKey() {
    X509ExtendedKeyManager keys = fresh().keys;
    String alias = keys.chooseClientAlias(new String[] {"EC", "RSA"}, null, null);
    PrivateKey key = alias == null ? null : keys.getPrivateKey(alias);
    X509Certificate[] chain = alias == null ? null : keys.getCertificateChain(alias);
    if (key == null || chain == null || chain.length == 0) {
      throw new IllegalStateException("no EC or RSA key in " + files.key() + " to sign with");
    }
    return new KeyStore.PrivateKeyEntry(key, chain);
  }

  private TlsMaterial fresh() {
    TlsMaterial m = current;
    FileStamp now = FileStamp.of(files.ca(), files.cert(), files.key());
    if (now.equals(m.stamp) || now.equals(refused)) {
      return m;
    }
    synchronized (this) {
      m = current;
      if (now.equals(m.stamp) || now.equals(refused)) {
        return m;
      }
      try {
        TlsMaterial next = TlsMaterial.load(files, m.generation + 1);
        previous = m;
        current = next;
        refused = null;
        LOG.info(
            () ->
                "read "
                    + files
                    + " again: now presenting "
                    + next.certificate.getSubjectX500Principal().getName()
                    + " serial "
                    + next.certificate.getSerialNumber().toString(16)
                    + ", valid until "
                    + next.certificate.getNotAfter().toInstant());
        onReload.accept(next.certificate);
        return next;
      } catch (RuntimeException e) {
        refused = now;
        LOG.warning(
            () ->
                "the TLS files changed but cannot be used yet, keeping the certificate read"
                    + " before: "
                    + e.getMessage());
        return m;
      }
    }
  }

  /**
   * The reading an alias came from. Aliases carry the generation, so that a handshake that chose
   * its alias just before a reload still gets the certificate and key of that one reading.
   */
  private TlsMaterial of(String alias) {
    if (alias == null) {
      return null;
    }
    for (TlsMaterial m : new TlsMaterial[] {current, previous}) {
      if (m != null && alias.startsWith(m.generation + "/")) {
        return m;
      }
    }
    return null;
  }

  private static String tagged(TlsMaterial m, String alias) {
    return alias == null ? null : m.generation + "/" + alias;
  }

  private static String untagged(String alias) {
    return alias.substring(alias.indexOf('/') + 1);
  }

  private static String[] tagged(TlsMaterial m, String[] aliases) {
    if (aliases == null) {
      return null;
    }
    String[] out = new String[aliases.length];
    for (int i = 0; i < aliases.length; i++) {
      out[i] = tagged(m, aliases[i]);
    }
    return out;
  }

  /**
   * Presents the current certificate. The issuers a peer asks for are not passed on: there is one
   * certificate to present, and a peer that read its CA list before a CA rotation would otherwise
   * be sent none.
   */
  private final class Keys extends X509ExtendedKeyManager {
    @Override
    public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
      TlsMaterial m = fresh();
      return tagged(m, m.keys.chooseEngineClientAlias(keyType, null, engine));
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
      TlsMaterial m = fresh();
      return tagged(m, m.keys.chooseEngineServerAlias(keyType, null, engine));
    }

    @Override
    public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
      TlsMaterial m = fresh();
      return tagged(m, m.keys.chooseClientAlias(keyType, null, socket));
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
      TlsMaterial m = fresh();
      return tagged(m, m.keys.chooseServerAlias(keyType, null, socket));
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
      TlsMaterial m = fresh();
      return tagged(m, m.keys.getClientAliases(keyType, null));
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
      TlsMaterial m = fresh();
      return tagged(m, m.keys.getServerAliases(keyType, null));
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
      TlsMaterial m = of(alias);
      return m == null ? null : m.keys.getCertificateChain(untagged(alias));
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
      TlsMaterial m = of(alias);
      return m == null ? null : m.keys.getPrivateKey(untagged(alias));
    }
  }

  /** Trusts the current CA. */
  private final class Trust extends X509ExtendedTrustManager {
    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      fresh().trust.checkClientTrusted(chain, authType, engine);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      fresh().trust.checkServerTrusted(chain, authType, engine);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
        throws CertificateException {
      fresh().trust.checkClientTrusted(chain, authType, socket);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
        throws CertificateException {
      fresh().trust.checkServerTrusted(chain, authType, socket);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType)
        throws CertificateException {
      fresh().trust.checkClientTrusted(chain, authType);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType)
        throws CertificateException {
      fresh().trust.checkServerTrusted(chain, authType);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return fresh().trust.getAcceptedIssuers();
    }
  }
}
