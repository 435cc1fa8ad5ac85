// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import dev.ferry.sys.SyscallException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Which arrivals on this node rely on a service address being on a target pod. Arrivals to one pod
 * for one address overlap: the operator's next attempt arrives while this node is still rolling
 * back the one whose source gave up on it, or a second request moves more connections to a pod that
 * has the address from an earlier one. Each rolled-back arrival used to take the address off the
 * pod, under the connections of the other.
 *
 * <p>Now the address goes off the pod only when the last arrival that relies on it rolls back, and
 * only if an arrival put it there; once one commits, the address is the pod's, and no later
 * rollback takes it. Changes happen under this object's lock, so that no release removes the
 * address while a claim is adding it.
 */
public final class AddressClaims {
  /** An address change; true if it changed anything (false: it was so already). */
  public interface Change {
    boolean apply() throws SyscallException;
  }

  private static final class Claim {
    final Set<Object> holders = new HashSet<>();

    /** An arrival put the address on the pod (it was not there). */
    boolean added;

    /** An arrival that relied on it committed: the pod's connections live on it. */
    boolean committed;
  }

  private final Map<Object, Claim> claims = new HashMap<>();

  /** Puts the address {@code key} names on its pod (with {@code add}) for {@code holder}. */
  public synchronized void claim(Object key, Object holder, Change add) throws SyscallException {
    boolean changed = add.apply();
    Claim c = claims.computeIfAbsent(key, k -> new Claim());
    if (changed) {
      // It was not there: whatever was known of it is over (the pod's connections moved away).
      c.added = true;
      c.committed = false;
    }
    c.holders.add(holder);
  }

  /**
   * {@code holder} no longer relies on the address: it committed (the address stays the pod's), or
   * it rolled back, and then the address goes with {@code remove} if no one else relies on it, an
   * arrival put it there and none committed.
   *
   * @return whether it was removed
   */
  public synchronized boolean release(Object key, Object holder, boolean committed, Change remove)
      throws SyscallException {
    Claim c = claims.get(key);
    if (c == null || !c.holders.remove(holder)) {
      return false;
    }
    c.committed |= committed;
    if (!c.holders.isEmpty()) {
      return false;
    }
    claims.remove(key);
    if (c.added && !c.committed) {
      remove.apply();
      return true;
    }
    return false;
  }
}
