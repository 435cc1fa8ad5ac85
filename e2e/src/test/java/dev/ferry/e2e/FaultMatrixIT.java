// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.ConnectionDetail;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.MovedAddress;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.testbed.Shell;
import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fault suite, as CRIU's {@code --fault} and KubeVirt's forced failures: at every boundary a
 * move passes, the source agent, the target agent or the operator dies there and is started again;
 * then both agents at once, an agent that runs out of memory, one stopped as the kubelet stops it,
 * a full disk on either side, the agents cut off from each other, and an application that comes
 * back late after its agent restarted. Two clients stream through every cell. Each cell asserts
 * what a user cares about: each connection lives on exactly one side (the server's sockets in both
 * pods, as {@code ss} lists them), the side the request's status names, connection by connection;
 * each client received every byte in order, with no reset, and its stream goes on; no saved state
 * (user data) is left on either node, and while there was one it was private. The matrix is printed
 * at the end.
 *
 * <p>The agent that reaches a point stops there when it is the victim (a crash, {@code
 * FaultPoints}); otherwise it stalls there while the test kills the victim. The cluster has a LAN
 * of its own, so the suite can run beside the other end-to-end tests.
 */
class FaultMatrixIT {
  /** The boundaries of a move, in order (node-agent's FaultPoints.POINTS). */
  static final List<String> POINTS =
      List.of(
          "source-after-freeze",
          "source-after-export",
          "target-after-stage",
          "source-after-address",
          "source-before-commit",
          "target-after-commit",
          "target-after-resume",
          "source-before-release");

  enum Victim {
    SOURCE_AGENT("source agent"),
    TARGET_AGENT("target agent"),
    OPERATOR("operator");

    final String label;

    Victim(String label) {
      this.label = label;
    }
  }

  /**
   * Cells that fail today, each for a reason found by this suite and not fixed yet: they are not
   * run (they would fail every build), and the matrix prints them as open with the reason. Remove a
   * cell from here when its fix lands; the suite then holds it green.
   */
  static final Map<String, String> OPEN = Map.of();

  /**
   * A LAN of its own, so the suite runs beside the other end-to-end tests; {@code
   * -Dferry.faults.lan=198.18.19} gives a second copy of the suite another one (two checkouts
   * testing at once).
   */
  private static final AgentCluster.Layout LAN =
      new AgentCluster.Layout(System.getProperty("ferry.faults.lan", "198.18.9"), null, null);

  private static final String RATE = "250";

  /** Two minutes at RATE: it runs through any cell, which checks it while it still flows. */
  private static final String STREAM = "/v1/stream?prompt=faults&tokens=30000";

  private static final int REFERENCE_PORT = 8090;
  private static OperatorCluster cluster;
  private static String reference;
  private static final Map<String, Map<Victim, String>> MATRIX = new LinkedHashMap<>();
  private static final Map<Other, String> OTHER = new java.util.EnumMap<>(Other.class);
  private static int cells;

  /** The pods' applications, which some cells stop for a while. */
  private static Process podAServer;

  private static Process podBServer;

  /** The outcome of each {@link Cell} run. */
  private static final Map<Cell, String> OUTCOMES = new java.util.HashMap<>();

  @BeforeAll
  static void start() throws Exception {
    startCluster();
    // The whole stream, unmoved and as fast as it goes: what every client must have received
    // a prefix of (a token's text does not depend on the rate).
    Process fast =
        cluster.agents.a.streamer(
            "--rate", "1000000", "--listen", "0.0.0.0:" + REFERENCE_PORT, "--name", "reference");
    try (CurlStream unmoved = curl(REFERENCE_PORT)) {
      assertThat(unmoved.exitCode(60)).isZero();
      reference = unmoved.output();
    } finally {
      Processes.kill(List.of(fast), "the reference streamer");
    }
    for (String p : POINTS) {
      MATRIX.put(p, new LinkedHashMap<>());
      for (Victim v : Victim.values()) {
        String open = OPEN.get(p + "/" + v);
        if (open != null) {
          MATRIX.get(p).put(v, "OPEN: " + open);
        }
      }
    }
  }

  /** Whether the last cell passed; after a failed one the address is put back by hand. */
  private static boolean lastPassed = true;

