// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.migration.Plan;
import dev.ferry.operator.migration.StatusSink;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.util.UUID;
import java.util.logging.Logger;

/**
 * Writes a MigrationRequest's status as a JSON patch of the status subresource (what Fabric8's
 * editStatus sends): no resourceVersion to race with the finalizer JOSDK adds, and understood by
 * every API server, the mock one included.
 */
final class KubeStatusSink implements StatusSink {
  private static final Logger LOG = Logger.getLogger(KubeStatusSink.class.getName());

  private final KubernetesClient client;

  KubeStatusSink(KubernetesClient client) {
    this.client = client;
  }

  @Override
  public void save(MigrationRequest mr) {
    MigrationRequestStatus st = mr.getStatus();
    client
        .resources(MigrationRequest.class)
        .inNamespace(mr.getMetadata().getNamespace())
        .withName(mr.getMetadata().getName())
        .editStatus(
            current -> {
              current.setStatus(st);
              return current;
            });
  }

  @Override
  public void addressMoved(Plan plan) {
    String ip = plan.address().substring(0, plan.address().indexOf('/'));
    new ClusterView(client)
        .recordMove(
            plan.source().getNamespace(), plan.source().getName(), plan.target().getName(), ip);
  }

  @Override
  public void event(MigrationRequest mr, String type, String reason, String message) {
    String now = Instant.now().toString();
    try {
      client
          .v1()
          .events()
          .inNamespace(mr.getMetadata().getNamespace())
          .resource(
              new EventBuilder()
                  .withNewMetadata()
                  .withName(
                      mr.getMetadata().getName()
                          + "."
                          + UUID.randomUUID().toString().substring(0, 8))
                  .withNamespace(mr.getMetadata().getNamespace())
                  .endMetadata()
                  .withInvolvedObject(
                      new ObjectReferenceBuilder()
                          .withApiVersion(mr.getApiVersion())
                          .withKind(mr.getKind())
                          .withName(mr.getMetadata().getName())
                          .withNamespace(mr.getMetadata().getNamespace())
                          .withUid(mr.getMetadata().getUid())
                          .build())
                  .withType(type)
                  .withReason(reason)
                  .withMessage(message)
                  .withFirstTimestamp(now)
                  .withLastTimestamp(now)
                  .withCount(1)
                  .withNewSource()
                  .withComponent("ferry-operator")
                  .endSource()
                  .build())
          .create();
    } catch (KubernetesClientException e) {
      // An Event is a courtesy: the status carries the same facts.
      LOG.warning(() -> "recording the Event " + reason + " failed: " + e.getMessage());
    }
  }
}
