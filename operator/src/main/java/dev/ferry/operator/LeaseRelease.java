// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.logging.Logger;

/**
 * Gives the operator's Lease up as it stops, so that a standby leads within its retry period (2 s),
 * not once the Lease expires (15 s after the last renewal): on every rolling update of the operator
 * and every drain of its node, requests would otherwise wait that long for a leader. JOSDK builds
 * Fabric8's elector without release-on-cancel, so this is done here, as client-go's release does
 * it: no holder, a duration of one second, renewed and acquired now, the transitions kept (a
 * standby, Fabric8's or client-go's, takes a Lease without holder at once). The update carries the
 * Lease's resourceVersion as read, so a Lease another holder took meanwhile is refused (409), not
 * overwritten.
 */
final class LeaseRelease {
  private static final Logger LOG = Logger.getLogger(LeaseRelease.class.getName());

  private final KubernetesClient client;
  private final String namespace;
  private final String name;
  private final String identity;

  LeaseRelease(KubernetesClient client, String namespace, String name, String identity) {
    this.client = client;
    this.namespace = namespace;
    this.name = name;
    this.identity = identity;
  }

  /** Whether the Lease was this process's and is now free. */
  boolean release() {
    String lease = namespace + "/" + name;
    try {
      Lease held = client.leases().inNamespace(namespace).withName(name).get();
      String holder =
          held == null || held.getSpec() == null ? null : held.getSpec().getHolderIdentity();
      if (!identity.equals(holder)) {
        LOG.info(
            () ->
                "leader election: Lease "
                    + lease
                    + " is not this operator's to let go (held by "
                    + (holder == null ? "nobody" : holder)
                    + ")");
        return false;
      }
      ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
      held.getSpec().setHolderIdentity(null);
      held.getSpec().setLeaseDurationSeconds(1);
      held.getSpec().setAcquireTime(now);
      held.getSpec().setRenewTime(now);
      client.leases().inNamespace(namespace).resource(held).update();
      LOG.info(() -> "leader election: Lease " + lease + " let go; a standby may lead at once");
      return true;
    } catch (KubernetesClientException e) {
      LOG.warning(
          () ->
              "leader election: could not let Lease "
                  + lease
                  + " go ("
                  + e.getMessage()
                  + "); a standby leads once it expires");
      return false;
    }
  }
}
