// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.logging.Logger;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Who may call what. The handshake has checked that the CA signed the caller's certificate; this
 * checks there is one, and that its common name may make this call: peers only hand over states,
 * ask whether a migration committed (Rollback on a target aborts it unless it did), and rehearse a
 * move's messages (Rehearse, which touches nothing).
 */
public final class CallerCheck implements ServerInterceptor {
  /**
   * The certificate of the call's caller, for the calls that check more than its role: a peer's
   * Arrive must come from the agent of the plan's source node ({@link AgentIdentity}).
   */
  public static final Context.Key<X509Certificate> CALLER = Context.key("ferry-caller");

  private static final Logger LOG = Logger.getLogger(CallerCheck.class.getName());
  private static final Set<String> EVERYTHING = Set.of("ferry-operator", "ferry-admin");
  private static final Map<String, Set<String>> PEER_CALLS =
      Map.of(MutualTls.AGENT_NAME, Set.of("Arrive", "Rehearse", "Status", "Rollback"));

  private final BiConsumer<String, String> refused;

  public CallerCheck(BiConsumer<String, String> refused) {
    this.refused = refused;
  }

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
    String caller = String.valueOf(call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
    String method = call.getMethodDescriptor().getBareMethodName();
    X509Certificate certificate =
        certificate(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
    String name = certificate == null ? null : commonName(certificate);
    if (name == null) {
      return refuse(
          call,
          Status.UNAUTHENTICATED,
          "no-certificate",
          caller,
          "a client certificate signed by the cluster CA is required");
    }
    if (!EVERYTHING.contains(name) && !PEER_CALLS.getOrDefault(name, Set.of()).contains(method)) {
      return refuse(
          call,
          Status.PERMISSION_DENIED,
          "not-allowed",
          caller,
          "CN=" + name + " may not call " + method);
    }
    return Contexts.interceptCall(
        Context.current().withValue(CALLER, certificate), call, headers, next);
  }

  private <Q, A> ServerCall.Listener<Q> refuse(
      ServerCall<Q, A> call, Status status, String reason, String caller, String why) {
    LOG.warning(
        () ->
            "refused "
                + call.getMethodDescriptor().getFullMethodName()
                + " from "
                + caller
                + ": "
                + why);
    refused.accept(reason, caller);
    call.close(status.withDescription(why), new Metadata());
    return new ServerCall.Listener<>() {};
  }

  private static X509Certificate certificate(SSLSession session) {
    if (session == null) {
      return null;
    }
    try {
      Certificate[] chain = session.getPeerCertificates();
      return chain.length > 0 && chain[0] instanceof X509Certificate x ? x : null;
    } catch (SSLPeerUnverifiedException e) {
      return null;
    }
  }

  /** The certificate's common name; "" when it has none. */
  static String commonName(X509Certificate x) {
    try {
      for (Rdn rdn : new LdapName(x.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return rdn.getValue().toString();
        }
      }
      return "";
    } catch (InvalidNameException e) {
      return "";
    }
  }
}
