// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.testbed.Host;
import dev.ferry.testbed.Shell;
import dev.ferry.testbed.Testbed;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * Two nodes on a LAN, each with a pod wired as the VPC CNI wires one, and each running the real
 * node-agent as a process (the Quarkus build), with certificates from scripts/ferry-certs.sh. The
 * service address starts in pod A. The test drives the agents through their API; the migration
 * benchmark builds its cluster on this one, on a LAN of its own ({@link Layout}).
 */
public final class AgentCluster implements AutoCloseable {
  static final int PORT = 8080;
  public static final int API_PORT = 9443;

  /**
   * Where a cluster lives and where what it runs writes.
   *
   * @param subnet the LAN's first three octets: the client is .1, the nodes .2 and .3, the service
   *     address .100 and this process .254
   * @param stateRoot where the agents save states (a directory of the cluster's own is made in it
   *     and removed at the end), or null for the cluster's temporary directory
   * @param logs where each process's output is appended to LABEL.log, or null to read it line by
   *     line (the nodes' {@link Node#log}, echoed to standard output while {@link #echoLogs})
   * @param serviceSubnet null, or the first three octets of the service addresses' subnet, laid out
   *     as docs/aws.md has users lay EC2 out: each node has a second interface, eth1 (the {@code
   *     no_manage} ENI), with .12 or .13 of this subnet; the service address is its .100; each node
   *     routes what leaves from this subnet out of eth1 (the user data's policy route); the agents
   *     hold on eth0 and eth1; the client stays on the LAN's subnet
   */
  public record Layout(String subnet, Path stateRoot, Path logs, String serviceSubnet) {
    /**
     * The tests' and the demo's: 198.18.0.0/24, states and logs kept by the cluster. Each of the
     * suite's two forks (they run test classes at the same time, e2e/pom.xml) sets {@code
     * ferry.lan} to a LAN of its own: this process joins the LAN, so two clusters on one subnet
     * would clash.
     */
    static final Layout TESTS = new Layout(System.getProperty("ferry.lan", "198.18.0"), null, null);

    /** Service addresses on the nodes' eth0, in the LAN's subnet. */
    public Layout(String subnet, Path stateRoot, Path logs) {
      this(subnet, stateRoot, logs, null);
    }

    /** As docs/aws.md lays EC2 out: service addresses on each node's eth1, in a subnet apart. */
    static Layout ec2(String subnet, String serviceSubnet) {
      return new Layout(subnet, null, null, serviceSubnet);
    }

    public String vip() {
      return (serviceSubnet == null ? subnet : serviceSubnet) + ".100";
    }

    public String lanSelf() {
      return subnet + ".254";
    }
  }

  /** The service address of the tests' clusters ({@link Layout#TESTS}). */
  static final String VIP = Layout.TESTS.vip();

  /** The test's own address on the tests' LAN, where it serves what the nodes call. */
  static final String LAN_SELF = Layout.TESTS.lanSelf();

  /** The node interface of the service addresses in the {@link Layout#ec2} layout. */
  static final String SERVICE_INTERFACE = "eth1";

  /** The routing table of the nodes' policy route for the service subnet (the user data's). */
  private static final String SERVICE_TABLE = "100";

  /**
   * Whether the processes' output goes to our standard output too (the tests' logs); not in the
   * demo.
   */
  static volatile boolean echoLogs = true;

  public final Testbed bed;
  public final Layout layout;
  public final Path dir;
  public final Path certs;
  final Path bpf;
  private final Path states;
  public final Host client;
  public final Node a;
  public final Node b;
  private final Processes processes = new Processes();