  @AfterEach
  void addressBackInPodA() throws Exception {
    if (!lastPassed) {
      freshCluster();
      lastPassed = true;
      return;
    }
    MovedAddress moved =
        cluster.kube.resources(MovedAddress.class).withName(MovedAddress.nameFor(LAN.vip())).get();
    if (moved != null && !moved.getSpec().getPod().getName().equals("pod-a")) {
      // As at a cell's start: an agent the cell restarted takes its applications' ports again
      // only once they register again, and the move home is refused until then.
      cluster.agents.a.awaitRegistered(AgentCluster.PORT);
      cluster.agents.b.awaitRegistered(AgentCluster.PORT);
      String name = "home-" + cells;
      cluster.request(name, moved.getSpec().getPod().getName(), "pod-a", LAN.vip());
      MigrationRequestStatus st = cluster.awaitEnd(name, 90);
      assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(Phase.Completed);
    }
  }

  /**
   * After a failed cell the connection, the address and the agents may be anywhere (that is what
   * failed): the next cell starts on a cluster of its own.
   */
  private static void freshCluster() throws Exception {
    cluster.close();
    cluster = null;
    startCluster();
  }

  private static void startCluster() throws Exception {
    // The operator runs in the test's own network namespace: a port of its own for /q/metrics.
    cluster = OperatorCluster.start(LAN, Map.of("QUARKUS_HTTP_PORT", "0"));
    podAServer = cluster.agents.a.streamer("--rate", RATE);
    podBServer = cluster.agents.b.streamer("--rate", RATE);
  }

  @AfterAll
  static void stop() {
    if (cluster == null) {
      return;
    }
    cluster.close();
    StringBuilder out = new StringBuilder("\nFault matrix (point x what dies -> outcome)\n");
    out.append(String.format("%-24s", "point"));
    for (Victim v : Victim.values()) {
      out.append(String.format(" | %-40s", v.label + " dies"));
    }
    out.append('\n');
    MATRIX.forEach(
        (point, row) -> {
          out.append(String.format("%-24s", point));
          for (Victim v : Victim.values()) {
            out.append(String.format(" | %-40s", row.getOrDefault(v, "not run")));
          }
          out.append('\n');
        });
    out.append("\nOther faults -> outcome\n");
    rows(out, Other.values(), f -> f.label, OTHER);
    for (List<Cell> kind : List.of(LATE_APPLICATION, OUT_OF_MEMORY, STOPPED, BOTH_AGENTS)) {
      rows(out, kind.toArray(Cell[]::new), Cell::label, OUTCOMES);
    }
    System.out.println(out);
  }

  /** One line of the printed matrix for each of {@code cells}: its label and its outcome. */
  private static <E> void rows(
      StringBuilder out, E[] cells, Function<E, String> label, Map<E, String> outcomes) {
    for (E cell : cells) {
      out.append(
          String.format("%-52s | %s%n", label.apply(cell), outcomes.getOrDefault(cell, "not run")));
    }
  }

  static Stream<Arguments> cells() {
    List<Arguments> all = new ArrayList<>();
    for (String p : POINTS) {
      for (Victim v : Victim.values()) {
        if (!OPEN.containsKey(p + "/" + v)) {
          all.add(Arguments.of(p, v));
        }
      }
    }
    return all.stream();
  }

  @ParameterizedTest(name = "{1} dies at {0}")
  @MethodSource("cells")
  void theConnectionLivesOnExactlyOneSideWithEveryByte(String point, Victim victim)
      throws Exception {
    boolean crashesThere =
        victim == (point.startsWith("source-") ? Victim.SOURCE_AGENT : Victim.TARGET_AGENT);
    agentCell(
        MATRIX.get(point),
        victim,
        "fault",
        crashesThere ? point : point + "/stall",
        crashesThere ? "stopping the agent" : "stalling",
        null, // either end will do: the matrix asks where the connection lives
        (reaches, seen) -> {
          if (crashesThere) {
            reaches.awaitAgentExit();
            reaches.startAgent();
            return;
          }
          assertPrivate(cluster.agents.a);
          assertPrivate(cluster.agents.b);
          switch (victim) {
            case SOURCE_AGENT -> restart(cluster.agents.a);
            case TARGET_AGENT -> restart(cluster.agents.b);
            case OPERATOR -> {
              cluster.killOperator();
              cluster.startOperator();
            }
          }
        });
  }

