// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testbed.RbacCalls.Caller;
import dev.ferry.testbed.RbacCalls.Request;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The test API server's RBAC: requests read as RBAC reads them, and a component's call refused
 * unless helm/rbac-calls.yaml lists it for a release like the caller's (its namespace, its options
 * on), in the words of a real API server's 403.
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
    Caller operator = Caller.of("operator").in("shop");
    Request renewal =
        new Request("coordination.k8s.io", "leases", "shop", "ferry-operator-leader", "patch");
    assertThat(rbac.allows(operator, renewal)).isTrue();
    assertThat(
            rbac.allows(
                operator,
                new Request("coordination.k8s.io", "leases", "shop", "another-lease", "patch")))
        .as("a rule limited to one Lease's name")
        .isFalse();
    assertThat(rbac.allows(Caller.of("node-agent").in("shop"), renewal)).isFalse();
    assertThat(rbac.allows(operator, new Request("", "secrets", "shop", "s", "get"))).isFalse();
  }

  @Test
  void aRoleGrantsInItsOwnNamespaceAndAClusterRoleInEvery() throws Exception {
    RbacCalls rbac = RbacCalls.listed();
    Request renewalIn =
        new Request("coordination.k8s.io", "leases", "shop", "ferry-operator-leader", "patch");
    assertThat(rbac.allows(Caller.of("operator").in("shop"), renewalIn)).isTrue();
    assertThat(rbac.allows(Caller.of("operator").in("ferry-system"), renewalIn))
        .as("the Lease of a release in another namespace")
        .isFalse();

    Caller agent = Caller.of("node-agent").with("imds");
    assertThat(rbac.allows(agent, new Request("", "events", "default", null, "create")))
        .as("a Node's Event, in the namespace kubectl reads a Node's Events from")
        .isTrue();
    assertThat(rbac.allows(agent, new Request("", "events", "ferry-system", null, "create")))
        .as("an Event in the release's namespace: the Role is in default")
        .isFalse();

    Caller operator = Caller.of("operator");
    assertThat(rbac.allows(operator, new Request("", "pods", "any", "pod-a", "get")))
        .as("a ClusterRole's namespaced resource, in any namespace")
        .isTrue();
    assertThat(rbac.allows(operator, new Request("", "pods", null, null, "list")))
        .as("and across all namespaces")
        .isTrue();
  }

  @Test
  void aCallTheChartGrantsWithAnOptionOnlyWithItOn() throws Exception {
    RbacCalls rbac = RbacCalls.listed();
    Request node = new Request("", "nodes", null, "node-a", "get");
    assertThat(rbac.allows(Caller.of("node-agent"), node))
        .as("an agent that does not watch its IMDS")
        .isFalse();
    assertThat(rbac.allows(Caller.of("node-agent").with("imds"), node)).isTrue();

    Request ownPod = new Request("", "pods", "ferry-system", "agent-x", "get");
    assertThat(rbac.allows(Caller.of("node-agent"), ownPod)).isFalse();
    assertThat(rbac.allows(Caller.of("node-agent").with("csi"), ownPod)).isTrue();
  }

  @Test
  void aCallerIsReadFromItsTokenAndNoOtherTokenIsOne() {
    Caller c = Caller.of("operator").in("shop").with("queue");
    assertThat(c.token()).isEqualTo("system:serviceaccount:shop:ferry-operator;queue");
    assertThat(Caller.ofToken(c.token())).contains(c);
    assertThat(Caller.ofToken(Caller.of("node-agent").token()))
        .contains(new Caller("node-agent", "ferry-system", Set.of()));
    assertThat(Caller.ofToken("system:serviceaccount:shop:default")).isEmpty();
    assertThat(Caller.ofToken("ferry-operator")).isEmpty();
  }

  @Test
  void theServerRefusesAnUnlistedCallWithTheApiServersForbidden() {
    KubernetesMockServer api = MockApiServer.with(new RbacCalls.Enforcing(RbacCalls.listed()));
    api.init();
    try (KubernetesClient admin = api.createClient();
        KubernetesClient kube = RbacCalls.clientAs(api, Caller.of("node-agent").with("csi"))) {
      Pod pod =
          admin
              .pods()
              .inNamespace("ferry-system")
              .resource(new PodBuilder().withNewMetadata().withName("pod-a").endMetadata().build())
              .create();
      assertThat(kube.pods().inNamespace("ferry-system").withName("pod-a").get())
          .as("an agent with its own certificate may read a pod (the peer's identity)")
          .isEqualTo(pod);

      try {
        kube.pods().inNamespace("ferry-system").withName("pod-a").delete();
        throw new AssertionError("an agent deleted a pod");
      } catch (KubernetesClientException e) {
        assertThat(e.getCode()).isEqualTo(403);
        assertThat(e.getStatus().getReason()).isEqualTo("Forbidden");
        assertThat(e.getStatus().getMessage())
            .isEqualTo(
                "pods \"pod-a\" is forbidden: User"
                    + " \"system:serviceaccount:ferry-system:ferry-node-agent\" cannot delete"
                    + " resource \"pods\" in API group \"\" in the namespace"
                    + " \"ferry-system\"");
      }
      assertThat(admin.pods().inNamespace("ferry-system").withName("pod-a").get()).isNotNull();
    } finally {
      api.destroy();
    }
  }
}