  /**
   * The agents' environment (for {@link Node#startAgent(Map)}) for one stream's state of {@code
   * kvBytes}; none while the defaults take it. Over the default limit (256 MiB): a limit half as
   * large again (the token records that follow the cache); a state timeout long enough for the demo
   * streamer's silence while it copies and encodes its whole cache before its first offer (a state
   * timeout bounds a silent application: at load 8 a gibibyte's silence passed the default 30 s,
   * the pre-copy stopped and the freeze found the application still busy); and a heap of twice the
   * largest state and a gibibyte more (the agent holds half its heap for arrivals, and refuses to
   * start when one state of the largest size would not fit in that: the chart's 768 MiB does not
   * take a gibibyte), as a user moving such states must give it.
   */
  public static Map<String, String> agentsForStatesOf(long kvBytes) {
    long maxState = kvBytes + (kvBytes >> 1);
    if (maxState <= 256L << 20) {
      return Map.of();
    }
    return Map.of(
        "FERRY_AGENT_MAX_STATE_BYTES",
        String.valueOf(maxState),
        "FERRY_AGENT_STATE_TIMEOUT",
        "PT3M",
        "JDK_JAVA_OPTIONS",
        "-Xmx" + ((2 * maxState + (1L << 30)) >> 20) + "m");
  }

  /** A node, its pod, and its agent's files. */
  public final class Node {
    public final String name;
    public final Host host;
    public final Host pod;
    public final String ip;
    public final Path handoffSocket;
    final Path stateDir;
    final Path pinDir;

    /** The agent's output since its last start, when the layout keeps no log files. */
    final List<String> log = new CopyOnWriteArrayList<>();

    /** More of the agent's environment for every start (the cluster's API server, its IMDS). */
    volatile Map<String, String> baseEnv = Map.of();

    /**
     * In the {@link Layout#ec2} layout, eth1's address and its port on the switch (EC2 checks each
     * ENI on its own); else null.
     */
    public final String serviceIp;

    final String servicePort;

    Process agent;

