// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.hold.HoldStats;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketExporter;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.TcpSocket;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@code make demo}: curl streams tokens from a server on node A; mid-stream the connection moves
 * to node B with TCP_REPAIR, and curl's stream goes on. Prints what happened and when.
 *
 * <p>The client is held by the eBPF hold on both nodes; the address still moves with {@code ip}
 * commands and a neighbour-table update, which the agent's netlink mover will replace.
 */
public final class RepairDemo {
  private static final String VIP = "198.18.0.100";
  private static final int PORT = 8080;
  private static final int TOKENS_PER_NODE = 1500;
  private static final long START = System.nanoTime();

  private RepairDemo() {}

  public static void main(String[] args) throws Exception {
    try (Testbed bed = Testbed.create()) {
      Host client = bed.host("client", "198.18.0.1/24");
      Host a = bed.host("node-a", "198.18.0.2/24", VIP + "/24");
      Host b = bed.host("node-b", "198.18.0.3/24");
      say(
          "cluster up: client 198.18.0.1, node-a 198.18.0.2 (holds "
              + VIP
              + "), node-b 198.18.0.3");
      int exit = run(bed, client, a, b);
      System.exit(exit);
    }
  }

  private static int run(Testbed bed, Host client, Host a, Host b) throws Exception {
    InetSocketAddress service = new InetSocketAddress(InetAddress.getByName(VIP), PORT);
    TcpSocket listener;
    try (NetNamespace nsA = NetNamespace.named(a.netns())) {
      listener =
          nsA.call(
              () -> {
                TcpSocket s = TcpSocket.open(service.getAddress());
                s.setReuseAddress();
                s.bind(service);
                s.listen(16);
                return s;
              });
    }
    try (NetNamespace nsB = NetNamespace.named(b.netns())) {
      long t = System.nanoTime();
      nsB.call(RepairDemo::warmUp);
      say(
          String.format(
              "warmed up export/restore on loopback in %.1f ms (class loading, JIT), as an agent does at start",
              ms(System.nanoTime() - t)));
    }
    try (NetNamespace nsA = NetNamespace.named(a.netns());
        NetNamespace nsB = NetNamespace.named(b.netns())) {
      ConnectionHold holdA = ConnectionHold.install(bed.bpfPinDir("a"), "eth0", nsA);
      ConnectionHold holdB = ConnectionHold.install(bed.bpfPinDir("b"), "eth0", nsB);
      warmUp(holdA, holdB);
      say("eBPF hold programs attached to eth0 of node-a and node-b");
      try {
        return migrateMidStream(bed, client, a, b, listener, holdA, holdB);
      } finally {
        holdA.uninstall();
        holdB.uninstall();
      }
    }
  }

