// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.plan;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.MovePlan;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.SignedPlan;
import java.io.ByteArrayInputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.X509TrustManager;

/**
 * Signed move plans: how a target agent, which hears of a move only from the source agent, knows
 * that the operator (or an admin) decided it, and for which pod, ports and address. Without one,
 * any holder of an agent certificate could push sockets into any pod of any node.
 */
public final class MovePlans {
  /** The certificate names that may sign a plan: the operator's and the CLI's. */
  public static final Set<String> SIGNERS = Set.of("ferry-operator", "ferry-admin");

  /**
   * How long a plan is good for. The longest legitimate use is a source sending the states again
   * after a commit, within the hold limit of the freeze; a target remembers the plans it rolled
   * back (by {@link #idOf}) at least this long, and refuses them if their source sends them again.
   */
  public static final Duration GOOD_FOR = Duration.ofHours(1);

  private static final SecureRandom RANDOM = new SecureRandom();

  private MovePlans() {}

  /** The plan of {@code req}, good until {@code notAfter}. */
  public static MovePlan of(MoveRequest req, Instant notAfter) {
    return MovePlan.newBuilder()
        .setMigrationId(req.getMigrationId())
        .setTargetPod(req.getTargetPod())
        .addAllPorts(req.getPortsList())
        .setAddressCidr(req.getAddress().getCidr())
        .setNotAfterUnixMillis(notAfter.toEpochMilli())
        .setSourceNode(req.getSourceNode())
        .setTargetNode(req.getTargetNode())
        .setNonce(ByteString.copyFrom(nonce()))
        .build();
  }

  /**
   * What names one signed plan wherever it goes: the SHA-256 of its bytes, in hex. Plans signed for
   * the same move differ in their nonce (and their expiry), so each attempt has its own.
   */
  public static String idOf(SignedPlan signed) {
    try {
      return HexFormat.of()
          .formatHex(MessageDigest.getInstance("SHA-256").digest(signed.getPlan().toByteArray()));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM has no SHA-256", e);
    }
  }

  private static byte[] nonce() {
    byte[] b = new byte[16];
    RANDOM.nextBytes(b);
    return b;
  }

  /** Signs {@code plan} with {@code key}, whose certificate is {@code chain[0]}. */
  public static SignedPlan sign(MovePlan plan, PrivateKey key, X509Certificate[] chain) {
    byte[] bytes = plan.toByteArray();
    try {
      Signature s = Signature.getInstance(algorithm(key.getAlgorithm()));
      s.initSign(key);
      s.update(bytes);
      SignedPlan.Builder b =
          SignedPlan.newBuilder()
              .setPlan(ByteString.copyFrom(bytes))
              .setSignature(ByteString.copyFrom(s.sign()));
      for (X509Certificate c : chain) {
        b.addSignerChain(ByteString.copyFrom(c.getEncoded()));
      }
      return b.build();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign the move plan: " + e.getMessage(), e);
    }
  }

  /**
   * The plan {@code signed} carries, once its signer's chain leads to the CA {@code trust} trusts,
   * the signer is one of {@link #SIGNERS}, the signature is the signer's, and the plan has not
   * expired at {@code now}.
   *
   * @throws Refused naming what is wrong
   */
  public static MovePlan verify(SignedPlan signed, X509TrustManager trust, Instant now) {
    if (signed.getPlan().isEmpty()) {
      throw new Refused(
          "plan: the move carries no signed plan; the operator and ferry-agent sign every Move"
              + " (dev.ferry.api.plan.PlanSigner): update the caller");
    }
    X509Certificate[] chain = chain(signed);
    try {
      trust.checkClientTrusted(chain, chain[0].getPublicKey().getAlgorithm());
    } catch (GeneralSecurityException e) {
      throw new Refused(
          "plan: its signer's certificate is not the cluster CA's: " + e.getMessage());
    }
    String signer = commonName(chain[0]);
    if (!SIGNERS.contains(signer)) {
      throw new Refused("plan: signed by CN=" + signer + ", which may not sign plans " + SIGNERS);
    }
    PublicKey publicKey = chain[0].getPublicKey();
    try {
      Signature s = Signature.getInstance(algorithm(publicKey.getAlgorithm()));
      s.initVerify(publicKey);
      s.update(signed.getPlan().asReadOnlyByteBuffer());
      if (!s.verify(signed.getSignature().toByteArray())) {
        throw new Refused("plan: the signature is not CN=" + signer + "'s");
      }
    } catch (GeneralSecurityException e) {
      throw new Refused("plan: the signature cannot be checked: " + e.getMessage());
    }
    MovePlan plan;
    try {
      plan = MovePlan.parseFrom(signed.getPlan());
    } catch (InvalidProtocolBufferException e) {
      throw new Refused("plan: signed, but not a MovePlan: " + e.getMessage());
    }
    if (now.toEpochMilli() > plan.getNotAfterUnixMillis()) {
      throw new Refused(
          "plan: expired at "
              + Instant.ofEpochMilli(plan.getNotAfterUnixMillis())
              + "; a plan is good for "
              + GOOD_FOR
              + " after it is signed");
    }
    return plan;
  }

