// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testbed.FakeImds;
import dev.ferry.testbed.MockApi;
import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.NodeCondition;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The watcher between a fake IMDSv2 service and Fabric8's mock API server in CRUD mode: what the
 * metadata service announces shows up on the Node, once.
 */
class SpotNoticeWatcherTest {
  private static final String NODE = "ip-10-0-1-17.eu-west-1.compute.internal";
  private static final Duration INTERVAL = Duration.ofMillis(100);
  private static final Duration DEADLINE = Duration.ofSeconds(5);
  private static final String TERMINATE =
      "{\"action\":\"terminate\",\"time\":\"2026-11-23T10:00:00Z\"}";
  private static final String REBALANCE = "{\"noticeTime\":\"2026-11-23T09:45:00Z\"}";

  private FakeImds imds;
  @RegisterExtension final MockApi api = MockApi.crud();

  private final List<SpotNoticeWatcher> watchers = new ArrayList<>();
  private final Map<NoticeKind, AtomicInteger> counted = new ConcurrentHashMap<>();

  @BeforeEach
  void start() throws Exception {
    imds = FakeImds.start();
  }

  @AfterEach
  void stop() {
    watchers.forEach(SpotNoticeWatcher::close);
    imds.close();
  }

  @Test
  void terminateNoticeBecomesConditionAndOneEventWithinFiveSeconds() throws Exception {
    createNode();
    SpotNoticeWatcher watcher = watch();
    awaitPolls(watcher, 3);
    assertThat(condition(NoticeKind.INTERRUPTION)).isEmpty();

    imds.instanceAction(TERMINATE);
    long announced = System.nanoTime();
    await("condition and Event", () -> isTrue(NoticeKind.INTERRUPTION) && events().size() == 1);
    assertThat(Duration.ofNanos(System.nanoTime() - announced)).isLessThan(DEADLINE);

    NodeCondition c = condition(NoticeKind.INTERRUPTION).orElseThrow();
    assertThat(c.getReason()).isEqualTo("SpotInterruption");
    assertThat(c.getMessage()).contains("terminate").contains("2026-11-23T10:00:00Z");
    assertThat(c.getLastTransitionTime()).isNotBlank();
    assertThat(c.getLastHeartbeatTime()).isNotBlank();
    assertThat(conditionTypes()).contains("Ready", "MemoryPressure");

    Event e = events().get(0);
    assertThat(e.getInvolvedObject().getKind()).isEqualTo("Node");
    assertThat(e.getInvolvedObject().getName()).isEqualTo(NODE);
    assertThat(e.getReason()).isEqualTo("SpotInterruption");
    assertThat(e.getType()).isEqualTo("Warning");
    assertThat(e.getSource().getComponent()).isEqualTo("ferry-node-agent");
    assertThat(e.getSource().getHost()).isEqualTo(NODE);
    assertThat(e.getMessage()).contains("terminate");
    assertThat(counted(NoticeKind.INTERRUPTION)).isEqualTo(1);

    // The fake answers nothing without a token, so the notice arriving proves the header is sent.
    assertThat(imds.tokensIssued()).isPositive();
    assertThat(imds.refused()).isZero();
  }

  @Test
  void sameNoticeOnManyPollsMakesExactlyOneEvent() throws Exception {
    createNode();
    imds.instanceAction(TERMINATE);
    SpotNoticeWatcher watcher = watch();
    await("the first Event", () -> events().size() == 1);
    String resourceVersion = node().getMetadata().getResourceVersion();

    awaitPolls(watcher, watcher.polls() + 15);

    assertThat(events()).hasSize(1);
    assertThat(counted(NoticeKind.INTERRUPTION)).isEqualTo(1);
    assertThat(node().getMetadata().getResourceVersion())
        .as("an unchanged notice writes nothing")
        .isEqualTo(resourceVersion);
  }

  @Test
  void restartedAgentDoesNotRepeatTheEvent() throws Exception {
    createNode();
    imds.instanceAction(TERMINATE);
    SpotNoticeWatcher first = watch();
    await("the first Event", () -> events().size() == 1);
    first.close();

    SpotNoticeWatcher second = watch();
    awaitPolls(second, 10);

    assertThat(events()).hasSize(1);
  }

