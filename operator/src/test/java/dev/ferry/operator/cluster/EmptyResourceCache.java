// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.IndexerResourceCache;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * A controller's cache of its primary resources with none in it: an informer's event wakes none.
 */
public final class EmptyResourceCache<R extends HasMetadata> implements IndexerResourceCache<R> {
  @Override
  public Optional<R> get(ResourceID id) {
    return Optional.empty();
  }

  @Override
  public Stream<ResourceID> keys() {
    return Stream.empty();
  }

  @Override
  public Stream<R> list(Predicate<R> predicate) {
    return Stream.empty();
  }

  @Override
  public Stream<R> list(String namespace, Predicate<R> predicate) {
    return Stream.empty();
  }

  @Override
  public List<R> byIndex(String indexName, String indexKey) {
    return List.of();
  }

  @Override
  public void addIndexers(Map<String, Function<R, List<String>>> indexers) {}
}
