// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import java.time.Instant;

/**
 * One notice read from the metadata service. Two reads of the same notice are equal, which is what
 * lets the watcher report each notice once however often it is polled.
 *
 * @param action terminate, stop or hibernate; null for a rebalance recommendation and when the
 *     notice could not be read
 * @param time when EC2 will act (interruption) or when it noticed (rebalance); null when unknown
 * @param readable false when the body was not the JSON EC2 documents: still a notice, since the
 *     path answering at all means EC2 has something to say
 */
record SpotNotice(NoticeKind kind, String action, Instant time, boolean readable) {

  static SpotNotice unreadable(NoticeKind kind) {
    return new SpotNotice(kind, null, null, false);
  }

  /** The notice as text that is the same in every process: what makes its Event's name. */
  String key() {
    return kind + "/" + action + "/" + time + "/" + readable;
  }

  /** What the condition and the Event say, for the admin reading kubectl describe node. */
  String message() {
    String when = time == null ? "unknown time" : time.toString();
    String unread = readable ? "" : " (the notice could not be parsed)";
    return switch (kind) {
      case INTERRUPTION ->
          action == null
              ? "EC2 will interrupt this spot instance at " + when + unread
              : "EC2 will " + action + " this spot instance at " + when;
      case REBALANCE -> "EC2 recommends moving off this spot instance, noticed at " + when + unread;
    };
  }
}
