// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderElectionConfig;
import io.fabric8.kubernetes.client.extended.leaderelection.resourcelock.LeaseLock;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The verbs the operator's leader election needs on its Lease, read from the requests Fabric8's
 * elector (the version the operator runs, under JOSDK) actually sends, not from what one expects it
 * to send: it renews and takes a held Lease with a JSON merge patch, which RBAC counts as {@code
 * patch}, not {@code update}. The mock API server enforces no RBAC, so only this catches a missing
 * verb: each one the elector used must be among those helm/rbac-calls.yaml lists for the Lease,
 * which RbacTest checks against the chart's rules.
 */
class LeaseVerbsTest {
  private static final String NS = "ferry-system";
  private static final String LEASE = "ferry-operator-leader";
  private static final Map<String, String> VERB_OF_METHOD =
      Map.of("GET", "get", "POST", "create", "PUT", "update", "PATCH", "patch", "DELETE", "delete");

  private final Set<String> used = ConcurrentHashMap.newKeySet();

  @Test
  void everyVerbTheElectorUsesOnTheLeaseIsListed() throws Exception {
    KubernetesMockServer api =
        new KubernetesMockServer(
            new Context(), new MockWebServer(), new HashMap<>(), new Recording(), false);
    api.init();
    try (KubernetesClient kube = api.createClient()) {
      // The first replica creates the Lease and renews it; it stops without giving it up, as
      // JOSDK's elector does, and the second takes the Lease once it expires.
      lead(kube, "operator-a", true);
      lead(kube, "operator-b", false);
    } finally {
      api.destroy();
    }

    assertThat(used).as("the elector's requests on the Lease").contains("create", "patch", "get");
    assertThat(listedVerbs()).as("helm/rbac-calls.yaml's verbs on leases").containsAll(used);
  }

  /** Leads as {@code identity} until it has renewed once (when asked to), then stops. */
  private void lead(KubernetesClient kube, String identity, boolean renew) throws Exception {
    CountDownLatch leading = new CountDownLatch(1);
    var elector =
        kube.leaderElector()
            .withConfig(
                new LeaderElectionConfig(
                    new LeaseLock(NS, LEASE, identity),
                    Duration.ofSeconds(2),
                    Duration.ofMillis(1500),
                    Duration.ofMillis(200),
                    new LeaderCallbacks(leading::countDown, () -> {}, leader -> {}),
                    false,
                    identity))
            .build();
    CompletableFuture<?> running = elector.start();
    try {
      assertThat(leading.await(60, TimeUnit.SECONDS)).as("%s leads", identity).isTrue();
      if (renew) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!used.contains("patch") && System.nanoTime() < deadline) {
          Thread.sleep(50);
        }
      }
    } finally {
      running.cancel(true);
    }
  }

  private static Set<String> listedVerbs() throws IOException {
    Set<String> verbs = new TreeSet<>();
    for (RbacCalls.Call call : RbacTest.calls()) {
      if (call.component().equals("operator") && call.resource().equals("leases")) {
        verbs.addAll(call.verbs());
      }
    }
    return verbs;
  }

  /** CRUD, noting the verb of every request on a Lease. */
  private final class Recording extends KubernetesCrudDispatcher {
    @Override
    public MockResponse dispatch(RecordedRequest request) {
      if (request.getPath().contains("/leases")) {
        used.add(VERB_OF_METHOD.getOrDefault(request.getMethod(), request.getMethod()));
      }
      return super.dispatch(request);
    }
  }
}
