// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.testbed.MockApiServer;
import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.CustomResourceDefinitionContext;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The patch {@link RequestStatusWrite} sends, addressed by the request's name alone, on Fabric8's
 * mock API server with the status subresource: the status on the server becomes the one written,
 * whole, fields the step cleared included, and nothing outside the status changes. (Its caching
 * through JOSDK is the operator's: OperatorIT and every end-to-end test read the phases it writes.)
 */
class RequestStatusWriteTest {
  private KubernetesMockServer apiServer;

  /** The tests' own: an admin's. */
  private KubernetesClient client;

  /** What the status is written with: the operator's rights, as the chart grants them. */
  private KubernetesClient operator;

  @BeforeEach
  void start() {
    apiServer = MockApiServer.withExpectations();
    apiServer.expectCustomResource(
        CustomResourceDefinitionContext.fromCustomResourceType(MigrationRequest.class));
    client = apiServer.createClient();
    operator = RbacCalls.clientAs(apiServer, "operator");
  }

  @AfterEach
  void stop() {
    operator.close();
    client.close();
    apiServer.destroy();
  }

  @Test
  void theFirstStatusIsWrittenOnARequestThatHasNone() {
    MigrationRequest mr = client.resource(request("move-1")).create();
    assertThat(
            client
                .genericKubernetesResources("ferry.dev/v1alpha1", "MigrationRequest")
                .inNamespace("shop")
                .withName("move-1")
                .get()
                .getAdditionalProperties())
        .doesNotContainKey("status");

    mr.setStatus(status(Phase.Pending, "waiting for a migration slot"));
    write(mr);

    MigrationRequest read = client.resource(mr).get();
    assertThat(read.getStatus().getPhase()).isEqualTo(Phase.Pending);
    assertThat(read.getStatus().getMessage()).isEqualTo("waiting for a migration slot");
  }

  @Test
  void whatTheStepClearedIsGoneAndTheRestIsAsWritten() {
    MigrationRequest mr = client.resource(request("move-1")).create();
    MigrationRequestStatus first = status(Phase.Pending, "waiting for a migration slot");
    first.setPhaseMillis(Map.of("Pending", 12.0));
    mr.setStatus(first);
    write(mr);

    MigrationRequest cached = client.resource(mr).get();
    MigrationRequestStatus next = cached.getStatus();
    next.setPhase(Phase.Preparing);
    next.setMessage(null);
    next.setTargetNode("node-b");
    write(cached);

    MigrationRequest read = client.resource(mr).get();
    assertThat(read.getStatus().getPhase()).isEqualTo(Phase.Preparing);
    assertThat(read.getStatus().getMessage()).isNull();
    assertThat(read.getStatus().getTargetNode()).isEqualTo("node-b");
    assertThat(read.getStatus().getPhaseMillis()).containsExactlyEntriesOf(Map.of("Pending", 12.0));
    assertThat(read.getSpec().getSource().getName()).isEqualTo("shop-0");
    // Absent, not null: a real API server drops or refuses a null where its schema allows none.
    assertThat(rawStatus("move-1")).doesNotContainKey("message").containsKey("targetNode");
  }

  @Test
  void theSpecAndLabelsAreLeftAsTheServerHasThem() {
    MigrationRequest mr = client.resource(request("move-1")).create();
    // Changed by someone else after the reconcile read the request.
    MigrationRequest theirs = client.resource(mr).get();
    theirs.getMetadata().setLabels(Map.of("team", "shop"));
    client.resource(theirs).update();

    mr.setStatus(status(Phase.Preparing, "choosing a target"));
    write(mr);

    MigrationRequest read = client.resource(mr).get();
    assertThat(read.getMetadata().getLabels()).containsEntry("team", "shop");
    assertThat(read.getStatus().getPhase()).isEqualTo(Phase.Preparing);
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> rawStatus(String name) {
    return (Map<String, Object>)
        client
            .genericKubernetesResources("ferry.dev/v1alpha1", "MigrationRequest")
            .inNamespace("shop")
            .withName(name)
            .get()
            .getAdditionalProperties()
            .get("status");
  }

  private void write(MigrationRequest mr) {
    RequestStatusWrite.patch(operator, mr);
  }

  private static MigrationRequestStatus status(Phase phase, String message) {
    MigrationRequestStatus s = new MigrationRequestStatus();
    s.setPhase(phase);
    s.setMessage(message);
    return s;
  }

  private static MigrationRequest request(String name) {
    MigrationRequest mr = new MigrationRequest();
    mr.setMetadata(new ObjectMetaBuilder().withNamespace("shop").withName(name).build());
    MigrationRequestSpec spec = new MigrationRequestSpec();
    PodReference source = new PodReference();
    source.setName("shop-0");
    spec.setSource(source);
    mr.setSpec(spec);
    mr.setStatus(null); // as a request is created: no status member at all
    return mr;
  }
}
