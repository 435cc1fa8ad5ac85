// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import dev.ferry.operator.OperatorSettings;
import dev.ferry.operator.policy.NodeEvacuator;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.runtime.configuration.ConfigUtils;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import java.util.List;
import org.eclipse.microprofile.config.ConfigProvider;

/**
 * Runs the queue consumer in the process that drives the requests: the leader when the profile
 * elects one (a second reader would only take messages from it), otherwise from the start.
 */
@Singleton
public class QueueMode {
  private final OperatorSettings settings;
  private final KubernetesClient client;
  private final NodeEvacuator evacuator;
  private InterruptionQueue queue;

  public QueueMode(OperatorSettings settings, KubernetesClient client, NodeEvacuator evacuator) {
    this.settings = settings;
    this.client = client;
    this.evacuator = evacuator;
  }

  void onStart(@Observes StartupEvent ev) {
    OperatorSettings.Queue q = settings.queue();
    if (q.enabled() && q.url().filter(u -> !u.isBlank()).isEmpty()) {
      throw new IllegalStateException(
          "ferry.operator.queue.enabled is true but ferry.operator.queue.url is empty: set it to"
              + " the SQS queue's URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)");
    }
    if (q.enabled() && !leaderElected()) {
      becameLeader();
    }
  }

  /**
   * Whether this profile elects a leader
   * (quarkus.operator-sdk.activate-leader-election-for-profiles).
   */
  private static boolean leaderElected() {
    List<String> profiles =
        ConfigProvider.getConfig()
            .getOptionalValues(
                "quarkus.operator-sdk.activate-leader-election-for-profiles", String.class)
            .orElse(List.of("prod"));
    return ConfigUtils.getProfiles().stream().anyMatch(profiles::contains);
  }

  /** The Lease is ours: start reading the queue. */
  public synchronized void becameLeader() {
    OperatorSettings.Queue q = settings.queue();
    if (!q.enabled() || queue != null) {
      return;
    }
    queue =
        new InterruptionQueue(
            SqsClients.create(q),
            q.url().orElseThrow(),
            client,
            evacuator,
            q.waitTime(),
            q.visibilityTimeout(),
            q.retryBaseDelay(),
            q.maxRetryDelay());
    queue.start();
  }

  void onStop(@Observes ShutdownEvent ev) {
    stopReading();
  }

  /** The Lease goes, or the operator stops: read no further message. */
  public synchronized void stopReading() {
    if (queue != null) {
      queue.close();
      queue = null;
    }
  }
}
