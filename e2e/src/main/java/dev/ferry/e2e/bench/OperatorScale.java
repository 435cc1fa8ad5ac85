// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.e2e.ApiServer;
import dev.ferry.e2e.Builds;
import dev.ferry.e2e.ClusterObjects;
import dev.ferry.e2e.Mains;
import dev.ferry.e2e.Processes;
import dev.ferry.testbed.Shell;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * {@code make bench-operator}: the operator at scale, without the kernel. The operator (the Quarkus
 * build, as a process) runs against the test API server and {@link SimulatedAgents} (one gRPC
 * server over mTLS that answers for every node; each Move takes {@code --agent-ms}). A spot reclaim
 * of half the nodes: {@code --nodes} nodes, source pods on the first half, targets on the second;
 * {@code --requests} MigrationRequests created within a second. For each count it prints the time
 * until every request ended against the least its agents and limits allow, what each migration held
 * a slot for beyond its agents' time (that time, times the slots, over the count: everything the
 * operator adds, the API server's waits, the admissions and the writes after Moving's clock stops
 * included), the operator's own time per migration as its phase clocks give it (Preparing, and
 * Moving beyond the agents' time; over all requests, and over the later half by start, past the
 * creation burst), the API-server requests the operator made per migration (writes apart), the CPU
 * the operator used per migration (its JIT compilers apart: the operator's own work, which the
 * times above add to what it waits for on the shared cores and the API server), its memory, and how
 * the limits ordered the work.
 */
public final class OperatorScale {
  private static final String NAMESPACE = "shop";
  private static final String BENCH_AGENT = "ferry-bench";

  private OperatorScale() {}

  public static void main(String[] args) {
    Mains.exitWith("OperatorScale", () -> run(args));
  }

  record Options(
      List<Integer> requests, int nodes, Duration agentTime, int perCluster, int perNode) {
    static Options parse(String[] argv) {
      List<Integer> requests = List.of(100, 1000);
      int nodes = 200;
      Duration agent = Duration.ofMillis(50);
      int perCluster = 5;
      int perNode = 2;
      String[] a = String.join(" ", argv).trim().split("\\s+");
      for (int i = 0; i + 1 < a.length; i += 2) {
        String v = a[i + 1];
        switch (a[i]) {
          case "--requests" ->
              requests = Arrays.stream(v.split(",")).map(Integer::parseInt).toList();
          case "--nodes" -> nodes = Integer.parseInt(v);
          case "--agent-ms" -> agent = Duration.ofMillis(Long.parseLong(v));
          case "--per-cluster" -> perCluster = Integer.parseInt(v);
          case "--per-node" -> perNode = Integer.parseInt(v);
          default ->
              throw new IllegalArgumentException(
                  "unknown option "
                      + a[i]
                      + "; usage: OperatorScale [--requests 100,1000] [--nodes 200]"
                      + " [--agent-ms 50] [--per-cluster 5] [--per-node 2]");
        }
      }
      if (nodes < 2 || nodes % 2 != 0 || nodes > 60_000) {
        throw new IllegalArgumentException("--nodes must be even, 2 to 60000, got " + nodes);
      }
      return new Options(requests, nodes, agent, perCluster, perNode);
    }
  }

  private static int run(String[] args) throws Exception {
    Options o = Options.parse(args);
    System.out.printf(
        "operator at scale: %d nodes (sources on %d), each Move takes %d ms in the simulated"
            + " agents, limits %d per cluster / %d per node%n%n",
        o.nodes(), o.nodes() / 2, o.agentTime().toMillis(), o.perCluster(), o.perNode());
    List<String> rows = new ArrayList<>();
    for (int n : o.requests()) {
      rows.add(round(o, n));
    }
    System.out.println();
    System.out.println(
        "| requests | all ended | least possible | each slot's migration end to end, beyond the"
            + " agents | operator per migration: Preparing p50/p99 |"
            + " Moving beyond the agents p50/p99 | the later half: Preparing, Moving beyond the"
            + " agents p50/p99 | API requests / migration (writes) |"
            + " operator CPU / migration (JIT compilers) |"
            + " operator RSS peak / heap | most in flight: cluster / node | per node in order |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|");
    rows.forEach(System.out::println);
    return 0;
  }

