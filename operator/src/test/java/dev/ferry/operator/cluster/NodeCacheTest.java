// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.operator.migration.Plan;
import dev.ferry.operator.migration.PlanMaker;
import dev.ferry.operator.policy.MigrationPolicyReconciler;
import dev.ferry.testbed.MockApi;
import io.fabric8.kubernetes.api.model.Node;
import io.javaoperatorsdk.operator.api.config.BaseConfigurationService;
import io.javaoperatorsdk.operator.api.config.ConfigurationService;
import io.javaoperatorsdk.operator.api.config.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A plan reads the nodes from the informer MigrationPolicyReconciler's controller runs, on
 * Fabric8's mock API server in CRUD mode; from the API server only while that informer has not
 * started.
 */
class NodeCacheTest {
  private static final String NODES = "/api/v1/nodes";

  @RegisterExtension final MockApi api = MockApi.crud();

  private final NodeCache cache = new NodeCache();
  private InformerEventSource<Node, MigrationPolicy> informer;

  @BeforeEach
  void start() {
    TwoPods.make(api.admin());
    informer = policyInformer();
  }

  @AfterEach
  void stop() {
    if (informer.isRunning()) {
      informer.stop();
    }
  }

  @Test
  void aPlanReadsBothNodesFromThePolicysInformerNotTheApiServer() throws Exception {
    informer.start();
    calls();

    Plan plan = planner().plan(TwoPods.move(), null);

    assertThat(plan.sourceAgent()).isEqualTo("10.1.0.1:9443");
    assertThat(plan.targetAgent()).isEqualTo("10.1.0.2:9443");
    assertThat(calls()).noneMatch(c -> c.startsWith("GET " + NODES));
  }

  @Test
  void untilTheInformerHasStartedAPlanReadsTheNodesFromTheApiServer() throws Exception {
    calls();

    Plan plan = planner().plan(TwoPods.move(), null);

    assertThat(plan.targetAgent()).isEqualTo("10.1.0.2:9443");
    assertThat(calls())
        .filteredOn(c -> c.startsWith("GET " + NODES))
        .containsExactly("GET " + NODES + "/node-a", "GET " + NODES + "/node-b");
  }

  private PlanMaker planner() {
    return new PlanMaker(new ClusterView(api.as("operator"), cache), 9443);
  }

  /**
   * The node informer as MigrationPolicyReconciler makes it, not yet started: JOSDK's part (its
   * configuration and event handler) done by hand.
   */
  @SuppressWarnings({"unchecked", "rawtypes"})
  private InformerEventSource<Node, MigrationPolicy> policyInformer() {
    ConfigurationService config =
        ConfigurationService.newOverriddenConfigurationService(
            new BaseConfigurationService(), o -> o.withKubernetesClient(api.as("operator")));
    MigrationPolicyReconciler reconciler = new MigrationPolicyReconciler(null, cache);
    ControllerConfiguration<MigrationPolicy> controller = config.getConfigurationFor(reconciler);
    var source =
        (InformerEventSource<Node, MigrationPolicy>)
            reconciler
                .prepareEventSources(
                    new EventSourceContext<>(
                        new EmptyResourceCache<>(),
                        controller,
                        api.as("operator"),
                        MigrationPolicy.class))
                .get(0);
    source.setControllerConfiguration((ControllerConfiguration) controller);
    source.setEventHandler(event -> {});
    return source;
  }

  /** The requests the API server received since the last call, as "METHOD PATH". */
  private List<String> calls() throws InterruptedException {
    return ApiRequests.since(api.server());
  }
}
