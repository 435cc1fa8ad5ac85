// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cel.common.CelAbstractSyntaxTree;
import dev.cel.common.types.SimpleType;
import dev.cel.compiler.CelCompiler;
import dev.cel.compiler.CelCompilerFactory;
import dev.cel.parser.CelStandardMacro;
import dev.cel.runtime.CelRuntime;
import dev.cel.runtime.CelRuntimeFactory;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.api.model.apiextensions.v1.ValidationRule;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Evaluates the CEL rules of the generated CRDs (crds/, not the Java annotations) with cel-java on
 * sample specs, after the schema's defaults, as the API server does on create and update: good
 * specs pass, bad ones are refused with a message that names the field. Also checks that every
 * string, list and map under a rule has a bound, without which the API server cannot estimate a
 * rule's cost and refuses the CRD.
 */
class CrdRulesTest {
  private static final CelCompiler COMPILER =
      CelCompilerFactory.standardCelCompilerBuilder()
          .setStandardMacros(CelStandardMacro.STANDARD_MACROS)
          .addVar("self", SimpleType.DYN)
          .addVar("oldSelf", SimpleType.DYN)
          .build();
  private static final CelRuntime RUNTIME = CelRuntimeFactory.standardCelRuntimeBuilder().build();

  private final JSONSchemaProps requestSpec = spec("migrationrequests.ferry.dev-v1.yml");
  private final JSONSchemaProps policySpec = spec("migrationpolicies.ferry.dev-v1.yml");

  @Test
  void aRequestWithASourceAndATargetPasses() {
    assertThat(refusals(requestSpec, request("web-0", "web-1"), null)).isEmpty();
    assertThat(refusals(requestSpec, request("web-0", null), null)).isEmpty();
  }

  @Test
  void aRequestWhoseTargetIsItsSourceIsRefusedNamingTheTarget() {
    assertThat(refusals(requestSpec, request("web-0", "web-0"), null))
        .singleElement()
        .asString()
        .startsWith(".target.name:")
        .contains("target.name must name another pod than source.name");
  }

  @Test
  void aHoldLimitLongerThanTheDeadlineIsRefusedNamingHoldLimit() {
    Map<String, Object> spec = request("web-0", "web-1");
    spec.put("holdLimit", "1m30s");
    assertThat(refusals(requestSpec, spec, null))
        .singleElement()
        .asString()
        .startsWith(".holdLimit:")
        .contains("holdLimit must not be longer than deadline");
    spec.put("deadline", "2m");
    assertThat(refusals(requestSpec, spec, null)).isEmpty();
    spec.put("holdLimit", "500ms");
    spec.put("deadline", "1s");
    assertThat(refusals(requestSpec, spec, null)).isEmpty();
  }

  @Test
  void aDryRunThatOnlyPreparesIsRefusedNamingPrepareOnly() {
    Map<String, Object> spec = request("web-0", "web-1");
    spec.put("prepareOnly", true);
    assertThat(refusals(requestSpec, spec, null)).isEmpty();
    spec.put("dryRun", true);
    assertThat(refusals(requestSpec, spec, null))
        .singleElement()
        .asString()
        .startsWith(".prepareOnly:")
        .contains("set dryRun or prepareOnly, not both");
  }

  @Test
  void aPortOutOfRangeAndATargetBesideASelectorAreRefused() {
    Map<String, Object> spec = request("web-0", "web-1");
    spec.put("ports", List.of(8080L, 70000L));
    spec.put("targetSelector", Map.of("app", "web"));
    assertThat(refusals(requestSpec, spec, null))
        .containsExactlyInAnyOrder(
            ".ports: ports must be 1..65535", "spec: set target or targetSelector, not both");
  }

  @Test
  void aRequestsSpecCannotChange() {
    Map<String, Object> old = request("web-0", "web-1");
    Map<String, Object> changed = request("web-0", "web-2");
    assertThat(refusals(requestSpec, changed, old))
        .singleElement()
        .asString()
        .contains("spec cannot change");
    assertThat(refusals(requestSpec, request("web-0", "web-1"), old)).isEmpty();
  }

  @Test
  void aPolicyWithASelectorPassesAndAnEmptyOneOrALongHoldLimitIsRefused() {
    Map<String, Object> policy = new LinkedHashMap<>();
    policy.put("selector", Map.of("app", "web"));
    assertThat(refusals(policySpec, policy, null)).isEmpty();

    policy.put("selector", Map.of());
    policy.put("holdLimit", "2m");
    policy.put("ports", List.of(0L));
    assertThat(refusals(policySpec, policy, null))
        .containsExactlyInAnyOrder(
            ".selector: selector must name at least one label: an empty one would protect every"
                + " pod",
            ".holdLimit: holdLimit must not be longer than 60s, the deadline of the"
                + " MigrationRequests a policy creates",
            ".ports: ports must be 1..65535");
  }

