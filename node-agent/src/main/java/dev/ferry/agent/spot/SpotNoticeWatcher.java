// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Polls the instance metadata service for spot interruption notices and rebalance recommendations,
 * and reports each distinct notice to the cluster once: a condition on this node's Node and a
 * Warning Event. A metadata service or API server that is down is logged when it goes and when it
 * comes back, and polling goes on; a report that failed is tried again on the next poll.
 */
public final class SpotNoticeWatcher implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(SpotNoticeWatcher.class.getName());

  private final InstanceMetadata imds;
  private final NodeReporter reporter;
  private final Consumer<NoticeKind> onReported;
  private final OutageLog imdsOutage;
  private final OutageLog apiOutage = new OutageLog("writing spot notices to the Kubernetes API");
  // Touched only by the polling thread.
  private final Set<SpotNotice> seen = new HashSet<>();
  private final Set<SpotNotice> reported = new HashSet<>();
  private final AtomicLong polls = new AtomicLong();
  private final ScheduledExecutorService timer;

  private SpotNoticeWatcher(
      InstanceMetadata imds, NodeReporter reporter, Consumer<NoticeKind> onReported) {
    this.imds = imds;
    this.reporter = reporter;
    this.onReported = onReported;
    this.imdsOutage = new OutageLog("reading spot notices from " + imds);
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "ferry-spot-notices");
              t.setDaemon(true);
              return t;
            });
  }

  /**
   * Starts polling at once, then every {@code interval} after each poll ends.
   *
   * @param endpoint another metadata service than the instance's own (tests)
   * @param onReported called once per notice written to the cluster (the metric)
   */
  public static SpotNoticeWatcher start(
      Optional<URI> endpoint,
      Duration interval,
      KubernetesClient kubernetes,
      String nodeName,
      Consumer<NoticeKind> onReported) {
    SpotNoticeWatcher w =
        new SpotNoticeWatcher(
            InstanceMetadata.at(endpoint),
            new NodeReporter(kubernetes, nodeName, Clock.systemUTC()),
            onReported);
    // Fixed delay, not rate: a slow metadata service must not pile polls up behind it.
    w.timer.scheduleWithFixedDelay(w::poll, 0, interval.toMillis(), TimeUnit.MILLISECONDS);
    LOG.info(
        () ->
            "watching "
                + w.imds
                + " every "
                + interval.toMillis()
                + " ms for spot notices to Node "
                + nodeName);
    return w;
  }

  /** Polls finished so far, whatever their outcome. */
  long polls() {
    return polls.get();
  }

  private void poll() {
    // An exception escaping a scheduled task cancels every later run: nothing may escape.
    try {
      for (NoticeKind kind : NoticeKind.values()) {
        Optional<String> body;
        try {
          body = imds.read(kind.path());
          imdsOutage.succeeded();
        } catch (MetadataUnavailable e) {
          imdsOutage.failed(e);
          return;
        }
        if (body.isPresent()) {
          handle(NoticeParser.parse(kind, body.get()), body.get());
        }
      }
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, "spot notice poll failed; polling goes on", e);
    } finally {
      polls.incrementAndGet();
    }
  }

  private void handle(SpotNotice notice, String body) {
    if (seen.add(notice)) {
      if (notice.readable()) {
        LOG.warning(() -> notice.kind().reason() + ": " + notice.message());
      } else {
        LOG.warning(
            () ->
                notice.kind().reason()
                    + ": unreadable notice at "
                    + notice.kind().path()
                    + ", reported with unknown time: "
                    + body);
      }
    }
    if (reported.contains(notice)) {
      return;
    }
    try {
      reporter.report(notice);
    } catch (RuntimeException e) {
      apiOutage.failed(e);
      return;
    }
    apiOutage.succeeded();
    reported.add(notice);
    onReported.accept(notice.kind());
    LOG.info(() -> notice.kind().reason() + " reported on the Node and as an Event");
  }

  @Override
  public void close() {
    timer.shutdownNow();
    try {
      timer.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    imds.close();
  }
}
