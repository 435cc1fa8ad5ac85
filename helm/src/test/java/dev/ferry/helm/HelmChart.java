// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import com.marcnuri.helm.TemplateCommand;
import io.fabric8.kubernetes.api.model.APIResourceBuilder;
import io.fabric8.kubernetes.api.model.APIResourceListBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * Helm, run on the chart through helm-java (the native Helm library as a Maven artifact), and the
 * API server its {@code template} asks.
 *
 * <p>The chart's {@code lookup} (keeping the certificates on upgrade) makes helm-java's {@code
 * template} call an API server, where the helm CLI's renders offline: so a Fabric8 mock API server
 * runs for the tests, and Maven points {@code KUBECONFIG} at the file this class writes for it
 * (helm/pom.xml). A Secret the tests create there is what {@code lookup} finds.
 */
final class HelmChart {
  static final String RELEASE = "ferry";
  static final String NAMESPACE = "ferry-system";
  static final String KUBE_VERSION = "1.30.0";

  /**
   * The sets of values the chart is rendered with: its defaults (cert-manager issues the
   * certificates), and helm/ferry/ci/*.yaml (CSI_DRIVER: each agent's own certificate from
   * cert-manager's csi-driver).
   */
  enum ValueSet {
    DEFAULT(null),
    AWS("values-aws.yaml"),
    L2("values-l2.yaml"),
    CERT_MANAGER("values-cert-manager.yaml"),
    CHART_CERTIFICATES("values-chart-certificates.yaml"),
    CSI_DRIVER("values-csi-driver.yaml");

    private final String file;

    ValueSet(String file) {
      this.file = file;
    }

    /** The values file, or null for the chart's defaults. */
    Path file() {
      return file == null ? null : Repo.chart().resolve("ci").resolve(file);
    }
  }

  private static final KubernetesMockServer API = startApiServer();
  private static final Map<ValueSet, Manifests> RENDERED = new ConcurrentHashMap<>();

  private HelmChart() {}

