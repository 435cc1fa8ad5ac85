// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** Which EventBridge events become notices, for which instances. */
class EventBridgeEventsTest {
  @Test
  void anAwsHealthScheduledChangeNamesEveryAffectedInstance() throws Exception {
    String event =
        """
        {"version":"0","id":"7fb65329-1628-4cf3-a740-95fg457h1402","detail-type":"AWS Health Event",
         "source":"aws.health","account":"123456789012","time":"2026-11-23T10:00:00Z",
         "region":"us-east-1","resources":[],
         "detail":{"eventArn":"arn:aws:health:us-east-1::event/EC2/x","service":"EC2",
          "eventTypeCode":"AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
          "eventTypeCategory":"scheduledChange","startTime":"Mon, 30 Nov 2026 10:00:00 GMT",
          "affectedEntities":[{"entityValue":"i-0aaaaaaaaaaaaaaaa"},
                              {"entityValue":"i-0bbbbbbbbbbbbbbbb"}]}}""";

    EventBridgeEvents.Parsed p = EventBridgeEvents.parse(event);

    assertThat(p)
        .isInstanceOfSatisfying(
            EventBridgeEvents.Notices.class,
            n ->
                assertThat(n.notices())
                    .extracting(QueueNotice::instanceId, QueueNotice::kind)
                    .containsExactly(
                        org.assertj.core.groups.Tuple.tuple(
                            "i-0aaaaaaaaaaaaaaaa", QueueNotice.Kind.SCHEDULED_CHANGE),
                        org.assertj.core.groups.Tuple.tuple(
                            "i-0bbbbbbbbbbbbbbbb", QueueNotice.Kind.SCHEDULED_CHANGE)));
  }

  @Test
  void aRebalanceRecommendationSetsTheConditionTheAgentSetsFromImds() throws Exception {
    String event =
        "{\"source\":\"aws.ec2\",\"detail-type\":\"EC2 Instance Rebalance Recommendation\","
            + "\"time\":\"2026-11-23T10:00:00Z\",\"detail\":{\"instance-id\":\"i-0aaaaaaaaaaaaaaaa\"}}";
    assertThat(EventBridgeEvents.parse(event))
        .isInstanceOfSatisfying(
            EventBridgeEvents.Notices.class,
            n -> {
              assertThat(n.notices()).singleElement();
              QueueNotice q = n.notices().get(0);
              assertThat(q.kind().conditionType()).isEqualTo("RebalanceRecommendation");
              assertThat(q.kind().reason()).isEqualTo("RebalanceRecommended");
            });
  }

  @Test
  void otherEventsAreIgnoredWithAReasonAndBrokenOnesAreUnreadable() throws Exception {
    assertThat(
            EventBridgeEvents.parse(
                "{\"source\":\"aws.autoscaling\",\"detail-type\":\"EC2 Instance-terminate"
                    + " Lifecycle Action\",\"detail\":{}}"))
        .isInstanceOfSatisfying(
            EventBridgeEvents.Ignored.class, i -> assertThat(i.why()).contains("aws.autoscaling"));
    assertThat(
            EventBridgeEvents.parse(
                "{\"source\":\"aws.health\",\"detail-type\":\"AWS Health Event\","
                    + "\"detail\":{\"service\":\"RDS\",\"eventTypeCategory\":\"scheduledChange\"}}"))
        .isInstanceOf(EventBridgeEvents.Ignored.class);
    assertThatThrownBy(() -> EventBridgeEvents.parse("[1, 2]"))
        .isInstanceOf(EventBridgeEvents.Unreadable.class)
        .hasMessageContaining("not a JSON object");
    assertThatThrownBy(
            () ->
                EventBridgeEvents.parse(
                    "{\"source\":\"aws.ec2\",\"detail-type\":\"EC2 Spot Instance Interruption"
                        + " Warning\"}"))
        .isInstanceOf(EventBridgeEvents.Unreadable.class)
        .hasMessageContaining("'detail'");
  }
}