  @Test
  void rebalanceRecommendationGetsItsOwnCondition() throws Exception {
    createNode();
    SpotNoticeWatcher watcher = watch();
    awaitPolls(watcher, 3);

    imds.rebalance(REBALANCE);
    await("the rebalance condition", () -> isTrue(NoticeKind.REBALANCE));
    NodeCondition c = condition(NoticeKind.REBALANCE).orElseThrow();
    assertThat(c.getReason()).isEqualTo("RebalanceRecommended");
    assertThat(c.getMessage()).contains("2026-11-23T09:45:00Z");
    assertThat(condition(NoticeKind.INTERRUPTION)).isEmpty();
    await("the rebalance Event", () -> reasons().equals(List.of("RebalanceRecommended")));

    imds.instanceAction(TERMINATE);
    await("both conditions", () -> isTrue(NoticeKind.INTERRUPTION) && isTrue(NoticeKind.REBALANCE));
    await("one Event each", () -> events().size() == 2);
    assertThat(reasons()).containsExactlyInAnyOrder("RebalanceRecommended", "SpotInterruption");
    assertThat(conditionTypes()).contains("Ready", "MemoryPressure");
    assertThat(counted(NoticeKind.REBALANCE)).isEqualTo(1);
  }

  @Test
  void noticeIsReportedOnceTheMetadataServiceComesBack() throws Exception {
    createNode();
    SpotNoticeWatcher watcher = watch();
    awaitPolls(watcher, 2); // holds a token from here on

    imds.failing(true);
    await("answers of 503", () -> imds.failed() >= 3);
    imds.stop();
    awaitPolls(watcher, watcher.polls() + 3); // connections refused

    imds.failing(false);
    imds.instanceAction(TERMINATE);
    imds.restart();
    await("condition and Event", () -> isTrue(NoticeKind.INTERRUPTION) && events().size() == 1);
    assertThat(imds.refused())
        .as("the token from before the restart was refused, then replaced")
        .isPositive();
  }

  @Test
  void failedApiWriteIsRetriedOnTheNextPoll() throws Exception {
    imds.instanceAction(TERMINATE);
    SpotNoticeWatcher watcher = watch();
    awaitPolls(watcher, 3);
    assertThat(events()).isEmpty();

    createNode();
    await("condition and Event", () -> isTrue(NoticeKind.INTERRUPTION) && events().size() == 1);
  }

  @Test
  void unreadableNoticeIsReportedWithUnknownTime() throws Exception {
    createNode();
    imds.instanceAction("<html>not what EC2 documents</html>");
    watch();

    await("the condition", () -> isTrue(NoticeKind.INTERRUPTION));
    assertThat(condition(NoticeKind.INTERRUPTION).orElseThrow().getMessage())
        .contains("unknown time");
    await("the Event", () -> events().size() == 1);
  }

  private SpotNoticeWatcher watch() {
    SpotNoticeWatcher w =
        SpotNoticeWatcher.start(
            Optional.of(imds.endpoint()),
            INTERVAL,
            // Its rights where the chart has it watch its IMDS.
            api.as(RbacCalls.Caller.of("node-agent").with("imds")),
            NODE,
            kind -> counted.computeIfAbsent(kind, k -> new AtomicInteger()).incrementAndGet());
    watchers.add(w);
    return w;
  }

  private int counted(NoticeKind kind) {
    return counted.getOrDefault(kind, new AtomicInteger()).get();
  }

  private void createNode() {
    api.admin()
        .nodes()
        .resource(
            new NodeBuilder()
                .withNewMetadata()
                .withName(NODE)
                .endMetadata()
                .withNewStatus()
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .withReason("KubeletReady")
                .endCondition()
                .addNewCondition()
                .withType("MemoryPressure")
                .withStatus("False")
                .withReason("KubeletHasSufficientMemory")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  private Node node() {
    return api.admin().nodes().withName(NODE).get();
  }

  private Optional<NodeCondition> condition(NoticeKind kind) {
    return node().getStatus().getConditions().stream()
        .filter(c -> kind.conditionType().equals(c.getType()))
        .findFirst();
  }

  private boolean isTrue(NoticeKind kind) {
    Node n = node();
    return n != null && condition(kind).map(c -> "True".equals(c.getStatus())).orElse(false);
  }

  private List<String> conditionTypes() {
    return node().getStatus().getConditions().stream().map(NodeCondition::getType).toList();
  }

  private List<Event> events() {
    return api.admin().v1().events().inNamespace("default").list().getItems();
  }

  private List<String> reasons() {
    return events().stream().map(Event::getReason).toList();
  }

  private static void awaitPolls(SpotNoticeWatcher w, long n) throws InterruptedException {
    await(n + " polls", () -> w.polls() >= n);
  }

  /** Polls {@code done} until it holds, failing the test after {@link #DEADLINE}. */
  private static void await(String what, BooleanSupplier done) throws InterruptedException {
    long end = System.nanoTime() + DEADLINE.toNanos();
    while (!done.getAsBoolean()) {
      assertThat(System.nanoTime()).as("%s within %s", what, DEADLINE).isLessThan(end);
      Thread.sleep(20);
    }
  }
}