  private static int migrateMidStream(
      Testbed bed,
      Host client,
      Host a,
      Host b,
      TcpSocket listener,
      ConnectionHold holdA,
      ConnectionHold holdB)
      throws Exception {
    Process curl =
        client
            .process(
                "curl",
                "-sSN",
                "--max-time",
                "30",
                "http://" + VIP + ":" + PORT + "/v1/stream?tokens=" + 2 * TOKENS_PER_NODE)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    ClientLog log = new ClientLog(curl);
    log.start();

    TcpSocket onA = listener.accept();
    listener.close();
    readRequest(onA);
    say("curl connected from " + onA.remoteAddress() + " to node-a; streaming 1 token/ms");
    onA.writeFully(
        ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII));
    int sentOnA = stream(onA, 0, TOKENS_PER_NODE);
    int printedBefore = log.count();

    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    HoldKey key = new HoldKey(onA.localAddress(), onA.remoteAddress());
    long t0 = System.nanoTime();
    holdA.freeze(key, deadline);
    long t1 = System.nanoTime();
    SocketState state = new SocketExporter().export(onA);
    long exportedAt = System.nanoTime();
    onA.close();
    holdA.answer(state, exportedAt, deadline);
    long t2 = System.nanoTime();
    double exportMs = ms(exportedAt - t1);
    byte[] wire = SocketStateCodec.encode(state);
    long t3 = System.nanoTime();
    bed.moveAddress(VIP + "/24", a, b);
    long t4 = System.nanoTime();
    TcpSocket onB;
    long t5;
    try (NetNamespace nsB = NetNamespace.named(b.netns())) {
      RestoredSocket restored = new SocketRestorer().restore(SocketStateCodec.decode(wire), nsB);
      holdB.wake(state, deadline);
      bed.announce(VIP + "/24", b, client); // only now that the socket is staged on node-b
      t5 = System.nanoTime();
      onB = restored.resume();
    }
    long t6 = System.nanoTime();
    // The application on node B carries on at once; the report waits until it is streaming.
    CompletableFuture<Integer> streamingOnB =
        CompletableFuture.supplyAsync(() -> streamUnchecked(onB, sentOnA));
    HoldStats held = holdA.stats(key).orElseThrow();
    holdA.release(key);
    holdB.release(key);
    say(
        "node-a sent tokens 0.."
            + (sentOnA - 1)
            + "; curl had printed "
            + printedBefore
            + " when node-a froze");
    say(
        String.format(
            "freeze   %7.3f ms  eBPF hold on node-a: zero window, client segments dropped",
            ms(t1 - t0)));
    say(String.format("export   %7.3f ms  %s", exportMs, state));
    say(
        String.format(
            "answer   %7.3f ms  socket closed silently; XDP on node-a answers for it",
            ms(t2 - t1) - exportMs));
    say(String.format("encode   %7.3f ms  %d bytes on the wire", ms(t3 - t2), wire.length));
    say(String.format("move     %7.2f ms  %s moved to node-b (ip commands)", ms(t4 - t3), VIP));
    say(
        String.format(
            "restore  %7.3f ms  rebuilt in repair mode on node-b, wake-up armed, client's neighbour entry updated",
            ms(t5 - t4)));
    say(String.format("resume   %7.3f ms  repair off, window update sent", ms(t6 - t5)));
    say(String.format("total    %7.2f ms  from freeze to resume", ms(t6 - t0)));
    say(
        String.format(
            "hold on node-a: %d client segments answered, %d dropped, %d resets",
            held.probesAnswered(), held.segmentsDropped(), held.resets()));
    int next = streamingOnB.get(30, TimeUnit.SECONDS);
    onB.writeFully("data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII));
    onB.shutdownOutput();
    say("node-b sent tokens " + sentOnA + ".." + (next - 1) + " and closed the stream");
    boolean ended = curl.waitFor(30, TimeUnit.SECONDS);
    log.join(5000);
    onB.close();
    return report(log, ended ? curl.exitValue() : -1, next);
  }

  private static int report(ClientLog log, int curlExit, int expected) {
    List<Integer> tokens = log.tokens();
    boolean inOrder = tokens.size() == expected;
    for (int i = 0; inOrder && i < tokens.size(); i++) {
      inOrder = tokens.get(i) == i;
    }
    say(
        String.format(
            "curl exit %d; %d tokens received, %s; done marker %s",
            curlExit,
            tokens.size(),
            inOrder
                ? "0.." + (expected - 1) + " in order, none missing or repeated"
                : "NOT the expected sequence",
            log.sawDone() ? "seen" : "MISSING"));
    say(
        String.format(
            "longest pause seen by curl between two tokens: %.2f ms", log.longestGapMillis()));
    boolean ok = curlExit == 0 && inOrder && log.sawDone();
    say(ok ? "demo OK" : "demo FAILED");
    return ok ? 0 : 1;
  }

  /** Runs the hold's map updates once, so that the first real one is not the JVM's first. */
  private static void warmUp(ConnectionHold... holds) throws Exception {
    InetSocketAddress nowhere = new InetSocketAddress(InetAddress.getByName("198.18.255.254"), 1);
    HoldKey key = new HoldKey(nowhere, nowhere);
    for (ConnectionHold hold : holds) {
      for (int i = 0; i < 100; i++) {
        hold.freeze(key, System.nanoTime());
        hold.stats(key);
        hold.release(key);
      }
    }
  }

