// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

/** The two spot signals the metadata service gives, and how each one appears on the Node. */
public enum NoticeKind {
  /** EC2 will reclaim the instance (terminate, stop or hibernate) about two minutes from now. */
  INTERRUPTION(
      "/latest/meta-data/spot/instance-action",
      "SpotInterruptionNotice",
      "SpotInterruption",
      "interruption"),
  /** EC2 sees an elevated risk of interruption, usually 10 to 20 minutes ahead of one. */
  REBALANCE(
      "/latest/meta-data/events/recommendations/rebalance",
      "RebalanceRecommendation",
      "RebalanceRecommended",
      "rebalance");

  private final String path;
  private final String conditionType;
  private final String reason;
  private final String metricTag;

  NoticeKind(String path, String conditionType, String reason, String metricTag) {
    this.path = path;
    this.conditionType = conditionType;
    this.reason = reason;
    this.metricTag = metricTag;
  }

  /** Where the metadata service serves the notice; 404 while there is none. */
  public String path() {
    return path;
  }

  /** The Node condition type the operator watches. */
  public String conditionType() {
    return conditionType;
  }

  /** The reason on both the condition and the Event. */
  public String reason() {
    return reason;
  }

  /** The {@code kind} label of ferry_agent_interruption_notices_total. */
  public String metricTag() {
    return metricTag;
  }
}
