// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestSpec;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.testbed.FakeEc2;
import dev.ferry.testbed.FakeImds;
import dev.ferry.testbed.FakeSqs;
import dev.ferry.testbed.RbacCalls;
import dev.ferry.testbed.SourceDestinationCheck;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The agents' two-node cluster made whole: an API server (Fabric8's mock, CRUD mode, as a process
 * on the nodes' LAN) holding its Nodes and Pods, an instance metadata service per node that the
 * node's agent watches, and the operator as a process (the Quarkus build) watching the API server.
 *
 * <p>Public for the migration benchmark ({@code bench}), which puts it {@link #around} a cluster
 * whose agents it started itself.
 */
public final class OperatorCluster implements AutoCloseable {
  static final String NAMESPACE = "shop";
  static final String APP_LABEL = "token-streamer";

  final AgentCluster agents;
  final KubernetesClient kube;
  public final String apiUrl;
  final FakeImds imdsA;
  final FakeImds imdsB;

  /** The VPC's EC2 API: used by the operator when started with {@link #awsEnv}. */
  final FakeEc2 ec2;

  /**
   * The SQS queue EventBridge would feed: read by the operator when started with {@link #queueEnv}.
   */
  final FakeSqs sqs;

  static final String QUEUE = "ferry-ec2-notices";

  /**
   * The operator's HTTP port (metrics, health) on this machine; the standby's is the next one. Each
   * of the suite's two forks sets {@code ferry.operator.http-port}: their operators run side by
   * side.
   */
  static final int HTTP_PORT = Integer.getInteger("ferry.operator.http-port", 9401);

  final List<String> operatorLog = new CopyOnWriteArrayList<>();
  private final Process apiServer;
  private volatile Process operator;
  private volatile Map<String, String> operatorEnv = Map.of();
  // Set while a test wants the operator up: one that ends unasked is started again, as the kubelet
  // restarts a pod's container (restartPolicy Always). An operator exits on its own when it loses
  // its Lease (a renewal stalled past the renew deadline on a saturated machine), and in a cluster
  // a request it was driving goes on under the restarted one; here too.
  private volatile boolean operatorWanted;

  private OperatorCluster(AgentCluster agents) throws Exception {
    this.agents = agents;
    InetAddress lan = InetAddress.getByName(agents.layout.lanSelf());
    AtomicReference<String> url = new AtomicReference<>();
    this.apiServer =
        agents.start(
            new ProcessBuilder(
                Builds.java(),
                "-cp",
                System.getProperty("java.class.path"),
                ApiServer.class.getName(),
                agents.layout.lanSelf()),
            "api-server",
            "api server listening on",
            null,
            line -> url.set("http://" + line.substring(line.lastIndexOf(' ') + 1)));
    this.apiUrl = url.get();
    this.kube = client(apiUrl);
    this.imdsA = FakeImds.start(lan);
    this.imdsB = FakeImds.start(lan);
    this.ec2 = FakeEc2.start(lan);
    this.sqs = FakeSqs.start(lan);
    sqs.createQueue(QUEUE);
    node(agents.a, imdsA);
    node(agents.b, imdsB);
    ec2.addSecondary(eni(agents.a), agents.layout.vip());
    ec2.onMove(this::deliver);
    pod("pod-a", agents.a, agents.layout.vip(), APP_LABEL);
    pod("pod-b", agents.b, null, APP_LABEL);
  }

  static OperatorCluster start() throws Exception {
    return start(Map.of());
  }

  /** The cluster, its operator started with {@code operatorEnv} (FERRY_OPERATOR_*) added. */
  static OperatorCluster start(Map<String, String> operatorEnv) throws Exception {
    return start(AgentCluster.Layout.TESTS, operatorEnv);
  }

  /**
   * The cluster on {@code layout}'s LAN: a suite on a subnet of its own runs beside the others
   * without sharing an address with them.
   */
  static OperatorCluster start(AgentCluster.Layout layout, Map<String, String> operatorEnv)
      throws Exception {
    return start(layout, operatorEnv, Map.of());
  }

  /** As {@link #start(AgentCluster.Layout, Map)}, the agents with {@code agentEnv} added. */
  static OperatorCluster start(
      AgentCluster.Layout layout, Map<String, String> operatorEnv, Map<String, String> agentEnv)
      throws Exception {
    return start(layout, c -> operatorEnv, agentEnv);
  }

  /**
   * As {@link #start(AgentCluster.Layout, Map, Map)}, the operator's environment made from the
   * cluster (its {@link #awsEnv}, which names this cluster's EC2): one operator start, not two.
   */
  static OperatorCluster start(
      AgentCluster.Layout layout,
      Function<OperatorCluster, Map<String, String>> operatorEnv,
      Map<String, String> agentEnv)
      throws Exception {
    AgentCluster agents = AgentCluster.create(layout);
    try {
      OperatorCluster c = new OperatorCluster(agents);
      c.agents.a.startAgent(agentEnv);
      c.agents.b.startAgent(agentEnv);
      c.startOperator(operatorEnv.apply(c));
      return c;
    } catch (Exception | Error e) {
      agents.close();
      throw e;
    }
  }

  /**
   * The API server (with the cluster's Nodes, and Pods pod-a and pod-b), the fakes beside it and
   * the operator, around {@code agents}, whose agents the caller has started with settings of its
   * own (the benchmark's): what this cluster adds to the agents' environment (their IMDS, the API
   * server's address) applies only to an agent started again. From here closing the returned
   * cluster closes {@code agents} too; if this fails, the caller still owns them (the API server's
   * and the operator's processes are theirs, and go when they close).
   */
  public static OperatorCluster around(AgentCluster agents, Map<String, String> operatorEnv)
      throws Exception {
    OperatorCluster c = new OperatorCluster(agents);
    try {
      c.startOperator(operatorEnv);
      return c;
    } catch (Exception | Error e) {
      c.closeOwnParts();
      throw e;
    }
  }

  /** The name of {@code n}'s pod in the API server. */
  public String podOf(AgentCluster.Node n) {
    return n == agents.a ? "pod-a" : "pod-b";
  }

  /**
   * A client that evicts as {@code kubectl drain} does, but without Fabric8's retries on 429, so
   * that a test sees each answer of the eviction API.
   */
  KubernetesClient evictor() {
    return new KubernetesClientBuilder()
        .withConfig(
            new ConfigBuilder(Config.empty())
                .withMasterUrl(apiUrl)
                .withNamespace(NAMESPACE)
                .withRequestRetryBackoffLimit(0)
                .build())
        .build();
  }

  private static KubernetesClient client(String url) {
    // The test's own client: a minute bounds a hang. Fabric8's 10 s default was passed at load 9
    // by the first request to a cold API server (AwsForwardingIT, creating the first Node).
    Config config =
        new ConfigBuilder(Config.empty())
            .withMasterUrl(url)
            .withNamespace(NAMESPACE)
            .withRequestTimeout(60_000)
            .build();
    return new KubernetesClientBuilder().withConfig(config).build();
  }

  /** The Node as the kubelet registers it; its agent reports to the API server from its IMDS. */
  private void node(AgentCluster.Node n, FakeImds imds) {
    ec2.addInterface("eni-primary-" + n.name, instanceId(n), "subnet-0lan", 0, n.ip, Map.of());
    ec2.addInterface(
        eni(n),
        instanceId(n),
        n.serviceIp == null ? "subnet-0lan" : "subnet-0service",
        1,
        n.serviceIp == null ? n.ip.replaceFirst("\\.(\\d+)$", ".1$1") : n.serviceIp,
        Map.of("node.k8s.amazonaws.com/no_manage", "true"));
    n.baseEnv =
        Map.of(
            "FERRY_AGENT_IMDS_ENABLED", "true",
            "FERRY_AGENT_IMDS_ENDPOINT", imds.endpoint().toString(),
            "FERRY_AGENT_IMDS_INTERVAL", "PT0.5S",
            "KUBERNETES_MASTER", apiUrl,
            "KUBERNETES_AUTH_TRYKUBECONFIG", "false",
            "KUBERNETES_AUTH_TRYSERVICEACCOUNT", "false",
            // Its ServiceAccount's rights, no more: the API server refuses what the chart does not
            // grant (with the agents watching their IMDS, as here).
            "KUBERNETES_AUTH_TOKEN",
                RbacCalls.Caller.of("node-agent").in(NAMESPACE).with("imds").token());
    kube.nodes()
        .resource(
            new NodeBuilder()
                .withNewMetadata()
                .withName(n.name)
                .endMetadata()
                .withNewSpec()
                .withProviderID("aws:///us-east-1a/" + instanceId(n))
                .endSpec()
                .withNewStatus()
                .addNewAddress()
                .withType("InternalIP")
                .withAddress(n.ip)
                .endAddress()
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  /** The node's EC2 instance, as its spec.providerID names it. */
  static String instanceId(AgentCluster.Node n) {
    return String.format("i-%017x", n.name.hashCode() & 0xffffffffL);
  }

  /** The node's interface for movable addresses, which the VPC CNI leaves alone. */
  static String eni(AgentCluster.Node n) {
    return "eni-0" + n.name.replace("-", "");
  }

  /**
   * The VPC delivers the address to the node whose interface EC2 says has it: here, the client's
   * neighbour entry for it points at that node.
   */
  private void deliver(FakeEc2.Move move) {
    AgentCluster.Node to = instanceId(agents.a).equals(move.toInstance()) ? agents.a : agents.b;
    SourceDestinationCheck check = vpc;
    AgentCluster.Node from = to == agents.a ? agents.b : agents.a;
    if (to.serviceIp == null) {
      if (check != null) {
        check.unassign(from.host, move.address());
        check.assign(to.host, move.address());
      }
      agents.client.setNeighbour(move.address(), to.host.mac());
    } else {
      if (check != null) {
        check.unassign(from.servicePort, move.address());
        check.assign(to.servicePort, move.address());
      }
      agents.client.pinNeighbour(move.address(), to.serviceMac());
    }
  }

  /** EC2's source/destination check, once {@link #behaveAsEc2} made the LAN behave as a VPC. */
  private volatile SourceDestinationCheck vpc;

  /**
   * The LAN behaves as EC2's VPC from now: the nodes' interfaces take 9001-byte frames, each node's
   * cable (in the {@link AgentCluster.Layout#ec2} layout, each of its two ENIs) drops what is
   * neither from nor to an address EC2 has assigned to it (the service address is node-a's), and
   * the service address reaches the node EC2 moved it to only when {@link FakeEc2} shows the move,
   * after its delay. Before any stream starts.
   */
  SourceDestinationCheck behaveAsEc2() {
    SourceDestinationCheck check = agents.bed.sourceDestinationCheck();
    String vip = agents.layout.vip();
    for (AgentCluster.Node n : List.of(agents.a, agents.b)) {
      agents.bed.mtu(n.host, 9001);
      if (n.serviceIp == null) {
        check.enforce(n.host, n == agents.a ? new String[] {n.ip, vip} : new String[] {n.ip});
      } else {
        // Each ENI checked on its own: eth0 may send only from the node's address, eth1 from
        // its own and the service addresses EC2 has on it.
        agents.bed.mtu(n.host, AgentCluster.SERVICE_INTERFACE, n.servicePort, 9001);
        check.enforce(n.host, n.ip);
        check.enforce(
            n.servicePort,
            n == agents.a ? new String[] {n.serviceIp, vip} : new String[] {n.serviceIp});
      }
    }
    if (agents.a.serviceIp == null) {
      agents.client.setNeighbour(vip, agents.a.host.mac());
    }
    vpc = check;
    return check;
  }

  /** The operator's environment for the AWS address mover, against this cluster's EC2. */
  Map<String, String> awsEnv() {
    return Map.of(
        "FERRY_OPERATOR_ADDRESS_MOVER", "aws",
        "FERRY_OPERATOR_AWS_ENDPOINT", ec2.endpoint().toString(),
        "FERRY_OPERATOR_AWS_REGION", "us-east-1",
        "FERRY_OPERATOR_AWS_SETTLE_TIMEOUT", "10s",
        "AWS_ACCESS_KEY_ID", "AKIDFERRYTEST",
        "AWS_SECRET_ACCESS_KEY", "ferry-test-secret");
  }

  /**
   * {@link #awsEnv} with an HTTP port the system picks: for a cluster on a LAN of its own, whose
   * operator runs beside other suites' (the tests' fixed port would clash).
   */
  Map<String, String> awsEnvBesideOthers() {
    Map<String, String> env = new HashMap<>(awsEnv());
    env.put("QUARKUS_HTTP_PORT", "0");
    return env;
  }

  /** The operator's environment for queue mode, reading this cluster's SQS queue. */
  Map<String, String> queueEnv() {
    return Map.of(
        "FERRY_OPERATOR_QUEUE_ENABLED", "true",
        "FERRY_OPERATOR_QUEUE_URL", sqs.url(QUEUE),
        "FERRY_OPERATOR_QUEUE_ENDPOINT", sqs.endpoint().toString(),
        "FERRY_OPERATOR_QUEUE_REGION", "us-east-1",
        "FERRY_OPERATOR_QUEUE_WAIT_TIME", "2s",
        "AWS_ACCESS_KEY_ID", "AKIDFERRYTEST",
        "AWS_SECRET_ACCESS_KEY", "ferry-test-secret");
  }

  /** A pod as the kubelet reports it; the test bed names its network namespace. */
  Pod pod(String name, AgentCluster.Node n, String ip, String app) {
    return kube.pods()
        .inNamespace(NAMESPACE)
        .resource(
            ClusterObjects.runningPod(
                name,
                NAMESPACE,
                n.name,
                ip,
                AgentCluster.PORT,
                Map.of("app", app),
                Map.of("ferry.dev/netns", n.podNetns())))
        .create();
  }

  /** Starts (or restarts) the operator with the environment of its last start. */
  void startOperator() throws Exception {
    startOperator(operatorEnv);
  }

  /** Starts (or restarts) the operator, with {@code more} of its environment (FERRY_OPERATOR_*). */
  void startOperator(Map<String, String> more) throws Exception {
    operatorLog.clear();
    operatorEnv = Map.copyOf(more);
    launchOperator();
  }

  private synchronized void launchOperator() throws Exception {
    Process p =
        agents.start(
            operatorProcess("operator-1", operatorEnv),
            "operator",
            "started in",
            operatorLog,
            null);
    operator = p;
    operatorWanted = true;
    p.onExit().thenRun(() -> restartUnasked(p));
  }

  /** The kubelet's part: the operator ended though no test stopped it; its log stays. */
  private void restartUnasked(Process ended) {
    synchronized (this) {
      if (!operatorWanted || ended != operator) {
        return;
      }
      String line =
          "the operator exited with "
              + ended.exitValue()
              + " unasked: started again, as the kubelet restarts a pod's container";
      System.out.println("    [cluster] " + line + "; its last lines:");
      // Why it ended, where its output is not echoed (the benchmarks).
      List<String> log = List.copyOf(operatorLog);
      log.subList(Math.max(0, log.size() - 5), log.size())
          .forEach(l -> System.out.println("    [cluster]   " + l));
      operatorLog.add(line);
      try {
        launchOperator();
      } catch (Exception e) {
        operatorWanted = false;
        System.out.println("    [cluster] the operator could not be started again: " + e);
      }
    }
  }

  /**
   * A second operator process, as a second replica would be: it waits for the Lease the first one
   * holds. Killed with the cluster.
   */
  Process startStandby(List<String> log) throws Exception {
    ProcessBuilder pb = operatorProcess("operator-2", operatorEnv);
    pb.environment().put("QUARKUS_HTTP_PORT", String.valueOf(HTTP_PORT + 1));
    // A standby's start waits for the Lease: it is up once it competes for it.
    return agents.start(pb, "operator-2", "leader election: Lease", log, null);
  }

  /** Its Lease identity: a restarted operator-1 takes its own Lease back at once. */
  private ProcessBuilder operatorProcess(String identity, Map<String, String> more) {
    ProcessBuilder pb = ClusterObjects.operatorProcess(apiUrl, agents.certs, NAMESPACE, identity);
    pb.environment().put("QUARKUS_HTTP_PORT", String.valueOf(HTTP_PORT));
    pb.environment().putAll(more);
    if ("true".equals(more.get("FERRY_OPERATOR_QUEUE_ENABLED"))) {
      // The chart grants queue mode's calls only with aws.queue.enabled.
      pb.environment()
          .put(
              "KUBERNETES_AUTH_TOKEN",
              RbacCalls.Caller.of("operator").in(NAMESPACE).with("queue").token());
    }
    return pb;
  }

  /**
   * Stops the operator as the kubelet does (SIGTERM) and returns its exit status; fails if it has
   * not ended 60 s later, where the kubelet would have killed it at the end of its grace period.
   */
  synchronized int stopOperator() throws InterruptedException {
    operatorWanted = false;
    // SIGTERM through the handle: Process.destroy() also closes our end of its output, and the
    // lines it writes as it stops would be lost.
    operator.toHandle().destroy();
    if (!operator.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
      throw new IllegalStateException("the operator had not ended 60 s after SIGTERM");
    }
    return operator.exitValue();
  }

  synchronized void killOperator() throws InterruptedException {
    operatorWanted = false;
    Processes.kill(operator, "the operator");
  }

  @Override
  public void close() {
    closeOwnParts();
    // The agents' cluster kills every process it started: the operator and the API server too.
    agents.close();
  }

  /** Everything but the agents' cluster; the operator is not started again once it is killed. */
  private void closeOwnParts() {
    operatorWanted = false;
    kube.close();
    imdsA.close();
    imdsB.close();
    ec2.close();
    sqs.close();
  }

  /** {@code kubectl apply -f}: creates every object of the YAML file, as the file says. */
  List<HasMetadata> apply(Path yaml) throws IOException {
    try (InputStream in = Files.newInputStream(yaml)) {
      return kube.load(in).items().stream().map(o -> kube.resource(o).create()).toList();
    }
  }

  /** Asks the operator to move {@code from}'s connections, and {@code address}, to {@code to}. */
  MigrationRequest request(String name, String from, String to, String address) {
    return request(
        name,
        s -> {
          s.setSource(new PodReference(from));
          s.setTarget(new PodReference(to));
          s.setAddress(address);
        });
  }

  /** Creates the request {@code name}: from pod-a, with what {@code spec} sets. */
  public MigrationRequest request(String name, Consumer<MigrationRequestSpec> spec) {
    return request(name, "", spec);
  }

  /**
   * A request whose move stops at {@code faultPoint} (the agents' FaultPoints: a crash, or a
   * stall), through the annotation the operator passes on; none when empty.
   */
  MigrationRequest request(String name, String faultPoint, Consumer<MigrationRequestSpec> spec) {
    MigrationRequestSpec s = new MigrationRequestSpec();
    s.setSource(new PodReference("pod-a"));
    spec.accept(s);
    MigrationRequest mr = new MigrationRequest();
    mr.getMetadata().setName(name);
    mr.getMetadata().setNamespace(NAMESPACE);
    if (!faultPoint.isEmpty()) {
      mr.getMetadata().setAnnotations(java.util.Map.of("ferry.dev/fault-point", faultPoint));
    }
    mr.setSpec(s);
    return kube.resource(mr).create();
  }

  /**
   * Moves the service address (and any connection on it) from pod-b back to pod-a, where the tests
   * expect it; fails unless the request {@code name} completes. Its status.
   */
  MigrationRequestStatus moveBack(String name) throws InterruptedException {
    MigrationRequest back = request(name, "pod-b", "pod-a", AgentCluster.VIP);
    MigrationRequestStatus st = awaitEnd(back.getMetadata().getName(), 60);
    if (st.getPhase() != Phase.Completed) {
      throw new AssertionError(name + " ended " + st.getPhase() + ": " + st.getMessage());
    }
    return st;
  }

  /**
   * How the source agent (node-a) says migration {@code id} ended: Move again with that id, which
   * joins the move or answers its outcome, as an operator restarted in Moving does.
   */
  MoveOutcome howTheMoveEnded(String id) throws Exception {
    try (AgentClient a = agents.a.client("admin")) {
      return a.call(
          "Move",
          x ->
              x.move(
                  MoveRequest.newBuilder()
                      .setMigrationId(id)
                      .setSourcePod(PodRef.newBuilder().setNetns(agents.a.podNetns()))
                      .setTargetPod(PodRef.newBuilder().setNetns(agents.b.podNetns()))
                      .addPorts(AgentCluster.PORT)
                      .setTargetAgent(agents.b.api())
                      .build()));
    }
  }

  /** Waits until the request is in one of {@code phases}, or ended; returns the phase. */
  Phase awaitPhase(String name, Phase... phases) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      MigrationRequest now =
          kube.resources(MigrationRequest.class).inNamespace(NAMESPACE).withName(name).get();
      Phase at = now == null || now.getStatus() == null ? null : now.getStatus().getPhase();
      if (at != null && (List.of(phases).contains(at) || at.finished())) {
        return at;
      }
      Thread.sleep(2);
    }
    throw new AssertionError(name + " never reached " + List.of(phases));
  }

  /**
   * As {@link #awaitEnd}, told by a watch instead of asking every 50 ms: the wait then adds no
   * request to the API server while a move holds its clients (the benchmark's), and sees the end as
   * soon as the operator writes it.
   */
  public MigrationRequestStatus awaitEndWatching(String name, int seconds) {
    try {
      return kube.resources(MigrationRequest.class)
          .inNamespace(NAMESPACE)
          .withName(name)
          .waitUntilCondition(
              mr ->
                  mr != null
                      && mr.getStatus() != null
                      && mr.getStatus().getPhase() != null
                      && mr.getStatus().getPhase().finished(),
              seconds,
              TimeUnit.SECONDS)
          .getStatus();
    } catch (io.fabric8.kubernetes.client.KubernetesClientTimeoutException e) {
      throw new IllegalStateException(name + " did not end within " + seconds + " s", e);
    }
  }

  /** The request's status once it reaches an end (Completed, Failed, RolledBack). */
  MigrationRequestStatus awaitEnd(String name, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      MigrationRequest now =
          kube.resources(MigrationRequest.class).inNamespace(NAMESPACE).withName(name).get();
      if (now != null
          && now.getStatus() != null
          && now.getStatus().getPhase() != null
          && now.getStatus().getPhase().finished()) {
        return now.getStatus();
      }
      Thread.sleep(50);
    }
    throw new AssertionError(name + " did not end within " + seconds + " s");
  }
}
