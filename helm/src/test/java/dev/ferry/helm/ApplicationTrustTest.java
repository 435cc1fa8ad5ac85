// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.certmanager.api.model.v1.Certificate;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * applicationTrust: a trust-manager Bundle that copies the agents' CA certificate (ca.crt) into a
 * ConfigMap in the applications' namespaces, so that they can check the agent's proof (handoff
 * protocol version 3). Off by default (it needs trust-manager); when on, its source is the Secret
 * whose ca.crt is the CA that signed the agents' certificates, for the chart-made certificates,
 * cert-manager's and the csi-driver's alike, and its target is key ca.crt in the namespaces the
 * values select.
 *
 * <p>Fabric8 has no model of trust-manager's Bundle, so the Bundle is read as a tree and compared
 * whole (no field more, none less); the other objects are still parsed strictly.
 */
class ApplicationTrustTest {
  private static final String ON = "applicationTrust: {enabled: true}\n";

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void noBundleByDefault(ValueSet set) {
    Rendered r = split(HelmChart.template(HelmChart.NAMESPACE, set.file()));
    assertThat(r.bundles).as("applicationTrust.enabled is false by default").isEmpty();
  }

  @Test
  void theBundleIsWhatTrustManagerReads() {
    Rendered r = render(ON);
    JsonNode bundle = r.bundle();
    assertThat(bundle.get("apiVersion").asText()).isEqualTo("trust.cert-manager.io/v1alpha1");
    assertThat(bundle.get("kind").asText()).isEqualTo("Bundle");
    JsonNode metadata = bundle.get("metadata");
    assertThat(names(metadata))
        .as("cluster-scoped: no namespace")
        .containsExactly("labels", "name");
    assertThat(metadata.get("name").asText())
        .as("also the name of the ConfigMap in each selected namespace")
        .isEqualTo("ferry-agent-ca");
    assertThat(metadata.get("labels").get("app.kubernetes.io/part-of").asText()).isEqualTo("ferry");
    assertThat(metadata.get("labels").get("app.kubernetes.io/instance").asText())
        .isEqualTo(HelmChart.RELEASE);
    assertThat(bundle.get("spec"))
        .isEqualTo(
            Manifests.yaml(
                """
                sources:
                  - secret: {name: ferry-agent-tls, key: ca.crt}
                target:
                  configMap: {key: ca.crt}
                  namespaceSelector:
                    matchLabels: {ferry.dev/applications: "true"}
                """));
  }

  /** Without cert-manager the chart's own Secret holds the CA that signed the agents' leaf. */
  @Test
  void withChartMadeCertificatesTheSourceIsTheAgentsSecretWhoseCaSignedThem() throws Exception {
    Rendered r = render("certManager: {enabled: false}\n" + ON);
    JsonNode source = source(r.bundle());
    assertThat(source.get("key").asText()).isEqualTo("ca.crt");
    Map<String, String> data = r.rest.one(Secret.class, source.get("name").asText()).getData();
    X509Certificate ca = certificate(data.get("ca.crt"));
    X509Certificate agent = certificate(data.get("tls.crt"));
    assertThat(agent.getSubjectX500Principal().getName()).isEqualTo("CN=ferry-node-agent");
    agent.verify(ca.getPublicKey());
    assertThat(ca.getBasicConstraints()).as("ca.crt is a CA").isGreaterThanOrEqualTo(0);
    assertThat(data.get("ca.crt"))
        .as("the CA the operator checks the agents against")
        .isEqualTo(r.rest.one(Secret.class, operatorSecret(r.rest)).getData().get("ca.crt"));
  }

  /** cert-manager writes the agents' Certificate into the Secret the Bundle reads. */
  @Test
  void withCertManagerTheSourceIsTheSecretOfTheAgentsCertificate() {
    Rendered r = render(ON);
    JsonNode source = source(r.bundle());
    assertThat(source.get("key").asText()).isEqualTo("ca.crt");
    Certificate agents =
        r.rest.all(Certificate.class).stream()
            .filter(c -> "ferry-node-agent".equals(c.getSpec().getCommonName()))
            .findFirst()
            .orElseThrow();
    assertThat(source.get("name").asText()).isEqualTo(agents.getSpec().getSecretName());
    assertThat(agents.getSpec().getIssuerRef().getName())
        .as("a CA Issuer, which fills ca.crt")
        .isEqualTo("ferry-ca");
  }

