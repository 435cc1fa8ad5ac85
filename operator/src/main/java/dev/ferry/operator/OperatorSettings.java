// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/** The operator's settings: ferry.operator.*, or FERRY_OPERATOR_* in the environment. */
@ConfigMapping(prefix = "ferry.operator")
public interface OperatorSettings {
  /** The port every node's agent serves its API on, at the node's InternalIP. */
  @WithDefault("9443")
  int agentPort();

  /** How long one call on an agent may take before it is retried (calls are idempotent). */
  @WithDefault("30s")
  Duration callTimeout();

  Tls tls();

  /** How the address the clients talk to moves: {@code l2} (the agents) or {@code aws} (EC2). */
  @WithDefault("l2")
  String addressMover();

  Aws aws();

  Limits limits();

  /**
   * How long a request a MigrationPolicy made is kept after it ended; then, once the node it
   * evacuated is gone from the cluster, the operator deletes it (its status, Events, log lines and
   * metrics have told how it ended; EndedRequests). Ended requests otherwise stay for good, in etcd
   * and in the operator's cache, and a reclaim makes hundreds at once. 0 keeps them. A request a
   * person made is never deleted by the operator.
   */
  @WithDefault("168h")
  Duration policyRequestsKept();

  /**
   * How many migrations may be under way (Preparing, Prepared or Moving) at once; beyond, requests
   * wait in Pending with reason WaitingForSlot. As KubeVirt's parallelMigrationsPerCluster and
   * parallelOutboundMigrationsPerNode, with the same defaults.
   */
  interface Limits {
    @WithDefault("5")
    int perCluster();

    @WithDefault("2")
    int perNode();
  }

  Queue queue();

  LeaderElection leaderElection();

  /**
   * Queue mode: EC2's notices (spot interruption, rebalance recommendation, AWS Health scheduled
   * change, instance stopping or terminating) read from an SQS queue that EventBridge rules feed
   * (docs/aws.md), by the leader only. Each becomes the Node condition the agent writes from IMDS.
   */
  interface Queue {
    /** Off by default; on, {@code url} is required. */
    @WithDefault("false")
    boolean enabled();

    /** The queue's URL: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME. */
    Optional<String> url();

    /** The region; default from the environment (AWS_REGION, then the instance's). */
    Optional<String> region();

    /** Another SQS endpoint than the region's (tests, VPC endpoints). */
    Optional<URI> endpoint();

    /** How long one ReceiveMessage waits for a message (long polling); at most 20 s. */
    @WithDefault("20s")
    Duration waitTime();

    /**
     * How long a received message stays hidden from the next receive: a message whose requests
     * could not all be created yet (no target) comes back after it.
     */
    @WithDefault("20s")
    Duration visibilityTimeout();

    /** The first pause after the queue failed; each next failure doubles it, up to the max. */
    @WithDefault("1s")
    Duration retryBaseDelay();

    @WithDefault("60s")
    Duration maxRetryDelay();
  }

  /**
   * Only one operator process drives the requests: the one holding this Lease (the prod profile;
   * quarkus.operator-sdk.activate-leader-election-for-profiles).
   */
  interface LeaderElection {
    @WithDefault("ferry-operator-leader")
    String leaseName();

    /** Default: the namespace the operator runs in. */
    Optional<String> leaseNamespace();

    /** Who holds the Lease; default: the pod's name (HOSTNAME), else a random id. */
    Optional<String> identity();

    /**
     * How long a Lease nobody renews stays another replica's: a standby takes over after it. As
     * Kubernetes' own controllers (kube-controller-manager's --leader-elect-lease-duration).
     */
    @WithDefault("15s")
    Duration leaseDuration();

    /**
     * How long the leader keeps trying to renew before it gives the Lease up and exits (its pod
     * restarts; two replicas never drive at once). Shorter than {@code leaseDuration}. Raise both
     * where the operator's node is often saturated: a leader whose renewals stall this long
     * restarts, and a request it was driving waits for the restart.
     */
    @WithDefault("10s")
    Duration renewDeadline();

    /** How often the leader renews, and a standby tries. Shorter than {@code renewDeadline}. */
    @WithDefault("2s")
    Duration retryPeriod();
  }

  interface Tls {
    @WithDefault("/etc/ferry/tls/ca.crt")
    Path ca();

    @WithDefault("/etc/ferry/tls/operator.crt")
    Path cert();

    @WithDefault("/etc/ferry/tls/operator.key")
    Path key();
  }

  interface Aws {
    /** Another EC2 endpoint than the region's (tests, VPC endpoints). */
    Optional<URI> endpoint();

    /** The region; default from the environment (AWS_REGION, then the instance's). */
    Optional<String> region();

    /** How long to wait for DescribeNetworkInterfaces to show a moved address. */
    @WithDefault("60s")
    Duration settleTimeout();

    /**
     * The longest pause between two DescribeNetworkInterfaces while waiting for a move to show: the
     * first comes after 50 ms, each next after twice as long, up to this.
     */
    @WithDefault("1s")
    Duration settlePoll();

    /**
     * How many times one EC2 call is tried, the first included, when EC2 throttles it or fails
     * transiently (HTTP 5xx, connection errors). Authorization errors are never retried.
     */
    @WithDefault("8")
    int maxAttempts();

    /** The base of the exponential backoff (full jitter) after a transient error. */
    @WithDefault("100ms")
    Duration retryBaseDelay();

    /**
     * The base of the exponential backoff (full jitter) after throttling (RequestLimitExceeded,
     * Throttling): longer, as EC2 asks of callers that exceed their account's request rate.
     */
    @WithDefault("500ms")
    Duration throttleBaseDelay();

    /** The longest pause between two attempts of one call. */
    @WithDefault("10s")
    Duration maxRetryDelay();
  }
}
