// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
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
import java.util.TreeSet;

/**
 * The test API server's RBAC: a request made with the operator's or an agent's credentials is
 * allowed only if helm/rbac-calls.yaml lists that call for a release like the caller's ({@link
 * Caller}): its component, API group, resource and verb; its object's name where the list names
 * one; the namespace where the list limits the call to one (the release's own, or a fixed one);
 * and, for a call the chart grants only with an option on ({@code when}), that option. It is the
 * list the helm module's RbacTest checks the chart's rules against both ways, so a call the code
 * makes that the chart does not grant is refused with 403 as a real API server would refuse it
 * ({@link Enforcing}), in the end-to-end tests, the demo, the benchmarks and the unit tests that
 * act as the operator or an agent.
 */
public final class RbacCalls {
  /** Each component's ServiceAccount, as the chart names it. */
  public static final Map<String, String> SERVICE_ACCOUNTS =
      Map.of("operator", "ferry-operator", "node-agent", "ferry-node-agent");

  /** The namespace of the release a unit test's component belongs to, unless it says otherwise. */
  public static final String RELEASE_NAMESPACE = "ferry-system";

  /**
   * Who calls: {@code component}'s ServiceAccount in a release installed in {@code namespace}, with
   * the chart's options in {@code enabled} on (the list's {@code when}: imds, queue, csi), which
   * grant more. Its {@link #token} is what the component's process sends as its bearer token.
   */
  public record Caller(String component, String namespace, Set<String> enabled) {
    public Caller {
      if (!SERVICE_ACCOUNTS.containsKey(component)) {
        throw new IllegalArgumentException(
            "component: " + component + " is none of " + SERVICE_ACCOUNTS.keySet());
      }
      enabled = Set.copyOf(enabled);
    }

    /** {@code component} in a release in {@link #RELEASE_NAMESPACE}, with the chart's defaults. */
    public static Caller of(String component) {
      return new Caller(component, RELEASE_NAMESPACE, Set.of());
    }

    public Caller in(String releaseNamespace) {
      return new Caller(component, releaseNamespace, enabled);
    }

    /** With more of the chart's options on ({@code when}: imds, queue, csi). */
    public Caller with(String... options) {
      Set<String> more = new HashSet<>(enabled);
      more.addAll(List.of(options));
      return new Caller(component, namespace, more);
    }

    /** Its user name, as a real API server names a ServiceAccount. */
    public String user() {
      return "system:serviceaccount:" + namespace + ":" + SERVICE_ACCOUNTS.get(component);
    }

    /** The user name, then the options on after a semicolon: tokens here are not secret. */
    public String token() {
      return enabled.isEmpty() ? user() : user() + ";" + String.join(",", new TreeSet<>(enabled));
    }

    /** The caller a token names; empty for any other token (the tests' own, an admin's). */
    static Optional<Caller> ofToken(String token) {
      String[] userAndOptions = token.split(";", 2);
      String[] user = userAndOptions[0].split(":");
      if (user.length != 4 || !user[0].equals("system") || !user[1].equals("serviceaccount")) {
        return Optional.empty();
      }
      Set<String> enabled =
          userAndOptions.length == 1 ? Set.of() : Set.of(userAndOptions[1].split(","));
      return SERVICE_ACCOUNTS.entrySet().stream()
          .filter(e -> e.getValue().equals(user[3]))
          .findFirst()
          .map(e -> new Caller(e.getKey(), user[2], enabled));
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();

  private static final Map<String, String> VERB_OF_METHOD =
      Map.of("POST", "create", "PUT", "update", "PATCH", "patch");

  /**
   * One line of helm/rbac-calls.yaml: a call {@code component}'s program makes ({@code file}
   * contains {@code mark}) and what RBAC must grant for it (the file's header says each field).
   */
  @JsonIgnoreProperties({"why"})
  public record Call(
      String component,
      String apiGroup,
      String resource,
      List<String> verbs,
      String scope,
      String namespace,
      String name,
      String when,
      String grantedBy,
      String file,
      String mark) {
    /**
     * Whether a request in namespace {@code requested} (null: cluster-scoped, or across all
     * namespaces) is where the chart grants this call to a release in {@code releaseNamespace}.
     */
    boolean grantedIn(String requested, String releaseNamespace) {
      return switch (scope) {
        // A ClusterRole bound cluster-wide: every namespace, and across all of them.
        case "all-namespaces" -> true;
        case "cluster" -> requested == null;
        // A Role: its own namespace only.
        case "namespace" ->
            (namespace.equals("release") ? releaseNamespace : namespace).equals(requested);
        default -> throw new IllegalStateException("scope: " + scope);
      };
    }
  }

  private record Calls(List<Call> calls) {}

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

  /** The calls {@code file} lists; an unknown field is an error (a misspelt one grants nothing). */
  public static RbacCalls read(Path file) throws IOException {
    return new RbacCalls(
        YAMLMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build()
            .readValue(file.toFile(), Calls.class)
            .calls());
  }

  /** Every call listed, in the list's order. */
  public List<Call> calls() {
    return calls;
  }

  public boolean allows(Caller caller, Request r) {
    return calls.stream()
        .anyMatch(
            c ->
                c.component().equals(caller.component())
                    && (c.when() == null || caller.enabled().contains(c.when()))
                    && c.apiGroup().equals(r.apiGroup())
                    && c.resource().equals(r.resource())
                    && c.verbs().contains(r.verb())
                    && (c.name() == null || c.name().equals(r.name()))
                    && c.grantedIn(r.namespace(), caller.namespace()));
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
  public static String forbidden(Caller caller, Request r) {
    String group = r.apiGroup().isEmpty() ? "" : "." + r.apiGroup();
    String what =
        r.resource().replaceFirst("/.*", "")
            + group
            + (r.name() == null ? "" : " \"" + r.name() + "\"");
    String message =
        what
            + " is forbidden: User \""
            + caller.user()
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
   * Fabric8's CRUD store ({@link ApiServerCrud}) behind this RBAC: a request with a component's
   * token ({@link Caller#token}) gets that component's rights, any other (the tests' own clients)
   * an admin's ({@link #refusal}).
   */
  public static class Enforcing extends ApiServerCrud {
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
    Optional<Caller> caller =
        auth == null ? Optional.empty() : Caller.ofToken(auth.replaceFirst("^Bearer ", ""));
    if (caller.isEmpty()) {
      return null;
    }
    Optional<Request> asked = of(request.getMethod(), request.getPath());
    if (asked.isEmpty() || allows(caller.get(), asked.get())) {
      return null;
    }
    System.out.println(
        "forbidden: " + caller.get().token() + " " + request.getMethod() + " " + request.getPath());
    System.out.flush();
    return new MockResponse().setResponseCode(403).setBody(forbidden(caller.get(), asked.get()));
  }

  /** A client of {@code api} with {@code caller}'s rights. */
  public static KubernetesClient clientAs(KubernetesMockServer api, Caller caller) {
    Config config =
        new ConfigBuilder(Config.empty())
            .withMasterUrl(api.url("/"))
            .withOauthToken(caller.token())
            .withNamespace("test")
            .build();
    return new KubernetesClientBuilder().withConfig(config).build();
  }
}