    Node(String name, String ip, String podRole) throws IOException {
      this.name = name;
      this.ip = ip;
      this.host = bed.host(name, ip + "/24");
      this.pod = bed.pod(host, podRole);
      this.handoffSocket = dir.resolve(name + ".sock");
      this.stateDir = Files.createDirectories(states.resolve(name + "-state"));
      this.pinDir = bpf.resolve(name);
      if (layout.serviceSubnet() == null) {
        serviceIp = null;
        servicePort = null;
      } else {
        serviceIp = layout.serviceSubnet() + ".1" + ip.substring(ip.lastIndexOf('.') + 1);
        servicePort = bed.secondInterface(host, SERVICE_INTERFACE, serviceIp + "/24");
        // Each interface answers ARP for its own addresses only: in a VPC the fabric answers for
        // an ENI, and one ENI never for another's addresses (the LAN here would let eth0 answer
        // for eth1's address, and EC2's check would then drop what comes to eth0 for it).
        host.run(
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2");
        // The user data's policy route: a reply from a service address leaves through the ENI
        // that has it. Through eth0, EC2's source/destination check would drop it.
        String serviceNet = layout.serviceSubnet() + ".0/24";
        host.run("ip", "rule", "add", "from", serviceNet, "lookup", SERVICE_TABLE);
        host.run(
            "ip",
            "route",
            "add",
            "default",
            "via",
            layout.serviceSubnet() + ".1",
            "dev",
            SERVICE_INTERFACE,
            "table",
            SERVICE_TABLE);
      }
    }

    /** The MAC of the interface the service address reaches this node on. */
    public String serviceMac() {
      return serviceIp == null ? host.mac() : host.mac(SERVICE_INTERFACE);
    }

    /** The agent's API, host:port on the nodes' LAN. */
    public String api() {
      return ip + ":" + API_PORT;
    }

    public String podNetns() {
      return "/var/run/netns/" + pod.netns();
    }

    /** Starts (or restarts) this node's agent; returns once its API listens. */
    public void startAgent() throws Exception {
      startAgent(Map.of());
    }

    /** As {@link #startAgent()}, with more of the agent's environment (FERRY_AGENT_IMDS_*). */
    public void startAgent(Map<String, String> more) throws Exception {
      log.clear();
      List<String> cmd =
          List.of(
              Builds.java(),
              // The agent's JVM options, as its image starts it (C1 only: see the file).
              "@" + Builds.repoFile("node-agent/src/main/jvm/agent-jvm.options"),
              "-jar",
              Builds.repoFile("node-agent/target/quarkus-app/quarkus-run.jar").toString());
      ProcessBuilder pb = host.process(cmd.toArray(String[]::new));
      Map<String, String> env = pb.environment();
      // The heap the chart's pod gives the agent; a test that moves states larger than its
      // defaults allow gives its agents more, as a user must.
      env.put("JDK_JAVA_OPTIONS", ChartMemory.agent());
      env.put("FERRY_AGENT_NODE_NAME", name);
      env.put("FERRY_AGENT_API_PORT", String.valueOf(API_PORT));
      // Each agent its own certificate, naming its node (scripts/ferry-certs.sh --node): a target
      // takes states only from the agent of the plan's source node.
      env.put("FERRY_AGENT_TLS_CERT", certs.resolve("agent-" + name + ".crt").toString());
      env.put("FERRY_AGENT_TLS_KEY", certs.resolve("agent-" + name + ".key").toString());
      env.put("FERRY_AGENT_TLS_CA", certs.resolve("ca.crt").toString());
      env.put("FERRY_AGENT_HANDOFF_SOCKET", handoffSocket.toString());
      env.put("FERRY_AGENT_STATE_DIR", stateDir.toString());
      env.put("FERRY_AGENT_BPF_PIN_DIR", pinDir.toString());
      env.put("FERRY_AGENT_UPLINK", "eth0");
      if (serviceIp != null) {
        // docs/aws.md, "Hold the clients on that interface too".
        env.put("FERRY_AGENT_HOLD_INTERFACES", "eth0," + SERVICE_INTERFACE);
      }
      // Test clusters honour a move's fault point (MoveRequest.fault): the fault suite uses them.
      env.put("FERRY_AGENT_FAULT_POINTS", "true");
      env.putAll(baseEnv);
      env.putAll(more);
      agent = start(pb, name + " agent", "ferry node-agent on", log, null);
    }

    /**
     * A Move of every connection on the service's port from this node's pod to {@code to}'s, with
     * the service address, as the operator asks it on a LAN.
     */
    public dev.ferry.api.v1alpha1.MoveRequest.Builder moveTo(Node to, String id) {
      return dev.ferry.api.v1alpha1.MoveRequest.newBuilder()
          .setMigrationId(id)
          .setSourcePod(dev.ferry.api.v1alpha1.PodRef.newBuilder().setNetns(podNetns()))
          .setTargetPod(dev.ferry.api.v1alpha1.PodRef.newBuilder().setNetns(to.podNetns()))
          .addPorts(PORT)
          .setTargetAgent(to.api())
          .setSourceNode(name)
          .setTargetNode(to.name)
          .setAddress(
              dev.ferry.api.v1alpha1.MoveAddressPlan.newBuilder()
                  .setCidr(layout.vip() + "/32")
                  .setHostRoute(true)
                  .setAnnounce(true)
                  .setSourceHostInterface(pod.podPort())
                  .setTargetHostInterface(to.pod.podPort()));
    }

    /**
     * Waits until an application in this node's pod has registered {@code port} with the agent
     * again: after an agent restart the servers reconnect on their own, a little later.
     */
    public void awaitRegistered(int port) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      try (dev.ferry.api.client.AgentClient agent = client("admin")) {
        var request =
            dev.ferry.api.v1alpha1.ListConnectionsRequest.newBuilder()
                .setPod(dev.ferry.api.v1alpha1.PodRef.newBuilder().setNetns(podNetns()))
                .addPorts(port)
                .build();
        while (true) {
          try {
            if (agent
                .call("ListConnections", s -> s.listConnections(request))
                .getRegisteredPortsList()
                .contains(port)) {
              return;
            }
          } catch (dev.ferry.api.client.AgentClient.Failed e) {
            // not up yet
          }
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException(
                "no application registered port " + port + " with " + name + "'s agent in 60 s");
          }
          Thread.sleep(50);
        }
      }
    }

