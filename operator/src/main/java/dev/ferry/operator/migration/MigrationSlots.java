// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * How many migrations may be under way (Preparing, Prepared or Moving) at once: across the cluster,
 * and out of one source node, as KubeVirt's {@code parallelMigrationsPerCluster} and {@code
 * parallelOutboundMigrationsPerNode}. A request beyond them waits in Pending, first come first
 * served (creation time, then namespace/name), so a node's evacuation goes out in the order its
 * requests were made.
 *
 * <p>The count comes from the operator's cache of every request; the cache learns of a status the
 * operator wrote only a moment later, and requests are reconciled on several threads at once, so
 * admissions made here are also kept here until the cache shows the request ended. One instance
 * lives as long as the operator; after a restart the cache alone is the truth, as it is then
 * current.
 */
public final class MigrationSlots {
  /**
   * @param perCluster migrations under way at once in the whole cluster
   * @param perNode migrations under way at once out of one source node
   */
  public record Limits(int perCluster, int perNode) {
    public Limits {
      if (perCluster < 1 || perNode < 1) {
        throw new IllegalArgumentException(
            "ferry.operator.limits.per-cluster and .per-node must be at least 1, got "
                + perCluster
                + " and "
                + perNode);
      }
    }

    /** No limit that a test or a small cluster would meet. */
    public static final Limits NONE = new Limits(Integer.MAX_VALUE, Integer.MAX_VALUE);
  }

  private static final Comparator<MigrationRequest> FIRST_COME =
      Comparator.comparing(
              (MigrationRequest r) -> r.getMetadata().getCreationTimestamp(),
              Comparator.nullsLast(Comparator.naturalOrder()))
          .thenComparing(r -> r.getMetadata().getNamespace())
          .thenComparing(r -> r.getMetadata().getName());

  private final Limits limits;
  private final Supplier<? extends Collection<MigrationRequest>> requests;

  /** Admitted here, by uid, with their source node: until the cache shows them ended. */
  private final Map<String, String> admitted = new HashMap<>();

  /**
   * Ended here, by uid, until the cache shows it: the status saying so is written after the turn
   * that ended them, and the requests woken for their slot must not find it taken still.
   */
  private final Set<String> ended = new HashSet<>();

  /**
   * @param requests every MigrationRequest the operator knows that has not ended (its informer's
   *     cache, through an index: ended requests stay in the cluster until someone deletes them, and
   *     this is read at every admission); ended ones among them are passed over
   */
  public MigrationSlots(Limits limits, Supplier<? extends Collection<MigrationRequest>> requests) {
    this.limits = limits;
    this.requests = requests;
  }

  /**
   * Admits {@code mr}, whose connections leave {@code sourceNode}, or says why it waits.
   *
   * @return empty when admitted (again, if it was before); else the sentence the status shows
   */
  public synchronized Optional<String> admit(MigrationRequest mr, String sourceNode) {
    String uid = mr.getMetadata().getUid();
    List<MigrationRequest> all = List.copyOf(requests.get());
    Map<String, String> underWay = underWay(all);
    if (underWay.containsKey(uid)) {
      return Optional.empty();
    }
    int inCluster = underWay.size();
    Map<String, Integer> perNode = new HashMap<>();
    underWay.values().forEach(n -> perNode.merge(n, 1, Integer::sum));
    int fromNode = perNode.getOrDefault(sourceNode, 0);

    // Those that came first and wait too go first: on this node always; in the cluster when
    // their own node has room for them. Counted in one pass, without a list: this runs for every
    // waiting request each time it looks, over every request the operator knows.
    long aheadOnNode = 0;
    long aheadInCluster = 0;
    for (MigrationRequest r : all) {
      if (!waiting(r)
          || uid.equals(r.getMetadata().getUid())
          || underWay.containsKey(r.getMetadata().getUid())
          || FIRST_COME.compare(r, mr) >= 0) {
        continue;
      }
      String node = r.getStatus().getSourceNode();
      if (sourceNode.equals(node)) {
        aheadOnNode++;
      }
      if (perNode.getOrDefault(node, 0) < limits.perNode()) {
        aheadInCluster++;
      }
    }

    // The sentence names the limit, not the counts: it is written to the status when it changes,
    // and a count that moved with every start and end would write it again each time.
    if (fromNode + aheadOnNode >= limits.perNode()) {
      return Optional.of(
          "waiting for a migration slot: "
              + limits.perNode()
              + " migration(s) out of node "
              + sourceNode
              + " may be under way at once (ferry.operator.limits.per-node), and "
              + (aheadOnNode > 0 ? "earlier requests from that node wait too" : "that many are"));
    }
    if (inCluster + aheadInCluster >= limits.perCluster()) {
      return Optional.of(
          "waiting for a migration slot: "
              + limits.perCluster()
              + " migration(s) may be under way at once in the cluster"
              + " (ferry.operator.limits.per-cluster), and "
              + (aheadInCluster > 0 ? "earlier requests wait too" : "that many are"));
    }
    admitted.put(uid, sourceNode);
    return Optional.empty();
  }

