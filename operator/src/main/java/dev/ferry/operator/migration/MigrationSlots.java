// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * How many migrations may be under way (Preparing, Prepared or Moving) at once: across the cluster,
 * and out of one source node, as KubeVirt's {@code parallelMigrationsPerCluster} and {@code
 * parallelOutboundMigrationsPerNode}; and of one source pod, one. A request beyond them waits in
 * Pending, first come first served (creation time, then namespace/name), so a node's evacuation
 * goes out in the order its requests were made.
 *
 * <p>One migration of a pod at a time, because two would hold the same connections, and each guards
 * the pod against eviction with a label that holds one request's uid: the second would take it, and
 * the first's PodDisruptionBudget would no longer select the pod. Two requests for one pod come
 * from a user's request beside a MigrationPolicy's, or from two policies. A dry run touches
 * nothing, and is not counted for its pod.
 *
 * <p>The count comes from the operator's cache of requests; the cache learns of a status the
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

  /**
   * First come, first served: creation time, then namespace, then name; a request without a
   * creation time last. Written out rather than composed of comparators: it runs for every waiting
   * request at each admission and each end, and a reclaim's requests share their creation second,
   * so all three fields are compared (the composed form was a quarter of the slots' samples in a
   * profile at 1,000).
   */
  static int firstCome(MigrationRequest a, MigrationRequest b) {
    return firstCome(a.getMetadata(), b.getMetadata());
  }

  /**
   * {@link #firstCome(MigrationRequest, MigrationRequest)} of their metadata: WaitingOrder's too.
   */
  static int firstCome(ObjectMeta x, ObjectMeta y) {
    String xt = x.getCreationTimestamp();
    String yt = y.getCreationTimestamp();
    if (xt == null || yt == null) {
      if (xt != yt) {
        return xt == null ? 1 : -1;
      }
    } else {
      int byTime = xt.compareTo(yt);
      if (byTime != 0) {
        return byTime;
      }
    }
    int byNamespace = x.getNamespace().compareTo(y.getNamespace());
    return byNamespace != 0 ? byNamespace : x.getName().compareTo(y.getName());
  }

  private final Limits limits;
  private final Requests requests;

  /** Admitted here, by uid: until the cache shows them ended. */
  private final Map<String, Slot> admitted = new HashMap<>();

  /**
   * Ended here, by uid, until the cache's index no longer lists them under way: the status saying
   * so is written after the turn that ended them, and the requests woken for their slot must not
   * find it taken still.
   */
  private final Set<String> ended = new HashSet<>();

  /**
   * Refused here, by uid, with their source node, until the cache shows them waiting (or ended, or
   * gone): the status that says a request waits is written after the turn that refused it, and a
   * slot that comes free meanwhile must wake it ({@link #next}) and let it go first ({@link
   * #admit}), or it would wait for its recheck, a minute, while a later request, or no one, takes
   * the slot.
   */
  private final Map<String, Waiter> refused = new HashMap<>();

  /**
   * Those that may wait, in first-come order: every request refused here, and those the cache
   * showed waiting when this order was last filled from it ({@link #fill}). Walked from the front
   * by {@link #next}, and as far as the request asking by {@link #admit}.
   */
  private final WaitingOrder order = new WaitingOrder();

  /**
   * When {@link #order} was last filled from the cache's index of waiting requests, in {@link
   * System#nanoTime}; at the first look, and then now and then: a request waits only once refused
   * here, so the index adds only what an earlier operator refused, all of it there at the first
   * look. The refill is a safety net, a pass over every waiting request at most every {@link
   * #REFILL_NANOS}.
   */
  private long filledAt;

  private boolean filled;

  private static final long REFILL_NANOS = 10_000_000_000L;

  /** A waiting request and the node its connections leave. */
  private record Waiter(MigrationRequest request, String node) {}

  /**
   * A migration under way: the node its connections leave, and the pod they leave (namespace/name;
   * null for a dry run, or a request that names none), with the request's namespace/name.
   */
  private record Slot(String node, String pod, String request) {
    static Slot of(MigrationRequest r, String node) {
      return new Slot(
          node, sourcePod(r), r.getMetadata().getNamespace() + "/" + r.getMetadata().getName());
    }
  }

  /** The source pod {@code r} moves connections out of, as namespace/name; null if none. */
  private static String sourcePod(MigrationRequest r) {
    if (r.getSpec() == null || r.getSpec().isDryRun() || r.getSpec().getSource() == null) {
      return null;
    }
    String name = r.getSpec().getSource().getName();
    return name == null ? null : r.getMetadata().getNamespace() + "/" + name;
  }

  /**
   * What the slots read of the operator's cache of requests. The operator serves each from an index
   * of the cache ({@code MigrationReconciler}), so that an admission reads the requests under way,
   * and those waiting from its own node, not every request the cluster has kept: ended requests
   * stay until someone deletes them, and a reclaim creates hundreds at once.
   */
  public interface Requests {
    /** Those the cache shows {@link #isUnderWay under way}. */
    Collection<MigrationRequest> underWay();

    /** Those the cache shows {@link #isWaiting waiting}. */
    Collection<MigrationRequest> waiting();

    /** Those the cache shows {@link #isWaiting waiting} with {@code node} as their source. */
    Collection<MigrationRequest> waitingFrom(String node);

    /** The request with {@code uid} as the cache has it; null when it has none. */
    MigrationRequest byUid(String uid);

    /** Each of the above by going through {@code all}, every request the cache holds. */
    static Requests filtering(Supplier<? extends Collection<MigrationRequest>> all) {
      return new Requests() {
        @Override
        public Collection<MigrationRequest> underWay() {
          return all.get().stream().filter(MigrationSlots::isUnderWay).toList();
        }

        @Override
        public Collection<MigrationRequest> waiting() {
          return all.get().stream().filter(MigrationSlots::isWaiting).toList();
        }

        @Override
        public Collection<MigrationRequest> waitingFrom(String node) {
          return all.get().stream()
              .filter(r -> isWaiting(r) && node.equals(r.getStatus().getSourceNode()))
              .toList();
        }

        @Override
        public MigrationRequest byUid(String uid) {
          return all.get().stream()
              .filter(r -> uid.equals(r.getMetadata().getUid()))
              .findFirst()
              .orElse(null);
        }
      };
    }
  }

  public MigrationSlots(Limits limits, Requests requests) {
    this.limits = limits;
    this.requests = requests;
  }

  /**
   * Admits {@code mr}, whose connections leave {@code sourceNode}, or says why it waits.
   *
   * @return empty when admitted (again, if it was before); else the sentence the status shows
   */
  public synchronized Optional<String> admit(MigrationRequest mr, String sourceNode) {
    fill();
    String uid = mr.getMetadata().getUid();
    Map<String, Slot> underWay = underWay();
    if (underWay.containsKey(uid)) {
      return Optional.empty();
    }
    // Read once for both questions: those of its pod are among them, and those of its node.
    List<Waiter> nodeWaiters = waiters(requests.waitingFrom(sourceNode));
    // The pod first: a migration of this very pod is what it waits for, even when its node's
    // limit is reached too, and the message names that migration.
    Optional<String> waits = podTaken(mr, underWay, nodeWaiters);
    if (waits.isEmpty()) {
      waits = waits(mr, uid, sourceNode, underWay, nodeWaiters);
    }
    if (waits.isPresent()) {
      refused.put(uid, new Waiter(mr, sourceNode));
      order.add(mr);
      return waits;
    }
    refused.remove(uid);
    admitted.put(uid, Slot.of(mr, sourceNode));
    return Optional.empty();
  }

  /**
   * Why {@code mr} waits for its pod: a migration of it is under way, or a request for it that came
   * first waits too (its node's waiting requests, {@code nodeWaiters}, are those it can be among).
   * Empty when neither.
   */
  private static Optional<String> podTaken(
      MigrationRequest mr, Map<String, Slot> underWay, List<Waiter> nodeWaiters) {
    String pod = sourcePod(mr);
    if (pod == null) {
      return Optional.empty();
    }
    for (Slot slot : underWay.values()) {
      if (pod.equals(slot.pod())) {
        return Optional.of(podBusy(pod, slot.request(), "is under way"));
      }
    }
    for (Waiter w : nodeWaiters) {
      if (pod.equals(sourcePod(w.request())) && ahead(w.request(), mr, underWay)) {
        ObjectMeta first = w.request().getMetadata();
        return Optional.of(
            podBusy(pod, first.getNamespace() + "/" + first.getName(), "came first and waits too"));
      }
    }
    return Optional.empty();
  }

  private static String podBusy(String pod, String request, String state) {
    return "waiting for a migration slot: one migration of a pod may be under way at once, and"
        + " that of pod "
        + pod
        + " (MigrationRequest "
        + request
        + ") "
        + state;
  }

  private Optional<String> waits(
      MigrationRequest mr,
      String uid,
      String sourceNode,
      Map<String, Slot> underWay,
      List<Waiter> nodeWaiters) {
    int inCluster = underWay.size();
    Map<String, Integer> perNode = perNode(underWay);
    int fromNode = perNode.getOrDefault(sourceNode, 0);

    // Those that came first and wait too go first: on this node always; in the cluster when
    // their own node has room for them. A limit reached is reached whoever waits: those are
    // counted only when it is not.
    if (fromNode >= limits.perNode()) {
      return Optional.of(nodeFull(sourceNode, "that many are"));
    }
    long aheadOnNode =
        nodeWaiters.stream()
            .filter(w -> sourceNode.equals(w.node()) && ahead(w.request(), mr, underWay))
            .count();
    if (fromNode + aheadOnNode >= limits.perNode()) {
      return Optional.of(nodeFull(sourceNode, "earlier requests from that node wait too"));
    }
    if (inCluster >= limits.perCluster()) {
      return Optional.of(clusterFull("that many are"));
    }
    long aheadInCluster = 0;
    for (Iterator<String> uids = order.before(mr); uids.hasNext(); ) {
      Waiter w = waiter(uids);
      if (w != null
          && ahead(w.request(), mr, underWay)
          && perNode.getOrDefault(w.node(), 0) < limits.perNode()
          && inCluster + ++aheadInCluster >= limits.perCluster()) {
        return Optional.of(clusterFull("earlier requests wait too"));
      }
    }
    return Optional.empty();
  }

  /**
   * The request of the uid {@code uids} gives next, as it waits: as refused here, or as the cache's
   * object has it; null if it does not wait. One that never will again (ended, gone, under way: a
   * request never goes back to Pending) is forgotten from the order.
   */
  private Waiter waiter(Iterator<String> uids) {
    String uid = uids.next();
    Waiter w = refused.get(uid);
    if (w != null) {
      return w;
    }
    MigrationRequest r = requests.byUid(uid);
    if (!unended(r) || isUnderWay(r)) {
      uids.remove();
      return null;
    }
    return isWaiting(r) ? new Waiter(r, r.getStatus().getSourceNode()) : null;
  }

  /** Puts in {@link #order} what the cache shows waiting: at the first look, then now and then. */
  private void fill() {
    long now = System.nanoTime();
    if (!filled || now - filledAt > REFILL_NANOS) {
      order.addAll(requests.waiting());
      filled = true;
      filledAt = now;
    }
  }

  /**
   * The waiting requests {@code shown} (by the cache's index) that still wait by their object (the
   * object may be newer than the index: admitted, or ended), and those refused here that the index
   * does not list yet.
   */
  private List<Waiter> waiters(Collection<MigrationRequest> shown) {
    List<Waiter> all = new ArrayList<>(shown.size() + refused.size());
    for (MigrationRequest r : shown) {
      if (isWaiting(r)) {
        all.add(new Waiter(r, r.getStatus().getSourceNode()));
      }
    }
    all.addAll(refused.values());
    return all;
  }

  // The sentences name the limit, not the counts: one is written to the status when it changes,
  // and a count that moved with every start and end would write it again each time.

  private String nodeFull(String sourceNode, String and) {
    return "waiting for a migration slot: "
        + limits.perNode()
        + " migration(s) out of node "
        + sourceNode
        + " may be under way at once (ferry.operator.limits.per-node), and "
        + and;
  }

  private String clusterFull(String and) {
    return "waiting for a migration slot: "
        + limits.perCluster()
        + " migration(s) may be under way at once in the cluster"
        + " (ferry.operator.limits.per-cluster), and "
        + and;
  }

  /** Whether {@code r}, waiting, came before {@code mr} and is not under way already. */
  private static boolean ahead(
      MigrationRequest r, MigrationRequest mr, Map<String, Slot> underWay) {
    String uid = r.getMetadata().getUid();
    return !uid.equals(mr.getMetadata().getUid())
        && !underWay.containsKey(uid)
        && firstCome(r, mr) < 0;
  }

  /**
   * The waiting requests that would be admitted now, in order: those to wake when a slot came free.
   * Admits nothing.
   */
  public synchronized List<MigrationRequest> next() {
    fill();
    Map<String, Slot> underWay = underWay();
    int room = limits.perCluster() - underWay.size();
    if (room <= 0) {
      return List.of();
    }
    Map<String, Integer> perNode = perNode(underWay);
    Set<String> podsTaken = new HashSet<>();
    underWay.values().forEach(slot -> podsTaken.add(slot.pod()));
    // The first come whose node has room and whose pod is free, then the next, while the cluster
    // has room: one walk from the front of the order, which stops there. Taking one makes the
    // rest only harder to take (its node and pod are taken then), so those passed over before it
    // stay passed over, as if each free slot had looked at all of them afresh.
    List<MigrationRequest> next = new ArrayList<>();
    for (Iterator<String> uids = order.all(); uids.hasNext() && next.size() < room; ) {
      Waiter w = waiter(uids);
      if (w == null
          || underWay.containsKey(w.request().getMetadata().getUid())
          || perNode.getOrDefault(w.node(), 0) >= limits.perNode()) {
        continue;
      }
      String pod = sourcePod(w.request());
      if (free(pod, podsTaken)) {
        next.add(w.request());
        perNode.merge(w.node(), 1, Integer::sum);
        podsTaken.add(pod);
      }
    }
    return next;
  }

  /** Whether no migration under way holds {@code pod} (none, for a dry run: never held). */
  private static boolean free(String pod, Set<String> podsTaken) {
    return pod == null || !podsTaken.contains(pod);
  }

  /** {@code mr} ended or was deleted: its slot is free. */
  public synchronized void release(MigrationRequest mr) {
    order.remove(mr.getMetadata().getUid());
    admitted.remove(mr.getMetadata().getUid());
    refused.remove(mr.getMetadata().getUid()); // ended while it waited: never to be woken
    ended.add(mr.getMetadata().getUid());
  }

  /**
   * Every request under way by uid, by the cache or by an admission here; forgets what is kept here
   * once the cache has caught up: admissions it shows ended or no longer has, ends its index no
   * longer lists under way, refusals its index lists (or that ended, or are gone).
   */
  private Map<String, Slot> underWay() {
    // What the cache's indexes list, not what a request's object says: the cache may already hold
    // a request's new object (Completed) while its index still lists it under way (seen in make
    // bench-operator, right after the status write). An end forgotten on the object's word would
    // then count as a migration under way, and the slot it freed would wake no one.
    Collection<MigrationRequest> shownUnderWay = requests.underWay();
    Set<String> listed = uids(shownUnderWay);
    admitted.keySet().removeIf(uid -> !unended(requests.byUid(uid)));
    ended.removeIf(uid -> !listed.contains(uid));
    if (!refused.isEmpty()) {
      // Whether the index lists a refusal waiting: from its node's waiting requests, a few, not
      // from every waiting request in the cluster.
      Map<String, Set<String>> waitingFrom = new HashMap<>();
      refused
          .entrySet()
          .removeIf(
              e ->
                  listed.contains(e.getKey())
                      || !unended(requests.byUid(e.getKey()))
                      || waitingFrom
                          .computeIfAbsent(
                              e.getValue().node(), node -> uids(requests.waitingFrom(node)))
                          .contains(e.getKey()));
    }
    Map<String, Slot> underWay = new HashMap<>(admitted);
    for (MigrationRequest r : shownUnderWay) {
      String uid = r.getMetadata().getUid();
      if (!ended.contains(uid) && !underWay.containsKey(uid)) {
        underWay.put(
            uid, Slot.of(r, Objects.requireNonNullElse(r.getStatus().getSourceNode(), "")));
      }
    }
    return underWay;
  }

  private static Set<String> uids(Collection<MigrationRequest> requests) {
    Set<String> uids = new HashSet<>();
    requests.forEach(r -> uids.add(r.getMetadata().getUid()));
    return uids;
  }

  private static Map<String, Integer> perNode(Map<String, Slot> underWay) {
    Map<String, Integer> perNode = new HashMap<>();
    underWay.values().forEach(slot -> perNode.merge(slot.node(), 1, Integer::sum));
    return perNode;
  }

  /** Kept here: admissions, ends and refusals the cache has not shown yet (what tests look at). */
  synchronized int kept() {
    return admitted.size() + ended.size() + refused.size();
  }

  /** How many requests have a place in the first-come order (what tests look at). */
  synchronized int ordered() {
    return order.size();
  }

  /**
   * Under way: Preparing, Prepared (its pre-copy runs on both agents, and it may move any moment)
   * or Moving.
   */
  public static boolean isUnderWay(MigrationRequest r) {
    Phase p = phase(r);
    return r.getStatus() != null
        && (p == Phase.Preparing || p == Phase.Prepared || p == Phase.Moving);
  }

  /** Waiting for a slot: Pending, its source node known. */
  public static boolean isWaiting(MigrationRequest r) {
    return r.getStatus() != null
        && phase(r) == Phase.Pending
        && r.getStatus().getSourceNode() != null;
  }

  private static boolean unended(MigrationRequest r) {
    return r != null && !(r.getStatus() != null && phase(r).finished());
  }

  private static Phase phase(MigrationRequest r) {
    MigrationRequestStatus st = r.getStatus();
    return st == null || st.getPhase() == null ? Phase.Pending : st.getPhase();
  }
}
