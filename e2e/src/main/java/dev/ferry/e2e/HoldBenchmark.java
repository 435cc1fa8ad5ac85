// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.hold.HoldStats;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketExporter;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.TcpSocket;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import jdk.net.ExtendedSocketOptions;

/**
 * {@code make bench-hold}: holds N connections with the eBPF hold for a chosen time while their
 * clients send keep-alive probes, moves them to another node, and prints how long after each resume
 * the client received its next byte.
 */
public final class HoldBenchmark {
  private static final String VIP = "198.18.0.100";

  private HoldBenchmark() {}

  public static void main(String[] args) {
    Mains.exitWith("HoldBenchmark", () -> benchmark(args));
  }

  private static int benchmark(String[] argv) throws Exception {
    String[] args = String.join(" ", argv).trim().split("\\s+");
    int connections = 1;
    long holdSeconds = 60;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--connections" -> connections = Integer.parseInt(args[i + 1]);
        case "--hold-seconds" -> holdSeconds = Long.parseLong(args[i + 1]);
        default -> {
          System.err.println("usage: HoldBenchmark [--connections N] [--hold-seconds S]");
          return 2;
        }
      }
    }
    try (Testbed bed = Testbed.create()) {
      Host client = bed.host("client", "198.18.0.1/24");
      Host a = bed.host("node-a", "198.18.0.2/24", VIP + "/24");
      Host b = bed.host("node-b", "198.18.0.3/24");
      return run(bed, client, a, b, connections, holdSeconds);
    }
  }

  private static int run(Testbed bed, Host client, Host a, Host b, int n, long holdSeconds)
      throws Exception {
    InetSocketAddress service = new InetSocketAddress(InetAddress.getByName(VIP), 8080);
    try (NetNamespace nsA = NetNamespace.named(a.netns());
        NetNamespace nsB = NetNamespace.named(b.netns());
        NetNamespace nsClient = NetNamespace.named(client.netns())) {
      ConnectionHold holdA = ConnectionHold.install(bed.bpfPinDir("a"), "eth0", nsA);
      ConnectionHold holdB = ConnectionHold.install(bed.bpfPinDir("b"), "eth0", nsB);
      try {
        TcpSocket listener =
            nsA.call(
                () -> {
                  TcpSocket s = TcpSocket.open(service.getAddress());
                  s.bind(service);
                  s.listen(Math.max(16, n));
                  return s;
                });
        List<SocketChannel> clients = new ArrayList<>();
        List<TcpSocket> servers = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          SocketChannel ch = nsClient.call(() -> SocketChannel.open(service));
          // Keep-alive probes every 10 s: the hold must answer them all along.
          ch.setOption(java.net.StandardSocketOptions.SO_KEEPALIVE, true);
          ch.setOption(ExtendedSocketOptions.TCP_KEEPIDLE, 10);
          ch.setOption(ExtendedSocketOptions.TCP_KEEPINTERVAL, 10);
          clients.add(ch);
          servers.add(listener.accept());
        }
        listener.close();

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(holdSeconds + 600);
        List<SocketState> states = new ArrayList<>();
        SocketExporter exporter = new SocketExporter();
        for (TcpSocket s : servers) {
          HoldKey key = new HoldKey(s.localAddress(), s.remoteAddress());
          holdA.freeze(key, deadline);
          SocketState state = exporter.export(s);
          long at = System.nanoTime();
          s.close();
          holdA.answer(state, at, deadline);
          states.add(state);
        }
        System.out.printf("%d connections held on node-a; holding for %d s%n", n, holdSeconds);
        long holdEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(holdSeconds);
        while (System.nanoTime() < holdEnd) {
          long left = TimeUnit.NANOSECONDS.toSeconds(holdEnd - System.nanoTime());
          Thread.sleep(Math.min(60_000, Math.max(1, left) * 1000));
          if (left > 60) {
            System.out.printf(
                "  %d s left, %d probes answered so far%n", left, probes(holdA, states));
          }
        }
        int established =
            (int)
                client
                    .run("ss", "-tanH", "state", "established", "dport", "= :8080")
                    .lines()
                    .count();
        long answered = probes(holdA, states);
        long resets = 0;
        for (SocketState s : states) {
          resets +=
              holdA.stats(new HoldKey(s.local(), s.remote())).map(HoldStats::resets).orElse(0L);
        }

        bed.moveAddress(VIP + "/24", a, b);
        Selector selector = Selector.open();
        for (int i = 0; i < n; i++) {
          clients.get(i).configureBlocking(false);
          clients.get(i).register(selector, SelectionKey.OP_READ, i);
        }
        long[] resumedAt = new long[n];
        long[] arrivedAt = new long[n];
        List<RestoredSocket> staged =
            nsB.call(
                () -> {
                  List<RestoredSocket> out = new ArrayList<>();
                  SocketRestorer restorer = new SocketRestorer();
                  for (SocketState s : states) {
                    out.add(restorer.restore(s));
                  }
                  return out;
                });
        bed.announce(VIP + "/24", b, client); // every socket is staged on node-b now
        Thread reader = new Thread(() -> stampArrivals(selector, arrivedAt, n), "client-reader");
        reader.start();
        for (int i = 0; i < n; i++) {
          holdB.wake(states.get(i), deadline);
          resumedAt[i] = System.nanoTime();
          TcpSocket live = staged.get(i).resume();
          live.writeFully(new byte[] {(byte) i});
          holdA.release(new HoldKey(states.get(i).local(), states.get(i).remote()));
        }
        reader.join(30_000);
        long[] latency = new long[n];
        int arrived = 0;
        for (int i = 0; i < n; i++) {
          if (arrivedAt[i] != 0) {
            latency[arrived++] = arrivedAt[i] - resumedAt[i];
          }
        }
        Arrays.sort(latency, 0, arrived);
        System.out.printf(
            "held %d connections for %d s: %d still ESTABLISHED at the client, %d probes answered, %d resets%n",
            n, holdSeconds, established, answered, resets);
        System.out.printf(
            "next byte after resume: %d of %d arrived; p50 %.3f ms, p99 %.3f ms, max %.3f ms   (goal: p99 <= 5 ms)%n",
            arrived,
            n,
            ms(latency, arrived, 0.50),
            ms(latency, arrived, 0.99),
            arrived == 0 ? 0 : latency[arrived - 1] / 1e6);
        return arrived == n && established == n && resets == 0 ? 0 : 1;
      } finally {
        holdA.uninstall();
        holdB.uninstall();
      }
    }
  }

  private static long probes(ConnectionHold hold, List<SocketState> states) throws Exception {
    long total = 0;
    for (SocketState s : states) {
      total +=
          hold.stats(new HoldKey(s.local(), s.remote())).map(HoldStats::probesAnswered).orElse(0L);
    }
    return total;
  }

  private static double ms(long[] sorted, int count, double quantile) {
    if (count == 0) {
      return 0;
    }
    return sorted[(int) Math.min(count - 1, Math.ceil(count * quantile) - 1)] / 1e6;
  }

  private static void stampArrivals(Selector selector, long[] arrivedAt, int n) {
    ByteBuffer one = ByteBuffer.allocate(16);
    int seen = 0;
    try {
      while (seen < n) {
        if (selector.select(10_000) == 0) {
          return;
        }
        long now = System.nanoTime();
        for (SelectionKey key : selector.selectedKeys()) {
          int i = (Integer) key.attachment();
          if (((SocketChannel) key.channel()).read(one.clear()) > 0 && arrivedAt[i] == 0) {
            arrivedAt[i] = now;
            seen++;
          }
        }
        selector.selectedKeys().clear();
      }
    } catch (Exception e) {
      System.out.println("client read failed: " + e);
    }
  }
}
