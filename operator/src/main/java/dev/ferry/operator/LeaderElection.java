// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.operator.queue.QueueMode;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
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
    return new LeaderElectionConfiguration(
        le.leaseName(),
        le.leaseNamespace().orElse(null),
        LeaderElectionConfiguration.LEASE_DURATION_DEFAULT_VALUE,
        LeaderElectionConfiguration.RENEW_DEADLINE_DEFAULT_VALUE,
        LeaderElectionConfiguration.RETRY_PERIOD_DEFAULT_VALUE,
        identity,
        // Queue mode reads the SQS queue in the leader only (JOSDK runs these besides its own).
        new LeaderCallbacks(queue::becameLeader, () -> {}, leader -> {}),
        true);
  }
}
