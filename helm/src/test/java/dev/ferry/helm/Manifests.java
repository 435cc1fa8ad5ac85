// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.Duration;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Rendered manifests, each parsed strictly into its Fabric8 model class: a kind without a model
 * class, a field the model does not know, a value of the wrong type, or a duplicate key fails the
 * parse, naming the object and the field.
 *
 * <p>Fabric8's models accept unknown fields into {@code additionalProperties} (a Jackson any-
 * setter), so Jackson's FAIL_ON_UNKNOWN_PROPERTIES cannot make them strict; instead every parsed
 * object graph is walked for a non-empty {@code additionalProperties}, and the object, written back
 * to JSON, must equal the document it was read from.
 */
final class Manifests {
  private static final KubernetesSerialization SERIALIZATION = new KubernetesSerialization();
  private static final ObjectMapper YAML =
      YAMLMapper.builder().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();
  private static final ObjectMapper JSON = new ObjectMapper();

  private final List<HasMetadata> objects;

  private Manifests(List<HasMetadata> objects) {
    this.objects = List.copyOf(objects);
  }

  static Manifests parse(String yaml) {
    List<HasMetadata> out = new ArrayList<>();
    try (MappingIterator<JsonNode> docs = YAML.readerFor(JsonNode.class).readValues(yaml)) {
      int index = 0;
      while (docs.hasNext()) {
        JsonNode doc = docs.next();
        index++;
        if (doc == null || doc.isNull() || doc.isMissingNode() || doc.isEmpty()) {
          continue; // what a "---" before nothing leaves
        }
        out.add(strictly(doc, index));
      }
    } catch (IOException e) {
      throw new AssertionError("the rendered manifests are not valid YAML: " + e.getMessage(), e);
    }
    return new Manifests(out);
  }

  private static HasMetadata strictly(JsonNode doc, int index) throws IOException {
    String what =
        "document "
            + index
            + " ("
            + doc.path("apiVersion").asText("?")
            + " "
            + doc.path("kind").asText("?")
            + " "
            + doc.path("metadata").path("name").asText("?")
            + ")";
    Object parsed;
    try {
      parsed = SERIALIZATION.unmarshal(JSON.writeValueAsString(doc));
    } catch (RuntimeException e) {
      throw new AssertionError(what + " does not parse into its model: " + e.getMessage(), e);
    }
    if (!(parsed instanceof HasMetadata object) || parsed instanceof GenericKubernetesResource) {
      throw new AssertionError(what + ": no Fabric8 model class knows this apiVersion and kind");
    }
    List<String> unknown = new ArrayList<>();
    unknownFields(
        object, object.getKind(), Collections.newSetFromMap(new IdentityHashMap<>()), unknown);
    if (!unknown.isEmpty()) {
      throw new AssertionError(what + " has fields its model does not know: " + unknown);
    }
    String changed = difference(doc, JSON.readTree(SERIALIZATION.asJson(object)), "");
    if (changed != null) {
      throw new AssertionError(
          what
              + " changes when parsed and written back, so part of it was not understood: "
              + changed);
    }
    return object;
  }

  private static void unknownFields(Object o, String path, Set<Object> seen, List<String> out) {
    if (o == null) {
      return;
    }
    if (o instanceof Map<?, ?> m) {
      m.forEach((k, v) -> unknownFields(v, path + "." + k, seen, out));
      return;
    }
    if (o instanceof Collection<?> c) {
      int i = 0;
      for (Object e : c) {
        unknownFields(e, path + "[" + i++ + "]", seen, out);
      }
      return;
    }
    if (!o.getClass().getName().startsWith("io.fabric8.") || !seen.add(o)) {
      return;
    }
    for (Class<?> k = o.getClass(); k != null && k != Object.class; k = k.getSuperclass()) {
      for (Field f : k.getDeclaredFields()) {
        if (Modifier.isStatic(f.getModifiers()) || f.getType().isPrimitive()) {
          continue;
        }
        Object v;
        try {
          f.setAccessible(true);
          v = f.get(o);
        } catch (ReflectiveOperationException | RuntimeException e) {
          continue;
        }
        if (f.getName().equals("additionalProperties") && v instanceof Map<?, ?> extra) {
          if (!extra.isEmpty()) {
            out.add(path + ": " + extra.keySet());
          }
        } else {
          unknownFields(v, path + "." + f.getName(), seen, out);
        }
      }
    }
  }

  /**
   * Where {@code got} differs from {@code want}, or null where they are the same. Two strings that
   * are the same Go duration are the same: Fabric8 writes {@code 87600h} back in nanoseconds.
   */
  private static String difference(JsonNode want, JsonNode got, String path) {
    if (want.equals(got) || sameDuration(want, got)) {
      return null;
    }
    if (want.isObject() && got.isObject()) {
      Set<String> names = new java.util.TreeSet<>();
      want.fieldNames().forEachRemaining(names::add);
      got.fieldNames().forEachRemaining(names::add);
      for (String n : names) {
        JsonNode a = want.get(n);
        JsonNode b = got.get(n);
        if (a == null || b == null) {
          return path + "." + n + ": rendered " + a + ", parsed " + b;
        }
        String d = difference(a, b, path + "." + n);
        if (d != null) {
          return d;
        }
      }
      return null;
    }
    if (want.isArray() && got.isArray() && want.size() == got.size()) {
      Iterator<JsonNode> a = want.elements();
      Iterator<JsonNode> b = got.elements();
      for (int i = 0; a.hasNext(); i++) {
        String d = difference(a.next(), b.next(), path + "[" + i + "]");
        if (d != null) {
          return d;
        }
      }
      return null;
    }
    return path + ": rendered " + want + ", parsed " + got;
  }

  private static boolean sameDuration(JsonNode a, JsonNode b) {
    if (!a.isTextual() || !b.isTextual()) {
      return false;
    }
    try {
      return Duration.parse(a.asText())
          .getDuration()
          .equals(Duration.parse(b.asText()).getDuration());
    } catch (java.text.ParseException | RuntimeException e) {
      return false;
    }
  }

  List<HasMetadata> all() {
    return objects;
  }

  <T extends HasMetadata> List<T> all(Class<T> kind) {
    return objects.stream().filter(kind::isInstance).map(kind::cast).toList();
  }

  /** The one object of {@code kind} named {@code name}; fails naming what there is instead. */
  <T extends HasMetadata> T one(Class<T> kind, String name) {
    List<T> found = all(kind).stream().filter(o -> name.equals(o.getMetadata().getName())).toList();
    if (found.size() != 1) {
      throw new AssertionError(
          "expected one "
              + kind.getSimpleName()
              + " named "
              + name
              + ", found "
              + found.size()
              + " among "
              + all(kind).stream().map(o -> o.getMetadata().getName()).toList());
    }
    return found.get(0);
  }

  /** The one object of {@code kind}. */
  <T extends HasMetadata> T one(Class<T> kind) {
    List<T> found = all(kind);
    if (found.size() != 1) {
      throw new AssertionError("expected one " + kind.getSimpleName() + ", found " + found.size());
    }
    return found.get(0);
  }

  /** An environment variable's literal value, or null when it is not set or not a literal. */
  static String env(List<EnvVar> env, String name) {
    return env.stream()
        .filter(e -> e.getName().equals(name))
        .map(EnvVar::getValue)
        .findFirst()
        .orElse(null);
  }

  static JsonNode yaml(String text) {
    try {
      return YAML.readTree(text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static ObjectMapper yamlMapper() {
    return YAML;
  }
}
