// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.testbed.Host;
import dev.ferry.testbed.Shell;
import dev.ferry.testbed.Testbed;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Two nodes on a LAN, each with a pod wired as the VPC CNI wires one, and each running the real
 * node-agent as a process (the Quarkus build), with certificates from scripts/ferry-certs.sh. The
 * service address starts in pod A. The test drives the agents through their API.
 */
final class AgentCluster implements AutoCloseable {
  static final String VIP = "198.18.0.100";
  static final int PORT = 8080;
  static final int API_PORT = 9443;

  /** The test's own address on the nodes' LAN, where it serves what the nodes call. */
  static final String LAN_SELF = "198.18.0.254";

  /**
   * Whether the processes' output goes to our standard output too (the tests' logs); not in the
   * demo.
   */
  static volatile boolean echoLogs = true;

  final Testbed bed;
  final Path dir;
  final Path certs;
  final Path bpf;
  final Host client;
  final Node a;
  final Node b;
  private final List<Process> processes = new CopyOnWriteArrayList<>();

  /** A node, its pod, and its agent's files. */
  final class Node {
    final String name;
    final Host host;
    final Host pod;
    final String ip;
    final Path handoffSocket;
    final Path stateDir;
    final Path pinDir;
    final List<String> log = new CopyOnWriteArrayList<>();

    /** More of the agent's environment for every start (the cluster's API server, its IMDS). */
    volatile Map<String, String> baseEnv = Map.of();

    Process agent;

    Node(String name, String ip, String podRole) throws IOException {
      this.name = name;
      this.ip = ip;
      this.host = bed.host(name, ip + "/24");
      this.pod = bed.pod(host, podRole);
      this.handoffSocket = dir.resolve(name + ".sock");
      this.stateDir = Files.createDirectories(dir.resolve(name + "-state"));
      this.pinDir = bpf.resolve(name);
    }

    String api() {
      return ip + ":" + API_PORT;
    }

    String podNetns() {
      return "/var/run/netns/" + pod.netns();
    }

    /** Starts (or restarts) this node's agent; returns once its API listens. */
    void startAgent() throws Exception {
      startAgent(Map.of());
    }

    /** As {@link #startAgent()}, with more of the agent's environment (FERRY_AGENT_IMDS_*). */
    void startAgent(Map<String, String> more) throws Exception {
      log.clear();
      List<String> cmd =
          List.of(
              Builds.java(),
              "-jar",
              Builds.repoFile("node-agent/target/quarkus-app/quarkus-run.jar").toString());
      ProcessBuilder pb = host.process(cmd.toArray(String[]::new));
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
      // Test clusters honour a move's fault point (MoveRequest.fault): the fault suite uses them.
      env.put("FERRY_AGENT_FAULT_POINTS", "true");
      env.putAll(baseEnv);
      env.putAll(more);
      agent = start(pb, name + " agent", "ferry node-agent on", log);
    }

    /** Kills this node's agent at once, as a crash or an OOM kill would, and waits for the end. */
    /** A client of this node's agent, with the certificate {@code who} (admin, operator…). */
    public dev.ferry.api.client.AgentClient client(String who) {
      return new dev.ferry.api.client.AgentClient(
          api(),
          dev.ferry.api.client.AgentChannels.context(
              dev.ferry.api.client.TlsFiles.inDirectory(certs, who)),
          java.time.Duration.ofSeconds(30));
    }

    /** Waits for the agent to stop on its own (a fault point), as a crash there would. */
    void awaitAgentExit() throws InterruptedException {
      if (!agent.waitFor(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + "'s agent did not stop at its fault point");
      }
    }

    void killAgent() throws InterruptedException {
      agent.destroyForcibly();
      if (!agent.waitFor(10, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + "'s agent survived SIGKILL for 10 s");
      }
    }

