// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.NavigableSet;
import java.util.TreeSet;

/**
 * The requests that may be waiting for a migration slot, by uid, kept in first-come order ({@link
 * MigrationSlots#firstCome}): so that the slots find who comes first by walking from the front, and
 * only as far as they need, rather than comparing every waiting request at each admission and each
 * end. A reclaim's burst puts a thousand requests here at once; the first of them are admitted one
 * by one, each finding nothing or little ahead of it.
 *
 * <p>The order is of fields a request never changes (creation time, namespace, name), so a request
 * keeps its place whatever its status says. Whether it still waits is the caller's to ask as it
 * walks, and the caller forgets, through the walk, those that never will again. Not thread-safe:
 * {@link MigrationSlots}' lock guards it.
 */
final class WaitingOrder {
  /**
   * Where a request stands: a copy of the metadata {@link MigrationSlots#firstCome} reads (creation
   * time, namespace, name; a copy, so that nothing done to the request's object can move it within
   * the tree), and its uid.
   */
  private record Place(ObjectMeta meta, String uid) {
    static Place of(MigrationRequest r, String uid) {
      ObjectMeta m = r.getMetadata();
      return new Place(
          new ObjectMetaBuilder()
              .withCreationTimestamp(m.getCreationTimestamp())
              .withNamespace(m.getNamespace())
              .withName(m.getName())
              .build(),
          uid);
    }
  }

  /**
   * {@link MigrationSlots#firstCome}, then the uid: a request deleted and made again under its name
   * within the same second is another request, and both have a place.
   */
  private static int firstCome(Place a, Place b) {
    int c = MigrationSlots.firstCome(a.meta(), b.meta());
    return c != 0 ? c : a.uid().compareTo(b.uid());
  }

  private final NavigableSet<Place> places = new TreeSet<>(WaitingOrder::firstCome);
  private final Map<String, Place> byUid = new HashMap<>();

  /** Gives {@code r} its place, unless it has one. */
  void add(MigrationRequest r) {
    String uid = r.getMetadata().getUid();
    if (!byUid.containsKey(uid)) {
      Place p = Place.of(r, uid);
      byUid.put(uid, p);
      places.add(p);
    }
  }

  void addAll(Collection<MigrationRequest> requests) {
    requests.forEach(this::add);
  }

  void remove(String uid) {
    Place p = byUid.remove(uid);
    if (p != null) {
      places.remove(p);
    }
  }

  /** Every uid, first come first; {@link Iterator#remove} forgets the last one given. */
  Iterator<String> all() {
    return uids(places.iterator());
  }

  /**
   * The uids of those that came before {@code r} (by {@link MigrationSlots#firstCome}: not those
   * that share its creation time, namespace and name), first come first.
   */
  Iterator<String> before(MigrationRequest r) {
    // The empty uid sorts before every other: the place of r's fields, ahead of anyone holding
    // them.
    return uids(places.headSet(Place.of(r, ""), false).iterator());
  }

  int size() {
    return byUid.size();
  }

  private Iterator<String> uids(Iterator<Place> in) {
    return new Iterator<>() {
      private Place last;

      @Override
      public boolean hasNext() {
        return in.hasNext();
      }

      @Override
      public String next() {
        last = in.next();
        return last.uid();
      }

      @Override
      public void remove() {
        in.remove();
        byUid.remove(last.uid());
      }
    };
  }
}