  private static String round(Options o, int count) throws Exception {
    Path dir = Files.createTempDirectory("ferry-scale-");
    Path certs = Files.createDirectories(dir.resolve("certs"));
    Shell.run(Builds.repoFile("scripts/ferry-certs.sh").toString(), certs.toString());
    KubernetesMockServer api = ApiServer.start(InetAddress.getLoopbackAddress());
    try (Processes processes = new Processes();
        SimulatedAgents agents = new SimulatedAgents(certs, o.agentTime());
        KubernetesClient kube = client(api.url("/").replaceAll("/$", ""))) {
      cluster(kube, o.nodes(), count);
      int metricsPort = freePort();
      Process operator =
          processes.start(
              operator(api, certs, agents.port(), metricsPort, o),
              "operator",
              "started in",
              new Processes.Appended(dir.resolve("operator.log")));
      awaitLeader(kube, dir.resolve("operator.log"));
      drain(api); // what the cluster's set-up and the operator's start cost is not counted
      ProcessCpu.Meter cpuMeter = ProcessCpu.meter(operator.pid());
      // This process is the test API server and the simulated agents: on the same cores, what it
      // uses is what the operator may not.
      ProcessCpu.Meter benchMeter = ProcessCpu.meter(ProcessHandle.current().pid());

      Instant t0 = Instant.now();
      ApiProbe probe = new ApiProbe(kube);
      create(kube, count, o.nodes() / 2);
      List<MigrationRequestStatus> ended = awaitAll(kube, count);
      double[] getMillis = probe.stop();
      ProcessCpu bench = benchMeter.stop();
      Instant last =
          ended.stream()
              .map(s -> Instant.parse(s.getCompletionTime()))
              .max(Comparator.naturalOrder())
              .orElseThrow();

      Map<String, Integer> calls = operatorCalls(api);
      int total = calls.values().stream().mapToInt(Integer::intValue).sum();
      int writes =
          calls.entrySet().stream()
              .filter(e -> !e.getKey().startsWith("GET"))
              .mapToInt(Map.Entry::getValue)
              .sum();
      System.out.printf(
          "%d requests: one GET of a pod took %.1f ms p50, %.1f ms p99 on the test API server"
              + " meanwhile; the operator's API calls, by kind:%n",
          count, pct(getMillis, 50), pct(getMillis, 99));
      calls.forEach((k, v) -> System.out.printf("  %6d  %s%n", v, k));
      System.out.printf(
          "%d requests: this process (the test API server, the simulated agents, the clients that"
              + " create and watch the requests) used %.1f ms of CPU per migration, on %d cores%n",
          count, bench.seconds() * 1000 / count, Runtime.getRuntime().availableProcessors());
      long failed = ended.stream().filter(s -> s.getPhase() != Phase.Completed).count();
      if (failed > 0) {
        System.out.printf(
            "  %d request(s) did not complete, e.g.: %s%n",
            failed,
            ended.stream()
                .filter(s -> s.getPhase() != Phase.Completed)
                .findFirst()
                .get()
                .getMessage());
      }
      double[] preparing = millis(ended, "Preparing", 0);
      double[] beyond = millis(ended, "Moving", o.agentTime().toMillis());
      List<MigrationRequestStatus> later = laterHalf(ended);
      double[] laterPreparing = millis(later, "Preparing", 0);
      double[] laterBeyond = millis(later, "Moving", o.agentTime().toMillis());
      ProcessCpu cpu = cpuMeter.stop();
      String rss = rssPeak(operator.pid());
      String heap = heapUsed(metricsPort);
      int slots = Math.min(o.perCluster(), o.perNode() * (o.nodes() / 2));
      long least = (long) Math.ceil((double) count / slots) * o.agentTime().toMillis();
      long allEnded = Duration.between(t0, last).toMillis();
      // Everything the operator adds, its phase clocks or not: the slots are busy from the first
      // request to the last end, and each migration holds one for its agents' time and the rest.
      double slotBeyond =
          (double) allEnded * Math.min(slots, count) / count - o.agentTime().toMillis();
      boolean inOrder = inOrder(agents.startedByNode(), kube);
      processes.close();
      return String.format(
          "| %d | %.1f s | %.1f s | %.1f ms | %.1f / %.1f ms | %.1f / %.1f ms |"
              + " %.1f / %.1f, %.1f / %.1f ms | %.1f (%.1f) | %.1f (%.1f) ms | %s / %s |"
              + " %d (%d) / %d (%d) | %s |",
          count,
          allEnded / 1000.0,
          least / 1000.0,
          slotBeyond,
          pct(preparing, 50),
          pct(preparing, 99),
          pct(beyond, 50),
          pct(beyond, 99),
          pct(laterPreparing, 50),
          pct(laterPreparing, 99),
          pct(laterBeyond, 50),
          pct(laterBeyond, 99),
          (double) total / count,
          (double) writes / count,
          cpu.seconds() * 1000 / count,
          cpu.jitSeconds() * 1000 / count,
          rss,
          heap,
          agents.maxInFlight(),
          o.perCluster(),
          agents.maxInFlightPerNode(),
          o.perNode(),
          inOrder ? "yes" : "NO");
    } finally {
      api.destroy();
      keepLog(dir.resolve("operator.log"), count);
      Shell.run("rm", "-rf", dir.toString());
    }
  }

