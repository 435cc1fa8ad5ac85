// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;

/** Where a run writes what it did: the MigrationRequest's status, and Events on it. */
public interface StatusSink {
  /** Writes the status; a restarted operator continues from it. */
  void save(MigrationRequest mr);

  /** A Kubernetes Event on the request: type Normal or Warning. */
  void event(MigrationRequest mr, String type, String reason, String message);
}
