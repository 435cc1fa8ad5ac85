// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Records what was guarded and released; refuses to guard when told to. A release begun with {@link
 * #startRelease} is recorded when it begins and again when the caller waits for it.
 */
final class FakeGuard implements EvictionGuard {
  final List<String> calls = new ArrayList<>();
  String refusal;

  @Override
  public Optional<String> protect(MigrationRequest mr, Plan plan) {
    calls.add("protect " + plan.source().getName());
    return Optional.ofNullable(refusal);
  }

  @Override
  public void release(MigrationRequest mr) {
    calls.add("release " + mr.getMetadata().getName());
  }

  @Override
  public Runnable startRelease(MigrationRequest mr) {
    release(mr);
    return () -> calls.add("release waited for");
  }
}
