// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.repair.CongestionSeed;
import dev.ferry.agent.repair.CongestionState;
import dev.ferry.agent.repair.PeerSegments;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketExporter;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.e2e.Mains;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import dev.ferry.testbed.DelayLine;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Shell;
import dev.ferry.testbed.SlowLink;
import dev.ferry.testbed.Testbed;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code make bench-link}: a bulk download behind a WAN link (20 ms round trip, 100 Mbit/s to the
 * client), moved at full speed from node A to node B; how long after the resume the client again
 * receives at 90 % of its rate before the move. Issue 17's target is two round trips.
 *
 * <p>Side by side, each on a fresh testbed: the repair path with the congestion state carried (what
 * the agent does), the same without handing the restored socket the client's last ACK to the
 * source's hold (as before that was done), without the congestion state either (the initial window,
 * as before it was carried), and CRIU moving the server process whole, when {@code criu check}
 * passes (see e2e/BENCHMARK.md for building CRIU 4.x). The Ferry rows use the agent's own export
 * and restore ({@link SocketExporter}, {@link SocketRestorer}, {@link CongestionSeed}) and hold
 * ({@link ConnectionHold}) in the order the agents use them; only the handoff with an application
 * is left out (the sender stops writing at the freeze). Not a test: the figures depend on the
 * machine.
 */
public final class LinkBenchmark {
  private static final String SERVICE = "10.88.0.100";
  private static final String SERVICE_CIDR = SERVICE + "/24";
  private static final int PORT = 8080;

  /** The byte at offset i is i mod 251, which the CRIU row's server sends as well. */
  private static final int PATTERN = 251;

  private final Duration oneWay;
  private final int megabits;
  private final Duration before;
  private final Duration after;
  private final Duration held;
  private final int notSentLowat;

  private LinkBenchmark(
      Duration oneWay,
      int megabits,
      Duration before,
      Duration after,
      Duration held,
      int notSentLowat) {
    this.oneWay = oneWay;
    this.megabits = megabits;
    this.before = before;
    this.after = after;
    this.held = held;
    this.notSentLowat = notSentLowat;
  }

  public static void main(String[] args) {
    Mains.exitWith("LinkBenchmark", () -> benchmark(args));
  }

