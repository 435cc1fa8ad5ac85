// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.migration.Plan;
import dev.ferry.operator.migration.StatusSink;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * Writes a MigrationRequest's status as a JSON patch of the status subresource (what Fabric8's
 * editStatus sends): no resourceVersion to race with the finalizer JOSDK adds, and understood by
 * every API server, the mock one included.
 */
final class KubeStatusSink implements StatusSink {

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
    Events.record(client, mr, type, reason, message);
  }
}
