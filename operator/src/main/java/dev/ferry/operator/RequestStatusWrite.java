// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationRequest;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.javaoperatorsdk.operator.api.reconciler.Context;

/**
 * Writes a MigrationRequest's status as the reconcile left it: one JSON patch of the status
 * subresource that sets {@code /status} whole, through JOSDK's resource operations, which cache the
 * answer and keep its watch event from waking the request again (as {@code
 * UpdateControl.patchStatus} does).
 *
 * <p>Why not {@code UpdateControl.patchStatus}: with server-side apply off (see
 * application.properties) JOSDK has Fabric8 compute a JSON diff of the whole request, before and
 * after, which copies it twice through JSON and converts both copies to trees: about six passes of
 * JSON for each status write, four writes a migration. The operator is the only writer of this
 * status, and what it holds is the status it means (read from the cache, then changed by one step),
 * so setting it whole says the same in one pass (Fabric8 is given only the request's name to
 * address it with, not a whole copy). A field the step cleared is absent from the new status and so
 * removed, as the diff removed it. Like the diff, the patch carries no resourceVersion: a change to
 * the request's spec or metadata meanwhile does not refuse it.
 */
final class RequestStatusWrite {
  private RequestStatusWrite() {}

  /** Writes {@code mr}'s status; returns the request as the API server answered. */
  static MigrationRequest write(
      KubernetesClient client, MigrationRequest mr, Context<MigrationRequest> context) {
    return context
        .resourceOperations()
        .resourcePatch(
            mr, r -> patch(client, r), context.eventSourceRetriever().getControllerEventSource());
  }

  /**
   * Sends the patch that sets {@code mr}'s status; returns the request as the API server answered.
   */
  static MigrationRequest patch(KubernetesClient client, MigrationRequest mr) {
    return client
        .resource(addressOf(mr))
        .subresource("status")
        .patch(PatchContext.of(PatchType.JSON), patchOf(mr, client));
  }

  /**
   * {@code mr}'s namespace and name alone: what Fabric8 needs of the object to address the patch.
   * It copies the object it is given through JSON before a patch, and a copy of the whole request
   * would cost as much again as the patch itself.
   */
  private static MigrationRequest addressOf(MigrationRequest mr) {
    MigrationRequest address = new MigrationRequest();
    address.setMetadata(
        new ObjectMetaBuilder()
            .withNamespace(mr.getMetadata().getNamespace())
            .withName(mr.getMetadata().getName())
            .build());
    address.setSpec(null);
    address.setStatus(null);
    return address;
  }

  /** The JSON patch that sets {@code mr}'s status whole ("add" replaces a member that exists). */
  private static String patchOf(MigrationRequest mr, KubernetesClient client) {
    return "[{\"op\":\"add\",\"path\":\"/status\",\"value\":"
        + client.getKubernetesSerialization().asJson(mr.getStatus())
        + "}]";
  }
}