  /**
   * The operator's log of a count, kept as {@code target/bench-operator/operator-COUNT.log} (in the
   * e2e module) when the rest of the run's directory goes: what the operator said while a figure
   * looked wrong is the first thing to read.
   */
  private static void keepLog(Path log, int count) {
    try {
      if (Files.exists(log)) {
        Path kept = Files.createDirectories(Path.of("target", "bench-operator"));
        Path to = kept.resolve("operator-" + count + ".log");
        Files.copy(log, to, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        System.out.printf("%d requests: the operator's log is %s%n", count, to.toAbsolutePath());
      }
    } catch (java.io.IOException e) {
      System.out.printf("%d requests: the operator's log could not be kept: %s%n", count, e);
    }
  }

  /**
   * What one GET costs on the API server while the operator works: the test API server keeps
   * everything in one list behind one lock, so its latency grows with what it holds.
   */
  private static final class ApiProbe {
    private final List<Double> millis = java.util.Collections.synchronizedList(new ArrayList<>());
    private final Thread thread;
    private volatile boolean stop;

    ApiProbe(KubernetesClient kube) {
      thread =
          new Thread(
              () -> {
                while (!stop) {
                  long t = System.nanoTime();
                  kube.pods().withName("src-0").get();
                  millis.add((System.nanoTime() - t) / 1e6);
                  try {
                    Thread.sleep(100);
                  } catch (InterruptedException e) {
                    return;
                  }
                }
              },
              "api-probe");
      thread.setDaemon(true);
      thread.start();
    }

    double[] stop() throws InterruptedException {
      stop = true;
      thread.join();
      return millis.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    }
  }

  private static KubernetesClient client(String url) {
    Config c =
        new ConfigBuilder(Config.empty())
            .withMasterUrl(url)
            .withNamespace(NAMESPACE)
            .withUserAgent(BENCH_AGENT)
            .withRequestTimeout(60_000)
            .build();
    return new KubernetesClientBuilder().withConfig(c).build();
  }

  /** Nodes node-00001..: InternalIP 127.1.x.y; a source pod per request on the first half. */
  private static void cluster(KubernetesClient kube, int nodes, int requests) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(16);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int i = 0; i < nodes; i++) {
        int n = i;
        done.add(
            pool.submit(
                () ->
                    kube.nodes()
                        .resource(
                            new NodeBuilder()
                                .withNewMetadata()
                                .withName(node(n))
                                .endMetadata()
                                .withNewStatus()
                                .addNewAddress()
                                .withType("InternalIP")
                                .withAddress(loopback(n))
                                .endAddress()
                                .endStatus()
                                .build())
                        .create()));
      }
      int half = nodes / 2;
      for (int r = 0; r < requests; r++) {
        int k = r;
        done.add(pool.submit(() -> pod(kube, "src-" + k, node(k % half), ip(k))));
        done.add(pool.submit(() -> pod(kube, "dst-" + k, node(half + k % half), null)));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
  }