  private static int benchmark(String[] args) throws Exception {
    int runs = 5;
    int rttMillis = 20;
    int megabits = 100;
    int holdMillis = 0;
    int notSentLowat = 0;
    args = String.join(" ", args).trim().split("\\s+");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--runs" -> runs = Integer.parseInt(args[++i]);
        case "--rtt-ms" -> rttMillis = Integer.parseInt(args[++i]);
        case "--mbit" -> megabits = Integer.parseInt(args[++i]);
        case "--hold-ms" -> holdMillis = Integer.parseInt(args[++i]);
        case "--notsent-lowat" -> notSentLowat = Integer.parseInt(args[++i]);
        case "" -> {}
        default -> {
          System.err.println(
              "usage: LinkBenchmark [--runs N] [--rtt-ms 20] [--mbit 100] [--hold-ms 0]"
                  + " [--notsent-lowat BYTES]");
          return 2;
        }
      }
    }
    LinkBenchmark bench =
        new LinkBenchmark(
            Duration.ofMillis(rttMillis).dividedBy(2),
            megabits,
            Duration.ofSeconds(4),
            Duration.ofSeconds(3),
            Duration.ofMillis(holdMillis),
            notSentLowat);
    String criu = CriuMove.unavailable();
    say(
        "a download behind %d ms RTT and %d Mbit/s, moved at full speed from A to B; %d runs of each"
            .formatted(rttMillis, megabits, runs));
    if (notSentLowat > 0) {
      say(
          ("the server keeps at most %d bytes unsent (TCP_NOTSENT_LOWAT, as HTTP/2 servers set it):"
                  + " at the freeze, little is left to send before the client's ACKs come back")
              .formatted(notSentLowat));
    }
    if (holdMillis > 0) {
      say(
          "the Ferry moves hold the client at least %d ms from the freeze before its address moves"
              .formatted(holdMillis));
    }
    if (criu != null) {
      say("CRIU row left out: " + criu);
    }
    List<Mode> modes =
        new ArrayList<>(List.of(Mode.CARRIED, Mode.CARRIED_WITHOUT_ACK, Mode.INITIAL_WINDOW));
    if (criu == null) {
      modes.add(Mode.CRIU);
    }
    try (CongestionSeed seed =
        CongestionSeed.register()
            .orElseThrow(
                () ->
                    new IllegalStateException(
                        "this kernel cannot register the congestion seed (the log above says"
                            + " why): the carried row needs it"))) {
      List<List<Result>> results = new ArrayList<>();
      for (Mode m : modes) {
        results.add(new ArrayList<>());
      }
      // Interleaved, so that what else the machine does weighs on every mode alike.
      for (int run = 1; run <= runs; run++) {
        for (int m = 0; m < modes.size(); m++) {
          Result r = bench.trial(modes.get(m), seed);
          results.get(m).add(r);
          say("run %d, %s: %s".formatted(run, modes.get(m).label, r));
        }
      }
      say("");
      say(
          "%-34s %14s %14s %12s %12s"
              .formatted("", "to 90%, ms", "in RTTs", "pause, ms", "rate, Mbit/s"));
      double rtt = rttMillis;
      for (int m = 0; m < modes.size(); m++) {
        List<Result> rs = results.get(m);
        say(
            "%-34s %14s %14s %12s %12s"
                .formatted(
                    modes.get(m).label,
                    spread(rs.stream().mapToDouble(Result::backTo90Millis).toArray()),
                    spread(rs.stream().mapToDouble(r -> r.backTo90Millis() / rtt).toArray()),
                    spread(rs.stream().mapToDouble(Result::pauseMillis).toArray()),
                    spread(rs.stream().mapToDouble(Result::rateMbit).toArray())));
      }
      say(
          "(median, and min-max in brackets; \"to 90%\" counts from the resume: for CRIU, from its"
              + " restore's return)");
    }
    return 0;
  }

  enum Mode {
    CARRIED("Ferry, congestion state carried", true, true),
    CARRIED_WITHOUT_ACK("Ferry, carried, client's ACK left out", true, false),
    INITIAL_WINDOW("Ferry, initial window (before)", false, false),
    CRIU("CRIU 4.x, whole process", false, false);

    final String label;
    final boolean seeded;

    /** The client's last ACK to the source's hold goes to the restored socket (ClientAck). */
    final boolean handsOnAck;

    Mode(String label, boolean seeded, boolean handsOnAck) {
      this.label = label;
      this.seeded = seeded;
      this.handsOnAck = handsOnAck;
    }
  }

  /**
   * One move.
   *
   * @param rateMbit what the client received in the 2 s before the freeze
   * @param pauseMillis the longest the client went without a byte around the move
   * @param backTo90Millis from the resume until the client had received 90 % of that rate over one
   *     round trip
   * @param cwnd the window exported and the one restored (0 for CRIU, which shows neither)
   */
  record Result(
      double rateMbit,
      double pauseMillis,
      double backTo90Millis,
      int cwndExported,
      int cwndRestored,
      String link) {
    /** This result with the link's figures. */
    Result withLink(String figures) {
      return new Result(rateMbit, pauseMillis, backTo90Millis, cwndExported, cwndRestored, figures);
    }

    @Override
    public String toString() {
      return "%.1f Mbit/s before, paused %.1f ms, back to 90%% %.1f ms after the resume, cwnd %d -> %d; %s"
          .formatted(rateMbit, pauseMillis, backTo90Millis, cwndExported, cwndRestored, link);
    }
  }

  private Result trial(Mode mode, CongestionSeed seed) throws Exception {
    try (Testbed bed = Testbed.create()) {
      Host a = bed.host("a", "10.88.0.2/24", SERVICE_CIDR);
      Host b = bed.host("b", "10.88.0.3/24");
      Host router = bed.host("router", "10.88.0.254/24");
      Host client = bed.behind(router, "client", "10.88.1.254/24", "10.88.1.1/24");
      for (Host node : List.of(a, b)) {
        node.run("ip", "route", "add", "10.88.1.0/24", "via", "10.88.0.254");
      }
      try (SlowLink link =
          SlowLink.insert(router, client, "10.88.0.0/24", "10.88.1.0/24", oneWay, megabits)) {
        Result r =
            mode == Mode.CRIU
                ? criuTrial(bed, a, b, router, client)
                : ferryTrial(mode, seed, bed, a, b, router, client);
        List<DelayLine.Figures> lines = link.stop();
        return r.withLink("delay line down " + lines.get(0) + "; up " + lines.get(1));
      }
    }
  }

  private Result ferryTrial(
      Mode mode, CongestionSeed seed, Testbed bed, Host a, Host b, Host router, Host client)
      throws Exception {
    InetSocketAddress service = new InetSocketAddress(InetAddress.getByName(SERVICE), PORT);
    try (NetNamespace nsA = NetNamespace.named(a.netns());
        NetNamespace nsB = NetNamespace.named(b.netns());
        NetNamespace nsClient = NetNamespace.named(client.netns());
        TcpSocket listener =
            nsA.call(
                () -> {
                  TcpSocket s = TcpSocket.open(service.getAddress());
                  s.setReuseAddress();
                  s.bind(service);
                  s.listen(1);
                  return s;
                })) {
      SocketChannel channel = nsClient.call(() -> SocketChannel.open(service));
      ConnectionHold holdA = ConnectionHold.install(bed.bpfPinDir("a"), "eth0", nsA);
      ConnectionHold holdB = ConnectionHold.install(bed.bpfPinDir("b"), "eth0", nsB);
      try (Receiver receiver = new Receiver(channel)) {
        TcpSocket onA = listener.accept();
        if (notSentLowat > 0) {
          new SocketOptions(onA).setNotSentLowWatermark(notSentLowat);
        }
        Sender sender = Sender.start(onA, 0);
        Thread.sleep(before.toMillis());

        // The agents' sequence (ConnectionMover), without the application's handoff: hold the
        // client, read the socket, answer for it, rebuild it on B, announce, wake, resume.
        long freeze = System.nanoTime();
        long deadline = freeze + TimeUnit.MINUTES.toNanos(2);
        HoldKey key = new HoldKey(onA.localAddress(), onA.remoteAddress());
        holdA.freeze(key, deadline);
        long offset = sender.stop();
        SocketState exported = new SocketExporter().export(onA);
        long exportedAt = System.nanoTime();
        onA.close();
        holdA.answer(exported, exportedAt, deadline);
        SocketState state = SocketStateCodec.decode(SocketStateCodec.encode(exported));
        // --hold-ms: as long as the agents' own steps take with an application (issue 15), while
        // the address is still on A and its hold answers the client, as in the agents' move.
        long heldUntil = freeze + held.toNanos();
        while (System.nanoTime() < heldUntil) {
          Thread.sleep(1);
        }
        bed.moveAddress(SERVICE_CIDR, a, b);
        SocketRestorer restorer =
            new SocketRestorer(mode.seeded ? Optional.of(seed) : Optional.empty());
        RestoredSocket staged = nsB.call(() -> restorer.restore(state));
        // As the target agent does on COMMIT, before the client can reach the socket: one process,
        // one clock, so the time since the export is simply measured.
        staged.continueClock(System.currentTimeMillis() - state.exportedAtMillis());
        // As the source reads it just before COMMIT, and the target hands it on at the resume.
        if (mode.handsOnAck) {
          holdA.clientAck(key).ifPresent(staged::clientAcknowledged);
        }
        bed.announce(SERVICE_CIDR, b, router);
        holdB.wake(state, deadline);
        TcpSocket onB;
        try (PeerSegments peers =
            staged.hasClientAck()
                ? PeerSegments.open(nsB, List.of(state.local()))
                : PeerSegments.NONE) {
          onB = staged.resume(new byte[0], peers.forAddress(state.local()));
        }
        long resume = System.nanoTime();
        holdA.release(key);
        int restoredCwnd = onB.info().sndCwnd();
        Sender rest = Sender.start(onB, offset);
        Thread.sleep(after.toMillis());
        rest.stop();
        onB.close();
        return receiver.result(
            freeze,
            resume,
            oneWay.toNanos() * 2,
            state.congestion().map(CongestionState::cwnd).orElse(0),
            restoredCwnd);
      } finally {
        holdA.uninstall();
        holdB.uninstall();
      }
    }
  }

  private Result criuTrial(Testbed bed, Host a, Host b, Host router, Host client) throws Exception {
    Path dir = Files.createTempDirectory("ferry-bench-link-criu-");
    Path server = dir.resolve("server.py");
    Files.writeString(
        server,
        """
        import socket, sys
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], int(sys.argv[2])))
        s.listen(1)
        print("listening on", sys.argv[1], flush=True)
        c, _ = s.accept()
        s.close()
        block = bytes(i % 251 for i in range(251 * 261))
        while True:
            c.sendall(block)
        """);
    InetSocketAddress service = new InetSocketAddress(InetAddress.getByName(SERVICE), PORT);
    // Its own session, in the machine's mount namespace, stdio on files: what CRIU can dump.
    Process p =
        new ProcessBuilder(
                "setsid",
                "nsenter",
                "--net=/var/run/netns/" + a.netns(),
                "python3",
                server.toString(),
                SERVICE,
                String.valueOf(PORT))
            .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
            .redirectOutput(dir.resolve("server.out").toFile())
            .redirectErrorStream(true)
            .start();
    long restoredPid = 0;
    try (NetNamespace nsClient = NetNamespace.named(client.netns())) {
      awaitListening(dir.resolve("server.out"));
      SocketChannel channel = nsClient.call(() -> SocketChannel.open(service));
      try (Receiver receiver = new Receiver(channel)) {
        Thread.sleep(before.toMillis());
        long freeze = System.nanoTime();
        CriuMove.criu(
            a.netns(),
            "node A",
            dir.resolve("dump.log"),
            "dump",
            "-t",
            String.valueOf(p.pid()),
            "-D",
            dir.toString(),
            "--tcp-established",
            "-o",
            "dump.log");
        p.waitFor(10, TimeUnit.SECONDS);
        bed.moveAddress(SERVICE_CIDR, a, b);
        CriuMove.criu(
            b.netns(),
            "node B",
            dir.resolve("restore.log"),
            "restore",
            "-D",
            dir.toString(),
            "--tcp-established",
            "-d",
            "--pidfile",
            dir.resolve("restored.pid").toString(),
            "-o",
            "restore.log");
        long resume = System.nanoTime();
        bed.announce(SERVICE_CIDR, b, router);
        restoredPid = Long.parseLong(Files.readString(dir.resolve("restored.pid")).trim());
        Thread.sleep(after.toMillis());
        return receiver.result(freeze, resume, oneWay.toNanos() * 2, 0, 0);
      }
    } finally {
      p.destroyForcibly();
      if (restoredPid > 0) {
        ProcessHandle.of(restoredPid).ifPresent(ProcessHandle::destroyForcibly);
      }
      Shell.run("rm", "-rf", dir.toString());
    }
  }

  private static void awaitListening(Path out) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!Files.exists(out) || !Files.readString(out).contains("listening on")) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "the CRIU row's server did not start: " + Files.readString(out));
      }
      Thread.sleep(20);
    }
  }

  /** Writes the pattern into a socket as fast as it takes it, until stopped. */
  private static final class Sender {
    private final TcpSocket socket;
    private final Thread thread;
    private final AtomicBoolean stop = new AtomicBoolean();
    private volatile long offset;
    private volatile Exception failure;

    private Sender(TcpSocket socket, long offset) {
      this.socket = socket;
      this.offset = offset;
      this.thread = new Thread(this::run, "link-sender");
    }

    static Sender start(TcpSocket socket, long offset) throws SyscallException {
      socket.setBlocking(false);
      Sender s = new Sender(socket, offset);
      s.thread.start();
      return s;
    }

    private void run() {
      byte[] chunk = new byte[PATTERN * 256];
      try {
        while (!stop.get()) {
          long at = offset;
          int start = (int) (at % PATTERN);
          for (int i = 0; i < chunk.length; i++) {
            chunk[i] = (byte) ((start + i) % PATTERN);
          }
          int n = socket.write(chunk, 0, chunk.length);
          if (n == 0) {
            // The send buffer is full; the writer of a real download would block here.
            Thread.sleep(1);
          }
          offset = at + n;
        }
      } catch (Exception e) {
        failure = e;
      }
    }

    /** Stops it and returns the offset of the next byte it would have written. */
    long stop() throws Exception {
      stop.set(true);
      thread.join();
      if (failure != null) {
        throw failure;
      }
      return offset;
    }
  }

  /** Reads the download, checks every byte, and keeps when each read returned and how much. */
  private static final class Receiver implements AutoCloseable {
    private final SocketChannel channel;
    private final Thread thread;
    private long[] times = new long[1 << 16];
    private long[] totals = new long[1 << 16];
    private int samples;
    private volatile Exception failure;

    Receiver(SocketChannel channel) {
      this.channel = channel;
      this.thread = new Thread(this::run, "link-receiver");
      thread.start();
    }

    private void run() {
      ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
      byte[] bytes = new byte[1 << 20];
      long total = 0;
      try {
        int n;
        while ((n = channel.read(buf)) > 0) {
          long now = System.nanoTime();
          buf.flip();
          buf.get(bytes, 0, n);
          buf.clear();
          for (int i = 0; i < n; i++) {
            if (bytes[i] != (byte) ((total + i) % PATTERN)) {
              throw new IllegalStateException(
                  "byte " + (total + i) + " is wrong: lost, duplicated or reordered");
            }
          }
          total += n;
          record(now, total);
        }
      } catch (Exception e) {
        if (channel.isOpen()) {
          failure = e;
        }
      }
    }

    private synchronized void record(long time, long total) {
      if (samples == times.length) {
        times = Arrays.copyOf(times, samples * 2);
        totals = Arrays.copyOf(totals, samples * 2);
      }
      times[samples] = time;
      totals[samples] = total;
      samples++;
    }

    /** Bytes received by {@code time}. */
    private long totalAt(long time) {
      int i = Arrays.binarySearch(times, 0, samples, time);
      int last = i >= 0 ? i : -i - 2;
      return last < 0 ? 0 : totals[last];
    }

    /**
     * @param rtt the link's round trip, over which the rate after the resume is measured
     */
    synchronized Result result(
        long freeze, long resume, long rtt, int cwndExported, int cwndRestored) throws Exception {
      if (failure != null) {
        throw failure;
      }
      long window = TimeUnit.SECONDS.toNanos(2);
      double rate = (totalAt(freeze) - totalAt(freeze - window)) * 8.0 / (window / 1e9) / 1e6;
      long pause = 0;
      for (int i = 1; i < samples; i++) {
        if (times[i] > freeze - TimeUnit.MILLISECONDS.toNanos(100)) {
          pause = Math.max(pause, times[i] - times[i - 1]);
        }
      }
      // The first moment after the resume when one round trip's worth of bytes at 90 % of the
      // rate had arrived within the last round trip.
      return new Result(
          rate, pause / 1e6, backTo90(resume, rtt, rate), cwndExported, cwndRestored, "");
    }

    private double backTo90(long resume, long rtt, double rateMbit) {
      double wanted = 0.9 * rateMbit * 1e6 / 8 * (rtt / 1e9);
      for (int i = 0; i < samples; i++) {
        if (times[i] >= resume && totals[i] - totalAt(times[i] - rtt) >= wanted) {
          return (times[i] - resume) / 1e6;
        }
      }
      return Double.NaN;
    }

    @Override
    public void close() throws IOException {
      channel.close();
      try {
        thread.join(5000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static String spread(double[] values) {
    double[] v = values.clone();
    Arrays.sort(v);
    return "%.1f [%.1f-%.1f]".formatted(v[v.length / 2], v[0], v[v.length - 1]);
  }

  private static void say(String line) {
    System.out.println(line);
  }
}
