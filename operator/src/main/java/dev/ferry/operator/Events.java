// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.net.HttpURLConnection;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;

/**
 * Kubernetes Events on the operator's resources, what {@code kubectl describe} shows. An Event that
 * repeats one already written (the same object, type, reason and message) is counted on that one,
 * as client-go's recorder does: its {@code count}, {@code series} and {@code lastTimestamp} go up,
 * and no new Event piles up beside it.
 */
public final class Events {
  private static final Logger LOG = Logger.getLogger(Events.class.getName());

  /** Events written recently, for repeats to find; client-go's correlator keeps as many. */
  private static final int REMEMBERED = 4096;

  /** metav1.MicroTime, the type of {@code series.lastObservedTime}: RFC 3339, microseconds. */
  private static final DateTimeFormatter MICRO_TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").withZone(ZoneOffset.UTC);

  private Events() {}

  /**
   * One thread, so that Events keep their order and {@link #WRITTEN} needs no lock; off the
   * caller's thread, so that a migration's clients are not held while the API server writes them.
   */
  private static final ExecutorService WRITER =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "events");
            t.setDaemon(true);
            return t;
          });

  /** What makes two Events one, as client-go's aggregation key (less the source: always us). */
  private record Key(
      String namespace,
      String kind,
      String name,
      String uid,
      String type,
      String reason,
      String message) {}

  /** An Event on the API server, and how often it has happened. */
  private record Written(String name, int count) {}

  /** The Events written, least recently used first; touched only on the writer thread. */
  private static final Map<Key, Written> WRITTEN =
      new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, Written> eldest) {
          return size() > REMEMBERED;
        }
      };

  /** The last name stamp given; touched only on the writer thread. */
  private static long lastStamp;

  /**
   * Records an Event of {@code type} Normal or Warning on {@code about}, in the background; never
   * fails the caller.
   */
  public static void record(
      KubernetesClient client, HasMetadata about, String type, String reason, String message) {
    Instant now = Instant.now();
    WRITER.execute(() -> write(client, about, type, reason, message, now));
  }

  /** Waits until the Events recorded so far are written (or have failed to be). */
  static void flush() throws InterruptedException {
    try {
      WRITER.submit(() -> {}).get();
    } catch (ExecutionException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void write(
      KubernetesClient client,
      HasMetadata about,
      String type,
      String reason,
      String message,
      Instant now) {
    String ns = about.getMetadata().getNamespace();
    Key key =
        new Key(
            ns,
            about.getKind(),
            about.getMetadata().getName(),
            about.getMetadata().getUid(),
            type,
            reason,
            message);
    try {
      Written before = WRITTEN.get(key);
      if (before != null && counted(client, ns, before, now)) {
        WRITTEN.put(key, new Written(before.name(), before.count() + 1));
        return;
      }
      String name = create(client, about, type, reason, message, now);
      WRITTEN.put(key, new Written(name, 1));
    } catch (KubernetesClientException e) {
      // An Event is a courtesy: the status carries the same facts.
      LOG.warning(
          () ->
              "recording the Event "
                  + reason
                  + " on "
                  + ns
                  + "/"
                  + about.getMetadata().getName()
                  + " failed: "
                  + e.getMessage());
    }
  }

  /**
   * Counts one more occurrence on the Event written before, in one merge patch; false if that Event
   * is gone (the API server keeps Events for an hour by default).
   */
  private static boolean counted(KubernetesClient client, String ns, Written before, Instant now) {
    int count = before.count() + 1;
    // The patch is this object as written (its unset fields are left out), not a string patch on a
    // name: Fabric8 reads the object before a string patch, one more request, and one more verb
    // (get) the operator would need on every Event in the cluster.
    Event repeat =
        new EventBuilder()
            .withNewMetadata()
            .withName(before.name())
            .withNamespace(ns)
            .endMetadata()
            .withCount(count)
            .withLastTimestamp(now.truncatedTo(ChronoUnit.SECONDS).toString())
            .withNewSeries()
            .withCount(count)
            .withNewLastObservedTime(MICRO_TIME.format(now))
            .endSeries()
            .build();
    try {
      client
          .v1()
          .events()
          .inNamespace(ns)
          .resource(repeat)
          .patch(PatchContext.of(PatchType.JSON_MERGE));
      return true;
    } catch (KubernetesClientException e) {
      if (e.getCode() == HttpURLConnection.HTTP_NOT_FOUND) {
        return false;
      }
      throw e;
    }
  }

  /** A new Event, named as client-go names them: the object's name and the time in hex. */
  private static String create(
      KubernetesClient client,
      HasMetadata about,
      String type,
      String reason,
      String message,
      Instant now) {
    String ns = about.getMetadata().getNamespace();
    // Never the same stamp twice, so that two Events on one object recorded within the clock's
    // resolution do not collide.
    lastStamp = Math.max(lastStamp + 1, now.getEpochSecond() * 1_000_000_000L + now.getNano());
    String name = about.getMetadata().getName() + "." + Long.toHexString(lastStamp);
    String at = now.truncatedTo(ChronoUnit.SECONDS).toString();
    client
        .v1()
        .events()
        .inNamespace(ns)
        .resource(
            new EventBuilder()
                .withNewMetadata()
                .withName(name)
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
                .withFirstTimestamp(at)
                .withLastTimestamp(at)
                .withCount(1)
                .withNewSource()
                .withComponent("ferry-operator")
                .endSource()
                .build())
        .create();
    return name;
  }
}
