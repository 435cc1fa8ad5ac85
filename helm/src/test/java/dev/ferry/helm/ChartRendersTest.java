// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.marcnuri.helm.LintResult;
import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.certmanager.api.model.v1.Certificate;
import io.fabric8.certmanager.api.model.v1.Issuer;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@code helm lint --strict} and {@code helm template} pass with the chart's defaults and each of
 * helm/ferry/ci/*.yaml, and what they render parses strictly into Fabric8's model classes.
 */
class ChartRendersTest {

  @Test
  void helmRunsFromTheMavenArtifact() {
    // Not skipped when Helm cannot run: the native library failing to load fails here, loudly.
    assertThat(HelmChart.helmVersion()).as("the Helm inside helm-java").startsWith("v3.");
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void lintPassesStrictly(ValueSet set, @TempDir Path scratch) {
    LintResult lint = HelmChart.lint(set.file(), scratch);
    assertThat(lint.isFailed()).as("helm lint --strict %s: %s", set, lint.getMessages()).isFalse();
    assertThat(lint.getMessages())
        .as("helm lint --strict %s", set)
        .allSatisfy(m -> assertThat(m).doesNotContain("[WARNING]", "[ERROR]"));
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void templateRendersOnlyObjectsThatParseStrictly(ValueSet set) {
    // Manifests.parse fails on a kind without a model, an unknown field or a mistyped value.
    List<HasMetadata> objects = HelmChart.render(set).all();
    assertThat(objects).isNotEmpty();
    assertThat(objects)
        .as("every object is labelled as Ferry's")
        .allSatisfy(
            o ->
                assertThat(o.getMetadata().getLabels())
                    .containsEntry("app.kubernetes.io/part-of", "ferry")
                    .containsEntry("app.kubernetes.io/instance", HelmChart.RELEASE));
    assertThat(objects)
        .filteredOn(o -> o instanceof Namespaced)
        .as("namespaced objects live in the release's namespace, but the agent's Events rights")
        .allSatisfy(
            o ->
                assertThat(o.getMetadata().getNamespace())
                    .isEqualTo(
                        o.getMetadata().getName().equals("ferry-node-agent-events")
                            ? "default"
                            : HelmChart.NAMESPACE));
  }

  @Test
  void theDefaultsRenderTheseObjects() {
    assertThat(names(ValueSet.DEFAULT))
        .containsExactly(
            "Certificate/ferry-agent-tls",
            "Certificate/ferry-ca",
            "Certificate/ferry-operator-tls",
            "ClusterRole/ferry-operator",
            "ClusterRoleBinding/ferry-operator",
            "DaemonSet/ferry-node-agent",
            "Deployment/ferry-operator",
            "Issuer/ferry-ca",
            "Issuer/ferry-selfsigned",
            "PodDisruptionBudget/ferry-operator",
            "Role/ferry-operator-leader-election",
            "RoleBinding/ferry-operator-leader-election",
            "Service/ferry-node-agent-metrics",
            "Service/ferry-operator-metrics",
            "ServiceAccount/ferry-node-agent",
            "ServiceAccount/ferry-operator",
            "ValidatingAdmissionPolicy/ferry-node-agent-handoff-read-only",
            "ValidatingAdmissionPolicy/ferry-operator-pod-marks",
            "ValidatingAdmissionPolicy/ferry-operator-request-deletes",
            "ValidatingAdmissionPolicyBinding/ferry-node-agent-handoff-read-only",
            "ValidatingAdmissionPolicyBinding/ferry-operator-pod-marks",
            "ValidatingAdmissionPolicyBinding/ferry-operator-request-deletes");
  }

  @Test
  void everyValueSetRendersTheWorkloadsAndTheirServices() {
    for (ValueSet set : ValueSet.values()) {
      Manifests m = HelmChart.render(set);
      assertThat(m.one(Deployment.class, "ferry-operator")).isNotNull();
      assertThat(m.one(DaemonSet.class, "ferry-node-agent")).isNotNull();
      assertThat(m.all(ServiceAccount.class))
          .extracting(sa -> sa.getMetadata().getName())
          .containsExactlyInAnyOrder("ferry-operator", "ferry-node-agent");
      assertThat(m.all(Service.class))
          .extracting(s -> s.getMetadata().getName())
          .containsExactlyInAnyOrder("ferry-operator-metrics", "ferry-node-agent-metrics");
      assertThat(m.all(ClusterRole.class)).isNotEmpty();
      assertThat(m.all(ClusterRoleBinding.class)).isNotEmpty();
    }
  }

  @Test
  void withCertManagerTheCertificatesAreIssuedAndAServiceMonitorScrapes() {
    Manifests m = HelmChart.render(ValueSet.CERT_MANAGER);
    assertThat(m.all(Secret.class)).as("cert-manager writes the Secrets").isEmpty();
    assertThat(m.all(Issuer.class))
        .extracting(i -> i.getMetadata().getName())
        .containsExactlyInAnyOrder("ferry-selfsigned", "ferry-ca");
    assertThat(m.all(Certificate.class))
        .extracting(c -> c.getSpec().getSecretName())
        .containsExactlyInAnyOrder("ferry-ca", "ferry-operator-tls", "ferry-agent-tls");
    ServiceMonitor sm = m.one(ServiceMonitor.class);
    assertThat(sm.getMetadata().getLabels()).containsEntry("release", "kube-prometheus-stack");
    assertThat(sm.getSpec().getEndpoints())
        .singleElement()
        .satisfies(
            e -> {
              assertThat(e.getPort()).isEqualTo("metrics");
              assertThat(e.getPath()).isEqualTo("/q/metrics");
            });
    assertThat(sm.getSpec().getSelector().getMatchLabels())
        .containsEntry("ferry.dev/metrics", "true");
    assertThat(m.all(Service.class))
        .allSatisfy(
            s -> {
              assertThat(s.getMetadata().getLabels()).containsEntry("ferry.dev/metrics", "true");
              assertThat(s.getSpec().getPorts()).extracting(p -> p.getName()).contains("metrics");
            });
  }

  @Test
  void theChartsCrdsAreThoseInCrdsByteForByte() throws IOException {
    Path ours = Repo.chart().resolve("crds");
    Path source = Repo.path("crds");
    List<String> names = yamlFiles(source);
    assertThat(yamlFiles(ours))
        .as("helm/ferry/crds/ holds the files of crds/ (make crds copies them)")
        .isEqualTo(names);
    for (String name : names) {
      assertThat(Files.readAllBytes(ours.resolve(name)))
          .as("helm/ferry/crds/%s is stale: run `make crds`", name)
          .isEqualTo(Files.readAllBytes(source.resolve(name)));
      CustomResourceDefinition crd =
          (CustomResourceDefinition)
              Manifests.parse(Files.readString(ours.resolve(name)))
                  .one(CustomResourceDefinition.class);
      assertThat(crd.getSpec().getGroup()).isEqualTo("ferry.dev");
    }
  }

  private static List<String> yamlFiles(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files
          .map(f -> f.getFileName().toString())
          .filter(n -> n.endsWith(".yml") || n.endsWith(".yaml"))
          .sorted()
          .toList();
    }
  }

  private static List<String> names(ValueSet set) {
    return HelmChart.render(set).all().stream()
        .map(o -> o.getKind() + "/" + o.getMetadata().getName())
        .sorted()
        .toList();
  }
}
