// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.Node;
import java.time.Instant;

/** The core/v1 Event announcing a notice on a Node; no I/O. */
final class NoticeEvents {
  /** Node is cluster-scoped; the kubelet records its Events here too, so kubectl finds them. */
  static final String NAMESPACE = "default";

  static final String COMPONENT = "ferry-node-agent";

  private NoticeEvents() {}

  static Event eventFor(Node node, SpotNotice notice, Instant now) {
    String stamp = NodeConditions.timestamp(now);
    String nodeName = node.getMetadata().getName();
    return new EventBuilder()
        .withNewMetadata()
        .withName(name(nodeName, notice))
        .withNamespace(NAMESPACE)
        .endMetadata()
        .withNewInvolvedObject()
        .withApiVersion("v1")
        .withKind("Node")
        .withName(nodeName)
        .withUid(node.getMetadata().getUid())
        .endInvolvedObject()
        .withType("Warning")
        .withReason(notice.kind().reason())
        .withMessage(notice.message())
        .withNewSource()
        .withComponent(COMPONENT)
        .withHost(nodeName)
        .endSource()
        .withReportingComponent(COMPONENT)
        .withReportingInstance(nodeName)
        .withFirstTimestamp(stamp)
        .withLastTimestamp(stamp)
        .withCount(1)
        .build();
  }

  /**
   * The same for every read of the same notice, in every agent process (String.hashCode is
   * specified, unlike an enum's), so a second create of it (a retry whose first answer was lost, or
   * a restarted agent) is refused as a duplicate instead of adding an Event.
   */
  static String name(String nodeName, SpotNotice notice) {
    return nodeName
        + "."
        + notice.kind().metricTag()
        + "."
        + Integer.toHexString(notice.key().hashCode());
  }
}
