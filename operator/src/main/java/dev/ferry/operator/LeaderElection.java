// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.operator.queue.QueueMode;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.UUID;
import java.util.logging.Logger;

/**
 * The Lease that lets several operator replicas run with one driving the migrations: a migration's
 * steps must never be taken by two processes at once. quarkus-operator-sdk elects a leader only
 * when the application provides this configuration.
 */
public class LeaderElection {
  private static final Logger LOG = Logger.getLogger(LeaderElection.class.getName());

  @Produces
  @Singleton
  LeaderElectionConfiguration leaderElection(OperatorSettings settings, QueueMode queue) {
    OperatorSettings.LeaderElection le = settings.leaderElection();
    String identity =
        le.identity()
            .or(() -> java.util.Optional.ofNullable(System.getenv("HOSTNAME")))
            .filter(s -> !s.isBlank())
            .orElseGet(() -> "ferry-operator-" + UUID.randomUUID());
    LOG.info(() -> "leader election: Lease " + le.leaseName() + " as " + identity);
    checkTimings(le.leaseDuration(), le.renewDeadline(), le.retryPeriod());
    return new LeaderElectionConfiguration(
        le.leaseName(),
        le.leaseNamespace().orElse(null),
        le.leaseDuration(),
        le.renewDeadline(),
        le.retryPeriod(),
        identity,
        // Queue mode reads the SQS queue in the leader only (JOSDK runs these besides its own).
        new LeaderCallbacks(queue::becameLeader, LeaderElection::stoppedLeading, leader -> {}),
        // Not JOSDK's own exit: it calls System.exit also when the operator's own stop lets the
        // Lease go, from inside the JVM's shutdown, where System.exit blocks for good (JOSDK
        // issues 1614, 2496): a SIGTERM never ended the operator, the kubelet had to kill it
        // after its grace period. stoppedLeading exits only when the Lease was lost.
        false);
  }

  /**
   * The Lease was lost (another replica may drive migrations from now on) or let go by the
   * operator's own stop. Lost, this process must take no further step: it ends at once, and the
   * kubelet starts it again as a standby. Let go, the stop is under way already.
   */
  static void stoppedLeading() {
    if (shuttingDown()) {
      LOG.info("leader election: the Lease is let go as the operator stops");
      return;
    }
    LOG.severe(
        "leader election: the Lease was lost; ending now, so that no two operators drive a"
            + " migration (the kubelet starts this one again, as a standby)");
    System.err.flush();
    // halt, not exit: nothing of a graceful stop is wanted once the Lease is lost, and the stop
    // would run while this thread, the elector's own, still holds the elector.
    Runtime.getRuntime().halt(1);
  }

  /** Whether the JVM runs its shutdown hooks: it then refuses a new one. */
  static boolean shuttingDown() {
    Thread probe = new Thread(() -> {});
    try {
      Runtime.getRuntime().addShutdownHook(probe);
      Runtime.getRuntime().removeShutdownHook(probe);
      return false;
    } catch (IllegalStateException e) {
      return true;
    }
  }

  /**
   * Fabric8's elector needs retry &lt; renew deadline &lt; lease duration: a leader must give up
   * before a standby may take over, or two would drive at once. Fails at start, naming the setting.
   */
  static void checkTimings(Duration leaseDuration, Duration renewDeadline, Duration retryPeriod) {
    if (retryPeriod.isNegative() || retryPeriod.isZero()) {
      throw new IllegalArgumentException(
          "ferry.operator.leader-election.retry-period (FERRY_OPERATOR_LEADER_ELECTION_RETRY_PERIOD)"
              + " is "
              + retryPeriod
              + ": give a positive duration, 2s by default");
    }
    if (renewDeadline.compareTo(leaseDuration) >= 0) {
      throw new IllegalArgumentException(
          "ferry.operator.leader-election.renew-deadline (FERRY_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE)"
              + " is "
              + renewDeadline
              + ", not shorter than lease-duration "
              + leaseDuration
              + ": a leader must give the Lease up before a standby may take it; make renew-deadline"
              + " shorter (10s and 15s by default)");
    }
    if (retryPeriod.compareTo(renewDeadline) >= 0) {
      throw new IllegalArgumentException(
          "ferry.operator.leader-election.retry-period (FERRY_OPERATOR_LEADER_ELECTION_RETRY_PERIOD)"
              + " is "
              + retryPeriod
              + ", not shorter than renew-deadline "
              + renewDeadline
              + ": the leader would not try again before it gives up; make retry-period shorter"
              + " (2s by default)");
    }
  }
}
