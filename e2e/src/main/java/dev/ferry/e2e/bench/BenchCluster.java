// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.client.CallerTls;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.e2e.AgentCluster;
import dev.ferry.e2e.Builds;
import dev.ferry.e2e.ClosedOnExit;
import dev.ferry.e2e.OperatorCluster;
import dev.ferry.e2e.Processes;
import dev.ferry.testbed.Host;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The benchmark's cluster: {@link AgentCluster} (a client and two nodes on a LAN of network
 * namespaces, each node with a pod and a real node-agent process with mTLS certificates) on a LAN
 * of its own, with the processes' logs in files (10,000 connections make tens of thousands of log
 * lines), and token streamers in the pods. The benchmark calls the agents over their API from the
 * machine's own namespace, as the operator would: the L2 path, without the operator. For the
 * operator path, an {@link OperatorCluster} around the same agents adds the API server and the
 * operator as processes, on the same LAN, with logs in the same directory.
 *
 * <p>Everything it starts or creates goes in {@link #close}, which a shutdown hook also runs on
 * Ctrl-C or an error: processes (agents, streamers, processes CRIU restored), namespaces (and with
 * them the hold's TC and XDP programs, attached to the nodes' interfaces), the BPF filesystem the
 * agents pin their maps in, certificates and saved states; with the operator, the operator and the
 * API server (processes) and the fakes beside them (threads of this process).
 */
final class BenchCluster implements AutoCloseable {
  // A LAN of its own in the benchmarking range (RFC 2544), apart from the tests' 198.18.0.0/24:
  // this process joins it from the machine's namespace, where a test may have joined its own.
  static final String SUBNET = "198.19.8";
  static final String VIP = SUBNET + ".100";
  static final String VIP_CIDR = VIP + "/32";
  static final int STREAM_PORT = 8080;
  static final int IDLE_PORT = 8081;

  /**
   * The operator's HTTP port (metrics, health): apart from the tests' (9411, 9412, 9421, 9422) and
   * the demo's (9401, 9402), so that the benchmark runs beside either.
   */
  static final int OPERATOR_HTTP_PORT = 9491;

  final AgentCluster agents;

  /** The API server and the operator around the agents; null without the operator path. */
  final OperatorCluster operators;

  final Path logs;
  final Host client;
  final Node a;
  final Node b;

  /** Closes the parts once: at {@link #close}, or from a shutdown hook on Ctrl-C. */
  private ClosedOnExit<AutoCloseable> onExit;

  private Node holder;

  /** A node, its pod, its agent's API and the streamers in the pod. */
  final class Node {
    final AgentCluster.Node node;
    final String name;
    final Host host;
    final Host pod;
    final List<Process> streamers = new CopyOnWriteArrayList<>();
    final AgentClient api;

    Node(AgentCluster.Node node, CallerTls tls) {
      this.node = node;
      this.name = node.name;
      this.host = node.host;
      this.pod = node.pod;
      // The streamer's own accept backlog (128) is what counts; the kernel's cap is raised anyway.
      pod.run(
          "sysctl", "-q", "-w", "net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535");
      this.api = new AgentClient(node.api(), tls, Duration.ofMinutes(5));
    }

    String api() {
      return node.api();
    }

    PodRef podRef() {
      return PodRef.newBuilder().setNetns(node.podNetns()).build();
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
        cmd.addAll(List.of("--agent", node.handoffSocket.toString()));
      }
      Process p =
          agents.start(
              pod.process(cmd.toArray(String[]::new)),
              name + "-streamer-" + port,
              "listening on",
              null,
              null);
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
                  "--net=" + node.podNetns(),
                  Builds.java(),
                  // No mapped perf-data file in /tmp for CRIU to carry.
                  "-XX:-UsePerfData",
                  "-cp",
                  System.getProperty("java.class.path"),
                  "dev.ferry.example.streamer.TokenStreamer"));
      cmd.addAll(streamerOptions(port, rate, kvBytes, io));
      Process p =
          agents.start(
              new ProcessBuilder(cmd), name + "-criu-streamer-" + port, "listening on", null, null);
      streamers.add(p);
      return p;
    }

    /** Kills this pod's streamers at once, as a reclaimed node or an OOM kill would. */
    void killStreamers() throws InterruptedException {
      Processes.kill(streamers, name + "'s streamer");
      streamers.clear();
    }

    @Override
    public String toString() {
      return name;
    }
  }

  private BenchCluster(AgentCluster agents, OperatorCluster operators, Path logs) throws Exception {
    this.agents = agents;
    this.operators = operators;
    this.logs = logs;
    this.client = agents.client;
    // 10,000 clients, and as many again when they reconnect in the baseline.
    client.run("sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535");
    CallerTls tls = CallerTls.of(TlsFiles.inDirectory(agents.certs, "admin"));
    a = new Node(agents.a, tls);
    b = new Node(agents.b, tls);
  }

  /**
   * Builds the cluster and starts both agents, sized for states of {@code kvBytes} (a KV cache of 1
   * GiB is over the agents' default limit of 256 MiB); the service address starts on pod A.
   *
   * @param withOperator the API server and the operator too, for the operator path
   * @param commitWithStates the agents' ferry.agent.commit-with-states
   */
  static BenchCluster start(
      Path logs, Path stateRoot, int kvBytes, boolean withOperator, boolean commitWithStates)
      throws Exception {
    AtomicReference<AutoCloseable> made = new AtomicReference<>();
    // Ctrl-C while the cluster is being built takes down what there is of it.
    Thread early = new Thread(() -> closeQuietly(made.get()), "bench-cleanup-early");
    Runtime.getRuntime().addShutdownHook(early);
    try {
      AgentCluster agents = AgentCluster.create(new AgentCluster.Layout(SUBNET, stateRoot, logs));
      made.set(agents);
      Map<String, String> sized = new java.util.HashMap<>(AgentCluster.agentsForStatesOf(kvBytes));
      if (commitWithStates) {
        sized.put("FERRY_AGENT_COMMIT_WITH_STATES", "true");
      }
      agents.a.startAgent(sized);
      agents.b.startAgent(sized);
      OperatorCluster operators = null;
      if (withOperator) {
        operators =
            OperatorCluster.around(
                agents, Map.of("QUARKUS_HTTP_PORT", String.valueOf(OPERATOR_HTTP_PORT)));
        made.set(operators); // closing it closes the agents' cluster too
      }
      BenchCluster c = new BenchCluster(agents, operators, logs);
      made.set(c);
      c.onExit = ClosedOnExit.of(c::closeParts, "bench");
      // AgentCluster put the address on pod A, with the node's route: the client learns where.
      c.address(c.a, AddressRequest.Op.ANNOUNCE, false);
      c.holder = c.a;
      return c;
    } catch (Exception | Error e) {
      closeQuietly(made.get());
      throw e;
    } finally {
      Runtime.getRuntime().removeShutdownHook(early);
    }
  }

  private static void closeQuietly(AutoCloseable c) {
    if (c != null) {
      try {
        c.close();
      } catch (Exception e) {
        System.err.println("closing " + c + " failed: " + e);
      }
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
    agents.adopt(pid);
  }

  void forget(long pid) {
    agents.forget(pid);
  }

  @Override
  public void close() {
    ClosedOnExit<AutoCloseable> parts = onExit;
    if (parts != null) {
      parts.close();
    } else {
      closeParts(); // still being built: start's early hook
    }
  }

  private void closeParts() {
    for (Node n : new Node[] {a, b}) {
      n.api.close();
    }
    if (operators != null) {
      // The operator's cluster first marks the operator as not to be started again, then closes
      // the agents' cluster, which kills it and the API server with the rest.
      operators.close();
    } else {
      agents.close();
    }
  }
}
