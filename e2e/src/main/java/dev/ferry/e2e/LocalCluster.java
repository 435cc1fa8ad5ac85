// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.agent.handoff.HandoffServer;
import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.move.Arrival;
import dev.ferry.agent.move.ConnectionMover;
import dev.ferry.agent.move.ConnectionTable;
import dev.ferry.agent.move.Departure;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A client and two nodes in network namespaces, each node with what its agent runs (the handoff
 * socket, the eBPF hold, the connection mover), and applications as real processes: the cluster of
 * the demo and the end-to-end tests, short of Kubernetes.
 */
public final class LocalCluster implements AutoCloseable {
  public static final String VIP = "198.18.0.100";
  public static final int PORT = 8080;
  private static final Duration HOLD_LIMIT = Duration.ofMinutes(2);

  private final Testbed bed;
  private final Path sockets;
  private final Processes processes = new Processes();
  private final Host client;
  private final Node a;
  private final Node b;

  /** What each node's agent allows an application. */
  public record Settings(Duration answerTimeout, Duration stateTimeout, long maxStateBytes) {
    public static final Settings DEFAULT =
        new Settings(Duration.ofSeconds(2), Duration.ofSeconds(30), 128L << 20);
  }

  /** One node: its host namespace and its agent's parts. */
  public static final class Node {
    private final String name;
    private final Host host;
    private final NetNamespace namespace;
    private final Path handoffSocket;
    private final HandoffServer applications;
    private final ConnectionHold hold;
    private final ConnectionMover mover;

    private Node(String name, Host host, Path handoffSocket, Path pinDir, Settings settings)
        throws Exception {
      this.name = name;
      this.host = host;
      this.namespace = NetNamespace.named(host.netns());
      this.handoffSocket = handoffSocket;
      this.applications =
          HandoffServer.start(
              handoffSocket,
              settings.answerTimeout(),
              settings.stateTimeout(),
              settings.maxStateBytes());
      this.hold = ConnectionHold.install(pinDir, "eth0", namespace);
      this.mover = new ConnectionMover(applications, hold, HOLD_LIMIT);
    }

    public String name() {
      return name;
    }

    public Path handoffSocket() {
      return handoffSocket;
    }

    public ConnectionHold hold() {
      return hold;
    }

    private void close() {
      try {
        hold.uninstall();
      } catch (Exception e) {
        System.err.println(name + ": uninstalling the hold failed: " + e.getMessage());
      }
      applications.close();
      namespace.close();
    }
  }

  private LocalCluster(Testbed bed, Path sockets, Settings settings) throws Exception {
    this.bed = bed;
    this.sockets = sockets;
    this.client = bed.host("client", "198.18.0.1/24");
    this.a =
        new Node(
            "node-a",
            bed.host("node-a", "198.18.0.2/24", VIP + "/24"),
            sockets.resolve("node-a.sock"),
            bed.bpfPinDir("node-a"),
            settings);
    this.b =
        new Node(
            "node-b",
            bed.host("node-b", "198.18.0.3/24"),
            sockets.resolve("node-b.sock"),
            bed.bpfPinDir("node-b"),
            settings);
  }

  /** Builds the cluster; {@link #close} takes everything down again, processes included. */
  public static LocalCluster start(Settings settings) throws Exception {
    Testbed bed = Testbed.create();
    Path sockets = Files.createTempDirectory("ferry-e2e-");
    try {
      return new LocalCluster(bed, sockets, settings);
    } catch (Exception | Error e) {
      bed.close();
      deleteQuietly(sockets);
      throw e;
    }
  }

  public Node a() {
    return a;
  }

  public Node b() {
    return b;
  }