  /**
   * Moves a loopback connection onto itself a few hundred times, so that the timings below are
   * those of a running agent, not of a JVM loading classes.
   */
  private static Void warmUp() throws Exception {
    InetAddress lo = InetAddress.getLoopbackAddress();
    try (TcpSocket listener = TcpSocket.open(lo)) {
      listener.bind(new InetSocketAddress(lo, 0));
      listener.listen(1);
      for (int i = 0; i < 300; i++) {
        try (TcpSocket client = TcpSocket.open(lo)) {
          client.connect(listener.localAddress());
          TcpSocket server = listener.accept();
          server.writeFully(new byte[] {1, 2, 3});
          SocketState state = new SocketExporter().export(server);
          server.close();
          try (TcpSocket restored =
              new SocketRestorer()
                  .restore(SocketStateCodec.decode(SocketStateCodec.encode(state)))
                  .resume()) {
            restored.writeFully(new byte[] {4});
            byte[] got = new byte[4];
            for (int off = 0; off < 4; ) {
              off += client.read(got, off, 4 - off);
            }
          }
        }
      }
    }
    return null;
  }

  private static int streamUnchecked(TcpSocket to, int from) {
    try {
      return stream(to, from, TOKENS_PER_NODE);
    } catch (Exception e) {
      throw new IllegalStateException("streaming on node-b failed", e);
    }
  }

  /** Writes SSE token events at about one per millisecond; returns the next token index. */
  private static int stream(TcpSocket to, int from, int count) throws Exception {
    long next = System.nanoTime();
    for (int i = from; i < from + count; i++) {
      to.writeFully(
          ("data: {\"index\":" + i + ",\"token\":\"tok" + i + "\"}\n\n")
              .getBytes(StandardCharsets.US_ASCII));
      next += 1_000_000;
      long wait = next - System.nanoTime();
      if (wait > 0) {
        TimeUnit.NANOSECONDS.sleep(wait);
      }
    }
    return from + count;
  }

  private static void readRequest(TcpSocket s) throws Exception {
    StringBuilder request = new StringBuilder();
    byte[] buf = new byte[1024];
    while (!request.toString().contains("\r\n\r\n")) {
      int n = s.read(buf, 0, buf.length);
      if (n < 0) {
        throw new IllegalStateException("client closed before sending its request");
      }
      request.append(new String(buf, 0, n, StandardCharsets.US_ASCII));
    }
  }

  private static double ms(long nanos) {
    return nanos / 1e6;
  }

  private static void say(String line) {
    System.out.printf("[%8.1f ms] %s%n", ms(System.nanoTime() - START), line);
  }

  /** Reads curl's output as it arrives, noting each token and when it came. */
  private static final class ClientLog extends Thread {
    private static final String TOKEN_PREFIX = "data: {\"index\":";
    private final Process curl;
    private final List<Integer> tokens = new ArrayList<>();
    private long lastArrival;
    private long longestGap;
    private boolean done;

    ClientLog(Process curl) {
      super("curl-output");
      this.curl = curl;
      setDaemon(true);
    }

    @Override
    public void run() {
      try (BufferedReader in =
          new BufferedReader(
              new InputStreamReader(curl.getInputStream(), StandardCharsets.US_ASCII))) {
        String line;
        while ((line = in.readLine()) != null) {
          long now = System.nanoTime();
          if (line.startsWith(TOKEN_PREFIX)) {
            synchronized (this) {
              tokens.add(
                  Integer.parseInt(line.substring(TOKEN_PREFIX.length(), line.indexOf(','))));
              if (lastArrival != 0) {
                longestGap = Math.max(longestGap, now - lastArrival);
              }
              lastArrival = now;
            }
          } else if (line.equals("data: [DONE]")) {
            done = true;
          }
        }
      } catch (Exception e) {
        say("reading curl's output failed: " + e);
      }
    }

    synchronized int count() {
      return tokens.size();
    }

    synchronized List<Integer> tokens() {
      return new ArrayList<>(tokens);
    }

    synchronized double longestGapMillis() {
      return longestGap / 1e6;
    }

    boolean sawDone() {
      return done;
    }
  }
}