  /**
   * An agent dies mid-move, and its pod's application opens its session with the restarted agent
   * only seconds after the agent needs it (stopped here until 2 s after; the Java SDK alone may
   * wait up to 2 s between attempts). The target's, past the commit: nothing can go back to the
   * source, and the restarted target waits for the application to register its port before it hands
   * the connections over again. The source's, before the commit: the restarted source waits for it
   * before it rebuilds the connections there, also when it died between its commit mark and COMMIT
   * (it asks the target first, which never committed). Either way, within the hold, every
   * connection lives on one side with every byte.
   */
  static final List<Cell> LATE_APPLICATION =
      List.of(
          new Cell(
              "target agent dies after commit, its application back late",
              "target-after-commit",
              Phase.Completed),
          new Cell(
              "source agent dies after export, its application back late",
              "source-after-export",
              Phase.RolledBack),
          new Cell(
              "source agent dies before commit, its application back late",
              "source-before-commit",
              Phase.RolledBack));

  @ParameterizedTest(name = "{0}")
  @FieldSource("LATE_APPLICATION")
  void anApplicationBackLateAfterItsAgentRestartedStillGetsTheConnections(Cell late)
      throws Exception {
    boolean target = late.fault().startsWith("target-");
    Process application = target ? podBServer : podAServer;
    // What the restarted agent logs as it waits for the application: past the commit, the target
    // for the states that come again; before it, the source before it rolls back.
    String waits = target ? "committed here; the states come again" : "again before rolling back";
    agentCell(
        late,
        "late",
        "stopping the agent",
        (dies, seen) -> {
          dies.awaitAgentExit();
          signal(application, "STOP");
          try {
            dies.startAgent();
            dies.awaitLine(0, waits);
            Thread.sleep(2000);
          } finally {
            signal(application, "CONT");
          }
        });
  }

  /**
   * An agent runs out of memory mid-move: the fault point fills its heap on the move's own thread
   * until the JVM throws OutOfMemoryError, as a state larger than its memory would. The agent must
   * end then (its JVM options: -XX:+ExitOnOutOfMemoryError; the JVM's status 3), not run on with a
   * move half done, and once started again (as the kubelet would) finish or roll back the move as
   * after a crash there.
   */
  static final List<Cell> OUT_OF_MEMORY =
      List.of(
          new Cell(
              "source agent out of memory after export",
              "source-after-export/oom",
              Phase.RolledBack),
          new Cell(
              "target agent out of memory after commit",
              "target-after-commit/oom",
              Phase.Completed));

  /**
   * An agent stopped mid-move as the kubelet stops it (SIGTERM), in a rolling update of the
   * DaemonSet, say: its API lets the calls under way run for up to 5 s (AgentRuntime.stop), so a
   * move that ends within them ends as if nothing happened; one that does not is cut off there (the
   * peer's stream, the applications' sessions, the move's threads), and the agent started again
   * rolls it back or finishes it as after a crash.
   */
  static final List<Cell> STOPPED =
      List.of(
          new Cell(
              "source agent stopped after export, move ends within 5 s",
              "source-after-export/stall",
              Phase.Completed),
          new Cell(
              "target agent stopped after commit, move ends within 5 s",
              "target-after-commit/stall",
              Phase.Completed),
          new Cell(
              "source agent stopped after export, move stalls 10 s",
              "source-stalls-after-export",
              Phase.RolledBack));

  @ParameterizedTest(name = "{0}")
  @FieldSource("STOPPED")
  void anAgentStoppedMidMoveLetsItEndOrRollsItBackOnceStartedAgain(Cell stop) throws Exception {
    agentCell(
        stop,
        "stopped",
        "stalling",
        (reaches, seen) -> { // the agent that reaches the point is the one stopped
          reaches.stopAgent();
          reaches.startAgent();
        });
  }

  /**
   * Both agents die at once mid-move and start again together (a node-wide event on both, an agent
   * release that crashes on both): each restarted agent asks the other, which may not answer yet.
   * Right after the freeze the source had saved nothing: its applications keep the connections, and
   * the Move the operator makes again fails at the target, not up yet, before freezing anything;
   * the status names each connection as stayed on the source (it named none before). Before the
   * commit the source rolls back once the target can say it never committed (the source's answer
   * meanwhile is UNAVAILABLE, which the operator calls again on). After the commit the target has
   * its record but lost what it staged: the restarted source sends its saved states again (it
   * released them, and the connections were lost, before).
   */
  static final List<Cell> BOTH_AGENTS =
      List.of(
          new Cell(
              "both agents die after the freeze", "source-after-freeze/stall", Phase.RolledBack),
          new Cell("both agents die before commit", "source-before-commit/stall", Phase.RolledBack),
          new Cell("both agents die after commit", "target-after-commit/stall", Phase.Completed));

