// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.CustomResourceDefinitionContext;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.Dispatcher;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fabric8's mock API server for each test of a class ({@code @RegisterExtension}), behind the
 * chart's RBAC ({@link RbacCalls}): the test's own client, an admin's, and a client with each
 * component's rights that the code under test runs with. After each test (and after the class's own
 * {@code @AfterEach}) the clients are closed and the server stopped.
 */
public final class MockApi implements BeforeEachCallback, AfterEachCallback {
  private final Supplier<KubernetesMockServer> start;
  private final List<CustomResourceDefinitionContext> served = new ArrayList<>();
  private final Map<RbacCalls.Caller, KubernetesClient> components = new LinkedHashMap<>();
  private KubernetesMockServer server;
  private KubernetesClient admin;

  private MockApi(Supplier<KubernetesMockServer> start) {
    this.start = start;
  }

  /** In CRUD mode ({@link MockApiServer#crud}). */
  public static MockApi crud() {
    return new MockApi(MockApiServer::crud);
  }

  /** Canned answers first ({@code server().expect()}), CRUD for the rest. */
  public static MockApi withExpectations() {
    return new MockApi(MockApiServer::withExpectations);
  }

  /** Through {@code dispatcher}: one of its own per test (an {@link RbacCalls.Enforcing}). */
  public static MockApi with(Dispatcher dispatcher) {
    return new MockApi(
        () -> {
          KubernetesMockServer s = MockApiServer.with(dispatcher);
          s.init();
          return s;
        });
  }

  /** Serving these custom resources too, as the API server does once their CRDs are in. */
  @SuppressWarnings("rawtypes")
  @SafeVarargs
  public final MockApi serving(Class<? extends CustomResource>... kinds) {
    for (Class<? extends CustomResource> kind : kinds) {
      served.add(CustomResourceDefinitionContext.fromCustomResourceType(kind));
    }
    return this;
  }

  @Override
  public void beforeEach(ExtensionContext context) {
    server = start.get();
    served.forEach(server::expectCustomResource);
    admin = server.createClient();
  }

  @Override
  public void afterEach(ExtensionContext context) {
    components.values().forEach(KubernetesClient::close);
    components.clear();
    admin.close();
    server.destroy();
  }

  public KubernetesMockServer server() {
    return server;
  }

  /** The test's own client: an admin's. */
  public KubernetesClient admin() {
    return admin;
  }

  /**
   * A client with {@code component}'s rights (operator, node-agent), as the chart's defaults grant
   * them in a release in {@link RbacCalls#RELEASE_NAMESPACE}.
   */
  public KubernetesClient as(String component) {
    return as(RbacCalls.Caller.of(component));
  }

  /** A client with {@code caller}'s rights: another release namespace, or more options on. */
  public KubernetesClient as(RbacCalls.Caller caller) {
    return components.computeIfAbsent(caller, c -> RbacCalls.clientAs(server, c));
  }
}