    /** Starts the demo token streamer in this node's pod; returns once it listens. */
    Process streamer(String... options) throws Exception {
      List<String> cmd = new ArrayList<>();
      cmd.add(Builds.java());
      cmd.addAll(List.of("-cp", System.getProperty("java.class.path")));
      cmd.add("dev.ferry.example.streamer.TokenStreamer");
      cmd.addAll(
          List.of(
              "--listen",
              "0.0.0.0:" + PORT,
              "--agent",
              handoffSocket.toString(),
              "--name",
              "streamer-" + name));
      cmd.addAll(List.of(options));
      return start(
          pod.process(cmd.toArray(String[]::new)), name + " streamer", "listening on", null);
    }
  }

  private AgentCluster() throws Exception {
    bed = Testbed.create();
    try {
      dir = Files.createTempDirectory("ferry-agents-");
      certs = Files.createDirectories(dir.resolve("certs"));
      // `ip netns exec` mounts a fresh /sys for the agent, without /sys/fs/bpf: the agents pin
      // their maps in a BPF filesystem of their own, which a restarted agent finds again.
      bpf = Files.createDirectories(dir.resolve("bpf"));
      Shell.run("mount", "-t", "bpf", "bpf", bpf.toString());
      Shell.run(Builds.repoFile("scripts/ferry-certs.sh").toString(), certs.toString());
      client = bed.host("client", "198.18.0.1/24");
      bed.joinLan(LAN_SELF + "/24"); // the test itself calls the agents, as the operator would
      a = new Node("node-a", "198.18.0.2", "pod-a");
      b = new Node("node-b", "198.18.0.3", "pod-b");
      a.pod.addAddress(VIP + "/32");
      a.host.routeToPod(VIP + "/32", a.pod);
    } catch (Exception | Error e) {
      bed.close();
      throw e;
    }
  }

  static AgentCluster start() throws Exception {
    AgentCluster c = create();
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
    return new AgentCluster();
  }

  /** curl -sSN on the client against the service address. */
  CurlStream curl(String pathAndQuery) throws IOException {
    return new CurlStream(
        client
            .process(
                "curl", "-sSN", "--max-time", "120", "http://" + VIP + ":" + PORT + pathAndQuery)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start());
  }

  /**
   * Starts {@code ferry-agent ARGS} (the CLI) from the test's own namespace, which is on the nodes'
   * LAN, as the admin; its output goes to the test's log and to the returned run.
   */
  CliRun cli(String... args) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Builds.java());
    cmd.addAll(
        List.of("-cp", System.getProperty("java.class.path"), "dev.ferry.cli.FerryAgentCli"));
    cmd.addAll(List.of(args));
    cmd.addAll(List.of("--certs", certs.toString()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    processes.add(p);
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

  private Process start(ProcessBuilder pb, String label, String upLine, List<String> sink)
      throws Exception {
    return start(
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))),
        label,
        upLine,
        sink,
        null);
  }

  /**
   * Starts a process of the cluster, logged under {@code label}, and returns once it prints {@code
   * upLine} (handed to {@code onUp}); it is killed when the cluster closes.
   */
  Process start(
      ProcessBuilder pb,
      String label,
      String upLine,
      List<String> sink,
      java.util.function.Consumer<String> onUp)
      throws Exception {
    Process p = pb.redirectErrorStream(true).start();
    processes.add(p);
    CountDownLatch up = new CountDownLatch(1);
    Thread t =
        new Thread(
            () -> {
              try (BufferedReader in =
                  new BufferedReader(
                      new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                  if (echoLogs) {
                    System.out.println("    [" + label + "] " + line);
                  }
                  if (sink != null) {
                    sink.add(line);
                  }
                  if (up.getCount() > 0 && line.contains(upLine)) {
                    if (onUp != null) {
                      onUp.accept(line);
                    }
                    up.countDown();
                  }
                }
              } catch (IOException ended) {
                // the process ended
              }
            },
            label + "-log");
    t.setDaemon(true);
    t.start();
    if (!up.await(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException(label + " did not start within 60 s: " + pb.command());
    }
    return p;
  }

  @Override
  public void close() {
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
    bed.close();
    Shell.attempt(List.of("umount", bpf.toString()));
    Shell.attempt(List.of("rm", "-rf", dir.toString()));
  }
}