  @ParameterizedTest(name = "{0}")
  @FieldSource("BOTH_AGENTS")
  void bothAgentsDyingAtOnceLeaveTheConnectionOnOneSide(Cell both) throws Exception {
    agentCell(
        both,
        "both",
        "stalling",
        (reaches, seen) -> {
          cluster.agents.a.killAgent();
          cluster.agents.b.killAgent();
          cluster.agents.a.startAgent();
          cluster.agents.b.startAgent();
        });
  }

  /** The JVM's exit status when -XX:+ExitOnOutOfMemoryError ends it. */
  private static final int EXIT_ON_OUT_OF_MEMORY = 3;

  @ParameterizedTest(name = "{0}")
  @FieldSource("OUT_OF_MEMORY")
  void anAgentOutOfMemoryEndsAndOnceRestartedLeavesTheConnectionOnOneSide(Cell oom)
      throws Exception {
    agentCell(
        oom,
        "oom",
        "filling the heap",
        (fills, seen) -> {
          assertThat(fills.awaitAgentExit())
              .as("%s's agent's exit status after OutOfMemoryError", fills.name)
              .isEqualTo(EXIT_ON_OUT_OF_MEMORY);
          fills.awaitLine(seen, "Terminating due to java.lang.OutOfMemoryError");
          fills.startAgent();
        });
  }

  /**
   * A cell of the faults after the matrix: its line in the printed summary, the fault the request
   * names (POINT, or POINT/ACTION), and the phase the request must end in.
   */
  record Cell(String label, String fault, Phase ends) {
    @Override
    public String toString() {
      return label; // the test's name
    }
  }

  /** {@code cell} run as {@link #agentCell} runs one, its outcome kept in OUTCOMES. */
  private static void agentCell(Cell cell, String prefix, String line, Meanwhile meanwhile)
      throws Exception {
    agentCell(OUTCOMES, cell, prefix, cell.fault(), line, cell.ends(), meanwhile);
  }

  /** What a cell does to the agents once the one that reaches its point has logged it. */
  @FunctionalInterface
  private interface Meanwhile {
    void run(AgentCluster.Node reaches, int seen) throws Exception;
  }

  /**
   * One cell in which an agent meets {@code fault} mid-move: two clients streaming, the request
   * made, then {@code meanwhile} once the agent that reaches the fault's point has logged "fault
   * point POINT reached: {@code line}"; then what every cell checks, and that the request ended in
   * {@code ends} (null: in either). Its outcome goes in {@code results}.
   */
  private static <K> void agentCell(
      Map<K, String> results,
      K cell,
      String prefix,
      String fault,
      String line,
      Phase ends,
      Meanwhile meanwhile)
      throws Exception {
    results.put(cell, "FAILED");
    lastPassed = false;
    String name = prefix + "-" + ++cells;
    String point = fault.split("/")[0];
    AgentCluster.Node reaches = point.startsWith("source-") ? cluster.agents.a : cluster.agents.b;
    cluster.agents.a.awaitRegistered(AgentCluster.PORT);
    cluster.agents.b.awaitRegistered(AgentCluster.PORT);
    try (Clients clients = Clients.start()) {
      int seen = reaches.logMark();
      cluster.request(name, fault, s -> s.setTarget(new PodReference("pod-b")));
      reaches.awaitLine(seen, "fault point " + point + " reached: " + line);
      meanwhile.run(reaches, seen);
      List<Integer> ports = clientPorts();
      MigrationRequestStatus st = cluster.awaitEnd(name, 120);
      String outcome =
          livesOnOneSideWithEveryByte(
              st, clients, ports, o -> results.put(cell, o + " (unchecked)"));
      if (ends != null) {
        assertThat(st.getPhase()).as(st.getMessage()).isEqualTo(ends);
      }
      results.put(cell, outcome + " ok");
      lastPassed = true;
    }
  }

