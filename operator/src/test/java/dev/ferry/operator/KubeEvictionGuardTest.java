// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static dev.ferry.operator.KubeEvictionGuard.DO_NOT_DISRUPT;
import static dev.ferry.operator.KubeEvictionGuard.DO_NOT_DISRUPT_BY;
import static dev.ferry.operator.KubeEvictionGuard.MIGRATION_LABEL;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.PodReference;
import dev.ferry.operator.cluster.ApiRequests;
import dev.ferry.operator.cluster.ClusterView;
import dev.ferry.operator.cluster.PodCache;
import dev.ferry.operator.cluster.PodInformers;
import dev.ferry.operator.migration.Plan;
import dev.ferry.testbed.AnotherWriter;
import dev.ferry.testbed.MockApi;
import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The eviction guard on the source pod, on Fabric8's mock API server in CRUD mode (which refuses a
 * patch carrying a resourceVersion that is no longer the pod's, as an API server does), with the
 * operator's rights as the chart grants them ({@link RbacCalls}): the pod is read at most once per
 * guard and release, and only what this request set is taken off.
 */
class KubeEvictionGuardTest {
  private static final String NS = "shop";
  private static final String POD = "/api/v1/namespaces/shop/pods/pod-a";

  private KubeEvictionGuard guard;
  private final MigrationRequest mr = request();
  private final String uid = mr.getMetadata().getUid();

  /** Another client's writes, let in just before the guard's. */
  private final AnotherWriter another = new AnotherWriter();

  @RegisterExtension final MockApi api = MockApi.with(another);

  @BeforeEach
  void start() {
    guard = new KubeEvictionGuard(api.as("operator"));
  }

  @Test
  void guardingPatchesThePodAsThePlanReadItWithoutReadingItAgain() throws Exception {
    Plan plan = plan(pod(Map.of("app", "shop"), Map.of()));
    calls();

    assertThat(guard.protect(mr, plan)).isEmpty();

    assertThat(podCalls()).containsExactly("PATCH " + POD);
    Pod pod = current();
    assertThat(pod.getMetadata().getLabels()).containsEntry(MIGRATION_LABEL, uid);
    assertThat(pod.getMetadata().getAnnotations())
        .containsEntry(DO_NOT_DISRUPT, "true")
        .containsEntry(DO_NOT_DISRUPT_BY, uid);
  }

  @Test
  void aPodChangedSinceThePlanReadItIsReadAgainAndTheChangeKept() throws Exception {
    Plan plan = plan(pod(Map.of("app", "shop"), Map.of()));
    api.admin().pods().inNamespace(NS).withName("pod-a").edit(p -> label(p, "tier", "web"));
    calls();

    assertThat(guard.protect(mr, plan)).isEmpty();

    assertThat(podCalls()).containsExactly("PATCH " + POD, "GET " + POD, "PATCH " + POD);
    assertThat(current().getMetadata().getLabels())
        .containsEntry("tier", "web")
        .containsEntry(MIGRATION_LABEL, uid);
  }

  @Test
  void releaseReadsThePodOnceAndPatchesItOnce() throws Exception {
    guard.protect(mr, plan(pod(Map.of("app", "shop"), Map.of())));
    calls();

    guard.release(mr);

    assertThat(podCalls()).containsExactly("GET " + POD, "PATCH " + POD);
    Pod pod = current();
    assertThat(pod.getMetadata().getLabels()).isEqualTo(Map.of("app", "shop"));
    assertThat(pod.getMetadata().getAnnotations())
        .doesNotContainKeys(DO_NOT_DISRUPT, DO_NOT_DISRUPT_BY);
  }

  @Test
  void releaseReadsNothingWhenThePodCacheShowsTheMark() throws Exception {
    PodCache cache = new PodCache();
    var informer = PodInformers.of(api.as("operator"), cache);
    informer.start();
    try {
      guard = new KubeEvictionGuard(api.as("operator"), cache);
      guard.protect(mr, plan(pod(Map.of("app", "shop"), Map.of())));
      PodInformers.await(
          cache, NS, "pod-a", p -> uid.equals(p.getMetadata().getLabels().get(MIGRATION_LABEL)));
      calls();

      guard.release(mr);

      assertThat(podCalls()).containsExactly("PATCH " + POD);
      Pod pod = current();
      assertThat(pod.getMetadata().getLabels()).isEqualTo(Map.of("app", "shop"));
      assertThat(pod.getMetadata().getAnnotations())
          .doesNotContainKeys(DO_NOT_DISRUPT, DO_NOT_DISRUPT_BY);
    } finally {
      informer.stop();
    }
  }