  private static Object pod(KubernetesClient kube, String name, String node, String ip) {
    return kube.pods()
        .resource(ClusterObjects.runningPod(name, NAMESPACE, node, ip, 8080, Map.of(), Map.of()))
        .create();
  }

  /** Within a second: 16 threads, each request naming its source and target. */
  private static void create(KubernetesClient kube, int count, int half) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(16);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int r = 0; r < count; r++) {
        int k = r;
        done.add(
            pool.submit(
                () -> {
                  MigrationRequestSpec s = new MigrationRequestSpec();
                  s.setSource(new PodReference("src-" + k));
                  s.setTarget(new PodReference("dst-" + k));
                  // Long enough to wait for a slot behind every other request: the limits, not
                  // the deadline, are what this measures.
                  s.setDeadline("30m");
                  MigrationRequest mr = new MigrationRequest();
                  mr.getMetadata().setName(String.format("reclaim-%05d", k));
                  mr.getMetadata().setNamespace(NAMESPACE);
                  mr.setSpec(s);
                  return kube.resource(mr).create();
                }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
  }

  private static List<MigrationRequestStatus> awaitAll(KubernetesClient kube, int count)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(30);
    while (System.nanoTime() < deadline) {
      List<MigrationRequestStatus> ended =
          kube.resources(MigrationRequest.class).inNamespace(NAMESPACE).list().getItems().stream()
              .map(MigrationRequest::getStatus)
              .filter(s -> s != null && s.getPhase() != null && s.getPhase().finished())
              .toList();
      if (ended.size() == count) {
        return ended;
      }
      Thread.sleep(500);
    }
    throw new IllegalStateException("not every request ended within 30 minutes");
  }

  /** Whether each node's moves began in the order its requests were made (by name, here). */
  private static boolean inOrder(Map<String, List<String>> started, KubernetesClient kube) {
    for (List<String> ids : started.values()) {
      List<String> sorted = new ArrayList<>(ids);
      sorted.sort(Comparator.naturalOrder());
      if (!sorted.equals(ids)) {
        return false;
      }
    }
    return true;
  }

  private static ProcessBuilder operator(
      KubernetesMockServer api, Path certs, int agentPort, int httpPort, Options o) {
    ProcessBuilder pb =
        ClusterObjects.operatorProcess(
            api.url("/").replaceAll("/$", ""), certs, NAMESPACE, "bench");
    Map<String, String> env = pb.environment();
    env.put("FERRY_OPERATOR_AGENT_PORT", String.valueOf(agentPort));
    env.put("FERRY_OPERATOR_LIMITS_PER_CLUSTER", String.valueOf(o.perCluster()));
    env.put("FERRY_OPERATOR_LIMITS_PER_NODE", String.valueOf(o.perNode()));
    env.put("QUARKUS_HTTP_PORT", String.valueOf(httpPort));
    return pb;
  }

  /** Until the operator holds its Lease: it drives nothing before. */
  private static void awaitLeader(KubernetesClient kube, Path log) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      Lease lease = kube.leases().inNamespace(NAMESPACE).withName("ferry-operator-leader").get();
      if (lease != null && "bench".equals(lease.getSpec().getHolderIdentity())) {
        return;
      }
      Thread.sleep(50);
    }
    throw new IllegalStateException("the operator never took its Lease; see " + log);
  }

  /** Forgets the requests recorded so far. */
  private static void drain(KubernetesMockServer api) throws InterruptedException {
    while (api.takeRequest(1, TimeUnit.MILLISECONDS) != null) {
      // dropped
    }
  }

  /** The operator's requests since the last drain, by method and resource. */
  private static Map<String, Integer> operatorCalls(KubernetesMockServer api)
      throws InterruptedException {
    Map<String, Integer> calls = new TreeMap<>();
    RecordedRequest r;
    while ((r = api.takeRequest(1, TimeUnit.MILLISECONDS)) != null) {
      String agent = r.getHeader("User-Agent");
      if (agent != null && agent.contains(BENCH_AGENT)) {
        continue;
      }
      calls.merge(r.getMethod() + " " + kind(r.getPath()), 1, Integer::sum);
    }
    return calls;
  }

  /**
   * "/apis/ferry.dev/v1alpha1/namespaces/shop/migrationrequests/x/status" to
   * "migrationrequests/status".
   */
  static String kind(String path) {
    String p = path.replaceAll("\\?.*", "");
    String watch = path.contains("watch=true") ? " (watch)" : "";
    String[] parts = p.split("/");
    List<String> out = new ArrayList<>();
    for (int i = 0; i < parts.length; i++) {
      if (parts[i].equals("namespaces") && i + 2 < parts.length) {
        i++; // the namespace
        continue;
      }
      out.add(parts[i]);
    }
    // api/v1/pods/NAME[/sub] or apis/GROUP/VERSION/RESOURCE/NAME[/sub]
    int resource = out.size() > 1 && out.get(1).equals("api") ? 3 : 4;
    if (out.size() <= resource) {
      return p + watch;
    }
    String kind = out.get(resource);
    if (out.size() > resource + 2) {
      kind += "/" + out.get(resource + 2);
    }
    return kind + watch;
  }

  /**
   * The later half of the requests, by when their Preparing began: past the creation burst, in
   * which the test API server also sends every pod change to the operator's new watches under the
   * one lock its writes take, and the first requests wait for it (e2e/BENCHMARK.md, "Pods from a
   * cache").
   */
  private static List<MigrationRequestStatus> laterHalf(List<MigrationRequestStatus> ended) {
    List<MigrationRequestStatus> byStart =
        ended.stream()
            .filter(s -> preparingBegan(s) != null)
            .sorted(Comparator.comparing(OperatorScale::preparingBegan))
            .toList();
    return byStart.subList(byStart.size() / 2, byStart.size());
  }

  private static Instant preparingBegan(MigrationRequestStatus s) {
    if (s.getPhaseTransitionTimestamps() == null) {
      return null;
    }
    return s.getPhaseTransitionTimestamps().stream()
        .filter(t -> t.getPhase() == Phase.Preparing)
        .map(t -> Instant.parse(t.getTime()))
        .findFirst()
        .orElse(null);
  }

  private static double[] millis(List<MigrationRequestStatus> ended, String phase, long minus) {
    return ended.stream()
        .filter(s -> s.getPhaseMillis() != null && s.getPhaseMillis().containsKey(phase))
        .mapToDouble(s -> s.getPhaseMillis().get(phase) - minus)
        .sorted()
        .toArray();
  }

  private static double pct(double[] sorted, int p) {
    if (sorted.length == 0) {
      return Double.NaN;
    }
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(sorted.length * p / 100.0) - 1)];
  }

  private static String rssPeak(long pid) throws Exception {
    return Files.readAllLines(Path.of("/proc/" + pid + "/status")).stream()
        .filter(l -> l.startsWith("VmHWM:"))
        .map(l -> Long.parseLong(l.replaceAll("[^0-9]", "")) / 1024 + " MiB")
        .findFirst()
        .orElse("?");
  }

  /** The heap in use now, from the operator's Micrometer metrics. */
  private static String heapUsed(int port) {
    try {
      String body =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/q/metrics"))
                      .build(),
                  HttpResponse.BodyHandlers.ofString())
              .body();
      double bytes =
          body.lines()
              .filter(l -> l.startsWith("jvm_memory_used_bytes{") && l.contains("area=\"heap\""))
              .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
              .sum();
      return Math.round(bytes / (1 << 20)) + " MiB";
    } catch (Exception e) {
      return "? (" + e.getMessage() + ")";
    }
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static String node(int i) {
    return String.format("node-%05d", i + 1);
  }

  /**
   * 127.1.0.1 onwards: each node its own loopback address, so the simulated agents tell them apart.
   */
  private static String loopback(int i) {
    int n = i + 1;
    return "127.1." + (n >> 8) + "." + (n & 0xff);
  }

  private static String ip(int k) {
    int n = k + 1;
    return "10.200." + (n >> 8) + "." + (n & 0xff);
  }

  static String describe(Map<String, Integer> m) {
    return m.entrySet().stream()
        .map(e -> e.getKey() + "=" + e.getValue())
        .collect(Collectors.joining(", "));
  }
}
