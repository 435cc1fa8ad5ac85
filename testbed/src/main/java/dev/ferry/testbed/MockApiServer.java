// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import io.fabric8.mockwebserver.http.Dispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;

/**
 * The API server of the tests, the demo and the benchmarks: no kube-apiserver can run here, so it
 * is Fabric8's mock, over plain HTTP, in CRUD mode (it keeps what it is sent and serves it back,
 * watches included), with canned answers in front of CRUD, or with a dispatcher that adds what a
 * test needs to CRUD.
 */
public final class MockApiServer {
  private MockApiServer() {}

  /**
   * In CRUD mode, listening on loopback; {@code destroy()} it after the test. A client with a
   * component's rights ({@link RbacCalls#clientAs}) may make only the calls helm/rbac-calls.yaml
   * lists; {@code createClient()}'s, the test's own, any.
   */
  public static KubernetesMockServer crud() {
    KubernetesMockServer api = with(new RbacCalls.Enforcing(RbacCalls.listed()));
    api.init();
    return api;
  }

  /**
   * Canned answers first ({@code expect()}), CRUD for every request none matches, behind the
   * chart's RBAC for a component's client ({@link RbacCalls#clientAs}); listening on loopback.
   * (Fabric8's one-argument constructor gives canned answers alone.)
   */
  public static KubernetesMockServer withExpectations() {
    Map<ServerRequest, Queue<ServerResponse>> expectations = new HashMap<>();
    KubernetesMockServer api =
        new KubernetesMockServer(
            new Context(),
            new MockWebServer(),
            expectations,
            new KubernetesMixedDispatcher(expectations) {
              private final RbacCalls rbac = RbacCalls.listed();

              @Override
              public MockResponse dispatch(RecordedRequest request) {
                MockResponse refused = rbac.refusal(request);
                return refused != null ? refused : super.dispatch(request);
              }
            },
            false);
    api.init();
    return api;
  }

  /**
   * Answering through {@code dispatcher} (a {@link KubernetesCrudDispatcher} with a request or two
   * of its own, as a rule), not listening yet: {@code init()} starts it on loopback, {@code
   * init(address, port)} elsewhere.
   */
  public static KubernetesMockServer with(Dispatcher dispatcher) {
    return new KubernetesMockServer(
        new Context(), new MockWebServer(), new HashMap<>(), dispatcher, false);
  }
}
