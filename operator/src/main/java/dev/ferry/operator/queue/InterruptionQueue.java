// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.operator.policy.NodeEvacuator;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.sqs.SqsClient;
import software.amazon.awssdk.services.sqs.model.GetQueueAttributesResponse;
import software.amazon.awssdk.services.sqs.model.Message;
import software.amazon.awssdk.services.sqs.model.QueueAttributeName;
import software.amazon.awssdk.services.sqs.model.ReceiveMessageResponse;

/**
 * Reads EC2's notices from the SQS queue, in a thread of its own, and turns each into the Node
 * condition the node-agent would write from IMDS, then into MigrationRequests through the one path
 * a node's announcement takes ({@link NodeEvacuator}). A message is deleted once every request it
 * calls for exists, or when it concerns no node of this cluster or cannot be read; otherwise it
 * comes back after its visibility timeout and is handled again (every step is idempotent). A
 * failing queue is logged with AWS's error and polled again after a growing pause: it never stops
 * the operator.
 */
public final class InterruptionQueue implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(InterruptionQueue.class.getName());

  /** What became of one message. */
  enum Handled {
    /** Every request it calls for exists (or it called for none): deleted. */
    DONE,
    /** Deleted without effect: not for this cluster, not a notice, or unreadable. */
    DROPPED,
    /** Kept: some request could not be created yet; it comes back after the visibility timeout. */
    KEPT
  }

  private final SqsClient sqs;
  private final String url;
  private final KubernetesClient client;
  private final NodeEvacuator evacuator;
  private final NodeNotices notices;
  private final Duration waitTime;
  private final Duration visibility;
  private final Duration retryBase;
  private final Duration retryMax;
  private volatile boolean stopped;
  private Thread thread;

  public InterruptionQueue(
      SqsClient sqs,
      String url,
      KubernetesClient client,
      NodeEvacuator evacuator,
      Duration waitTime,
      Duration visibility,
      Duration retryBase,
      Duration retryMax) {
    if (waitTime.isNegative() || waitTime.toSeconds() > 20) {
      throw new IllegalArgumentException(
          "ferry.operator.queue.wait-time must be between 0 and 20s (SQS's longest poll), got "
              + waitTime);
    }
    this.sqs = sqs;
    this.url = url;
    this.client = client;
    this.evacuator = evacuator;
    this.notices = new NodeNotices(client, Clock.systemUTC());
    this.waitTime = waitTime;
    this.visibility = visibility;
    this.retryBase = retryBase;
    this.retryMax = retryMax;
  }

  /** Starts polling in a thread of its own; a second call does nothing. */
  public synchronized void start() {
    if (thread != null) {
      return;
    }
    thread = new Thread(this::run, "ferry-sqs-queue");
    thread.setDaemon(true);
    thread.start();
    LOG.info(() -> "queue mode: reading EC2 notices from " + url);
  }

  private void run() {
    int failures = 0;
    boolean checked = false;
    while (!stopped) {
      try {
        if (!checked) {
          check();
          checked = true;
        }
        pollOnce();
        failures = 0;
      } catch (SdkException e) {
        if (stopped) {
          return;
        }
        failures++;
        Duration pause = backoff(failures);
        LOG.warning(
            "queue mode: SQS queue "
                + url
                + " failed ("
                + awsError(e)
                + "); polling again in "
                + pause.toMillis()
                + " ms");
        sleep(pause);
      } catch (RuntimeException e) {
        failures++;
        Duration pause = backoff(failures);
        LOG.log(Level.WARNING, "queue mode: unexpected failure; polling again in " + pause, e);
        sleep(pause);
      }
    }
  }

  /**
   * Reads the queue's ARN and visibility timeout once, so that a wrong URL or region or a missing
   * permission shows in the log at once rather than at the first notice.
   */
  void check() {
    GetQueueAttributesResponse r =
        sqs.getQueueAttributes(
            b ->
                b.queueUrl(url)
                    .attributeNames(
                        QueueAttributeName.QUEUE_ARN, QueueAttributeName.VISIBILITY_TIMEOUT));
    LOG.info(
        () ->
            "queue mode: reading "
                + r.attributes().get(QueueAttributeName.QUEUE_ARN)
                + " (its visibility timeout "
                + r.attributes().get(QueueAttributeName.VISIBILITY_TIMEOUT)
                + " s; Ferry asks for "
                + visibility.toSeconds()
                + " s per receive)");
  }

  /** One long poll, and every message it brought. */
  void pollOnce() {
    ReceiveMessageResponse r =
        sqs.receiveMessage(
            b ->
                b.queueUrl(url)
                    .maxNumberOfMessages(10)
                    .waitTimeSeconds((int) waitTime.toSeconds())
                    .visibilityTimeout((int) visibility.toSeconds()));
    for (Message m : r.messages()) {
      if (stopped) {
        return;
      }
      handle(m);
    }
  }

  /** Acts on one message, then deletes it unless it must come back. */
  Handled handle(Message m) {
    Handled h;
    try {
      h = act(m);
    } catch (RuntimeException e) {
      // The API server refused something: the message comes back and is handled again.
      LOG.warning(
          "queue mode: message "
              + m.messageId()
              + " kept, to be handled again in "
              + visibility.toSeconds()
              + " s: "
              + e);
      return Handled.KEPT;
    }
    if (h != Handled.KEPT) {
      try {
        sqs.deleteMessage(b -> b.queueUrl(url).receiptHandle(m.receiptHandle()));
      } catch (SdkException e) {
        // It comes back, and is handled again: every step is idempotent.
        LOG.warning(
            "queue mode: could not delete message " + m.messageId() + " (" + awsError(e) + ")");
      }
    }
    return h;
  }

  private Handled act(Message m) {
    EventBridgeEvents.Parsed parsed;
    try {
      parsed = EventBridgeEvents.parse(m.body());
    } catch (EventBridgeEvents.Unreadable e) {
      LOG.warning(
          "queue mode: deleting message "
              + m.messageId()
              + ", which is not an EC2 notice Ferry reads: "
              + e.getMessage()
              + "; body: "
              + abbreviate(m.body()));
      return Handled.DROPPED;
    }
    if (parsed instanceof EventBridgeEvents.Ignored i) {
      LOG.info(() -> "queue mode: deleting message " + m.messageId() + ": " + i.why());
      return Handled.DROPPED;
    }
    List<QueueNotice> list = ((EventBridgeEvents.Notices) parsed).notices();
    boolean any = false;
    boolean waiting = false;
    for (QueueNotice notice : list) {
      List<Node> nodes = client.nodes().list().getItems();
      Optional<Node> node = notices.nodeOf(nodes, notice.instanceId());
      if (node.isEmpty()) {
        // Normal when one queue serves several clusters, or the node has already left.
        LOG.info(
            () ->
                "queue mode: no node of this cluster runs "
                    + notice.instanceId()
                    + " ("
                    + notice.what()
                    + "): nothing to do");
        continue;
      }
      any = true;
      String name = node.get().getMetadata().getName();
      notices.mark(name, notice);
      LOG.info(() -> "queue mode: node " + name + ": " + notice.what());
      // Read again: the evacuation reads the announcement from the Node, as it always does.
      List<Node> now = client.nodes().list().getItems();
      for (MigrationPolicy policy :
          client.resources(MigrationPolicy.class).inAnyNamespace().list().getItems()) {
        if (evacuator.evacuate(policy, now).waiting().contains(name)) {
          waiting = true;
        }
      }
    }
    if (waiting) {
      LOG.info(
          () ->
              "queue mode: message "
                  + m.messageId()
                  + " kept: a protected pod has no target yet; it comes back in "
                  + visibility.toSeconds()
                  + " s");
      return Handled.KEPT;
    }
    return any ? Handled.DONE : Handled.DROPPED;
  }

  private Duration backoff(int failures) {
    long base = retryBase.toMillis();
    long ms = failures >= 20 ? retryMax.toMillis() : base << Math.min(failures - 1, 20);
    return Duration.ofMillis(Math.min(ms, retryMax.toMillis()));
  }

  private void sleep(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      stopped = true;
    }
  }

  /** AWS's error code and message, which say what to fix (a policy, a URL, a region). */
  static String awsError(SdkException e) {
    if (e instanceof AwsServiceException a && a.awsErrorDetails() != null) {
      return a.awsErrorDetails().errorCode()
          + ": "
          + a.awsErrorDetails().errorMessage()
          + " (HTTP "
          + a.statusCode()
          + ")";
    }
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return e.getMessage() + (root != e ? " (" + root + ")" : "");
  }

  private static String abbreviate(String body) {
    String one = body == null ? "" : body.replaceAll("\\s+", " ");
    return one.length() > 300 ? one.substring(0, 300) + "..." : one;
  }

  @Override
  public synchronized void close() {
    stopped = true;
    if (thread != null) {
      thread.interrupt();
      try {
        thread.join(waitTime.toMillis() + 5_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      thread = null;
    }
    sqs.close();
  }
}