  /**
   * With the csi-driver no Secret holds an agent's certificate: the operator's, from the issuer the
   * agents' csi volumes ask, holds the same CA, the one the operator checks the agents against.
   */
  @Test
  void withTheCsiDriverTheSourceIsTheOperatorsSecretFromTheSameIssuer() {
    Rendered r = render("certManager: {enabled: true, csiDriver: {enabled: true}}\n" + ON);
    JsonNode source = source(r.bundle());
    assertThat(source.get("key").asText()).isEqualTo("ca.crt");
    assertThat(r.rest.all(Certificate.class))
        .as("no Certificate for the agents")
        .noneMatch(c -> "ferry-node-agent".equals(c.getSpec().getCommonName()));
    Certificate operator =
        r.rest.all(Certificate.class).stream()
            .filter(c -> source.get("name").asText().equals(c.getSpec().getSecretName()))
            .findFirst()
            .orElseThrow(() -> new AssertionError("no Certificate writes " + source));
    assertThat(operator.getSpec().getCommonName()).isEqualTo("ferry-operator");
    assertThat(source.get("name").asText()).isEqualTo(operatorSecret(r.rest));
    Map<String, String> asked = agentCsiAttributes(r.rest);
    assertThat(operator.getSpec().getIssuerRef().getName())
        .isEqualTo(asked.get("csi.cert-manager.io/issuer-name"));
    assertThat(operator.getSpec().getIssuerRef().getKind())
        .isEqualTo(asked.get("csi.cert-manager.io/issuer-kind"));
    assertThat(operator.getSpec().getIssuerRef().getGroup())
        .isEqualTo(asked.get("csi.cert-manager.io/issuer-group"));
  }

  @Test
  void theTargetIsKeyCaCrtInTheNamespacesTheValuesSelect() {
    JsonNode replaced =
        render(
                """
                applicationTrust:
                  enabled: true
                  namespaceSelector:
                    matchLabels: {ferry.dev/applications: null, team: shop}
                """)
            .bundle()
            .get("spec")
            .get("target");
    assertThat(replaced)
        .isEqualTo(
            Manifests.yaml(
                """
                configMap: {key: ca.crt}
                namespaceSelector:
                  matchLabels: {team: shop}
                """));
    JsonNode added =
        render(
                """
                applicationTrust:
                  enabled: true
                  namespaceSelector:
                    matchLabels: {team: shop, tier: "1"}
                """)
            .bundle()
            .get("spec")
            .get("target")
            .get("namespaceSelector");
    assertThat(added)
        .as("Helm merges maps: the default label stays unless set to null")
        .isEqualTo(
            Manifests.yaml(
                """
                matchLabels: {ferry.dev/applications: "true", team: shop, tier: "1"}
                """));
  }

  /** The rendered Bundles as trees, and every other object parsed strictly. */
  private record Rendered(List<JsonNode> bundles, Manifests rest) {
    JsonNode bundle() {
      assertThat(bundles).as("one Bundle").hasSize(1);
      return bundles.get(0);
    }
  }

  /** {@code helm template} with {@code values} (YAML) over the chart's defaults. */
  private static Rendered render(String values) {
    return split(HelmChart.template(HelmChart.NAMESPACE, HelmChart.valuesFile(values)));
  }

  private static Rendered split(String text) {
    List<JsonNode> bundles = new ArrayList<>();
    StringBuilder rest = new StringBuilder();
    try (MappingIterator<JsonNode> docs =
        Manifests.yamlMapper().readerFor(JsonNode.class).readValues(text)) {
      while (docs.hasNext()) {
        JsonNode doc = docs.next();
        if (doc == null || doc.isNull() || doc.isMissingNode() || doc.isEmpty()) {
          continue;
        }
        if (doc.path("apiVersion").asText().startsWith("trust.cert-manager.io/")) {
          bundles.add(doc);
        } else {
          rest.append(Manifests.yamlMapper().writeValueAsString(doc));
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new Rendered(bundles, Manifests.parse(rest.toString()));
  }

  private static JsonNode source(JsonNode bundle) {
    JsonNode sources = bundle.get("spec").get("sources");
    assertThat(sources).as("one source").hasSize(1);
    JsonNode source = sources.get(0);
    assertThat(names(source))
        .as("a Secret, in trust-manager's trust namespace")
        .containsExactly("secret");
    assertThat(names(source.get("secret"))).containsExactlyInAnyOrder("name", "key");
    return source.get("secret");
  }

  /** The Secret the operator reads its ca.crt from. */
  private static String operatorSecret(Manifests m) {
    return volume(
            m.one(Deployment.class, "ferry-operator")
                .getSpec()
                .getTemplate()
                .getSpec()
                .getVolumes())
        .getSecret()
        .getSecretName();
  }

  private static Map<String, String> agentCsiAttributes(Manifests m) {
    return volume(
            m.one(DaemonSet.class, "ferry-node-agent")
                .getSpec()
                .getTemplate()
                .getSpec()
                .getVolumes())
        .getCsi()
        .getVolumeAttributes();
  }

  private static Volume volume(List<Volume> volumes) {
    return volumes.stream().filter(v -> v.getName().equals("tls")).findFirst().orElseThrow();
  }

  private static List<String> names(JsonNode node) {
    List<String> out = new ArrayList<>();
    node.fieldNames().forEachRemaining(out::add);
    out.sort(null);
    return out;
  }

  private static X509Certificate certificate(String base64Pem) throws Exception {
    return (X509Certificate)
        CertificateFactory.getInstance("X.509")
            .generateCertificate(new ByteArrayInputStream(Base64.getDecoder().decode(base64Pem)));
  }
}
