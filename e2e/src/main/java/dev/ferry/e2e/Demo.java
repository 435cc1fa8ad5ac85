// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.sdk.wire.Connection;
import java.util.List;

/**
 * {@code make demo}: curl streams tokens from the demo server on node A; mid-stream the connection
 * and the stream's state (its KV cache) move to the demo server on node B, and curl's stream goes
 * on. Prints each step's time, the longest pause curl saw, and whether curl's output is byte for
 * byte that of a run that never moved.
 *
 * <p>The address still moves with {@code ip} commands and a neighbour-table update; the agent's
 * netlink mover and the operator come with their issues.
 */
public final class Demo {
  private static final int TOKENS = 3000;
  private static final int RATE = 1000;
  private static final int MOVE_AFTER = 1000;
  private static final String STREAM = "/v1/stream?prompt=why%20ferry&tokens=" + TOKENS;
  private static final long START = System.nanoTime();

  private Demo() {}

  public static void main(String[] args) throws Exception {
    int exit;
    try (LocalCluster cluster = LocalCluster.start(LocalCluster.Settings.DEFAULT)) {
      say(
          "cluster up: client 198.18.0.1, node-a 198.18.0.2 (holds "
              + LocalCluster.VIP
              + "), node-b 198.18.0.3; each node's agent: handoff socket, eBPF hold");
      cluster.javaStreamer(cluster.a(), "--rate", Integer.toString(RATE));
      cluster.javaStreamer(cluster.b(), "--rate", Integer.toString(RATE));
      say(
          "token-streamer (Java, Ferry SDK) up on both nodes, port "
              + LocalCluster.PORT
              + " registered with each agent");
      warmUp(cluster);
      exit = run(cluster);
    }
    System.exit(exit);
  }

  /** One short stream moved and the address brought home: what a running agent has behind it. */
  private static void warmUp(LocalCluster cluster) throws Exception {
    for (int i = 0; i < 3; i++) {
      try (CurlStream curl = cluster.curl("/v1/stream?prompt=warm-up&tokens=300")) {
        curl.awaitEvents(50, 10_000);
        cluster.move(only(cluster.connections(cluster.a())), cluster.a(), cluster.b());
        curl.exitCode(30);
      }
      cluster.moveAddress(cluster.b(), cluster.a());
    }
    say("warmed up: three short streams moved to node-b and the address brought back");
  }

  private static int run(LocalCluster cluster) throws Exception {
    String unmoved;
    try (CurlStream curl = cluster.curl(STREAM)) {
      int exit = curl.exitCode(60);
      unmoved = curl.output();
      say(
          String.format(
              "unmoved run: curl exit %d, %d tokens, %d bytes; longest pause between tokens %.2f ms",
              exit, curl.events() - 1, unmoved.length(), curl.longestGapMillis()));
    }
    try (CurlStream curl = cluster.curl(STREAM)) {
      say(
          "curl -N http://"
              + LocalCluster.VIP
              + ":"
              + LocalCluster.PORT
              + STREAM
              + " ("
              + RATE
              + " tokens/s)");
      curl.awaitEvents(MOVE_AFTER, 20_000);
      Connection c = only(cluster.connections(cluster.a()));
      say("moving " + c + " after " + curl.events() + " tokens");
      LocalCluster.Moved m = cluster.move(c, cluster.a(), cluster.b());
      say(
          String.format(
              "depart   %7.2f ms  node-a: the server finished its write and handed over the socket"
                  + " and its state (2.4 MB KV cache); the client is held; the socket is read and closed silently",
              ms(m.departNanos())));
      say(
          String.format(
              "address  %7.2f ms  %s moved to node-b (ip commands)",
              ms(m.addressNanos()), LocalCluster.VIP));
      say(
          String.format(
              "arrive   %7.2f ms  node-b: the socket is rebuilt in repair mode; the server"
                  + " checked the KV cache's SHA-256 and took it",
              ms(m.arriveNanos())));
      say(
          String.format(
              "announce %7.2f ms  the client's neighbour entry points at node-b",
              ms(m.announceNanos())));
      say(
          String.format(
              "resume   %7.2f ms  repair off: the window opens, the client goes on",
              ms(m.resumeNanos())));
      say(String.format("total    %7.2f ms  %s", ms(m.totalNanos()), m.outcome()));
      int exit = curl.exitCode(60);
      String moved = curl.output();
      boolean same = moved.equals(unmoved);
      say(
          String.format(
              "curl exit %d; %d tokens; output %s the unmoved run's (%d bytes)",
              exit, curl.events() - 1, same ? "identical to" : "DIFFERENT from", moved.length()));
      say(
          String.format(
              "longest pause seen by curl between two tokens: %.2f ms (one every %.2f ms"
                  + " without a move)",
              curl.longestGapMillis(), 1000.0 / RATE));
      boolean ok = m.moved() && exit == 0 && same;
      say(ok ? "demo OK" : "demo FAILED");
      return ok ? 0 : 1;
    }
  }

  private static Connection only(List<Connection> connections) {
    if (connections.size() != 1) {
      throw new IllegalStateException(
          "expected the stream's one connection on node-a, found " + connections);
    }
    return connections.get(0);
  }

  private static double ms(long nanos) {
    return nanos / 1e6;
  }

  private static void say(String line) {
    System.out.printf("[%8.1f ms] %s%n", ms(System.nanoTime() - START), line);
  }
}