  /** Sends {@code signal} (STOP, CONT) to {@code process} and every process it started. */
  private static void signal(Process process, String signal) {
    List<String> cmd = new ArrayList<>(List.of("kill", "-" + signal));
    Stream.concat(Stream.of(process.toHandle()), process.descendants())
        .forEach(p -> cmd.add(String.valueOf(p.pid())));
    Shell.run(cmd);
  }

  /** Faults other than a process dying: a full disk, and the agents cut off from each other. */
  enum Other {
    SOURCE_DISK_FULL("source's disk full at export", "source-after-freeze", null, 0),
    TARGET_DISK_FULL("target's disk full at the commit", "target-after-stage", null, 0),
    CUT_BEFORE_COMMIT("agents cut off 8 s, after export", "source-after-export", null, 8),
    CUT_AFTER_COMMIT("agents cut off 8 s, after commit", "target-after-commit", null, 8),
    CUT_PAST_HOLD_BEFORE_COMMIT(
        "agents cut off past the hold limit, after export", "source-after-export", "10s", 15),
    CUT_PAST_HOLD_AFTER_COMMIT(
        "agents cut off past the hold limit, after commit", "target-after-commit", "10s", 15);

    final String label;
    final String point;
    final String holdLimit;
    final int cutSeconds;

    Other(String label, String point, String holdLimit, int cutSeconds) {
      this.label = label;
      this.point = point;
      this.holdLimit = holdLimit;
      this.cutSeconds = cutSeconds;
    }
  }

  /**
   * The same assertions for faults that kill nothing. A full disk: the node's state directory is a
   * small tmpfs, filled (blocks and inodes) while the move stalls just before the write it must
   * refuse: the source's saved states, the target's commit record. A partition: a blackhole route
   * on each node for the other's address (no reset, no ICMP: packets vanish), from a stall at the
   * point until it heals, either within the hold limit or past it.
   */
  @ParameterizedTest(name = "{0}")
  @EnumSource(Other.class)
  void otherFaultsLeaveTheConnectionOnExactlyOneSide(Other fault) throws Exception {
    OTHER.put(fault, "FAILED");
    lastPassed = false;
    String name = "other-" + ++cells;
    AgentCluster.Node a = cluster.agents.a;
    AgentCluster.Node b = cluster.agents.b;
    AgentCluster.Node reaches = fault.point.startsWith("source-") ? a : b;
    AgentCluster.Node small = fault.cutSeconds == 0 ? reaches : null;
    if (small != null) {
      small.killAgent();
      Shell.run(
          "mount",
          "-t",
          "tmpfs",
          "-o",
          "size=512k,nr_inodes=64,mode=0700",
          "ferry-fault",
          small.stateDir.toString());
      small.startAgent();
    }
    try {
      a.awaitRegistered(AgentCluster.PORT);
      b.awaitRegistered(AgentCluster.PORT);
      try (Clients clients = Clients.start()) {
        int seen = reaches.logMark();
        cluster.request(
            name,
            fault.point + "/stall",
            s -> {
              s.setTarget(new PodReference("pod-b"));
              if (fault.holdLimit != null) {
                s.setHoldLimit(fault.holdLimit);
              }
            });
        reaches.awaitLine(seen, "fault point " + fault.point + " reached: stalling");
        if (small != null) {
          fill(small.stateDir);
        } else {
          cut(a, b);
          try {
            Thread.sleep(TimeUnit.SECONDS.toMillis(fault.cutSeconds)); // the partition itself
          } finally {
            heal(a, b);
          }
        }
        List<Integer> ports = clientPorts();
        MigrationRequestStatus st = cluster.awaitEnd(name, 120);
        if (small != null) {
          emptyFillers(small.stateDir);
        }
        String outcome =
            livesOnOneSideWithEveryByte(
                st, clients, ports, o -> OTHER.put(fault, o + " (unchecked)"));
        OTHER.put(fault, outcome + " ok");
        lastPassed = true;
      }
    } finally {
      if (small != null) {
        small.killAgent();
        Shell.run("umount", small.stateDir.toString());
        small.startAgent();
      }
    }
  }

