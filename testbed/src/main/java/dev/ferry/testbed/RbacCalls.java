// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The test API server's RBAC: a request made with the operator's or an agent's credentials is
 * allowed only if helm/rbac-calls.yaml lists that call (its component, API group, resource and
 * verb, and its object's name where the list names one), the list the helm module's RbacTest checks
 * the chart's rules against both ways. So a call the code makes that the list, and with it the
 * chart, does not grant is refused with 403 as a real API server would refuse it ({@link
 * Enforcing}), in the end-to-end tests, the demo, the benchmarks and the unit tests that act as the
 * operator. Where a call is made (its namespace) stays RbacTest's to check.
 */
public final class RbacCalls {
  /** The bearer token each component's processes send here, and the component it stands for. */
  public static final Map<String, String> COMPONENT_OF_TOKEN =
      Map.of("ferry-operator", "operator", "ferry-node-agent", "node-agent");

  /** The token the operator's and the agents' processes send: their ServiceAccount's name. */
  public static String tokenOf(String component) {
    return COMPONENT_OF_TOKEN.entrySet().stream()
        .filter(e -> e.getValue().equals(component))
        .findFirst()
        .orElseThrow()
        .getKey();
  }

  private static final ObjectMapper JSON = new ObjectMapper();

  private static final Map<String, String> VERB_OF_METHOD =
      Map.of("POST", "create", "PUT", "update", "PATCH", "patch");

  private record Call(
      String component, String apiGroup, String resource, Set<String> verbs, String name) {}

  /** One request, as RBAC sees it. */
  public record Request(
      String apiGroup, String resource, String namespace, String name, String verb) {}

  private final List<Call> calls;

  private RbacCalls(List<Call> calls) {
    this.calls = calls;
  }

  /** helm/rbac-calls.yaml, found above the working directory (a module's, or the repository's). */
  public static RbacCalls listed() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path file = d.resolve("helm/rbac-calls.yaml");
      if (Files.exists(file)) {
        try {
          return read(file);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
    throw new IllegalStateException(
        "helm/rbac-calls.yaml not found above " + Path.of("").toAbsolutePath());
  }

  public static RbacCalls read(Path file) throws IOException {
    JsonNode root =
        YAMLMapper.builder()
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build()
            .readTree(file.toFile());
    List<Call> calls = new ArrayList<>();
    for (JsonNode c : root.get("calls")) {
      Set<String> verbs = new HashSet<>();
      c.get("verbs").forEach(v -> verbs.add(v.asText()));
      calls.add(
          new Call(
              c.get("component").asText(),
              c.get("apiGroup").asText(),
              c.get("resource").asText(),
              verbs,
              c.hasNonNull("name") ? c.get("name").asText() : null));
    }
    return new RbacCalls(calls);
  }

  public boolean allows(String component, Request r) {
    return calls.stream()
        .anyMatch(
            c ->
                c.component().equals(component)
                    && c.apiGroup().equals(r.apiGroup())
                    && c.resource().equals(r.resource())
                    && c.verbs().contains(r.verb())
                    && (c.name() == null || c.name().equals(r.name())));
  }

  /**
   * What {@code method} on {@code pathAndQuery} asks RBAC for; empty for a path outside the
   * resource API (discovery, /version), which every user may read.
   */
  public static Optional<Request> of(String method, String pathAndQuery) {
    int q = pathAndQuery.indexOf('?');
    String path = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
    String query = q < 0 ? "" : pathAndQuery.substring(q + 1);
    List<String> s = new ArrayList<>(List.of(path.replaceFirst("^/", "").split("/")));
    String group;
    if (s.size() >= 3 && s.get(0).equals("api")) {
      group = "";
      s = s.subList(2, s.size());
    } else if (s.size() >= 4 && s.get(0).equals("apis")) {
      group = s.get(1);
      s = s.subList(3, s.size());
    } else {
      return Optional.empty();
    }
    String namespace = null;
    if (s.size() >= 3 && s.get(0).equals("namespaces")) {
      namespace = s.get(1);
      s = s.subList(2, s.size());
    }
    String resource = s.get(0);
    String name = s.size() > 1 ? s.get(1) : null;
    if (s.size() > 2) {
      resource += "/" + s.get(2);
    }
    String verb =
        switch (method) {
          case "GET" -> name != null ? "get" : watches(query) ? "watch" : "list";
          case "DELETE" -> name != null ? "delete" : "deletecollection";
          default -> VERB_OF_METHOD.getOrDefault(method, method.toLowerCase());
        };
    return Optional.of(new Request(group, resource, namespace, name, verb));
  }

  private static boolean watches(String query) {
    for (String p : query.split("&")) {
      if (p.equals("watch=true") || p.equals("watch=1")) {
        return true;
      }
    }
    return false;
  }

  /** The 403 a real API server answers, in its words. */
  public static String forbidden(String component, Request r) {
    String group = r.apiGroup().isEmpty() ? "" : "." + r.apiGroup();
    String what =
        r.resource().replaceFirst("/.*", "")
            + group
            + (r.name() == null ? "" : " \"" + r.name() + "\"");
    String message =
        what
            + " is forbidden: User \"system:serviceaccount:ferry-system:"
            + tokenOf(component)
            + "\" cannot "
            + r.verb()
            + " resource \""
            + r.resource()
            + "\" in API group \""
            + r.apiGroup()
            + "\""
            + (r.namespace() == null
                ? " at the cluster scope"
                : " in the namespace \"" + r.namespace() + "\"");
    ObjectNode status = JSON.createObjectNode();
    status.put("kind", "Status").put("apiVersion", "v1");
    status.putObject("metadata");
    status.put("status", "Failure").put("message", message).put("reason", "Forbidden");
    ObjectNode details = status.putObject("details");
    if (r.name() != null) {
      details.put("name", r.name());
    }
    details.put("group", r.apiGroup()).put("kind", r.resource().replaceFirst("/.*", ""));
    status.put("code", 403);
    return status.toString();
  }

  /**
   * Fabric8's CRUD store behind this RBAC: a request with a component's token ({@link #tokenOf})
   * gets that component's rights, any other (the tests' own clients) an admin's ({@link #refusal}).
   */
  public static class Enforcing extends KubernetesCrudDispatcher {
    private final RbacCalls rbac;

    public Enforcing(RbacCalls rbac) {
      this.rbac = rbac;
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) {
      MockResponse refused = rbac.refusal(request);
      return refused != null ? refused : super.dispatch(request);
    }
  }

  /**
   * The 403 a real API server answers {@code request}, if it carries a component's token and the
   * list does not grant that component the call; else null (any other caller is an admin). A
   * refusal is also printed, where a test's log shows it.
   */
  public MockResponse refusal(RecordedRequest request) {
    String auth = request.getHeader("Authorization");
    String component =
        auth == null ? null : COMPONENT_OF_TOKEN.get(auth.replaceFirst("^Bearer ", ""));
    if (component == null) {
      return null;
    }
    Optional<Request> asked = of(request.getMethod(), request.getPath());
    if (asked.isEmpty() || allows(component, asked.get())) {
      return null;
    }
    System.out.println(
        "forbidden: " + component + " " + request.getMethod() + " " + request.getPath());
    System.out.flush();
    return new MockResponse().setResponseCode(403).setBody(forbidden(component, asked.get()));
  }

  /** A client of {@code api} with {@code component}'s rights (operator, node-agent). */
  public static KubernetesClient clientAs(KubernetesMockServer api, String component) {
    Config config =
        new ConfigBuilder(Config.empty())
            .withMasterUrl(api.url("/"))
            .withOauthToken(tokenOf(component))
            .withNamespace("test")
            .build();
    return new KubernetesClientBuilder().withConfig(config).build();
  }
}
