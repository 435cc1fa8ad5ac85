// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import dev.ferry.api.crd.MigrationRequest;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.config.BaseConfigurationService;
import io.javaoperatorsdk.operator.api.config.ConfigurationService;
import io.javaoperatorsdk.operator.api.config.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Predicate;

/** The pod informer the MigrationRequest controller runs (PodCache), for tests to start by hand. */
public final class PodInformers {
  private PodInformers() {}

  /**
   * {@code cache}'s informer as the controller makes it, JOSDK's part (its configuration and event
   * handler) done by hand; not yet started.
   */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public static InformerEventSource<Pod, MigrationRequest> of(
      KubernetesClient kube, PodCache cache) {
    ConfigurationService config =
        ConfigurationService.newOverriddenConfigurationService(
            new BaseConfigurationService(), o -> o.withKubernetesClient(kube));
    ControllerConfiguration<MigrationRequest> controller =
        config.getConfigurationFor(new Requests());
    InformerEventSource<Pod, MigrationRequest> source =
        cache.informer(
            new EventSourceContext<>(
                new EmptyResourceCache<>(), controller, kube, MigrationRequest.class));
    source.setControllerConfiguration((ControllerConfiguration) controller);
    source.setEventHandler(event -> {});
    return source;
  }

  /**
   * Waits until {@code cache} has the pod and {@code seen} holds for it: the informer's watch
   * delivers a change some time after the API server made it. Waits at most 30 s.
   */
  public static Pod await(PodCache cache, String namespace, String name, Predicate<Pod> seen)
      throws InterruptedException {
    long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (true) {
      Optional<Pod> pod = cache.pod(namespace, name);
      if (pod.isPresent() && seen.test(pod.get())) {
        return pod.get();
      }
      if (System.nanoTime() > end) {
        throw new AssertionError(
            "the pod cache did not see " + namespace + "/" + name + " as expected in 30 s: " + pod);
      }
      Thread.sleep(10);
    }
  }

  /** Stands for MigrationReconciler, whose configuration the informer inherits. */
  @io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration(name = "migrationrequest")
  private static final class Requests implements Reconciler<MigrationRequest> {
    @Override
    public UpdateControl<MigrationRequest> reconcile(
        MigrationRequest resource, Context<MigrationRequest> context) {
      return UpdateControl.noUpdate();
    }
  }
}
