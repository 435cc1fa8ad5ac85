// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import dev.ferry.api.crd.MigrationRequest;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.informers.cache.ItemStore;
import io.fabric8.kubernetes.client.informers.cache.ReducedStateItemStore;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import jakarta.inject.Singleton;
import java.util.Optional;
import java.util.Set;

/**
 * The operator's cache of the pods a migration may name, so that a migration reads none from the
 * API server: its source and target for the plan, the source again when the eviction guard is
 * lifted. Filled by an informer the MigrationRequest controller runs (it wakes no request: a cache,
 * not a trigger). Empty until that informer has started and synced; {@link ClusterView#pod} then
 * reads from the API server, as it does for a pod created a moment ago.
 *
 * <p>It holds every pod of the namespaces the operator watches, but only what the operator reads of
 * each ({@link #FIELDS}): no volumes, container statuses or managed fields. Each read makes a fresh
 * object from what is kept, so a caller may change the pod it gets (the eviction guard edits it).
 */
@Singleton
public class PodCache {
  /**
   * What is kept of a pod (besides its namespace, name and resourceVersion): what {@link
   * ClusterView}, the plan and the eviction guard read; the containers for the ports they declare.
   * Labels and annotations are kept whole: the guard's patch is the difference between the pod as
   * read and as marked, so a pod read without them would have them all replaced.
   */
  static final String[] FIELDS = {
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
    "spec.nodeName",
    "spec.containers",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.conditions",
  };

  private volatile InformerEventSource<Pod, ?> informer;

  /**
   * The informer that fills this cache, for the MigrationRequest controller to run: in the
   * namespaces the controller watches, waking no request, its pods reduced to {@link #FIELDS}.
   * Served from once JOSDK has started it (it syncs its cache before that).
   */
  public InformerEventSource<Pod, MigrationRequest> informer(
      EventSourceContext<MigrationRequest> context) {
    InformerEventSourceConfiguration<Pod> config =
        InformerEventSourceConfiguration.from(Pod.class, MigrationRequest.class)
            .withName("pods")
            .withSecondaryToPrimaryMapper(pod -> Set.of())
            .withItemStore(itemStore(context.getClient().getKubernetesSerialization()))
            .build();
    InformerEventSource<Pod, MigrationRequest> source = new InformerEventSource<>(config, context);
    this.informer = source;
    return source;
  }

  private static ItemStore<Pod> itemStore(KubernetesSerialization serialization) {
    return new ReducedStateItemStore<>(
        ReducedStateItemStore.NAME_KEY_STATE, Pod.class, serialization, FIELDS);
  }

  /**
   * The pod as the informer last saw it, reduced to {@link #FIELDS}: empty when it has not (not
   * started, or a pod created a moment ago).
   */
  public Optional<Pod> pod(String namespace, String name) {
    InformerEventSource<Pod, ?> source = informer;
    // Its cache exists only once started: JOSDK builds it in start(), and marks it running last.
    if (source == null || !source.isRunning()) {
      return Optional.empty();
    }
    return source.get(new ResourceID(name, namespace));
  }
}