  /**
   * The manifests of {@code set}, rendered once per test run and parsed strictly. The text is kept
   * in target/rendered/ to read.
   */
  static Manifests render(ValueSet set) {
    return RENDERED.computeIfAbsent(
        set,
        s -> {
          String text = template(NAMESPACE, s.file());
          try {
            Path out = Path.of("target", "rendered", s.name().toLowerCase() + ".yaml");
            Files.createDirectories(out.getParent());
            Files.writeString(out, text);
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
          return Manifests.parse(text);
        });
  }

  /** {@code helm template ferry helm/ferry -n NAMESPACE [-f values]}; Helm's error if it fails. */
  static synchronized String template(String namespace, Path values) {
    TemplateCommand t =
        new Helm(Repo.chart())
            .template()
            .withName(RELEASE)
            .withNamespace(namespace)
            .withKubeVersion(KUBE_VERSION);
    if (values != null) {
      t.withValuesFile(values);
    }
    return t.call();
  }

  /**
   * The manifests rendered with {@code values} (YAML) over the chart's defaults, parsed strictly.
   */
  static Manifests renderWith(String values) {
    return Manifests.parse(template(NAMESPACE, valuesFile(values)));
  }

  /** {@code values} (YAML) in a file under target/values/, for {@code -f}. */
  static Path valuesFile(String values) {
    try {
      Path dir = Files.createDirectories(Path.of("target", "values"));
      Path file = Files.createTempFile(dir, "values-", ".yaml");
      Files.writeString(file, values);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Helm's message for a {@code helm template} that must fail; fails the test if it renders. */
  static String templateFailure(Path values) {
    try {
      template(NAMESPACE, values);
    } catch (IllegalStateException e) {
      return e.getMessage();
    }
    throw new AssertionError("helm template accepted " + values);
  }

  /**
   * {@code helm lint --strict} with {@code values} on top of the chart's: helm-java's lint takes no
   * values file, so the chart is copied to {@code scratch} with the two merged into its
   * values.yaml, as Helm itself merges them.
   */
  static synchronized LintResult lint(Path values, Path scratch) {
    if (values == null) {
      return new Helm(Repo.chart()).lint().strict().call();
    }
    Path copy = scratch.resolve("ferry");
    copyTree(Repo.chart(), copy);
    try {
      JsonNode defaults = Manifests.yaml(Files.readString(Repo.chart().resolve("values.yaml")));
      JsonNode over = Manifests.yaml(Files.readString(values));
      Files.writeString(
          copy.resolve("values.yaml"),
          Manifests.yamlMapper().writeValueAsString(merge(defaults.deepCopy(), over)));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new Helm(copy).lint().strict().call();
  }

  static String helmVersion() {
    return Helm.version().call();
  }

  /** A client of the API server that helm's {@code lookup} reads. */
  static KubernetesClient api() {
    return API.createClient();
  }

  /** Maps merge key by key; anything else is replaced, as Helm coalesces values. */
  private static JsonNode merge(JsonNode base, JsonNode over) {
    if (base instanceof ObjectNode b && over != null && over.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = over.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        JsonNode mine = b.get(e.getKey());
        b.set(e.getKey(), mine == null ? e.getValue() : merge(mine, e.getValue()));
      }
      return b;
    }
    return over;
  }

  static void copyTree(Path from, Path to) {
    try (Stream<Path> files = Files.walk(from)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Path target = to.resolve(from.relativize(f).toString());
        if (Files.isDirectory(f)) {
          Files.createDirectories(target);
        } else {
          Files.copy(f, target);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The mock API server's CRUD store, answering also the discovery of the core group that {@code
   * lookup} makes first ({@code GET /api/v1?timeout=32s}, which no path expectation matches).
   */
  private static final class Discovery extends KubernetesMixedDispatcher {
    private static final String CORE_V1 =
        new KubernetesSerialization()
            .asJson(
                new APIResourceListBuilder()
                    .withGroupVersion("v1")
                    .addToResources(
                        new APIResourceBuilder()
                            .withName("secrets")
                            .withKind("Secret")
                            .withNamespaced(true)
                            .withSingularName("secret")
                            .withVerbs("get", "list", "create", "delete")
                            .build())
                    .build());

    Discovery(Map<ServerRequest, Queue<ServerResponse>> responses) {
      super(responses);
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) {
      String path = request.getPath();
      if ("GET".equals(request.getMethod())
          && (path.equals("/api/v1") || path.startsWith("/api/v1?"))) {
        return new MockResponse()
            .setResponseCode(200)
            .setHeader("Content-Type", "application/json")
            .setBody(CORE_V1);
      }
      return super.dispatch(request);
    }
  }

  private static KubernetesMockServer startApiServer() {
    String kubeconfig = System.getenv("KUBECONFIG");
    if (kubeconfig == null || kubeconfig.isBlank()) {
      throw new IllegalStateException(
          "KUBECONFIG is not set: run these tests through Maven (helm/pom.xml points it at the"
              + " mock API server that helm-java's template needs for the chart's lookup)");
    }
    Map<ServerRequest, Queue<ServerResponse>> responses = new HashMap<>();
    KubernetesMockServer server =
        new KubernetesMockServer(
            new Context(), new MockWebServer(), responses, new Discovery(responses), false);
    server.init();
    String config =
        """
        apiVersion: v1
        kind: Config
        clusters:
          - name: mock
            cluster:
              server: http://%s:%d
        users:
          - name: mock
            user:
              token: mock
        contexts:
          - name: mock
            context:
              cluster: mock
              user: mock
        current-context: mock
        """
            .formatted(server.getHostName(), server.getPort());
    try {
      Path file = Path.of(kubeconfig);
      Files.createDirectories(file.toAbsolutePath().getParent());
      Files.writeString(file, config);
    } catch (IOException e) {
      throw new UncheckedIOException("writing " + kubeconfig, e);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(server::destroy));
    return server;
  }
}
