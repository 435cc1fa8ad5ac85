// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.client.AgentChannels;
import dev.ferry.api.client.AgentClient;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.e2e.Builds;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Shell;
import dev.ferry.testbed.Testbed;
import io.netty.handler.ssl.SslContext;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The benchmark's cluster: a client and two nodes on a LAN of network namespaces, each node with a
 * pod and a real node-agent process (the Quarkus build) with mTLS certificates, and token streamers
 * in the pods. The benchmark calls the agents over their API from the machine's own namespace, as
 * the operator would: the L2 path, without the operator. AgentCluster is the tests' equivalent;
 * this one keeps the logs in files (10,000 connections make tens of thousands of log lines) and
 * runs its LAN apart from the tests'.
 *
 * <p>Everything it starts or creates goes in {@link #close}, which a shutdown hook also runs on
 * Ctrl-C or an error: processes (agents, streamers, processes CRIU restored), namespaces (and with
 * them the hold's TC and XDP programs, attached to the nodes' interfaces), the BPF filesystem the
 * agents pin their maps in, certificates and saved states.
 */
final class BenchCluster implements AutoCloseable {
  // A LAN of its own in the benchmarking range (RFC 2544), apart from the tests' 198.18.0.0/24:
  // this process joins it from the machine's namespace, where a test may have joined its own.
  static final String VIP = "198.19.8.100";
  static final String VIP_CIDR = VIP + "/32";
  static final int STREAM_PORT = 8080;
  static final int IDLE_PORT = 8081;
  static final int API_PORT = 9443;
  static final String LAN_SELF = "198.19.8.254";

  final Testbed bed;
  final Path dir;
  final Path certs;
  final Path bpf;
  final Path logs;
  final Host client;
  final Node a;
  final Node b;
  private final List<Process> processes = new CopyOnWriteArrayList<>();
  private final Set<Long> adopted = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Thread hook = new Thread(this::close, "bench-cleanup");
  private final Path states;
  private SslContext tls;
  private Node holder;

  /** A node, its pod, its agent and the streamers in the pod. */
  final class Node {
    final String name;
    final Host host;
    final Host pod;
    final String ip;
    final Path handoffSocket;
    final Path stateDir;
    final Path pinDir;
    final List<Process> streamers = new CopyOnWriteArrayList<>();
    Process agent;
    AgentClient api;

    Node(String name, String ip, String podRole, Path stateRoot) throws IOException {
      this.name = name;
      this.ip = ip;
      this.host = bed.host(name, ip + "/24");
      this.pod = bed.pod(host, podRole);
      this.handoffSocket = dir.resolve(name + ".sock");
      this.stateDir = Files.createDirectories(stateRoot.resolve(name + "-state"));
      this.pinDir = bpf.resolve(name);
      // The streamer's own accept backlog (128) is what counts; the kernel's cap is raised anyway.
      pod.run(
          "sysctl", "-q", "-w", "net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535");
    }

    String api() {
      return ip + ":" + API_PORT;
    }

    PodRef podRef() {
      return PodRef.newBuilder().setNetns("/var/run/netns/" + pod.netns()).build();
    }

    void startAgent() throws Exception {
      ProcessBuilder pb =
          host.process(
              Builds.java(),
              "-jar",
              Builds.repoFile("node-agent/target/quarkus-app/quarkus-run.jar").toString());
      Map<String, String> env = pb.environment();
      env.put("FERRY_AGENT_NODE_NAME", name);
      env.put("FERRY_AGENT_API_PORT", String.valueOf(API_PORT));
      env.put("FERRY_AGENT_TLS_CERT", certs.resolve("agent.crt").toString());
      env.put("FERRY_AGENT_TLS_KEY", certs.resolve("agent.key").toString());
      env.put("FERRY_AGENT_TLS_CA", certs.resolve("ca.crt").toString());
      env.put("FERRY_AGENT_HANDOFF_SOCKET", handoffSocket.toString());
      env.put("FERRY_AGENT_STATE_DIR", stateDir.toString());
      env.put("FERRY_AGENT_BPF_PIN_DIR", pinDir.toString());
      env.put("FERRY_AGENT_UPLINK", "eth0");
      agent = start(pb, name + "-agent", "ferry node-agent on");
      api = new AgentClient(api(), tls, Duration.ofMinutes(5));
    }

    /**
     * Starts a token streamer in this node's pod on {@code port}; returns once it listens.
     *
     * @param movable registered with this node's agent (Ferry), or a plain server (the baselines)
     */
    Process streamer(int port, int rate, int kvBytes, String io, boolean movable) throws Exception {
      List<String> cmd = new ArrayList<>();
      cmd.add(Builds.java());
      cmd.addAll(List.of("-cp", System.getProperty("java.class.path")));
      cmd.add("dev.ferry.example.streamer.TokenStreamer");
      cmd.addAll(streamerOptions(port, rate, kvBytes, io));
      if (movable) {
        cmd.addAll(List.of("--agent", handoffSocket.toString()));
      }
      Process p =
          start(
              pod.process(cmd.toArray(String[]::new)), name + "-streamer-" + port, "listening on");
      streamers.add(p);
      return p;
    }

    /**
     * Starts a plain token streamer (no agent) in this node's pod as a session of its own, in the
     * machine's mount namespace (nsenter, not {@code ip netns exec}), as CRIU needs to dump it.
     */
    Process detachedStreamer(int port, int rate, int kvBytes, String io) throws Exception {
      List<String> cmd =
          new ArrayList<>(
              List.of(
                  "setsid",
                  "nsenter",
                  "--net=/var/run/netns/" + pod.netns(),
                  Builds.java(),
                  // No mapped perf-data file in /tmp for CRIU to carry.
                  "-XX:-UsePerfData",
                  "-cp",
                  System.getProperty("java.class.path"),
                  "dev.ferry.example.streamer.TokenStreamer"));
      cmd.addAll(streamerOptions(port, rate, kvBytes, io));
      Process p = start(new ProcessBuilder(cmd), name + "-criu-streamer-" + port, "listening on");
      streamers.add(p);
      return p;
    }

    /** Kills this pod's streamers at once, as a reclaimed node or an OOM kill would. */
    void killStreamers() throws InterruptedException {
      for (Process p : streamers) {
        p.destroyForcibly();
      }
      for (Process p : streamers) {
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
          throw new IllegalStateException(name + "'s streamer survived SIGKILL for 10 s");
        }
      }
      streamers.clear();
    }

    @Override
    public String toString() {
      return name;
    }
  }

  private BenchCluster(Path logs, Path stateRoot) throws Exception {
    Runtime.getRuntime().addShutdownHook(hook);
    bed = Testbed.create();
    dir = Files.createTempDirectory("ferry-bench-");
    this.logs = Files.createDirectories(logs);
    certs = Files.createDirectories(dir.resolve("certs"));
    // `ip netns exec` mounts a fresh /sys for each agent, without /sys/fs/bpf: the agents pin
    // their maps in a BPF filesystem of this benchmark's own, unmounted at the end.
    bpf = Files.createDirectories(dir.resolve("bpf"));
    Shell.run("mount", "-t", "bpf", "bpf", bpf.toString());
    Shell.run(Builds.repoFile("scripts/ferry-certs.sh").toString(), certs.toString());
    tls = AgentChannels.context(TlsFiles.inDirectory(certs, "admin"));
    client = bed.host("client", "198.19.8.1/24");
    // 10,000 clients, and as many again when they reconnect in the baseline.
    client.run("sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535");
    bed.joinLan(LAN_SELF + "/24"); // this process calls the agents, as the operator would
    states =
        stateRoot == null
            ? dir
            : Files.createTempDirectory(Files.createDirectories(stateRoot), "ferry-bench-");
    a = new Node("node-a", "198.19.8.2", "pod-a", states);
    b = new Node("node-b", "198.19.8.3", "pod-b", states);
  }

  /** Builds the cluster and starts both agents; the service address starts on pod A. */
  static BenchCluster start(Path logs, Path stateRoot) throws Exception {
    BenchCluster c = null;
    try {
      c = new BenchCluster(logs, stateRoot);
      c.a.startAgent();
      c.b.startAgent();
      c.address(c.a, AddressRequest.Op.ADD, true);
      c.address(c.a, AddressRequest.Op.ANNOUNCE, false);
      c.holder = c.a;
      return c;
    } catch (Exception | Error e) {
      if (c != null) {
        c.close();
      }
      throw e;
    }
  }

  static List<String> streamerOptions(int port, int rate, int kvBytes, String io) {
    return List.of(
        "--listen",
        "0.0.0.0:" + port,
        "--name",
        "bench-" + port,
        "--rate",
        String.valueOf(rate),
        "--kv-bytes",
        String.valueOf(kvBytes),
        "--io",
        io);
  }

  Node holder() {
    return holder;
  }

  void holder(Node node) {
    holder = node;
  }

  /**
   * Moves the service address alone, as the L2 mover does for a server that went away: off the
   * holder's pod and its route, onto {@code to}'s pod with its route, then a gratuitous ARP.
   *
   * @return the agents' own time for the three steps, in microseconds
   */
  long moveAddress(Node to) {
    long micros = 0;
    if (holder != to) {
      micros += address(holder, AddressRequest.Op.REMOVE, true);
      micros += address(to, AddressRequest.Op.ADD, true);
    }
    micros += address(to, AddressRequest.Op.ANNOUNCE, false);
    holder = to;
    return micros;
  }

  /** One call of the agents' L2 address mover for the service address on {@code node}'s pod. */
  long address(Node node, AddressRequest.Op op, boolean withRoute) {
    AddressRequest req =
        AddressRequest.newBuilder()
            .setOp(op)
            .setAddress(VIP_CIDR)
            .setPod(node.podRef())
            .setHostInterface(withRoute ? node.pod.podPort() : "")
            .build();
    return node.api.call("MoveAddress", s -> s.moveAddress(req)).getTookMicros();
  }

  /** A process this benchmark did not start (CRIU restored it) but must end. */
  void adopt(long pid) {
    adopted.add(pid);
  }

  void forget(long pid) {
    adopted.remove(pid);
  }

  Process start(ProcessBuilder pb, String label, String upLine) throws Exception {
    Path log = logs.resolve(label + ".log");
    long from = Files.exists(log) ? Files.size(log) : 0;
    Process p =
        pb.redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
    processes.add(p);
    awaitLine(p, log, from, upLine, label);
    return p;
  }

  /**
   * Waits for {@code line} in what a process appended to {@code log} past byte {@code from}; fails
   * if the process ends first.
   */
  static void awaitLine(Process p, Path log, long from, String line, String label)
      throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      if (Files.exists(log) && Files.size(log) > from) {
        byte[] all = Files.readAllBytes(log);
        if (new String(all, (int) from, all.length - (int) from, StandardCharsets.UTF_8)
            .contains(line)) {
          return;
        }
      }
      if (p != null && !p.isAlive()) {
        throw new IllegalStateException(
            label + " exited (" + p.exitValue() + ") before it was up; see " + log);
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(label + " was not up within 60 s; see " + log);
      }
      Thread.sleep(50);
    }
  }

  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // this is the hook
    }
    for (long pid : adopted) {
      ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
    }
    for (Process p : processes) {
      p.destroyForcibly();
    }
    for (Process p : processes) {
      try {
        p.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    for (Node n : new Node[] {a, b}) {
      if (n != null && n.api != null) {
        n.api.close();
      }
    }
    if (bed != null) {
      bed.close();
    }
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
