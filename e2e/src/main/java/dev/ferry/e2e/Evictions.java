// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.KubernetesResourceList;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorRequirement;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodList;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudgetList;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The eviction subresource ({@code POST .../pods/NAME/eviction}), which Fabric8's mock server does
 * not have, as the real API server answers it: a pod some PodDisruptionBudget covers is evicted
 * only while the budget allows a disruption, else 429 TooManyRequests (kubectl drain and Karpenter
 * retry on it); a pod covered by two budgets is refused with 500; a pod that is not running is
 * evicted regardless. There is no disruption controller here, so the budget's disruptionsAllowed is
 * worked out on the spot from the pods it selects, as that controller would.
 */
final class Evictions {
  static final Pattern PATH =
      Pattern.compile("^/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction(\\?.*)?$");

  /** An answer: the HTTP code and a Status body. */
  record Answer(int code, String body) {}

  private final Function<String, Optional<String>> get;
  private final Consumer<String> delete;

  /**
   * @param get the stored object or list at an API path, as JSON
   * @param delete deletes the object at an API path
   */
  Evictions(Function<String, Optional<String>> get, Consumer<String> delete) {
    this.get = get;
    this.delete = delete;
  }

  Answer evict(String path) {
    Matcher m = PATH.matcher(path);
    if (!m.matches()) {
      throw new IllegalArgumentException("not an eviction: " + path);
    }
    String ns = m.group(1);
    String name = m.group(2);
    String podPath = "/api/v1/namespaces/" + ns + "/pods/" + name;
    Optional<String> json = get.apply(podPath);
    if (json.isEmpty()) {
      return failure(404, "NotFound", "pods \"" + name + "\" not found", null);
    }
    Pod pod = Serialization.unmarshal(json.get(), Pod.class);
    String phase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
    if (!"Running".equals(phase)) {
      // As the API server does: a pod that is not running disrupts nothing.
      return evicted(podPath);
    }
    List<PodDisruptionBudget> covering =
        list(
                "/apis/policy/v1/namespaces/" + ns + "/poddisruptionbudgets",
                PodDisruptionBudgetList.class)
            .stream()
            .filter(b -> b.getSpec() != null && selects(b.getSpec().getSelector(), labels(pod)))
            .toList();
    if (covering.size() > 1) {
      return failure(
          500,
          "InternalError",
          "This pod has more than one PodDisruptionBudget, which the eviction subresource does"
              + " not support.",
          null);
    }
    if (covering.size() == 1) {
      PodDisruptionBudget b = covering.get(0);
      List<Pod> selected =
          list("/api/v1/namespaces/" + ns + "/pods", PodList.class).stream()
              .filter(p -> selects(b.getSpec().getSelector(), labels(p)))
              .toList();
      int expected = selected.size();
      int healthy = (int) selected.stream().filter(Evictions::ready).count();
      int desired = desiredHealthy(b, expected);
      if (healthy - desired <= 0) {
        return failure(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            "The disruption budget "
                + b.getMetadata().getName()
                + " needs "
                + desired
                + " healthy pods and has "
                + healthy
                + " currently");
      }
    }
    return evicted(podPath);
  }

  private Answer evicted(String podPath) {
    delete.accept(podPath);
    return new Answer(
        201, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\"}");
  }

  private static int desiredHealthy(PodDisruptionBudget b, int expected) {
    IntOrString min = b.getSpec().getMinAvailable();
    IntOrString max = b.getSpec().getMaxUnavailable();
    if (max != null) {
      return expected - scaled(max, expected);
    }
    if (min != null) {
      return scaled(min, expected);
    }
    return expected; // neither set: the API server refuses such a budget; allow nothing
  }

  /** An int, or a percentage of {@code of} rounded up, as the disruption controller reads it. */
  private static int scaled(IntOrString v, int of) {
    if (v.getIntVal() != null) {
      return v.getIntVal();
    }
    String s = v.getStrVal();
    int percent = Integer.parseInt(s.substring(0, s.length() - 1));
    return (int) Math.ceil(of * percent / 100.0);
  }

  /** policy/v1 semantics: a null selector selects nothing, an empty one every pod. */
  static boolean selects(LabelSelector selector, Map<String, String> labels) {
    if (selector == null) {
      return false;
    }
    if (selector.getMatchLabels() != null) {
      for (Map.Entry<String, String> e : selector.getMatchLabels().entrySet()) {
        if (!e.getValue().equals(labels.get(e.getKey()))) {
          return false;
        }
      }
    }
    if (selector.getMatchExpressions() != null) {
      for (LabelSelectorRequirement r : selector.getMatchExpressions()) {
        String value = labels.get(r.getKey());
        boolean ok =
            switch (r.getOperator()) {
              case "In" -> value != null && r.getValues().contains(value);
              case "NotIn" -> value == null || !r.getValues().contains(value);
              case "Exists" -> value != null;
              case "DoesNotExist" -> value == null;
              default ->
                  throw new IllegalArgumentException(
                      "unknown selector operator " + r.getOperator());
            };
        if (!ok) {
          return false;
        }
      }
    }
    return true;
  }

  private static boolean ready(Pod p) {
    return p.getStatus() != null
        && p.getStatus().getConditions() != null
        && p.getStatus().getConditions().stream()
            .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
  }

  private static Map<String, String> labels(Pod p) {
    return p.getMetadata().getLabels() == null ? Map.of() : p.getMetadata().getLabels();
  }

  private <T extends HasMetadata> List<T> list(
      String path, Class<? extends KubernetesResourceList<T>> type) {
    return get.apply(path)
        .<List<T>>map(json -> List.copyOf(Serialization.unmarshal(json, type).getItems()))
        .orElse(List.of());
  }

  private static Answer failure(int code, String reason, String message, String cause) {
    String details =
        cause == null
            ? ""
            : ",\"details\":{\"causes\":[{\"reason\":\"DisruptionBudget\",\"message\":"
                + Serialization.asJson(cause)
                + "}]}";
    return new Answer(
        code,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
            + "\"message\":"
            + Serialization.asJson(message)
            + ",\"reason\":\""
            + reason
            + "\""
            + details
            + ",\"code\":"
            + code
            + "}");
  }
}
