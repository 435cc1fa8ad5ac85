// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.crdv2.generator.CRDPostProcessor;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceColumnDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinitionVersion;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Says in the generated CRDs what Fabric8's crd-generator (7.5) has no annotation for, by rules
 * that follow from the Java types, so that the types stay the one source:
 *
 * <ul>
 *   <li>printer columns in the order the class declares them (the generator sorts them by JSON
 *       path, which would put AGE first);
 *   <li>every {@code conditions} list is a map keyed by type ({@code x-kubernetes-list-type: map}),
 *       whose key the API server requires to be required;
 *   <li>every string property named {@code time} or {@code ...Time} has {@code format: date-time}
 *       (the Kubernetes convention for timestamps, which the types keep as RFC 3339 strings).
 * </ul>
 */
final class CrdFinish implements CRDPostProcessor {
  private final Map<String, Class<?>> byKind;

  CrdFinish(Class<?>... types) {
    this.byKind =
        List.of(types).stream()
            .collect(Collectors.toMap(Class::getSimpleName, Function.identity()));
  }

  @Override
  public HasMetadata process(HasMetadata resource, String crdSpecVersion) {
    CustomResourceDefinition crd = (CustomResourceDefinition) resource;
    Class<?> type = byKind.get(crd.getSpec().getNames().getKind());
    for (CustomResourceDefinitionVersion v : crd.getSpec().getVersions()) {
      v.setAdditionalPrinterColumns(inDeclaredOrder(type, v.getAdditionalPrinterColumns()));
      finish("", v.getSchema().getOpenAPIV3Schema());
    }
    return crd;
  }

  private static List<CustomResourceColumnDefinition> inDeclaredOrder(
      Class<?> type, List<CustomResourceColumnDefinition> generated) {
    List<CustomResourceColumnDefinition> ordered = new ArrayList<>();
    for (AdditionalPrinterColumn c : type.getAnnotationsByType(AdditionalPrinterColumn.class)) {
      generated.stream()
          .filter(g -> g.getJsonPath().equals(c.jsonPath()))
          .findFirst()
          .ifPresent(ordered::add);
    }
    if (ordered.size() != generated.size()) {
      throw new IllegalStateException(type + ": a printer column is not declared on the class");
    }
    return ordered;
  }

  private static void finish(String name, JSONSchemaProps schema) {
    if (schema == null) {
      return;
    }
    if ("string".equals(schema.getType()) && (name.equals("time") || name.endsWith("Time"))) {
      schema.setFormat("date-time");
    }
    if (name.equals("conditions") && "array".equals(schema.getType())) {
      schema.setXKubernetesListType("map");
      schema.setXKubernetesListMapKeys(List.of("type"));
      Set<String> required = new LinkedHashSet<>(List.of("type", "status"));
      if (schema.getItems().getSchema().getRequired() != null) {
        required.addAll(schema.getItems().getSchema().getRequired());
      }
      schema.getItems().getSchema().setRequired(new ArrayList<>(required));
    }
    if (schema.getProperties() != null) {
      schema.getProperties().forEach(CrdFinish::finish);
    }
    if (schema.getItems() != null) {
      finish("", schema.getItems().getSchema());
    }
    if (schema.getAdditionalProperties() != null) {
      finish("", schema.getAdditionalProperties().getSchema());
    }
  }
}
