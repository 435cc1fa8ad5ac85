// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Map;
import java.util.Optional;

/**
 * How long an ended request that a MigrationPolicy made is kept before the operator deletes it
 * (ferry.operator.policy-requests-kept). Ended requests otherwise stay for good, in etcd and in the
 * operator's cache, and a reclaim of a few nodes makes hundreds at once; by then its status, its
 * Events, the operator's log and metrics have said how it ended. A request a person made is theirs
 * to delete, as a Job without ttlSecondsAfterFinished is.
 */
public final class EndedRequests {
  private final Duration kept;
  private final Clock clock;

  /**
   * @param kept how long after its end a policy's request goes; zero keeps them all
   */
  public EndedRequests(Duration kept, Clock clock) {
    if (kept.isNegative()) {
      throw new IllegalArgumentException(
          "ferry.operator.policy-requests-kept is "
              + kept
              + "; it must be 0 (keep them) or longer");
    }
    this.kept = kept;
    this.clock = clock;
  }

  /** The time kept as the setting is written: 168h, 90s. */
  public String keptAsWritten() {
    long seconds = kept.toSeconds();
    return seconds % 3600 == 0 ? seconds / 3600 + "h" : seconds + "s";
  }

  /**
   * How long until the ended {@code mr} is deleted: zero once it is due; empty when it is kept (a
   * person's request, none deleted, or an end time that cannot be read).
   */
  public Optional<Duration> untilDeleted(MigrationRequest mr) {
    Map<String, String> labels = mr.getMetadata().getLabels();
    if (kept.isZero() || labels == null || !labels.containsKey(MigrationRequest.POLICY_LABEL)) {
      return Optional.empty();
    }
    String ended = mr.getStatus() == null ? null : mr.getStatus().getCompletionTime();
    if (ended == null) {
      return Optional.empty();
    }
    Instant end;
    try {
      end = Instant.parse(ended);
    } catch (DateTimeParseException e) {
      return Optional.empty();
    }
    Duration left = Duration.between(clock.instant(), end.plus(kept));
    return Optional.of(left.isNegative() ? Duration.ZERO : left);
  }
}
