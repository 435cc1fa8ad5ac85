// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.testbed.MockApi;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The patch {@link RequestStatusWrite} sends, addressed by the request's name alone, on Fabric8's
 * mock API server with the status subresource: the status on the server becomes the one written,
 * whole, fields the step cleared included, and nothing outside the status changes. (Its caching
 * through JOSDK is the operator's: OperatorIT and every end-to-end test read the phases it writes.)
 */
class RequestStatusWriteTest {
  @RegisterExtension final MockApi api = MockApi.withExpectations().serving(MigrationRequest.class);

  @Test
  void theFirstStatusIsWrittenOnARequestThatHasNone() {
    MigrationRequest mr = api.admin().resource(request("move-1")).create();
    assertThat(
            api.admin()
                .genericKubernetesResources("ferry.dev/v1alpha1", "MigrationRequest")
                .inNamespace("shop")
                .withName("move-1")
                .get()
                .getAdditionalProperties())
        .doesNotContainKey("status");

    mr.setStatus(status(Phase.Pending, "waiting for a migration slot"));
    write(mr);

    MigrationRequest read = api.admin().resource(mr).get();
    assertThat(read.getStatus().getPhase()).isEqualTo(Phase.Pending);
    assertThat(read.getStatus().getMessage()).isEqualTo("waiting for a migration slot");
  }

  @Test
  void whatTheStepClearedIsGoneAndTheRestIsAsWritten() {
    MigrationRequest mr = api.admin().resource(request("move-1")).create();
    MigrationRequestStatus first = status(Phase.Pending, "waiting for a migration slot");
    first.setPhaseMillis(Map.of("Pending", 12.0));
    mr.setStatus(first);
    write(mr);

    MigrationRequest cached = api.admin().resource(mr).get();
    MigrationRequestStatus next = cached.getStatus();
    next.setPhase(Phase.Preparing);
    next.setMessage(null);
    next.setTargetNode("node-b");
    write(cached);

    MigrationRequest read = api.admin().resource(mr).get();
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
    MigrationRequest mr = api.admin().resource(request("move-1")).create();
    // Changed by someone else after the reconcile read the request.
    MigrationRequest theirs = api.admin().resource(mr).get();
    theirs.getMetadata().setLabels(Map.of("team", "shop"));
    api.admin().resource(theirs).update();

    mr.setStatus(status(Phase.Preparing, "choosing a target"));
    write(mr);

    MigrationRequest read = api.admin().resource(mr).get();
    assertThat(read.getMetadata().getLabels()).containsEntry("team", "shop");
    assertThat(read.getStatus().getPhase()).isEqualTo(Phase.Preparing);
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> rawStatus(String name) {
    return (Map<String, Object>)
        api.admin()
            .genericKubernetesResources("ferry.dev/v1alpha1", "MigrationRequest")
            .inNamespace("shop")
            .withName(name)
            .get()
            .getAdditionalProperties()
            .get("status");
  }

  private void write(MigrationRequest mr) {
    RequestStatusWrite.patch(api.as("operator"), mr);
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
