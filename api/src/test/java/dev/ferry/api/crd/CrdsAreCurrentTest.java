// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.crdv2.generator.CRDGenerator;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * crds/ holds what the Java types generate. Run {@code make crds} after changing them; this test
 * fails until then. With FERRY_WRITE_CRDS=1 it writes crds/ instead of comparing.
 */
class CrdsAreCurrentTest {
  private static final List<String> FILES =
      List.of("migrationrequests.ferry.dev-v1.yml", "migrationpolicies.ferry.dev-v1.yml");
  private static final String MOVED_ADDRESSES = "movedaddresses.ferry.dev-v1.yml";

  @Test
  void crdsInTheRepositoryAreWhatTheJavaTypesGenerate(@TempDir Path out) throws IOException {
    new CRDGenerator()
        .inOutputDir(out.toFile())
        .forCRDVersions("v1")
        .customResourceClasses(MigrationRequest.class, MigrationPolicy.class, MovedAddress.class)
        .withPostProcessor(
            new CrdFinish(MigrationRequest.class, MigrationPolicy.class, MovedAddress.class))
        .generate();
    Path crds = repoDir("crds");
    boolean write = "1".equals(System.getenv("FERRY_WRITE_CRDS"));
    for (String f : Stream.concat(FILES.stream(), Stream.of(MOVED_ADDRESSES)).toList()) {
      String generated = Files.readString(out.resolve(f));
      if (write) {
        Files.writeString(crds.resolve(f), generated);
      }
      assertThat(crds.resolve(f))
          .as("crds/%s is stale or missing: run `make crds` and commit the result", f)
          .exists();
      assertThat(Files.readString(crds.resolve(f)))
          .as("crds/%s is stale: run `make crds` and commit the result", f)
          .isEqualTo(generated);
    }
  }

  @Test
  void theSchemaCarriesTheRulesTheApiServerChecks() throws IOException {
    CustomResourceDefinition crd =
        Serialization.unmarshal(
            Files.readString(repoDir("crds").resolve(FILES.get(0))),
            CustomResourceDefinition.class);
    var version = crd.getSpec().getVersions().get(0);
    assertThat(crd.getSpec().getNames().getShortNames()).containsExactly("mr", "ferrymr");
    assertThat(crd.getSpec().getNames().getCategories()).containsExactly("ferry");
    assertThat(version.getSubresources().getStatus()).isNotNull();
    // kubectl prints NAME, then these in this order.
    assertThat(version.getAdditionalPrinterColumns())
        .extracting(c -> c.getName())
        .containsExactly("Phase", "Source", "Target", "Migrated", "Total", "Pause", "Age");
    JSONSchemaProps spec = version.getSchema().getOpenAPIV3Schema().getProperties().get("spec");
    assertThat(spec.getRequired()).contains("source");
    assertThat(spec.getXKubernetesValidations())
        .extracting(r -> r.getRule())
        .contains("self == oldSelf");
    assertThat(spec.getProperties().get("deadline").getPattern()).isNotBlank();
  }

  @Test
  void thePolicyPrintsWhetherItIsReadyAndBothCrdsAreInTheFerryCategory() throws IOException {
    CustomResourceDefinition crd = crd(FILES.get(1));
    assertThat(crd.getSpec().getNames().getShortNames()).containsExactly("ferrymp");
    assertThat(crd.getSpec().getNames().getCategories()).containsExactly("ferry");
    assertThat(crd.getSpec().getVersions().get(0).getAdditionalPrinterColumns())
        .extracting(c -> c.getName() + " " + c.getJsonPath())
        .containsExactly(
            "Ready .status.conditions[?(@.type==\"Ready\")].status",
            "Requests .status.requestsCreated",
            "Last-Trigger .status.lastTrigger",
            "Age .metadata.creationTimestamp");
  }

  @Test
  void aMovedAddressIsClusterScopedAndPrintsItsHolder() throws IOException {
    CustomResourceDefinition crd = crd(MOVED_ADDRESSES);
    // Cluster-scoped: a tenant's namespace-wide rights never reach it (see MovedAddress).
    assertThat(crd.getSpec().getScope()).isEqualTo("Cluster");
    assertThat(crd.getSpec().getNames().getCategories()).containsExactly("ferry");
    var version = crd.getSpec().getVersions().get(0);
    assertThat(version.getAdditionalPrinterColumns())
        .extracting(c -> c.getName())
        .containsExactly("Address", "Namespace", "Pod", "Request", "Age");
    JSONSchemaProps spec = version.getSchema().getOpenAPIV3Schema().getProperties().get("spec");
    assertThat(spec.getRequired()).contains("address", "pod");
    assertThat(spec.getProperties().get("pod").getRequired())
        .containsExactlyInAnyOrder("namespace", "name", "uid");
  }

  @Test
  void aMovedAddressIsNamedByItsAddressWhateverItsSpelling() {
    assertThat(MovedAddress.nameFor("10.0.1.5/32")).isEqualTo("10.0.1.5");
    assertThat(MovedAddress.nameFor("fd42::5")).isEqualTo(MovedAddress.nameFor("FD42:0::5/128"));
    assertThat(MovedAddress.nameFor("::1")).doesNotStartWith("-").doesNotContain(":");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> MovedAddress.nameFor("example.com"))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void statusTimestampsAreDateTimesAndConditionsAreAMapKeyedByType() throws IOException {
    for (String f : FILES) {
      JSONSchemaProps status =
          crd(f)
              .getSpec()
              .getVersions()
              .get(0)
              .getSchema()
              .getOpenAPIV3Schema()
              .getProperties()
              .get("status");
      JSONSchemaProps conditions = status.getProperties().get("conditions");
      assertThat(conditions.getXKubernetesListType()).as(f).isEqualTo("map");
      assertThat(conditions.getXKubernetesListMapKeys()).as(f).containsExactly("type");
      // The API server accepts a list-map only when its key is required.
      assertThat(conditions.getItems().getSchema().getRequired()).as(f).contains("type");
      assertThat(
              conditions
                  .getItems()
                  .getSchema()
                  .getProperties()
                  .get("lastTransitionTime")
                  .getFormat())
          .isEqualTo("date-time");
    }
    JSONSchemaProps status =
        crd(FILES.get(0))
            .getSpec()
            .getVersions()
            .get(0)
            .getSchema()
            .getOpenAPIV3Schema()
            .getProperties()
            .get("status");
    assertThat(status.getProperties().get("startTime").getFormat()).isEqualTo("date-time");
    assertThat(status.getProperties().get("completionTime").getFormat()).isEqualTo("date-time");
    assertThat(
            status
                .getProperties()
                .get("phaseTransitionTimestamps")
                .getItems()
                .getSchema()
                .getProperties()
                .get("time")
                .getFormat())
        .isEqualTo("date-time");
    assertThat(status.getProperties().get("connectionDetails").getMaxItems())
        .isEqualTo(MigrationRequestStatus.MAX_CONNECTION_DETAILS);
  }

  private static CustomResourceDefinition crd(String file) throws IOException {
    return Serialization.unmarshal(
        Files.readString(repoDir("crds").resolve(file)), CustomResourceDefinition.class);
  }

  private static Path repoDir(String name) {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.isDirectory(d.resolve(name)) && Files.exists(d.resolve("pom.xml"))) {
        return d.resolve(name);
      }
    }
    throw new IllegalStateException(name + "/ not found above " + Path.of("").toAbsolutePath());
  }
}