  @Test
  void aPodFromTheCacheIsMarkedAndUnmarkedWithNothingElseOfItChanged() throws Exception {
    // The cache keeps part of a pod: patches made from it must carry only the marks.
    PodCache cache = new PodCache();
    pod(Map.of("app", "shop"), Map.of("note", "kept"));
    var informer = PodInformers.of(api.as("operator"), cache);
    informer.start();
    try {
      guard = new KubeEvictionGuard(api.as("operator"), cache);
      Pod cached = PodInformers.await(cache, NS, "pod-a", p -> true);

      guard.protect(mr, plan(cached));
      PodInformers.await(
          cache, NS, "pod-a", p -> uid.equals(p.getMetadata().getLabels().get(MIGRATION_LABEL)));
      Pod marked = current();
      guard.release(mr);

      assertThat(marked.getMetadata().getLabels()).containsEntry(MIGRATION_LABEL, uid);
      Pod pod = current();
      assertThat(pod.getMetadata().getLabels()).isEqualTo(Map.of("app", "shop"));
      assertThat(pod.getMetadata().getAnnotations()).isEqualTo(Map.of("note", "kept"));
      assertThat(pod.getSpec().getServiceAccountName()).isEqualTo("shop");
      assertThat(pod.getSpec().getContainers().get(0).getImage())
          .isEqualTo("registry.example/server:1");
    } finally {
      informer.stop();
    }
  }

  @Test
  void releaseReadsThePodWhenThePodCacheDoesNotShowTheMarkYet() throws Exception {
    // The cache saw the pod before the mark, and never after: a watch that lags behind.
    PodCache cache = new PodCache();
    pod(Map.of("app", "shop"), Map.of());
    var informer = PodInformers.of(api.as("operator"), cache);
    informer.start();
    try {
      Pod seen = PodInformers.await(cache, NS, "pod-a", p -> true);
      informer.stop();
      guard.protect(mr, plan(current()));
      guard = new KubeEvictionGuard(api.as("operator"), new StaleCache(seen));
      calls();

      guard.release(mr);

      assertThat(podCalls()).containsExactly("GET " + POD, "PATCH " + POD);
      assertThat(current().getMetadata().getLabels()).isEqualTo(Map.of("app", "shop"));
    } finally {
      if (informer.isRunning()) {
        informer.stop();
      }
    }
  }

  @Test
  void releaseLeavesAPodAnotherRequestMarkedAlone() throws Exception {
    Map<String, String> others = Map.of(DO_NOT_DISRUPT, "true", DO_NOT_DISRUPT_BY, "other-uid");
    pod(Map.of(MIGRATION_LABEL, "other-uid"), others);
    calls();

    guard.release(mr);

    assertThat(podCalls()).containsExactly("GET " + POD);
    Pod pod = current();
    assertThat(pod.getMetadata().getLabels()).containsEntry(MIGRATION_LABEL, "other-uid");
    assertThat(pod.getMetadata().getAnnotations()).containsAllEntriesOf(others);
  }

  @Test
  void releaseKeepsADoNotDisruptFerryDidNotSet() {
    guard.protect(mr, plan(pod(Map.of(), Map.of(DO_NOT_DISRUPT, "true"))));

    guard.release(mr);

    Pod pod = current();
    assertThat(pod.getMetadata().getLabels()).doesNotContainKey(MIGRATION_LABEL);
    assertThat(pod.getMetadata().getAnnotations())
        .containsEntry(DO_NOT_DISRUPT, "true")
        .doesNotContainKey(DO_NOT_DISRUPT_BY);
  }

  @Test
  void aPodAnotherRequestMarkedBetweenReleasesReadAndPatchIsLeftToIt() throws Exception {
    guard.protect(mr, plan(pod(Map.of(), Map.of())));
    another.patchesFirst(
        "[{\"op\":\"replace\",\"path\":\"/metadata/labels/ferry.dev~1migration\","
            + "\"value\":\"other-uid\"}]");
    calls();

    guard.release(mr);

    // Read, the patch refused (the pod changed), read again: the label is the other's now, and
    // only this request's do-not-disrupt, which the other left as it was, is taken off.
    assertThat(podCalls())
        .containsExactly("GET " + POD, "PATCH " + POD, "GET " + POD, "PATCH " + POD);
    assertThat(current().getMetadata().getLabels()).containsEntry(MIGRATION_LABEL, "other-uid");
    assertThat(current().getMetadata().getAnnotations())
        .doesNotContainKeys(DO_NOT_DISRUPT, DO_NOT_DISRUPT_BY);
  }

