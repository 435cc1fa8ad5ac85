// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import dev.ferry.operator.policy.NodeSignal;

/**
 * One EC2 instance's notice read from the SQS queue.
 *
 * @param what the event as a person reads it (its detail-type and what it says), for the Node
 *     condition's message
 */
public record QueueNotice(Kind kind, String instanceId, String what) {
  /** The notices EventBridge forwards, and the Node condition each one sets. */
  public enum Kind {
    /** EC2 Spot Instance Interruption Warning: reclaimed in about two minutes. */
    SPOT_INTERRUPTION(NodeSignal.SPOT_INTERRUPTION, "SpotInterruption"),
    /** EC2 Instance Rebalance Recommendation: as the node-agent reports it from IMDS. */
    REBALANCE(NodeSignal.REBALANCE, "RebalanceRecommended"),
    /** AWS Health scheduledChange for EC2 instances (retirement, maintenance). */
    SCHEDULED_CHANGE(NodeSignal.TERMINATION, "ScheduledChange"),
    /** EC2 Instance State-change Notification: stopping, stopped, shutting-down, terminated. */
    STATE_CHANGE(NodeSignal.TERMINATION, "InstanceStateChange");

    private final String conditionType;
    private final String reason;

    Kind(String conditionType, String reason) {
      this.conditionType = conditionType;
      this.reason = reason;
    }

    /** The Node condition type the policies' triggers read ({@link NodeSignal}). */
    public String conditionType() {
      return conditionType;
    }

    /** The condition's reason: the same as the node-agent's for the notices it reads too. */
    public String reason() {
      return reason;
    }
  }
}