  @Test
  void everyStringListAndMapARuleReadsIsBounded() {
    for (JSONSchemaProps spec : List.of(requestSpec, policySpec)) {
      assertThat(spec.getXKubernetesValidations()).isNotEmpty();
      List<String> unbounded = new ArrayList<>();
      // The rules sit on spec and read its fields (self == oldSelf reads all of them).
      unboundedUnder("spec", spec, unbounded);
      assertThat(unbounded).as("fields without maxLength/maxItems/maxProperties").isEmpty();
    }
  }

  private static void unboundedUnder(String path, JSONSchemaProps s, List<String> out) {
    switch (s.getType()) {
      case "string" -> {
        if (s.getMaxLength() == null && s.getEnum() == null) {
          out.add(path);
        }
      }
      case "array" -> {
        if (s.getMaxItems() == null) {
          out.add(path);
        }
        unboundedUnder(path + "[]", s.getItems().getSchema(), out);
      }
      case "object" -> {
        if (s.getAdditionalProperties() != null) {
          if (s.getMaxProperties() == null) {
            out.add(path);
          }
          unboundedUnder(path + "{}", s.getAdditionalProperties().getSchema(), out);
        }
        if (s.getProperties() != null) {
          s.getProperties().forEach((name, p) -> unboundedUnder(path + "." + name, p, out));
        }
      }
      default -> {}
    }
  }

  /**
   * The messages of the rules on {@code schema} that refuse {@code value}, each as FIELDPATH:
   * MESSAGE; transition rules (oldSelf) only when there is an old value, as on an update.
   */
  private static List<String> refusals(
      JSONSchemaProps schema, Map<String, Object> value, Map<String, Object> old) {
    Map<String, Object> self = defaulted(schema, value);
    List<String> refused = new ArrayList<>();
    for (ValidationRule rule : schema.getXKubernetesValidations()) {
      boolean transition = rule.getRule().contains("oldSelf");
      if (transition && old == null) {
        continue;
      }
      Map<String, Object> vars = new HashMap<>();
      vars.put("self", self);
      if (transition) {
        vars.put("oldSelf", defaulted(schema, old));
      }
      if (!Boolean.TRUE.equals(evaluate(rule.getRule(), vars))) {
        String field = rule.getFieldPath() == null ? "spec" : rule.getFieldPath();
        refused.add(field + ": " + rule.getMessage());
      }
    }
    return refused;
  }

  private static Object evaluate(String rule, Map<String, Object> vars) {
    try {
      CelAbstractSyntaxTree ast = COMPILER.compile(rule).getAst();
      return RUNTIME.createProgram(ast).eval(vars);
    } catch (Exception e) {
      throw new AssertionError("rule " + rule + " does not evaluate: " + e.getMessage(), e);
    }
  }

  /** The value with the schema's defaults for its missing top-level fields. */
  private static Map<String, Object> defaulted(JSONSchemaProps schema, Map<String, Object> value) {
    Map<String, Object> v = new LinkedHashMap<>(value);
    schema
        .getProperties()
        .forEach(
            (name, p) -> {
              if (p.getDefault() != null && !v.containsKey(name)) {
                v.put(name, p.getDefault().asText());
              }
            });
    return v;
  }

  private static Map<String, Object> request(String source, String target) {
    Map<String, Object> spec = new LinkedHashMap<>();
    spec.put("source", Map.of("name", source));
    if (target != null) {
      spec.put("target", Map.of("name", target));
    }
    return spec;
  }

  private static JSONSchemaProps spec(String file) {
    try {
      CustomResourceDefinition crd =
          Serialization.unmarshal(
              Files.readString(crds().resolve(file)), CustomResourceDefinition.class);
      return crd.getSpec()
          .getVersions()
          .get(0)
          .getSchema()
          .getOpenAPIV3Schema()
          .getProperties()
          .get("spec");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static Path crds() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.isDirectory(d.resolve("crds")) && Files.exists(d.resolve("pom.xml"))) {
        return d.resolve("crds");
      }
    }
    throw new IllegalStateException("crds/ not found above " + Path.of("").toAbsolutePath());
  }
}
