// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.marcnuri.helm.Helm;
import io.fabric8.kubernetes.api.model.LocalObjectReference;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ferry as a subchart: an umbrella chart that depends on it (file://helm/ferry, fetched by {@code
 * helm dependency update}) sets {@code global} values for all its subcharts and {@code ferry.*}
 * values for this one; Helm hands {@code global} down, and the chart's schema takes it.
 */
class UmbrellaChartTest {
  @TempDir Path dir;
  private Path umbrella;

  @BeforeEach
  void umbrellaChart() throws IOException {
    umbrella = Files.createDirectories(dir.resolve("platform"));
    Files.writeString(
        umbrella.resolve("Chart.yaml"),
        """
        apiVersion: v2
        name: platform
        version: 1.0.0
        dependencies:
          - name: ferry
            version: 0.1.0
            repository: file://%s
        """
            .formatted(Repo.chart()));
    Files.writeString(
        umbrella.resolve("values.yaml"),
        """
        global:
          imageRegistry: registry.example.com
          imagePullSecrets: [{name: platform-pull}]
          storageClass: gp3   # another subchart's, which Ferry ignores
        ferry:
          addressMover: aws
          aws: {region: eu-west-1}
          operator: {replicas: 3}
          agent: {uplink: ens5}
          certManager: {enabled: false}
        """);
    new Helm(umbrella).dependency().update().call();
  }

  @Test
  void anUmbrellaChartSettingGlobalValuesRenders() {
    Manifests m = Manifests.parse(template(null));
    Deployment operator = m.one(Deployment.class, "platform-ferry-operator");
    assertThat(operator.getSpec().getReplicas()).isEqualTo(3);
    var pod = operator.getSpec().getTemplate().getSpec();
    assertThat(pod.getContainers().get(0).getImage())
        .isEqualTo("registry.example.com/ferry/operator:0.1.0");
    assertThat(Manifests.env(pod.getContainers().get(0).getEnv(), "FERRY_OPERATOR_AWS_REGION"))
        .isEqualTo("eu-west-1");
    assertThat(pod.getImagePullSecrets())
        .extracting(LocalObjectReference::getName)
        .containsExactly("platform-pull");
    var agent =
        m.one(DaemonSet.class, "platform-ferry-node-agent").getSpec().getTemplate().getSpec();
    assertThat(agent.getContainers().get(0).getImage())
        .isEqualTo("registry.example.com/ferry/node-agent:0.1.0");
    assertThat(Manifests.env(agent.getContainers().get(0).getEnv(), "FERRY_AGENT_UPLINK"))
        .isEqualTo("ens5");
    assertThat(m.one(PodDisruptionBudget.class).getMetadata().getName())
        .isEqualTo("platform-ferry-operator");
    assertThat(m.all(Secret.class))
        .extracting(s -> s.getMetadata().getName())
        .containsExactlyInAnyOrder(
            "platform-ferry-ca", "platform-ferry-operator-tls", "platform-ferry-agent-tls");
  }

  @Test
  void aBadSubchartValueIsRefusedNamingIt() throws IOException {
    Path bad = dir.resolve("bad.yaml");
    Files.writeString(bad, "ferry: {agent: {holdLimit: forever}}\n");
    assertThatThrownBy(() -> template(bad))
        .hasMessageContaining("ferry")
        .hasMessageContaining("/agent/holdLimit");
  }

  private String template(Path values) {
    var t =
        new Helm(umbrella)
            .template()
            .withName("platform")
            .withNamespace(HelmChart.NAMESPACE)
            .withKubeVersion(HelmChart.KUBE_VERSION);
    if (values != null) {
      t.withValuesFile(values);
    }
    synchronized (HelmChart.class) {
      return t.call();
    }
  }
}
