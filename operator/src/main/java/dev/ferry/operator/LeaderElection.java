// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.operator.migration.MoveCalls;
import dev.ferry.operator.queue.QueueMode;
import io.fabric8.kubernetes.client.KubernetesClient;
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

  /**
   * How long a stopping operator waits for its calls on agents to end, once cut, before it lets the
   * Lease go: a call still running would run beside the next leader's.
   */
  static final Duration CALLS_GRACE = Duration.ofSeconds(5);

  @Produces
  @Singleton
  LeaderElectionConfiguration leaderElection(
      OperatorSettings settings, QueueMode queue, MoveCalls calls, KubernetesClient client) {
    OperatorSettings.LeaderElection le = settings.leaderElection();
    String identity =
        le.identity()
            .or(() -> java.util.Optional.ofNullable(System.getenv("HOSTNAME")))
            .filter(s -> !s.isBlank())
            .orElseGet(() -> "ferry-operator-" + UUID.randomUUID());
    LOG.info(() -> "leader election: Lease " + le.leaseName() + " as " + identity);
    checkTimings(le.leaseDuration(), le.renewDeadline(), le.retryPeriod());
    // Where JOSDK looks for it when none is set: the client's namespace, the pod's own.
    String namespace =
        le.leaseNamespace().orElseGet(() -> client.getConfiguration().getNamespace());
    LeaseRelease release = new LeaseRelease(client, namespace, le.leaseName(), identity);
    return new LeaderElectionConfiguration(
        le.leaseName(),
        le.leaseNamespace().orElse(null),
        le.leaseDuration(),
        le.renewDeadline(),
        le.retryPeriod(),
        identity,
        // Queue mode reads the SQS queue in the leader only (JOSDK runs these besides its own).
        new LeaderCallbacks(
            queue::becameLeader,
            () -> stoppedLeading(() -> letGo(queue, calls, release)),
            leader -> {}),
        // Not JOSDK's own exit: it calls System.exit also when the operator's own stop lets the
        // Lease go, from inside the JVM's shutdown, where System.exit blocks for good (JOSDK
        // issues 1614, 2496): a SIGTERM never ended the operator, the kubelet had to kill it
        // after its grace period. stoppedLeading exits only when the Lease was lost.
        false);
  }

  /**
   * The Lease was lost (another replica may drive migrations from now on) or is let go by the
   * operator's own stop. Lost, this process must take no further step: it ends at once, and the
   * kubelet starts it again as a standby. Let go, the stop is under way already: {@code letGo} runs
   * (JOSDK stops the reconcilers before the elector, so none runs by then).
   */
  static void stoppedLeading(Runnable letGo) {
    if (shuttingDown()) {
      letGo.run();
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

  /**
   * As the operator stops, leading: nothing more starts under this Lease (the queue is no longer
   * read, the calls on agents are cut), and once nothing of the operator's runs, the Lease goes, so
   * that a standby leads at once rather than when it expires.
   */
  static void letGo(QueueMode queue, MoveCalls calls, LeaseRelease lease) {
    queue.stopReading();
    try {
      if (!calls.stop(CALLS_GRACE)) {
        LOG.warning(
            "leader election: a call on an agent had not ended "
                + CALLS_GRACE.toSeconds()
                + " s after it was cut; the Lease is left to expire, so that no standby calls"
                + " beside it");
        return;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    lease.release();
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