  /** Starts the Java demo server on {@code node}, movable through its agent; returns once up. */
  public Process javaStreamer(Node node, String... options) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path")));
    cmd.add("dev.ferry.example.streamer.TokenStreamer");
    cmd.addAll(commonOptions(node, "token-streamer"));
    cmd.addAll(List.of(options));
    return startApplication(node, "java", cmd);
  }

  /** Starts the Python example server on {@code node}; returns once up. */
  public Process pythonStreamer(Node node, String... options) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("python3", "-u", pythonExample().toString()));
    cmd.addAll(commonOptions(node, "token-streamer-py"));
    cmd.addAll(List.of(options));
    return startApplication(node, "python", cmd);
  }

  private static List<String> commonOptions(Node node, String name) {
    return List.of(
        "--listen", "0.0.0.0:" + PORT, "--agent", node.handoffSocket.toString(), "--name", name);
  }

  private Process startApplication(Node node, String label, List<String> command) throws Exception {
    return processes.start(
        node.host.process(command.toArray(String[]::new)),
        node.name + " " + label,
        "listening on",
        new Processes.Lines(true, null));
  }

  /** Starts {@code curl -sN} on the client against the service address. */
  public CurlStream curl(String pathAndQuery) throws IOException {
    return new CurlStream(
        client
            .process(
                "curl", "-sSN", "--max-time", "120", "http://" + VIP + ":" + PORT + pathAndQuery)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start());
  }

  /** The service's established connections on {@code node}. */
  public List<Connection> connections(Node node) throws Exception {
    return ConnectionTable.established(node.namespace, PORT);
  }

  /** What became of one connection in a {@link #move}, and how long each step took. */
  public record Moved(
      Connection connection,
      boolean moved,
      String outcome,
      long departNanos,
      long addressNanos,
      long arriveNanos,
      long announceNanos,
      long resumeNanos) {
    public long totalNanos() {
      return departNanos + addressNanos + arriveNanos + announceNanos + resumeNanos;
    }
  }

  /**
   * Moves {@code c} and the service address from one node to the other, as the operator and the two
   * agents will: depart (the application hands over, the client is held, the socket is read),
   * address to the target, arrive (rebuilt, the application takes it), neighbours told, resume. A
   * refused arrival moves everything back and resumes at home.
   */
  public Moved move(Connection c, Node from, Node to) throws Exception {
    long t0 = System.nanoTime();
    Departure departure = from.mover.depart(c);
    long t1 = System.nanoTime();
    if (departure instanceof Departure.Stayed stayed) {
      return new Moved(
          c, false, "stayed on " + from.name + ": " + stayed.reason(), t1 - t0, 0, 0, 0, 0);
    }
    Departure.Departed departed = (Departure.Departed) departure;
    bed.moveAddress(VIP + "/24", from.host, to.host);
    long t2 = System.nanoTime();
    Arrival arrival = to.mover.arrive(departed, to.namespace);
    long t3 = System.nanoTime();
    if (arrival instanceof Arrival.Refused refused) {
      bed.moveAddress(VIP + "/24", to.host, from.host);
      Arrival home = from.mover.arrive(departed, from.namespace);
      if (!(home instanceof Arrival.Staged staged)) {
        throw new IllegalStateException(
            c
                + " refused by "
                + to.name
                + " ("
                + refused.reason()
                + ") and at home ("
                + ((Arrival.Refused) home).reason()
                + ")");
      }
      bed.announce(VIP + "/24", from.host, client);
      staged.resume();
      return new Moved(
          c,
          false,
          "rolled back to " + from.name + ": " + refused.reason(),
          t1 - t0,
          t2 - t1,
          t3 - t2,
          0,
          0);
    }
    bed.announce(VIP + "/24", to.host, client);
    long t4 = System.nanoTime();
    ((Arrival.Staged) arrival).resume();
    long t5 = System.nanoTime();
    from.mover.release(c);
    return new Moved(c, true, "moved to " + to.name, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4);
  }

  /** Moves the service address alone (no connection on it), as after a finished migration. */
  public void moveAddress(Node from, Node to) {
    bed.moveAddress(VIP + "/24", from.host, to.host);
    bed.announce(VIP + "/24", to.host, client);
  }

  private static Path pythonExample() {
    return Builds.repoFile("examples/python/token_streamer.py");
  }

  @Override
  public void close() {
    processes.close();
    a.close();
    b.close();
    bed.close();
    deleteQuietly(sockets);
  }

  private static void deleteQuietly(Path dir) {
    try (var files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Files.deleteIfExists(f);
      }
      Files.deleteIfExists(dir);
    } catch (IOException e) {
      System.err.println("could not remove " + dir + ": " + e.getMessage());
    }
  }
}