  /** Takes every block and every inode of the tmpfs at {@code dir}. */
  private static void fill(Path dir) throws IOException {
    byte[] block = new byte[4096];
    try (var out = Files.newOutputStream(dir.resolve("filler"))) {
      while (true) {
        out.write(block);
      }
    } catch (IOException full) {
      // ENOSPC: every block is taken
    }
    try {
      for (int i = 0; ; i++) {
        Files.createFile(dir.resolve("filler-" + i));
      }
    } catch (IOException full) {
      // ENOSPC: every inode is taken
    }
  }

  private static void emptyFillers(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(f -> f.getFileName().toString().startsWith("filler")).toList()) {
        Files.delete(f);
      }
    }
  }

  private static void cut(AgentCluster.Node a, AgentCluster.Node b) {
    Shell.run("ip", "-n", a.host.netns(), "route", "add", "blackhole", b.ip + "/32");
    Shell.run("ip", "-n", b.host.netns(), "route", "add", "blackhole", a.ip + "/32");
  }

  private static void heal(AgentCluster.Node a, AgentCluster.Node b) {
    Shell.run("ip", "-n", a.host.netns(), "route", "del", "blackhole", b.ip + "/32");
    Shell.run("ip", "-n", b.host.netns(), "route", "del", "blackhole", a.ip + "/32");
  }

  /** How many clients stream through each cell: each connection is checked on its own. */
  private static final int CLIENTS = 2;

  /** The cell's clients, each streaming through the service address: all move, or none. */
  private static final class Clients implements AutoCloseable {
    final List<CurlStream> curls = new ArrayList<>();

    static Clients start() throws Exception {
      Clients c = new Clients();
      try {
        for (int i = 0; i < CLIENTS; i++) {
          c.curls.add(cluster.agents.curl(STREAM));
        }
        for (CurlStream curl : c.curls) {
          curl.awaitEvents(50, 10_000);
        }
        return c;
      } catch (Exception | Error e) {
        c.close();
        throw e;
      }
    }

    @Override
    public void close() {
      curls.forEach(CurlStream::close);
    }
  }

  /**
   * What every cell asserts once its request has ended: each client's server socket is in exactly
   * one pod, the one the status names, the same for all; the status lists each connection; every
   * byte each client received is in order; every stream goes on; no saved state is left on either
   * node. Returns the outcome as the matrix shows it; {@code unchecked} learns it as soon as it is
   * known, before the assertions.
   */
  private static String livesOnOneSideWithEveryByte(
      MigrationRequestStatus st, Clients clients, List<Integer> ports, Consumer<String> unchecked)
      throws Exception {
    // The request may end before every agent has finished its part (a stalled one, one
    // starting again): what must hold is where the connections live once they have.
    long settled = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    Map<Integer, String> where;
    do {
      Thread.sleep(100);
      where = new LinkedHashMap<>();
      for (int port : ports) {
        int onA = established(cluster.agents.a, port);
        int onB = established(cluster.agents.b, port);
        where.put(port, onA + onB == 1 ? (onA == 1 ? "a" : "b") : onA + "+" + onB);
      }
    } while (!where.values().stream().allMatch(w -> w.length() == 1)
        && System.nanoTime() < settled);
    List<String> sides = where.values().stream().distinct().toList();
    String outcome =
        st.getPhase()
            + ", "
            + (sides.size() == 1 ? ports.size() + " live on " + sides.get(0) : "live on " + where);
    unchecked.accept(outcome);

    assertThat(where)
        .as("%s: where each client's server socket is (client port -> pod)", st.getMessage())
        .allSatisfy((port, side) -> assertThat(side).isIn("a", "b"));
    assertThat(sides).as("all connections on one side: %s", where).hasSize(1);
    boolean onB = sides.get(0).equals("b");
    assertThat(st.getPhase()).as(st.getMessage()).isIn(Phase.Completed, Phase.RolledBack);
    assertThat(onB ? Phase.Completed : Phase.RolledBack)
        .as("the side the status names: %s", st.getMessage())
        .isEqualTo(st.getPhase());
    // Back where it was: rolled back after it left its application, or kept by it all along.
    assertThat(st.getConnectionDetails())
        .extracting(ConnectionDetail::getOutcome)
        .as("each connection in the status")
        .hasSize(CLIENTS)
        .isSubsetOf(onB ? List.of("Migrated") : List.of("RolledBack", "Kept"));
    // Each stream goes on from where it lives now, every byte in order, no reset.
    for (CurlStream curl : clients.curls) {
      curl.awaitEvents(curl.events() + 50, 30_000);
      String got = curl.output();
      assertThat(reference.startsWith(got))
          .as("the %d bytes received are the stream's first ones", got.length())
          .isTrue();
      assertThat(curl.alive()).as("curl still streaming (no reset)").isTrue();
    }
    assertNothingSaved();
    return outcome;
  }

  /**
   * Saved states are user data (socket queues, application state): while they exist, files are 0600
   * in 0700 directories. The commit records (and the marks of how each migration ended) hold no
   * data but live beside them, alike.
   */
  private static void assertPrivate(AgentCluster.Node node) throws IOException {
    for (String sub :
        List.of("migrations", "commits", "plans-rolled-back", "commits-resumed", "set-aside")) {
      for (Path p : under(node.stateDir.resolve(sub))) {
        String mode;
        try {
          mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(p, NOFOLLOW_LINKS));
        } catch (NoSuchFileException gone) {
          continue; // the migration ended meanwhile
        }
        assertThat(mode)
            .as("mode of %s on %s", node.stateDir.relativize(p), node.name)
            .isEqualTo(Files.isDirectory(p, NOFOLLOW_LINKS) ? "rwx------" : "rw-------");
      }
    }
  }

  /**
   * Once a migration has ended, however it ended, neither agent keeps anything of it but the commit
   * record (an empty file: its name is the record). An agent finishes its part after the request
   * ends (a source releases after the target resumed): this waits for that, up to 60 s.
   */
  private static void assertNothingSaved() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    List<String> left;
    do {
      left = new ArrayList<>();
      for (AgentCluster.Node n : List.of(cluster.agents.a, cluster.agents.b)) {
        assertPrivate(n);
        for (String sub : List.of("migrations", "set-aside")) {
          for (Path p : under(n.stateDir.resolve(sub))) {
            left.add(n.name + ":" + n.stateDir.relativize(p));
          }
        }
      }
      if (left.isEmpty()) {
        return;
      }
      Thread.sleep(100);
    } while (System.nanoTime() < deadline);
    assertThat(left).as("saved states left on the nodes 60 s after the request ended").isEmpty();
  }

  /** Everything under {@code dir}, deepest first; none if it does not exist. */
  private static List<Path> under(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    List<Path> found = new ArrayList<>();
    Files.walkFileTree(
        dir,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) {
            found.add(f);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFileFailed(Path f, IOException e) {
            return FileVisitResult.CONTINUE; // deleted while we looked
          }

          @Override
          public FileVisitResult postVisitDirectory(Path d, IOException e) {
            if (!d.equals(dir)) {
              found.add(d);
            }
            return FileVisitResult.CONTINUE;
          }
        });
    return found;
  }

  private static void restart(AgentCluster.Node node) throws Exception {
    node.killAgent();
    node.startAgent();
  }

  /**
   * The server sockets of this cell's stream in a node's pod (established, from the service's port
   * to curl's), whatever an earlier failed cell left there.
   */
  private static int established(AgentCluster.Node node, int clientPort) {
    String out =
        Shell.run(
            "nsenter",
            "--net=" + node.podNetns(),
            "ss",
            "-Htn",
            "state",
            "established",
            "( sport = :" + AgentCluster.PORT + " and dport = :" + clientPort + " )");
    return (int) out.lines().filter(l -> !l.isBlank()).count();
  }

  /** The clients' ports: their connections to the service, one each. */
  private static List<Integer> clientPorts() {
    List<String> lines =
        Shell.run(
                "ip",
                "netns",
                "exec",
                cluster.agents.client.netns(),
                "ss",
                "-Htn",
                "state",
                "established",
                "( dport = :" + AgentCluster.PORT + " )")
            .lines()
            .filter(l -> !l.isBlank())
            .toList();
    assertThat(lines).as("the clients' connections").hasSize(CLIENTS);
    return lines.stream()
        .map(l -> l.trim().split("\\s+")[2])
        .map(local -> Integer.parseInt(local.substring(local.lastIndexOf(':') + 1)))
        .toList();
  }

  private static CurlStream curl(int port) throws java.io.IOException {
    return new CurlStream(
        cluster
            .agents
            .client
            .process(
                "curl", "-sSN", "--max-time", "120", "http://" + LAN.vip() + ":" + port + STREAM)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start());
  }
}
