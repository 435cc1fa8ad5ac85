// SPDX-License-Identifier: Apache-2.0
package dev.ferry.protocol;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/**
 * The agent's proof that it is the node's Ferry agent (protocol version 3, PROVE and PROOF;
 * docs/handoff-protocol.md, "Proof"): a signature with the key of its TLS certificate over the
 * application's nonce and the network namespace the agent files the session under. The agent makes
 * it with {@link #answer}; the application checks it with {@link #verify}.
 */
public final class AgentProof {
  /** The length of PROVE's nonce. */
  public static final int NONCE_BYTES = 32;

  /** The common name of every agent certificate. */
  public static final String AGENT_NAME = "ferry-node-agent";

  private static final int MAX_CHAIN = 8;
  private static final byte[] CONTEXT =
      "ferry-handoff-proof-v3\0".getBytes(StandardCharsets.US_ASCII);

  private AgentProof() {}

  /** The agent's key and the certificate chain that goes with it, its own first. */
  public record Key(PrivateKey key, List<X509Certificate> chain) {}

  /** The check of a proof failed; the message says which check, and what to do. */
  public static final class Refused extends IOException {
    public Refused(String message) {
      super(message);
    }
  }

  /** The bytes the agent signs: the context, the nonce, the namespace inode. */
  static byte[] signedBytes(byte[] nonce, long netns) {
    return ByteBuffer.allocate(CONTEXT.length + nonce.length + 8)
        .put(CONTEXT)
        .put(nonce)
        .putLong(netns)
        .array();
  }

  /** PROOF's payload: {@code key} signs {@code nonce} for the session in {@code netns}. */
  public static byte[] answer(Key key, byte[] nonce, long netns) throws GeneralSecurityException {
    if (nonce.length != NONCE_BYTES) {
      throw new IllegalArgumentException("a nonce is " + NONCE_BYTES + " bytes");
    }
    Signature s = Signature.getInstance(algorithm(key.key().getAlgorithm()));
    s.initSign(key.key());
    s.update(signedBytes(nonce, netns));
    byte[] signature = s.sign();
    List<byte[]> ders = new ArrayList<>();
    int size = 8 + 2 + signature.length + 1;
    for (X509Certificate c : key.chain().subList(0, Math.min(MAX_CHAIN, key.chain().size()))) {
      byte[] der = c.getEncoded();
      ders.add(der);
      size += 2 + der.length;
    }
    ByteBuffer b = ByteBuffer.allocate(size).putLong(netns);
    b.putShort((short) signature.length).put(signature).put((byte) ders.size());
    for (byte[] der : ders) {
      b.putShort((short) der.length).put(der);
    }
    return b.array();
  }

  /**
   * Accepts {@code proof} (PROOF's payload) only if its chain leads to one of {@code cas} and is
   * valid at {@code now}, its certificate names {@value #AGENT_NAME}, it was made for {@code
   * ownNetns} (the application's own network namespace: a proof relayed from another pod names that
   * pod's), and its signature over {@code nonce} is that certificate's key's.
   *
   * @throws Refused naming the check that failed
   */
  public static void verify(
      byte[] proof, byte[] nonce, long ownNetns, List<X509Certificate> cas, Instant now)
      throws Refused {
    ByteBuffer b = ByteBuffer.wrap(proof);
    long netns;
    byte[] signature;
    List<X509Certificate> chain = new ArrayList<>();
    try {
      netns = b.getLong();
      signature = new byte[b.getShort() & 0xffff];
      b.get(signature);
      int count = b.get() & 0xff;
      if (count < 1 || count > MAX_CHAIN) {
        throw new Refused("the agent's proof carries " + count + " certificates, not 1 to 8");
      }
      CertificateFactory f = CertificateFactory.getInstance("X.509");
      for (int i = 0; i < count; i++) {
        byte[] der = new byte[b.getShort() & 0xffff];
        b.get(der);
        chain.add((X509Certificate) f.generateCertificate(new ByteArrayInputStream(der)));
      }
    } catch (java.nio.BufferUnderflowException | GeneralSecurityException e) {
      throw new Refused("the agent's proof cannot be read: " + e);
    }
    X509Certificate own = chain.get(0);
    try {
      Set<TrustAnchor> anchors = new HashSet<>();
      for (X509Certificate ca : cas) {
        anchors.add(new TrustAnchor(ca, null));
      }
      PKIXParameters p = new PKIXParameters(anchors);
      p.setRevocationEnabled(false); // the cluster CA publishes no revocation list
      p.setDate(Date.from(now));
      CertPathValidator.getInstance("PKIX")
          .validate(CertificateFactory.getInstance("X.509").generateCertPath(chain), p);
    } catch (GeneralSecurityException e) {
      throw new Refused(
          "the agent's certificate ("
              + own.getSubjectX500Principal()
              + ") is not one the given CA issued, or is not valid now: "
              + e.getMessage()
              + ". Give the CA that issues the Ferry agents' certificates");
    }
    String name = commonName(own);
    if (!AGENT_NAME.equals(name)) {
      throw new Refused(
          "the certificate that answered is CN="
              + name
              + ", not a Ferry agent's ("
              + AGENT_NAME
              + ")");
    }
    if (netns != ownNetns) {
      throw new Refused(
          "the agent's proof was made for network namespace "
              + netns
              + ", and this is "
              + ownNetns
              + ": something between this application and the agent relays the session");
    }
    try {
      PublicKey key = own.getPublicKey();
      Signature s = Signature.getInstance(algorithm(key.getAlgorithm()));
      s.initVerify(key);
      s.update(signedBytes(nonce, netns));
      if (!s.verify(signature)) {
        throw new Refused("the agent's proof is not signed by its certificate's key");
      }
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new Refused("the agent's proof signature cannot be checked: " + e.getMessage());
    }
  }

  /** Every certificate in the PEM file {@code caFile}: the CA a proof must lead to. */
  public static List<X509Certificate> readCas(Path caFile) throws IOException {
    try (InputStream in = Files.newInputStream(caFile)) {
      List<X509Certificate> out = new ArrayList<>();
      for (var c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        out.add((X509Certificate) c);
      }
      if (out.isEmpty()) {
        throw new IOException(caFile + " holds no certificate: give the cluster CA's ca.crt");
      }
      return out;
    } catch (GeneralSecurityException e) {
      throw new IOException(caFile + " is not a PEM certificate file: " + e.getMessage(), e);
    }
  }

  private static String commonName(X509Certificate c) {
    try {
      for (Rdn rdn : new LdapName(c.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return rdn.getValue().toString();
        }
      }
    } catch (InvalidNameException e) {
      // no name: refused as ""
    }
    return "";
  }

  private static String algorithm(String keyAlgorithm) {
    return switch (keyAlgorithm) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      default -> throw new IllegalArgumentException("no signature for a " + keyAlgorithm + " key");
    };
  }
}