  /**
   * The waiting requests that would be admitted now, in order: those to wake when a slot came free.
   * Admits nothing.
   */
  public synchronized List<MigrationRequest> next() {
    List<MigrationRequest> all = List.copyOf(requests.get());
    Map<String, String> underWay = underWay(all);
    int inCluster = underWay.size();
    Map<String, Integer> perNode = new HashMap<>();
    underWay.values().forEach(n -> perNode.merge(n, 1, Integer::sum));
    List<MigrationRequest> next = new java.util.ArrayList<>();
    for (MigrationRequest r :
        all.stream()
            .filter(r -> waiting(r) && !underWay.containsKey(r.getMetadata().getUid()))
            .sorted(FIRST_COME)
            .toList()) {
      if (inCluster >= limits.perCluster()) {
        break;
      }
      String node = r.getStatus().getSourceNode();
      if (perNode.getOrDefault(node, 0) < limits.perNode()) {
        next.add(r);
        perNode.merge(node, 1, Integer::sum);
        inCluster++;
      }
    }
    return next;
  }

  /** {@code mr} ended or was deleted: its slot is free. */
  public synchronized void release(MigrationRequest mr) {
    admitted.remove(mr.getMetadata().getUid());
    ended.add(mr.getMetadata().getUid());
  }

  /**
   * Uid to source node of every request under way, by the cache or by an admission here; forgets
   * the admissions and ends kept here that the cache now shows ended, or no longer has. One pass,
   * and maps only as large as the limits: it runs at every admission.
   */
  private Map<String, String> underWay(List<MigrationRequest> all) {
    Map<String, String> byCache = new HashMap<>();
    Set<String> stillOpen = new HashSet<>();
    for (MigrationRequest r : all) {
      String uid = r.getMetadata().getUid();
      Phase p = phase(r);
      if ((admitted.containsKey(uid) || ended.contains(uid))
          && !(r.getStatus() != null && p.finished())) {
        stillOpen.add(uid);
      }
      // Prepared too: its pre-copy runs on both agents, and it may move any moment.
      if (p == Phase.Preparing || p == Phase.Prepared || p == Phase.Moving) {
        byCache.put(uid, Objects.requireNonNullElse(r.getStatus().getSourceNode(), ""));
      }
    }
    admitted.keySet().retainAll(stillOpen);
    ended.retainAll(stillOpen);
    Map<String, String> underWay = new HashMap<>(admitted);
    byCache.forEach(
        (uid, node) -> {
          if (!ended.contains(uid)) {
            underWay.putIfAbsent(uid, node);
          }
        });
    return underWay;
  }

  private static boolean waiting(MigrationRequest r) {
    return r.getStatus() != null
        && phase(r) == Phase.Pending
        && r.getStatus().getSourceNode() != null;
  }

  private static Phase phase(MigrationRequest r) {
    MigrationRequestStatus st = r.getStatus();
    return st == null || st.getPhase() == null ? Phase.Pending : st.getPhase();
  }
}
