// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MovedAddress;
import dev.ferry.testbed.MockApiServer;
import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.client.dsl.base.CustomResourceDefinitionContext;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.net.InetAddress;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The one-machine cluster's API server, as a process of its own: Fabric8's mock server in CRUD
 * mode, serving Ferry's resources beside the built-in ones. It stores and watches, and evicts pods
 * as the real one does, minding PodDisruptionBudgets ({@link Evictions}), and refuses the operator
 * and the agents every call helm/rbac-calls.yaml does not list ({@link RbacCalls}); it enforces no
 * schema or CEL (those are checked statically). Runs until its standard input closes.
 *
 * <p>Usage: {@code ApiServer HOST}; prints {@code api server listening on HOST:PORT}.
 */
public final class ApiServer {
  /** Held, so that the level sticks: the mock logs every request at INFO otherwise. */
  private static final Logger MOCK_LOG = Logger.getLogger("io.fabric8.mockwebserver");

  private ApiServer() {}

  public static void main(String[] args) throws Exception {
    MOCK_LOG.setLevel(Level.WARNING);
    InetAddress host = InetAddress.getByName(args.length > 0 ? args[0] : "127.0.0.1");
    KubernetesMockServer api = start(host);
    System.out.println("api server listening on " + host.getHostAddress() + ":" + api.getPort());
    System.out.flush();
    // The parent holds our standard input: when it goes, so do we.
    while (System.in.read() >= 0) {
      // nothing to read; wait for the end
    }
    api.destroy();
  }

  /** The server, listening on {@code host} at a free port, serving Ferry's resources. */
  public static KubernetesMockServer start(InetAddress host) {
    KubernetesMockServer api = server();
    api.init(host, 0);
    api.expectCustomResource(
        CustomResourceDefinitionContext.fromCustomResourceType(MigrationRequest.class));
    api.expectCustomResource(
        CustomResourceDefinitionContext.fromCustomResourceType(MigrationPolicy.class));
    api.expectCustomResource(
        CustomResourceDefinitionContext.fromCustomResourceType(MovedAddress.class));
    return api;
  }

  /** The server, not yet listening: {@code init(host, port)} starts it. */
  static KubernetesMockServer server() {
    return MockApiServer.with(new ReviewingDispatcher(RbacCalls.listed()));
  }

  /**
   * The CRUD store, behind RBAC for the operator and the agents (each known by the bearer token its
   * processes send, {@link RbacCalls.Caller#token}; any other request is the tests' own, an
   * admin's), and an answer to access reviews: the operator asks, before it competes for its Lease,
   * whether it may; the answer is a cluster admin's (what the chart grants is RbacTest's to check).
   */
  private static final class ReviewingDispatcher extends RbacCalls.Enforcing {
    private static final String REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";

    private final Evictions evictions =
        new Evictions(
            path -> {
              MockResponse r = handleGet(path);
              return r.code() == 200 ? Optional.of(r.getBody().readUtf8()) : Optional.empty();
            },
            this::handleDelete);

    ReviewingDispatcher(RbacCalls rbac) {
      super(rbac);
    }

    @Override
    public MockResponse handleCreate(RecordedRequest request) {
      if (Evictions.PATH.matcher(request.getPath()).matches()) {
        Evictions.Answer a = evictions.evict(request.getPath());
        return new MockResponse().setResponseCode(a.code()).setBody(a.body());
      }
      if (!request.getPath().startsWith(REVIEWS)) {
        return super.handleCreate(request);
      }
      return new MockResponse()
          .setResponseCode(201)
          .setBody(
              "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SelfSubjectRulesReview\","
                  + "\"metadata\":{},\"spec\":{},\"status\":{\"incomplete\":false,"
                  + "\"nonResourceRules\":[],\"resourceRules\":[{\"verbs\":[\"*\"],"
                  + "\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}]}}");
    }
  }
}
