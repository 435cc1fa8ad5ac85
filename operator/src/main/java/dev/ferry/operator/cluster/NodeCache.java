// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import io.fabric8.kubernetes.api.model.Node;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import jakarta.inject.Singleton;
import java.util.Optional;

/**
 * The operator's one cache of every Node: the informer MigrationPolicyReconciler's controller runs
 * for node signals, which the migrations' plans read too instead of a second copy of each Node.
 * Empty until that informer has started and synced; {@link ClusterView#node} then reads from the
 * API server.
 */
@Singleton
public class NodeCache {
  private volatile InformerEventSource<Node, ?> informer;

  /** Serves from {@code informer} once JOSDK has started it (it syncs its cache before that). */
  public void serveFrom(InformerEventSource<Node, ?> informer) {
    this.informer = informer;
  }

  /**
   * The node as the informer last saw it: empty when it has not (not started, or a node added a
   * moment ago). The cache's own object: not to be modified.
   */
  public Optional<Node> node(String name) {
    InformerEventSource<Node, ?> source = informer;
    // Its cache exists only once started: JOSDK builds it in start(), and marks it running last.
    if (source == null || !source.isRunning()) {
      return Optional.empty();
    }
    return source.get(new ResourceID(name));
  }

  /**
   * Whether the node is known to be gone from the cluster: the informer runs and has no such node.
   * False while the informer has not started, when nothing is known.
   */
  public boolean gone(String name) {
    InformerEventSource<Node, ?> source = informer;
    return source != null && source.isRunning() && source.get(new ResourceID(name)).isEmpty();
  }
}