  /**
   * Fails unless {@code plan} is the plan of {@code req}: the same migration, target pod, ports and
   * address.
   */
  public static void requireOf(MovePlan plan, MoveRequest req) {
    requireSame("migration_id", plan.getMigrationId(), req.getMigrationId());
    requireSame("target_pod", plan.getTargetPod(), req.getTargetPod());
    requireSame("ports", plan.getPortsList(), req.getPortsList());
    requireSame("address.cidr", plan.getAddressCidr(), req.getAddress().getCidr());
    requireSame("source_node", plan.getSourceNode(), req.getSourceNode());
    requireSame("target_node", plan.getTargetNode(), req.getTargetNode());
  }

  /** Fails unless {@code plan} is the plan of the arrival {@code header} announces. */
  public static void requireOf(MovePlan plan, ArrivalHeader header) {
    requireSame("migration_id", plan.getMigrationId(), header.getMigrationId());
    requireSame("target_pod", plan.getTargetPod(), header.getTargetPod());
    requireSame("address.cidr", plan.getAddressCidr(), header.getAddress().getCidr());
    if (!plan.getSourceNode().isEmpty()) {
      requireSame("source_node", plan.getSourceNode(), header.getSourceNode());
    }
  }

  /** Whether a connection whose local end is {@code local} may enter the plan's pod. */
  public static boolean covers(MovePlan plan, InetSocketAddress local) {
    if (!plan.getPortsList().contains(local.getPort())) {
      return false;
    }
    String cidr = plan.getAddressCidr();
    if (cidr.isEmpty()) {
      return true;
    }
    return local.getAddress().equals(addressOf(cidr));
  }

  /** Thrown when a plan cannot be trusted or does not cover what it is asked to. */
  public static final class Refused extends RuntimeException {
    public Refused(String message) {
      super(message);
    }
  }

  static void requireSame(String field, Object planned, Object asked) {
    if (!planned.equals(asked)) {
      throw new Refused(
          "plan: "
              + field
              + " is "
              + String.valueOf(planned).strip()
              + " in the signed plan and "
              + String.valueOf(asked).strip()
              + " in the move: sign the move as it is sent");
    }
  }

  private static InetAddress addressOf(String cidr) {
    String literal = cidr.contains("/") ? cidr.substring(0, cidr.indexOf('/')) : cidr;
    if (!literal.matches("[0-9A-Fa-f.:]+")) {
      throw new Refused("plan: address_cidr " + cidr + " is not ADDRESS/PREFIX");
    }
    try {
      return InetAddress.getByName(literal); // a literal: no name is looked up
    } catch (UnknownHostException e) {
      throw new Refused("plan: address_cidr " + cidr + " is not ADDRESS/PREFIX");
    }
  }

  private static X509Certificate[] chain(SignedPlan signed) {
    if (signed.getSignerChainCount() == 0) {
      throw new Refused("plan: no signer certificate");
    }
    List<X509Certificate> out = new ArrayList<>();
    try {
      CertificateFactory f = CertificateFactory.getInstance("X.509");
      for (ByteString der : signed.getSignerChainList()) {
        out.add(
            (X509Certificate) f.generateCertificate(new ByteArrayInputStream(der.toByteArray())));
      }
    } catch (GeneralSecurityException e) {
      throw new Refused("plan: the signer's certificate cannot be read: " + e.getMessage());
    }
    return out.toArray(new X509Certificate[0]);
  }

  private static String commonName(X509Certificate c) {
    try {
      for (Rdn rdn : new LdapName(c.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return rdn.getValue().toString();
        }
      }
    } catch (InvalidNameException e) {
      // no name: refused below as ""
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
