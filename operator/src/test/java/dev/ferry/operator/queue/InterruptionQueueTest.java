// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationPolicySpec;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.OperatorMetrics;
import dev.ferry.operator.policy.NodeEvacuator;
import dev.ferry.testbed.FakeSqs;
import dev.ferry.testbed.MockApi;
import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import software.amazon.awssdk.services.sqs.SqsClient;

/**
 * Queue mode against Fabric8's mock API server (CRUD mode) and the local SQS: what a message does
 * to the cluster, and when it leaves the queue.
 */
class InterruptionQueueTest {
  private static final String NS = "shop";
  private static final String QUEUE = "ferry-notices";
  private static final String INSTANCE_A = "i-0aaaaaaaaaaaaaaaa";
  private static final String INSTANCE_B = "i-0bbbbbbbbbbbbbbbb";

  @RegisterExtension
  final MockApi api =
      MockApi.withExpectations().serving(MigrationRequest.class, MigrationPolicy.class);

  private FakeSqs sqs;
  private SqsClient sqsClient;
  private InterruptionQueue queue;
  private final List<LogRecord> log = new ArrayList<>();
  private final Handler capture =
      new Handler() {
        @Override
        public void publish(LogRecord r) {
          synchronized (log) {
            log.add(r);
          }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };

  @BeforeEach
  void start() throws Exception {
    node("node-a", INSTANCE_A);
    node("node-b", INSTANCE_B);
    node("node-fargate", null);
    pod("pod-a", "node-a", "streamer");
    pod("cache-a", "node-a", "cache");
    pod("pod-b", "node-b", "streamer");
    MigrationPolicy policy = new MigrationPolicy();
    policy.getMetadata().setName("keep-streams");
    policy.getMetadata().setNamespace(NS);
    MigrationPolicySpec spec = new MigrationPolicySpec();
    spec.setSelector(Map.of("app", "streamer"));
    policy.setSpec(spec);
    api.admin().resource(policy).create();

    sqs = FakeSqs.start();
    String url = sqs.createQueue(QUEUE);
    sqsClient = FakeSqsTest.client(sqs.endpoint());
    // The operator's rights in a release with aws.queue.enabled, which grants queue mode's calls.
    KubernetesClient operator = api.as(RbacCalls.Caller.of("operator").with("queue"));
    queue =
        new InterruptionQueue(
            sqsClient,
            url,
            operator,
            new NodeEvacuator(operator, new OperatorMetrics(new SimpleMeterRegistry())),
            Duration.ofSeconds(1),
            Duration.ofSeconds(20),
            Duration.ofMillis(10),
            Duration.ofMillis(200));
    Logger.getLogger(InterruptionQueue.class.getName()).addHandler(capture);
  }

  @AfterEach
  void stop() {
    Logger.getLogger(InterruptionQueue.class.getName()).removeHandler(capture);
    queue.close();
    sqs.close();
  }

  private void node(String name, String instance) {
    api.admin()
        .nodes()
        .resource(
            new NodeBuilder()
                .withNewMetadata()
                .withName(name)
                .endMetadata()
                .withNewSpec()
                .withProviderID(
                    instance == null ? "fargate:///eu/x" : "aws:///us-east-1a/" + instance)
                .endSpec()
                .withNewStatus()
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  private void pod(String name, String node, String app) {
    api.admin()
        .pods()
        .inNamespace(NS)
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(NS)
                .withUid(UUID.randomUUID().toString())
                .withLabels(Map.of("app", app))
                .endMetadata()
                .withNewSpec()
                .withNodeName(node)
                .endSpec()
                .withNewStatus()
                .withPhase("Running")
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  static String spotWarning(String instance) {
    return """
        {"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e",
         "detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2",
         "account":"123456789012","time":"2026-11-23T10:00:00Z","region":"us-east-1",
         "resources":["arn:aws:ec2:us-east-1a:instance/%s"],
         "detail":{"instance-id":"%s","instance-action":"terminate"}}"""
        .formatted(instance, instance);
  }

  private List<MigrationRequest> requests() {
    return api.admin().resources(MigrationRequest.class).inNamespace(NS).list().getItems();
  }

  @Test
  void aSpotWarningForNodeAsInstanceMovesItsProtectedPodsAndIsDeletedAfterwards() {
    sqs.send(QUEUE, spotWarning(INSTANCE_A));

    queue.pollOnce();

    assertThat(requests())
        .as("one request, for node-a's protected pod, to the pod on the node that stays")
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.getSpec().getSource().getName()).isEqualTo("pod-a");
              assertThat(r.getSpec().getTarget().getName()).isEqualTo("pod-b");
            });
    NodeCondition c =
        api.admin().nodes().withName("node-a").get().getStatus().getConditions().stream()
            .filter(x -> x.getType().equals("SpotInterruptionNotice"))
            .findFirst()
            .orElseThrow();
    assertThat(c.getStatus()).isEqualTo("True");
    assertThat(c.getReason()).isEqualTo("SpotInterruption");
    assertThat(sqs.bodies(QUEUE)).as("deleted once the request exists").isEmpty();
  }

  @Test
  void aMessageStaysInTheQueueUntilTheRequestsExist() {
    api.server()
        .expect()
        .post()
        .withPath("/apis/ferry.dev/v1alpha1/namespaces/" + NS + "/migrationrequests")
        .andReturn(
            403,
            "{\"kind\":\"Status\",\"code\":403,\"reason\":\"Forbidden\",\"message\":"
                + "\"migrationrequests.ferry.dev is forbidden\"}")
        .once();
    String body = spotWarning(INSTANCE_A);
    sqs.send(QUEUE, body);

    queue.pollOnce();
    assertThat(requests()).as("the API server refused the create").isEmpty();
    assertThat(sqs.bodies(QUEUE)).as("so the message stays").containsExactly(body);
    assertThat(sqs.receiveCount(QUEUE, body)).isEqualTo(1);

    sqs.expireVisibility(QUEUE);
    queue.pollOnce();
    assertThat(requests()).singleElement();
    assertThat(sqs.bodies(QUEUE)).as("deleted now that the request exists").isEmpty();
  }

  @Test
  void aMessageForAnInstanceOfNoNodeHereIsDeletedAndChangesNothing() {
    sqs.send(QUEUE, spotWarning("i-0cccccccccccccccc"));

    queue.pollOnce();

    assertThat(sqs.bodies(QUEUE)).isEmpty();
    assertThat(requests()).isEmpty();
    assertThat(logged(Level.INFO)).anyMatch(m -> m.contains("i-0cccccccccccccccc"));
  }

  @Test
  void aMalformedMessageIsDeletedWithAWarningNamingWhy() {
    sqs.send(QUEUE, "{\"detail-type\": \"EC2 Spot Instance Interruption Warning\"");
    sqs.send(
        QUEUE,
        "{\"source\":\"aws.ec2\",\"detail-type\":\"EC2 Spot Instance Interruption"
            + " Warning\",\"detail\":{\"instance-id\":\"node-a\"}}");

    queue.pollOnce();

    assertThat(sqs.bodies(QUEUE)).isEmpty();
    assertThat(requests()).isEmpty();
    assertThat(logged(Level.WARNING))
        .anyMatch(m -> m.contains("not JSON"))
        .anyMatch(m -> m.contains("'node-a' where an EC2 instance id"));
  }

  @Test
  void aRunningInstanceStateChangeIsDeletedAndAStoppingOneMovesThePods() {
    String running =
        "{\"source\":\"aws.ec2\",\"detail-type\":\"EC2 Instance State-change Notification\","
            + "\"detail\":{\"instance-id\":\""
            + INSTANCE_A
            + "\",\"state\":\"running\"}}";
    sqs.send(QUEUE, running);
    queue.pollOnce();
    assertThat(sqs.bodies(QUEUE)).isEmpty();
    assertThat(requests()).isEmpty();

    sqs.send(QUEUE, running.replace("running", "stopping"));
    queue.pollOnce();
    assertThat(requests()).singleElement();
    assertThat(sqs.bodies(QUEUE)).isEmpty();
  }

  @Test
  void aFailingQueueIsLoggedWithAwsErrorAndPolledAgain() throws Exception {
    sqs.failNext(
        FakeSqs.RECEIVE,
        "AccessDenied",
        403,
        "User: arn:aws:sts::000000000000:assumed-role/ferry-operator/x is not authorized to"
            + " perform: sqs:receivemessage");
    sqs.send(QUEUE, spotWarning(INSTANCE_A));

    queue.start();

    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!sqs.bodies(QUEUE).isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(sqs.bodies(QUEUE)).as("handled after the failure").isEmpty();
    assertThat(requests()).singleElement();
    assertThat(logged(Level.WARNING)).anyMatch(m -> m.contains("AccessDenied"));
    assertThat(sqs.calls().get(0).action()).as("the check at start").isEqualTo(FakeSqs.ATTRIBUTES);
  }

  @Test
  // SQS names this error AWS.SimpleQueueService.NonExistentQueue in x-amzn-query-error, and the SDK
  // reports that code (QueueDoesNotExist is its JSON name).
  void aQueueThatDoesNotExistIsLoggedWithAwsErrorAgainAndAgainAndNeverThrows() throws Exception {
    try (InterruptionQueue wrong =
        new InterruptionQueue(
            FakeSqsTest.client(sqs.endpoint()),
            sqs.url("no-such-queue"),
            api.as("operator"),
            new NodeEvacuator(api.as("operator"), new OperatorMetrics(new SimpleMeterRegistry())),
            Duration.ofSeconds(1),
            Duration.ofSeconds(20),
            Duration.ofMillis(10),
            Duration.ofMillis(50))) {
      wrong.start();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (logged(Level.WARNING).stream()
                  .filter(m -> m.contains("AWS.SimpleQueueService.NonExistentQueue"))
                  .count()
              < 3
          && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(logged(Level.WARNING))
          .as("tried again after each failure, naming AWS's error")
          .filteredOn(
              m ->
                  m.contains("AWS.SimpleQueueService.NonExistentQueue")
                      && m.contains("no-such-queue"))
          .hasSizeGreaterThanOrEqualTo(3);
    }
  }

  private List<String> logged(Level level) {
    synchronized (log) {
      return log.stream().filter(r -> r.getLevel().equals(level)).map(r -> r.getMessage()).toList();
    }
  }
}
