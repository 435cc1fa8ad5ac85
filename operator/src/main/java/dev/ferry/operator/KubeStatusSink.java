// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.migration.Plan;
import dev.ferry.operator.migration.StatusSink;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * Events on a MigrationRequest, and the MovedAddress record of an address it moved. The status
 * itself the reconciler writes ({@link RequestStatusWrite}).
 */
final class KubeStatusSink implements StatusSink {

  private final KubernetesClient client;

  KubeStatusSink(KubernetesClient client) {
    this.client = client;
  }

  @Override
  public void addressMoved(MigrationRequest mr, Plan plan) {
    String ip = plan.address().substring(0, plan.address().indexOf('/'));
    new ClusterView(client)
        .recordMove(
            plan.target(),
            plan.targetAddresses(),
            plan.targetNode(),
            ip,
            mr.getMetadata().getNamespace() + "/" + mr.getMetadata().getName());
  }

  @Override
  public void event(MigrationRequest mr, String type, String reason, String message) {
    Events.record(client, mr, type, reason, message);
  }
}
