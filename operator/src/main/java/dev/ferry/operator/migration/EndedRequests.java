// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * How long an ended request that a MigrationPolicy made is kept before the operator deletes it
 * (ferry.operator.policy-requests-kept). Ended requests otherwise stay for good, in etcd and in the
 * operator's cache, and a reclaim of a few nodes makes hundreds at once; by then its status, its
 * Events, the operator's log and metrics have said how it ended. A request a person made is theirs
 * to delete, as a Job without ttlSecondsAfterFinished is. A policy's request also stays while the
 * node it evacuated is in the cluster: the policy knows it has answered an announcement by its
 * request's name, and would make the request again if the announcement were still on the node (a
 * drain taint left for a week, a rebalance recommendation that stays).
 */
public final class EndedRequests {
  /** How often a request kept for its node looks whether the node is gone. */
  static final Duration NODE_RECHECK = Duration.ofHours(1);

  private final Duration kept;
  private final Predicate<String> nodeGone;
  private final Clock clock;

  /**
   * @param kept how long after its end a policy's request goes; zero keeps them all
   * @param nodeGone whether a node is known to be gone from the cluster
   */
  public EndedRequests(Duration kept, Predicate<String> nodeGone, Clock clock) {
    if (kept.isNegative()) {
      throw new IllegalArgumentException(
          "ferry.operator.policy-requests-kept is "
              + kept
              + "; it must be 0 (keep them) or longer");
    }
    this.kept = kept;
    this.nodeGone = nodeGone;
    this.clock = clock;
  }

  /** The time kept as the setting is written: 168h, 90s. */
  public String keptAsWritten() {
    long seconds = kept.toSeconds();
    return seconds % 3600 == 0 ? seconds / 3600 + "h" : seconds + "s";
  }

  /**
   * How long until the ended {@code mr} is deleted, or looked at again: zero once it is due (its
   * time kept has passed, and the node it evacuated, if it names one, is gone); empty when it is
   * kept for good (a person's request, none deleted, or an end time that cannot be read).
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
    if (left.compareTo(Duration.ZERO) > 0) {
      return Optional.of(left);
    }
    String node = labels.get(MigrationRequest.EVACUATED_NODE_LABEL);
    if (node != null && !nodeGone.test(node)) {
      return Optional.of(kept.compareTo(NODE_RECHECK) < 0 ? kept : NODE_RECHECK);
    }
    return Optional.of(Duration.ZERO);
  }
}