    /** A client of this node's agent, with the certificate {@code who} (admin, operator…). */
    public dev.ferry.api.client.AgentClient client(String who) {
      return client(who, java.time.Duration.ofSeconds(30));
    }

    /**
     * As {@link #client(String)}, each call bounded by {@code deadline}: for a call whose work
     * grows with the machine's load (a Move that pre-copies a gibibyte), where the deadline only
     * bounds a hang.
     */
    public dev.ferry.api.client.AgentClient client(String who, java.time.Duration deadline) {
      return new dev.ferry.api.client.AgentClient(
          api(),
          dev.ferry.api.client.CallerTls.of(dev.ferry.api.client.TlsFiles.inDirectory(certs, who)),
          deadline);
    }

    /** How many lines the agent has logged since its last start: a mark for {@link #awaitLine}. */
    int logMark() {
      return log.size();
    }

    /**
     * Waits for a line with {@code text} among the agent's lines after the first {@code from} (a
     * {@link #logMark}). Bounded by a minute, which only a hang reaches.
     */
    void awaitLine(int from, String text) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      // A copy: the log grows as we look, and a restarted agent's log starts again (a view of
      // the live list throws ConcurrentModificationException then).
      for (List<String> now = List.copyOf(log);
          now.subList(Math.min(from, now.size()), now.size()).stream()
              .noneMatch(l -> l.contains(text));
          now = List.copyOf(log)) {
        if (System.nanoTime() > deadline) {
          throw new AssertionError(name + "'s agent logged no '" + text + "' within 60 s");
        }
        Thread.sleep(20);
      }
    }

    /**
     * Waits for the agent to stop on its own (a fault point), as a crash there would; returns its
     * exit status.
     */
    int awaitAgentExit() throws InterruptedException {
      if (!agent.waitFor(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + "'s agent did not stop at its fault point");
      }
      return agent.exitValue();
    }

    /** Kills this node's agent at once, as a crash or an OOM kill would, and waits for the end. */
    void killAgent() throws InterruptedException {
      Processes.kill(agent, name + "'s agent");
    }

    /** Stops this node's agent as the kubelet does (SIGTERM), and waits for its end. */
    void stopAgent() throws InterruptedException {
      // SIGTERM through the handle: Process.destroy() also closes our end of its output, and the
      // lines it writes as it stops would be lost.
      agent.toHandle().destroy();
      if (!agent.waitFor(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + "'s agent did not stop within 60 s of SIGTERM");
      }
    }

    /** Starts the demo token streamer in this node's pod; returns once it listens. */
    Process streamer(String... options) throws Exception {
      List<String> cmd = new ArrayList<>();
      cmd.add(Builds.java());
      cmd.addAll(List.of("-cp", System.getProperty("java.class.path")));
      cmd.add("dev.ferry.example.streamer.TokenStreamer");
      return application(cmd, "streamer", options);
    }

    /**
     * Starts the Python example server (examples/python/token_streamer.py, the Java streamer's
     * twin) in this node's pod; returns once it listens.
     */
    Process pythonStreamer(String... options) throws Exception {
      return pythonStreamer(null, options);
    }

    /** As {@link #pythonStreamer(String...)}, its output added to {@code log} as well. */
    Process pythonStreamer(List<String> log, String... options) throws Exception {
      List<String> cmd =
          new ArrayList<>(
              List.of(
                  "python3",
                  "-u",
                  Builds.repoFile("examples/python/token_streamer.py").toString()));
      return application(cmd, "python-streamer", log, options);
    }

    private Process application(List<String> cmd, String label, String... options)
        throws Exception {
      return application(cmd, label, null, options);
    }

    private Process application(List<String> cmd, String label, List<String> log, String... options)
        throws Exception {
      cmd.addAll(
          List.of(
              "--listen",
              "0.0.0.0:" + PORT,
              "--agent",
              handoffSocket.toString(),
              // The agent proves itself to every application of the test bed (version 3).
              "--agent-ca",
              certs.resolve("ca.crt").toString(),
              "--name",
              label + "-" + name));
      cmd.addAll(List.of(options));
      return start(
          pod.process(cmd.toArray(String[]::new)), name + " " + label, "listening on", log, null);
    }
  }

  private AgentCluster(Layout layout) throws Exception {
    this.layout = layout;
    bed = Testbed.create();
    Path made = null;
    Path bpfFs = null;
    Path stateDirs = null;
    try {
      made = Files.createTempDirectory("ferry-agents-");
      dir = made;
      certs = Files.createDirectories(dir.resolve("certs"));
      // `ip netns exec` mounts a fresh /sys for the agent, without /sys/fs/bpf: the agents pin
      // their maps in a BPF filesystem of their own, which a restarted agent finds again.
      bpf = Files.createDirectories(dir.resolve("bpf"));
      Shell.run("mount", "-t", "bpf", "bpf", bpf.toString());
      bpfFs = bpf;
      states =
          layout.stateRoot() == null
              ? dir
              : Files.createTempDirectory(
                  Files.createDirectories(layout.stateRoot()), "ferry-agents-");
      stateDirs = states;
      if (layout.logs() != null) {
        Files.createDirectories(layout.logs());
      }
      Shell.run(Builds.repoFile("scripts/ferry-certs.sh").toString(), certs.toString());
      for (String node : List.of("node-a", "node-b")) {
        Shell.run(
            Builds.repoFile("scripts/ferry-certs.sh").toString(), "--node", node, certs.toString());
      }
      client = bed.host("client", layout.subnet() + ".1/24");
      if (layout.serviceSubnet() != null) {
        // The VPC's router: the client reaches the service subnet, from its own address, and the
        // nodes' policy route sends replies through the router's .1 of that subnet, held here.
        client.addAddress(layout.serviceSubnet() + ".1/32");
        client.run(
            "ip",
            "route",
            "add",
            layout.serviceSubnet() + ".0/24",
            "dev",
            "eth0",
            "src",
            layout.subnet() + ".1");
      }
      // the test itself calls the agents, as the operator would
      bed.joinLan(layout.lanSelf() + "/24");
      a = new Node("node-a", layout.subnet() + ".2", "pod-a");
      b = new Node("node-b", layout.subnet() + ".3", "pod-b");
      a.pod.addAddress(layout.vip() + "/32");
      a.host.routeToPod(layout.vip() + "/32", a.pod);
      if (layout.serviceSubnet() != null) {
        // EC2 has the address on node-a's eth1; nothing answers ARP for it there.
        client.pinNeighbour(layout.vip(), a.serviceMac());
      }
    } catch (Exception | Error e) {
      bed.close();
      removeFiles(bpfFs, stateDirs, made);
      throw e;
    }
  }

  public static AgentCluster start() throws Exception {
    return start(Layout.TESTS);
  }

  /** The cluster of {@code layout} with both agents running. */
  public static AgentCluster start(Layout layout) throws Exception {
    AgentCluster c = create(layout);
    try {
      c.a.startAgent();
      c.b.startAgent();
      return c;
    } catch (Exception | Error e) {
      c.close();
      throw e;
    }
  }

  /** The namespaces, certificates and BPF filesystem; no agent runs yet. */
  static AgentCluster create() throws Exception {
    return create(Layout.TESTS);
  }

  /** As {@link #create()}, laid out as {@code layout} says. */
  public static AgentCluster create(Layout layout) throws Exception {
    return new AgentCluster(layout);
  }

  /**
   * What {@code pathAndQuery} streams when nothing moves, from a streamer on node-a at 2,000
   * tokens/s (the tokens do not depend on the rate), which is stopped after: the reference a moved
   * stream is compared with. Fails unless curl ends well within 90 s.
   *
   * @param streamerArgs more of the streamer's options, those its tokens depend on (--kv-bytes)
   */
  String unmovedOutput(String pathAndQuery, String... streamerArgs) throws Exception {
    List<String> args = new ArrayList<>(List.of("--rate", "2000"));
    args.addAll(List.of(streamerArgs));
    Process quick = a.streamer(args.toArray(String[]::new));
    try (CurlStream unmoved = curl(pathAndQuery)) {
      int exit = unmoved.exitCode(90);
      if (exit != 0) {
        throw new AssertionError("the unmoved stream " + pathAndQuery + ": curl exit " + exit);
      }
      return unmoved.output();
    } finally {
      quick.destroy();
      quick.waitFor();
    }
  }

  /** curl -sSN on the client against the service address. */
  CurlStream curl(String pathAndQuery) throws IOException {
    return curl(pathAndQuery, java.time.Duration.ofSeconds(120));
  }

  /** As {@link #curl(String)}, for a stream that may last up to {@code maxTime}. */
  CurlStream curl(String pathAndQuery, java.time.Duration maxTime) throws IOException {
    return curl(PORT, pathAndQuery, maxTime);
  }

  /** As {@link #curl(String, java.time.Duration)}, to another port of the service address. */
  CurlStream curl(int port, String pathAndQuery, java.time.Duration maxTime) throws IOException {
    // Tracked as the cluster's other processes are: a demo stopped by Ctrl-C closes the cluster
    // but not the stream, and a curl whose server's namespace is gone waits out its max time.
    return new CurlStream(
        processes.track(
            client
                .process(
                    "curl",
                    "-sSN",
                    "--max-time",
                    String.valueOf(maxTime.toSeconds()),
                    "http://" + layout.vip() + ":" + port + pathAndQuery)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()));
  }

  /**
   * A WebSocket client on the client host, Node.js with the {@code ws} package from npm
   * (e2e/clients/ws-client.js), reading {@code ws://VIP:PORT/pathAndQuery} into {@code out}.
   */
  ByteClient wsClient(String pathAndQuery, Path out) throws IOException, InterruptedException {
    ProcessBuilder pb =
        client.process(
            "node",
            Builds.repoFile("e2e/clients/ws-client.js").toString(),
            "ws://" + VIP + ":" + PORT + pathAndQuery,
            out.toString());
    pb.environment().put("NODE_PATH", NodeModules.ws().toString());
    return new ByteClient("ws-client", processes.track(pb.redirectErrorStream(true).start()), out);
  }

  /**
   * A download on the client host with Python's {@code http.client}, no Range and no second attempt
   * (e2e/clients/http-download.py), of {@code http://VIP:PORT/pathAndQuery} into {@code out}.
   */
  ByteClient download(String pathAndQuery, Path out) throws IOException {
    ProcessBuilder pb =
        client.process(
            "python3",
            "-u",
            Builds.repoFile("e2e/clients/http-download.py").toString(),
            "http://" + VIP + ":" + PORT + pathAndQuery,
            out.toString());
    return new ByteClient(
        "http-download", processes.track(pb.redirectErrorStream(true).start()), out);
  }

  /**
   * An upload from the client host (e2e/clients/http-upload.py): {@code bytes} bytes PUT to {@code
   * http://VIP:PORT/pathAndQuery} at {@code pacing} bytes a second, the server's acknowledgements
   * sampled every millisecond into {@code samples} ("UNIX_MICROS BYTES_ACKED" lines).
   */
  ByteClient upload(String pathAndQuery, long bytes, long pacing, Path samples) throws IOException {
    ProcessBuilder pb =
        client.process(
            "python3",
            "-u",
            Builds.repoFile("e2e/clients/http-upload.py").toString(),
            "http://" + layout.vip() + ":" + PORT + pathAndQuery,
            String.valueOf(bytes),
            String.valueOf(pacing),
            samples.toString());
    return new ByteClient(
        "http-upload", processes.track(pb.redirectErrorStream(true).start()), samples);
  }

  /**
   * Makes the client wait at least {@code rtoMin} (an {@code ip route} time, "3s") before it sends
   * a segment again, through a host route to the service address with that {@code rto_min}: a
   * client that goes on sooner after a move did not need its retransmission timer.
   */
  void slowClientRetransmissions(String rtoMin) {
    String route = client.run("ip", "-o", "route", "get", layout.vip());
    java.util.regex.Matcher dev = java.util.regex.Pattern.compile(" dev (\\S+)").matcher(route);
    if (!dev.find()) {
      throw new IllegalStateException("no device in the client's route to the VIP: " + route);
    }
    client.run(
        "ip", "route", "replace", layout.vip() + "/32", "dev", dev.group(1), "rto_min", rtoMin);
  }

  /**
   * Starts {@code ferry-agent ARGS} (the CLI) from the test's own namespace, which is on the nodes'
   * LAN, as the admin; its output goes to the test's log and to the returned run.
   */
  CliRun cli(String... args) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Builds.java());
    // JBoss LogManager, which this classpath brings, as JUL's manager before anything logs: else
    // it prints a complaint into the output the tests read.
    cmd.add("-Djava.util.logging.manager=org.jboss.logmanager.LogManager");
    cmd.addAll(
        List.of("-cp", System.getProperty("java.class.path"), "dev.ferry.cli.FerryAgentCli"));
    cmd.addAll(List.of(args));
    cmd.addAll(List.of("--certs", certs.toString()));
    Process p = processes.track(new ProcessBuilder(cmd).redirectErrorStream(true).start());
    return new CliRun(p);
  }

  /** A run of the CLI: its exit code and every line it printed. */
  static final class CliRun {
    private final Process process;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final Thread reader;

    CliRun(Process process) {
      this.process = process;
      this.reader =
          new Thread(
              () -> {
                try (BufferedReader in =
                    new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                  String line;
                  while ((line = in.readLine()) != null) {
                    System.out.println("    [ferry-agent] " + line);
                    lines.add(line);
                  }
                } catch (IOException ended) {
                  // the process ended
                }
              },
              "ferry-agent-cli");
      reader.setDaemon(true);
      reader.start();
    }

    int exitCode(int seconds) throws InterruptedException {
      if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new IllegalStateException("ferry-agent did not end within " + seconds + " s");
      }
      reader.join(5_000);
      return process.exitValue();
    }

    String output() {
      return String.join("\n", lines);
    }
  }

  /**
   * Starts a process of the cluster, logged under {@code label} as the layout says, and returns
   * once it prints {@code upLine} (handed to {@code onUp}); it is killed when the cluster closes.
   *
   * @param sink where its lines go too when the layout keeps no log files (may be null)
   */
  public Process start(
      ProcessBuilder pb,
      String label,
      String upLine,
      List<String> sink,
      java.util.function.Consumer<String> onUp)
      throws Exception {
    Processes.Log log =
        layout.logs() == null
            ? new Processes.Lines(echoLogs, sink)
            : new Processes.Appended(layout.logs().resolve(label.replace(' ', '-') + ".log"));
    return processes.start(pb, label, upLine, log, onUp);
  }

  /** A process the cluster did not start (CRIU restored it) but must kill when it closes. */
  public void adopt(long pid) {
    processes.adopt(pid);
  }

  /** No longer to be killed at the end: already ended by whoever adopted it. */
  public void forget(long pid) {
    processes.forget(pid);
  }

  @Override
  public void close() {
    processes.close();
    bed.close();
    removeFiles(bpf, states, dir);
  }

  /** Unmounts the BPF filesystem and removes the state and temporary directories, if made. */
  private static void removeFiles(Path bpf, Path states, Path dir) {
    if (bpf != null) {
      Shell.attempt(List.of("umount", bpf.toString()));
    }
    if (states != null && !states.equals(dir)) {
      Shell.attempt(List.of("rm", "-rf", states.toString()));
    }
    if (dir != null) {
      Shell.attempt(List.of("rm", "-rf", dir.toString()));
    }
  }
}