  @Test
  void aMigrationGuardingThePodBeforeTheLastOnesReleaseTakesItOverAndNothingIsLeftBehind() {
    MigrationRequest next = request();
    next.getMetadata().setName("move-2");
    String nextUid = next.getMetadata().getUid();
    guard.protect(mr, plan(pod(Map.of(), Map.of())));

    // The next migration of the pod starts as this one's end begins: its guard lands first.
    guard.protect(next, plan(current()));
    guard.release(mr);

    Pod between = current();
    assertThat(between.getMetadata().getLabels()).containsEntry(MIGRATION_LABEL, nextUid);
    assertThat(between.getMetadata().getAnnotations())
        .as("the next migration's pod still kept from voluntary disruption")
        .containsEntry(DO_NOT_DISRUPT, "true")
        .containsEntry(DO_NOT_DISRUPT_BY, nextUid);

    guard.release(next);

    Pod after = current();
    assertThat(after.getMetadata().getLabels()).doesNotContainKey(MIGRATION_LABEL);
    assertThat(after.getMetadata().getAnnotations())
        .doesNotContainKeys(DO_NOT_DISRUPT, DO_NOT_DISRUPT_BY);
  }

  @Test
  void theNextMigrationGuardsThePodItsPlanReadBeforeTheLastOnesReleaseLanded() throws Exception {
    MigrationRequest next = request();
    next.getMetadata().setName("move-2");
    String nextUid = next.getMetadata().getUid();
    guard.protect(mr, plan(pod(Map.of(), Map.of())));
    Plan nextPlan = plan(current()); // the pod read with the last migration's marks on it

    guard.release(mr);
    calls();
    // Its patch replaces the label the release removed: refused (422), the pod read again.
    assertThat(guard.protect(next, nextPlan)).isEmpty();

    assertThat(podCalls()).containsExactly("PATCH " + POD, "GET " + POD, "PATCH " + POD);
    Pod pod = current();
    assertThat(pod.getMetadata().getLabels()).containsEntry(MIGRATION_LABEL, nextUid);
    assertThat(pod.getMetadata().getAnnotations())
        .containsEntry(DO_NOT_DISRUPT, "true")
        .containsEntry(DO_NOT_DISRUPT_BY, nextUid);
  }

  /** A cache that saw the pod once and nothing since: it serves the pod as it was then. */
  private static final class StaleCache extends PodCache {
    private final Pod seen;

    StaleCache(Pod seen) {
      this.seen = seen;
    }

    @Override
    public java.util.Optional<Pod> pod(String namespace, String name) {
      return java.util.Optional.of(new PodBuilder(seen).build());
    }
  }

  private Pod pod(Map<String, String> labels, Map<String, String> annotations) {
    return api.admin()
        .pods()
        .inNamespace(NS)
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName("pod-a")
                .withNamespace(NS)
                .withUid(UUID.randomUUID().toString())
                .withLabels(labels)
                .withAnnotations(annotations)
                .endMetadata()
                .withNewSpec()
                .withNodeName("node-a")
                .withServiceAccountName("shop")
                .addNewContainer()
                .withName("server")
                .withImage("registry.example/server:1")
                .endContainer()
                .endSpec()
                .build())
        .create();
  }

  private Pod current() {
    return api.admin().pods().inNamespace(NS).withName("pod-a").get();
  }

  private static Pod label(Pod p, String key, String value) {
    Map<String, String> labels = new HashMap<>(p.getMetadata().getLabels());
    labels.put(key, value);
    p.getMetadata().setLabels(labels);
    return p;
  }

  /** The requests on the pod since the last call, as "METHOD PATH". */
  private List<String> podCalls() throws InterruptedException {
    return calls().stream().filter(c -> c.endsWith(" " + POD)).toList();
  }

  /** The requests the API server received since the last call, as "METHOD PATH". */
  private List<String> calls() throws InterruptedException {
    return ApiRequests.since(api.server());
  }

  /** A plan from the source pod as read: only what the guard uses is real. */
  private static Plan plan(Pod source) {
    return new Plan(
        "move-1",
        ClusterView.ref(source),
        "node-a",
        "10.1.0.1:9443",
        dev.ferry.api.v1alpha1.PodRef.newBuilder().setNamespace(NS).setName("pod-b").build(),
        "node-b",
        "10.1.0.2:9443",
        List.of(8080),
        "10.0.0.10/32",
        Duration.ofMinutes(1),
        Duration.ofSeconds(30),
        List.of("10.0.0.20"),
        source);
  }

  private static MigrationRequest request() {
    MigrationRequest mr = new MigrationRequest();
    mr.getMetadata().setNamespace(NS);
    mr.getMetadata().setName("move-1");
    mr.getMetadata().setUid(UUID.randomUUID().toString());
    MigrationRequestSpec spec = new MigrationRequestSpec();
    spec.setSource(new PodReference("pod-a"));
    mr.setSpec(spec);
    return mr;
  }
}
