// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;

/** Kubernetes Events on the operator's resources, what {@code kubectl describe} shows. */
public final class Events {
  private static final Logger LOG = Logger.getLogger(Events.class.getName());

  private Events() {}

  /**
   * One thread, so that Events keep their order; off the caller's thread, so that a migration's
   * clients are not held while the API server writes them.
   */
  private static final ExecutorService WRITER =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "events");
            t.setDaemon(true);
            return t;
          });

  /**
   * Records an Event of {@code type} Normal or Warning on {@code about}, in the background; never
   * fails the caller.
   */
  public static void record(
      KubernetesClient client, HasMetadata about, String type, String reason, String message) {
    String now = Instant.now().toString();
    WRITER.execute(() -> write(client, about, type, reason, message, now));
  }

  private static void write(
      KubernetesClient client,
      HasMetadata about,
      String type,
      String reason,
      String message,
      String now) {
    String ns = about.getMetadata().getNamespace();
    try {
      client
          .v1()
          .events()
          .inNamespace(ns)
          .resource(
              new EventBuilder()
                  .withNewMetadata()
                  .withName(
                      about.getMetadata().getName()
                          + "."
                          + UUID.randomUUID().toString().substring(0, 8))
                  .withNamespace(ns)
                  .endMetadata()
                  .withInvolvedObject(
                      new ObjectReferenceBuilder()
                          .withApiVersion(about.getApiVersion())
                          .withKind(about.getKind())
                          .withName(about.getMetadata().getName())
                          .withNamespace(ns)
                          .withUid(about.getMetadata().getUid())
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
