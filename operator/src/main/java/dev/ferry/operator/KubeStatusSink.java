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
    new ClusterView(client)
        .recordMove(
            plan.target(),
            plan.targetAddresses(),
            plan.targetNode(),
            bare(plan.address()),
            name(mr),
            mr.getMetadata().getUid());
  }

  @Override
  public boolean addressMovingAhead(MigrationRequest mr, Plan plan) {
    return new ClusterView(client)
        .recordMoveAhead(
            plan.target(),
            plan.targetNode(),
            bare(plan.address()),
            name(mr),
            mr.getMetadata().getUid());
  }

  @Override
  public void addressStayed(MigrationRequest mr, String address) {
    new ClusterView(client).takeBackMove(bare(address), mr.getMetadata().getUid());
  }

  private static String bare(String cidr) {
    int slash = cidr.indexOf('/');
    return slash < 0 ? cidr : cidr.substring(0, slash);
  }

  private static String name(MigrationRequest mr) {
    return mr.getMetadata().getNamespace() + "/" + mr.getMetadata().getName();
  }

  @Override
  public void event(MigrationRequest mr, String type, String reason, String message) {
    Events.record(client, mr, type, reason, message);
  }
}
