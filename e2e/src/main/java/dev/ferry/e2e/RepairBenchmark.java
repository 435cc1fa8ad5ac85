// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketExporter;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.TcpSocket;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code make bench-repair}: exports N idle ESTABLISHED sockets on node A and restores them on node
 * B, timing each call, then checks that every moved connection still carries data.
 *
 * <p>Prints per-socket export, restore and resume times (p50, p99, max) and the encoded size of an
 * idle socket's state. Not a test: figures depend on the machine.
 */
public final class RepairBenchmark {
  private static final String VIP = "198.18.0.100";
  private static final int BATCH = 1000;

  private RepairBenchmark() {}

  public static void main(String[] args) {
    Mains.exitWith("RepairBenchmark", () -> benchmark(args));
  }

  private static int benchmark(String[] args) throws Exception {
    int sockets = 10_000;
    // Maven's exec plugin hands over "--sockets 10000" as one argument.
    args = String.join(" ", args).trim().split("\\s+");
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--sockets") && i + 1 < args.length) {
        sockets = Integer.parseInt(args[++i]);
      } else if (!args[i].isBlank()) {
        System.err.println("usage: RepairBenchmark [--sockets N]");
        return 2;
      }
    }
    try (Testbed bed = Testbed.create()) {
      Host client = bed.host("client", "198.18.0.1/24");
      Host a = bed.host("node-a", "198.18.0.2/24", VIP + "/24");
      Host b = bed.host("node-b", "198.18.0.3/24");
      return run(bed, client, a, b, sockets);
    }
  }

  /** Returns the exit code: 0 if every connection carried a byte after the move, else 1. */
  private static int run(Testbed bed, Host client, Host a, Host b, int count) throws Exception {
    // A round holds each connection twice (client and server end) in this process.
    long maxFds =
        ((com.sun.management.UnixOperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean())
            .getMaxFileDescriptorCount();
    int perRound = (int) Math.min(count, (maxFds - 500) / 2);
    Samples samples = new Samples(count);
    Host from = a;
    Host to = b;
    for (int done = 0; done < count; done += perRound) {
      int n = Math.min(perRound, count - done);
      round(bed, client, from, to, n, samples);
      bed.plug(from);
      Host swap = from;
      from = to;
      to = swap;
    }
    System.out.printf(
        "%d idle IPv4 connections moved between two nodes in %d round(s) of at most %d%n"
            + "(this process may hold %d descriptors)%n",
        count, (count + perRound - 1) / perRound, perRound, maxFds);
    System.out.printf("%-10s %9s %9s %9s   %s%n", "per socket", "p50", "p99", "max", "target");
    row("export", samples.exportNs, "p50 <= 20 us");
    row("restore", samples.restoreNs, "p50 <= 50 us");
    row("resume", samples.resumeNs, "");
    IntSummary sizes = IntSummary.of(samples.wireBytes);
    System.out.printf(
        "encoded state of an idle socket: %d bytes (min %d, max %d)   target <= 100 bytes%n",
        sizes.median, sizes.min, sizes.max);
    System.out.printf(
        "after the move: %d of %d connections carried a byte to the client%n",
        samples.answered, count);
    System.out.println(
        "(export excludes close(); restore includes socket() and excludes entering the target"
            + " namespace, done once per batch)");
    return samples.answered == count ? 0 : 1;
  }

  /** Per-socket figures of the whole run. */
  private static final class Samples {
    final long[] exportNs;
    final long[] restoreNs;
    final long[] resumeNs;
    final int[] wireBytes;
    int next;
    int answered;

    Samples(int count) {
      exportNs = new long[count];
      restoreNs = new long[count];
      resumeNs = new long[count];
      wireBytes = new int[count];
    }
  }

  /** Connects n clients to the address on {@code from}, and moves them all to {@code to}. */
  private static void round(Testbed bed, Host client, Host from, Host to, int n, Samples samples)
      throws Exception {
    InetSocketAddress service = new InetSocketAddress(InetAddress.getByName(VIP), 8080);
    try (NetNamespace nsFrom = NetNamespace.named(from.netns());
        NetNamespace nsTo = NetNamespace.named(to.netns());
        NetNamespace nsClient = NetNamespace.named(client.netns())) {
      TcpSocket listener =
          nsFrom.call(
              () -> {
                TcpSocket s = TcpSocket.open(service.getAddress());
                s.setReuseAddress(); // the previous round's connections linger in TIME_WAIT
                s.bind(service);
                s.listen(BATCH);
                return s;
              });
      List<SocketChannel> clients = new ArrayList<>(n);
      List<TcpSocket> servers = new ArrayList<>(n);
      for (int done = 0; done < n; ) {
        int batch = Math.min(BATCH, n - done);
        nsClient.call(
            () -> {
              for (int i = 0; i < batch; i++) {
                clients.add(SocketChannel.open(service));
              }
              return null;
            });
        for (int i = 0; i < batch; i++) {
          servers.add(listener.accept());
        }
        done += batch;
      }
      listener.close();

      bed.unplug(from);
      SocketExporter exporter = new SocketExporter();
      List<byte[]> wire = new ArrayList<>(n);
      int base = samples.next;
      for (int i = 0; i < n; i++) {
        TcpSocket s = servers.get(i);
        long t = System.nanoTime();
        SocketState state = exporter.export(s);
        samples.exportNs[base + i] = System.nanoTime() - t;
        s.close();
        byte[] bytes = SocketStateCodec.encode(state);
        samples.wireBytes[base + i] = bytes.length;
        wire.add(bytes);
      }
      bed.moveAddress(VIP + "/24", from, to);

      SocketRestorer restorer = new SocketRestorer();
      List<RestoredSocket> staged =
          nsTo.call(
              () -> {
                List<RestoredSocket> out = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                  SocketState state = SocketStateCodec.decode(wire.get(i));
                  long t = System.nanoTime();
                  out.add(restorer.restore(state));
                  samples.restoreNs[base + i] = System.nanoTime() - t;
                }
                return out;
              });
      bed.announce(VIP + "/24", to, client); // every socket is staged on the target now
      for (int i = 0; i < n; i++) {
        long t = System.nanoTime();
        TcpSocket live = staged.get(i).resume();
        samples.resumeNs[base + i] = System.nanoTime() - t;
        live.writeFully(new byte[] {(byte) i});
        ByteBuffer one = ByteBuffer.allocate(1);
        if (clients.get(i).read(one) == 1 && one.get(0) == (byte) i) {
          samples.answered++;
        }
        live.close();
        clients.get(i).close();
      }
      samples.next += n;
    }
  }

  private static void row(String name, long[] nanos, String target) {
    long[] sorted = nanos.clone();
    Arrays.sort(sorted);
    System.out.printf(
        "%-10s %6.1f us %6.1f us %6.1f us   %s%n",
        name,
        sorted[sorted.length / 2] / 1e3,
        sorted[(int) Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] / 1e3,
        sorted[sorted.length - 1] / 1e3,
        target);
  }

  private record IntSummary(int min, int median, int max) {
    static IntSummary of(int[] values) {
      int[] v = values.clone();
      Arrays.sort(v);
      return new IntSummary(v[0], v[v.length / 2], v[v.length - 1]);
    }
  }
}
