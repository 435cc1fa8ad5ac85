// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testbed.RbacCalls.Request;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import org.junit.jupiter.api.Test;

/**
 * The test API server's RBAC: requests read as RBAC reads them, and a component's call refused
 * unless helm/rbac-calls.yaml lists it, in the words of a real API server's 403.
 */
class RbacCallsTest {
  @Test
  void requestsAreReadAsRbacReadsThem() {
    assertThat(
            RbacCalls.of(
                "PATCH",
                "/apis/coordination.k8s.io/v1/namespaces/shop/leases/ferry-operator-leader"))
        .contains(
            new Request("coordination.k8s.io", "leases", "shop", "ferry-operator-leader", "patch"));
    assertThat(RbacCalls.of("GET", "/api/v1/pods?labelSelector=a%3Db&watch=true"))
        .contains(new Request("", "pods", null, null, "watch"));
    assertThat(RbacCalls.of("GET", "/api/v1/namespaces/shop/pods?resourceVersion=0"))
        .contains(new Request("", "pods", "shop", null, "list"));
    assertThat(RbacCalls.of("GET", "/api/v1/nodes/node-a"))
        .contains(new Request("", "nodes", null, "node-a", "get"));
    assertThat(RbacCalls.of("PUT", "/api/v1/nodes/node-a/status"))
        .contains(new Request("", "nodes/status", null, "node-a", "update"));
    assertThat(RbacCalls.of("POST", "/api/v1/namespaces/shop/pods/pod-a/eviction"))
        .contains(new Request("", "pods/eviction", "shop", "pod-a", "create"));
    assertThat(
            RbacCalls.of(
                "PATCH", "/apis/ferry.dev/v1alpha1/namespaces/shop/migrationrequests/m1/status"))
        .contains(new Request("ferry.dev", "migrationrequests/status", "shop", "m1", "patch"));
    assertThat(RbacCalls.of("DELETE", "/api/v1/namespaces/shop/pods"))
        .contains(new Request("", "pods", "shop", null, "deletecollection"));
    assertThat(RbacCalls.of("GET", "/version")).isEmpty();
    assertThat(RbacCalls.of("GET", "/apis/ferry.dev/v1alpha1")).isEmpty();
  }

  @Test
  void aComponentMayMakeOnlyTheCallsTheListGrantsIt() throws Exception {
    RbacCalls rbac = RbacCalls.listed();
    Request renewal =
        new Request("coordination.k8s.io", "leases", "shop", "ferry-operator-leader", "patch");
    assertThat(rbac.allows("operator", renewal)).isTrue();
    assertThat(
            rbac.allows(
                "operator",
                new Request("coordination.k8s.io", "leases", "shop", "another-lease", "patch")))
        .as("a rule limited to one Lease's name")
        .isFalse();
    assertThat(rbac.allows("node-agent", renewal)).isFalse();
    assertThat(rbac.allows("operator", new Request("", "secrets", "shop", "s", "get"))).isFalse();
  }

  @Test
  void theServerRefusesAnUnlistedCallWithTheApiServersForbidden() {
    KubernetesMockServer api = MockApiServer.with(new RbacCalls.Enforcing(RbacCalls.listed()));
    api.init();
    try (KubernetesClient admin = api.createClient();
        KubernetesClient kube = RbacCalls.clientAs(api, "node-agent")) {
      Pod pod =
          admin
              .pods()
              .inNamespace("shop")
              .resource(new PodBuilder().withNewMetadata().withName("pod-a").endMetadata().build())
              .create();
      assertThat(kube.pods().inNamespace("shop").withName("pod-a").get())
          .as("an agent may read a pod (the peer's identity)")
          .isEqualTo(pod);

      try {
        kube.pods().inNamespace("shop").withName("pod-a").delete();
        throw new AssertionError("an agent deleted a pod");
      } catch (KubernetesClientException e) {
        assertThat(e.getCode()).isEqualTo(403);
        assertThat(e.getStatus().getReason()).isEqualTo("Forbidden");
        assertThat(e.getStatus().getMessage())
            .isEqualTo(
                "pods \"pod-a\" is forbidden: User"
                    + " \"system:serviceaccount:ferry-system:ferry-node-agent\" cannot delete"
                    + " resource \"pods\" in API group \"\" in the namespace \"shop\"");
      }
      assertThat(admin.pods().inNamespace("shop").withName("pod-a").get()).isNotNull();
    } finally {
      api.destroy();
    }
  }
}
