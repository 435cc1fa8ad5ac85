// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import java.util.Optional;

/**
 * Keeps voluntary disruptions (the eviction API that {@code kubectl drain}, Karpenter and
 * aws-node-termination-handler use) away from a source pod while its connections move: an evicted
 * application dies with its clients held. Applied from Preparing on (begun as Pending admits the
 * request), lifted at the end, whichever end; never longer than the request lives, so never past
 * its deadline.
 */
public interface EvictionGuard {
  /**
   * Protects the source pod of {@code plan}. Idempotent.
   *
   * @return why the pod could not be protected, if so: the migration goes on regardless (it is
   *     often the reason the node is going), and says so
   */
  Optional<String> protect(MigrationRequest mr, Plan plan);

  /** Lifts what {@link #protect} set, best effort and idempotent: the pod may be gone. */
  void release(MigrationRequest mr);

  /**
   * Begins {@link #release}, to run beside the caller's own API requests; the handle returned waits
   * for it to end (and throws what it threw). Here: at once, on the caller's thread.
   */
  default Runnable startRelease(MigrationRequest mr) {
    release(mr);
    return () -> {};
  }

  /** Guards nothing: for tests of other things. */
  EvictionGuard NONE =
      new EvictionGuard() {
        @Override
        public Optional<String> protect(MigrationRequest mr, Plan plan) {
          return Optional.empty();
        }

        @Override
        public void release(MigrationRequest mr) {}
      };
}
