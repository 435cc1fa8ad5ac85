// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import dev.ferry.api.plan.MovePlans;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which node's agent a peer is. All agents present the common name {@code ferry-node-agent}; an
 * agent's own identity is a URI in its certificate's subject alternative names, in one of two
 * forms:
 *
 * <ul>
 *   <li>{@code spiffe://ferry.dev/node/NODE}: the node itself (certificates made per node, as the
 *       test beds' {@code scripts/ferry-certs.sh --node NODE} does);
 *   <li>{@code spiffe://ferry.dev/ns/NAMESPACE/pod/POD}: an agent pod (what cert-manager's
 *       csi-driver can write; it cannot name the node): the node is the one the API server says the
 *       pod runs on, and the pod must be an agent pod in this agent's own namespace.
 * </ul>
 *
 * With {@link Mode#OFF} (one certificate shared by all agents, the chart's default) nobody's node
 * is known, and a signed plan is all a target checks.
 */
public final class AgentIdentity {
  static final String PREFIX = "spiffe://ferry.dev/";
  private static final Pattern NODE = Pattern.compile("spiffe://ferry\\.dev/node/([^/]+)");
  private static final Pattern POD =
      Pattern.compile("spiffe://ferry\\.dev/ns/([a-z0-9-]+)/pod/([a-z0-9.-]+)");
  private static final int URI_NAME = 6; // GeneralName's uniformResourceIdentifier

  /** Whether a peer's certificate must name its agent. */
  public enum Mode {
    REQUIRED,
    OFF
  }

  /** Where an agent pod runs, as the API server says; empty if it is no agent pod of ours. */
  public interface AgentPods {
    Optional<String> nodeOf(String namespace, String pod);
  }

  private final Mode mode;
  private final String namespace;
  private final AgentPods pods;
  private final Map<String, String> known =
      new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
          return size() > 4096;
        }
      };

  /**
   * @param namespace this agent's namespace: the only one whose pods may be agents
   * @param pods consulted for pod identities; a pod's node never changes, so each answer is kept
   */
  public AgentIdentity(Mode mode, String namespace, AgentPods pods) {
    this.mode = mode;
    this.namespace = namespace;
    this.pods = pods;
  }

  public Mode mode() {
    return mode;
  }

  /**
   * The node whose agent presented {@code caller}; empty when the mode is OFF, or the caller is the
   * operator or an admin (who may call anything, and sign plans themselves).
   *
   * @throws MovePlans.Refused when the certificate names no agent, or a pod that is none of ours
   */
  public Optional<String> nodeOf(X509Certificate caller) {
    if (mode == Mode.OFF || caller == null) {
      return Optional.empty();
    }
    if (MovePlans.SIGNERS.contains(CallerCheck.commonName(caller))) {
      return Optional.empty();
    }
    List<String> uris = uris(caller);
    for (String uri : uris) {
      Matcher node = NODE.matcher(uri);
      if (node.matches()) {
        return Optional.of(node.group(1));
      }
      Matcher pod = POD.matcher(uri);
      if (pod.matches()) {
        return Optional.of(podNode(pod.group(1), pod.group(2), uri));
      }
    }
    throw new MovePlans.Refused(
        "the calling agent's certificate names no agent (URI "
            + uris
            + "): this agent takes states only from an agent whose certificate names it ("
            + PREFIX
            + "node/NODE, or "
            + PREFIX
            + "ns/NAMESPACE/pod/POD from cert-manager's csi-driver); give each agent its own"
            + " certificate, or set ferry.agent.peer-identity=off (docs/security.md)");
  }

  private String podNode(String ns, String pod, String uri) {
    if (!ns.equals(namespace)) {
      throw new MovePlans.Refused(
          "the calling agent's certificate names " + uri + ", outside this agent's namespace");
    }
    synchronized (known) {
      String node = known.get(pod);
      if (node != null) {
        return node;
      }
    }
    String node =
        pods.nodeOf(ns, pod)
            .orElseThrow(
                () ->
                    new MovePlans.Refused(
                        "the calling agent's certificate names "
                            + uri
                            + ", which is no running agent pod of namespace "
                            + ns));
    synchronized (known) {
      known.put(pod, node);
    }
    return node;
  }

  private static List<String> uris(X509Certificate c) {
    List<String> out = new ArrayList<>();
    try {
      Collection<List<?>> names = c.getSubjectAlternativeNames();
      if (names != null) {
        for (List<?> n : names) {
          if (n.size() == 2 && Integer.valueOf(URI_NAME).equals(n.get(0))) {
            out.add(String.valueOf(n.get(1)));
          }
        }
      }
    } catch (CertificateParsingException e) {
      // no readable names: none is an agent's
    }
    return out;
  }
}
