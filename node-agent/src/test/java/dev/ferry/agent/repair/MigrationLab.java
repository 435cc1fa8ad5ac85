// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SockDiag;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A client and two server hosts on one LAN; the service address starts on host A and moves, with
 * its connections, to host B. Each step is a method so that tests read like the story.
 */
public final class MigrationLab implements AutoCloseable {
  public enum Family {
    IPV4("198.18.0.", "/24"),
    IPV6("fd66::", "/64");

    final String prefix;
    final String mask;

    Family(String prefix, String mask) {
      this.prefix = prefix;
      this.mask = mask;
    }

    public String ip(int host) {
      return prefix + host;
    }

    public String cidr(int host) {
      return prefix + host + mask;
    }
  }

  public static final int PORT = 8080;

  /** How long a test waits for the kernel to reach a state it must reach. */
  private static final long AWAIT_NANOS = 30_000_000_000L;

  /** A MAC no host has: a neighbour entry pointing here swallows packets one way. */
  public static final String NOWHERE = "02:00:00:00:00:01";

  public final Testbed bed = Testbed.create();
  public final Family family;
  public final Host client;
  public final Host a;
  public final Host b;
  public final NetNamespace clientNs;
  public final NetNamespace aNs;
  public final NetNamespace bNs;
  public final InetSocketAddress service;
  private final TcpSocket listener;
  private final List<AutoCloseable> resources = new ArrayList<>();

  public MigrationLab(Family family) throws IOException {
    this.family = family;
    try {
      client = bed.host("client", family.cidr(1));
      a = bed.host("a", family.cidr(2), family.cidr(100));
      b = bed.host("b", family.cidr(3));
      clientNs = track(NetNamespace.named(client.netns()));
      aNs = track(NetNamespace.named(a.netns()));
      bNs = track(NetNamespace.named(b.netns()));
      service = new InetSocketAddress(InetAddress.getByName(family.ip(100)), PORT);
      listener =
          aNs.call(
              () -> {
                TcpSocket s = TcpSocket.open(service.getAddress());
                s.setReuseAddress();
                s.bind(service);
                s.listen(4096);
                return s;
              });
      track(listener);
    } catch (IOException | RuntimeException e) {
      close();
      throw e;
    }
  }

  public <T extends AutoCloseable> T track(T resource) {
    resources.add(resource);
    return resource;
  }

  /** A client connection from the client host, with a small receive buffer if asked. */
  public SocketChannel connect(int receiveBuffer) throws IOException {
    SocketChannel ch =
        clientNs.call(
            () -> {
              SocketChannel c = SocketChannel.open();
              if (receiveBuffer > 0) {
                c.setOption(StandardSocketOptions.SO_RCVBUF, receiveBuffer);
              }
              c.connect(service);
              return c;
            });
    return track(ch);
  }

  public TcpSocket accept() throws SyscallException {
    return track(listener.accept());
  }

  /** From now on nothing host A sends reaches the client; the client still reaches A. */
  public void dropServerToClient() {
    a.setNeighbour(family.ip(1), NOWHERE);
  }

  /**
   * Waits until {@code socket} is in {@code state} (a TcpInfo number), polling: the peers' segments
   * take as long as a busy machine makes them.
   */
  public static void awaitState(TcpSocket socket, int state) throws SyscallException {
    long deadline = System.nanoTime() + AWAIT_NANOS;
    while (socket.info().state() != state) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            socket
                + " is still "
                + socket.info().stateName()
                + " after "
                + AWAIT_NANOS / 1_000_000_000
                + " s, expected state "
                + state);
      }
      Peers.nap(5);
    }
  }

  /** Waits until host A's end of the service's connection holds {@code bytes} unread. */
  public void awaitUnreadOnA(int bytes) throws IOException {
    long deadline = System.nanoTime() + AWAIT_NANOS;
    while (true) {
      List<SockDiag.Entry> entries =
          aNs.call(
              () -> {
                try (SockDiag diag = SockDiag.open()) {
                  return diag.tcp(
                      SockDiag.states(
                          SockDiag.TCP_ESTABLISHED,
                          SockDiag.TCP_FIN_WAIT1,
                          SockDiag.TCP_FIN_WAIT2,
                          SockDiag.TCP_CLOSE_WAIT,
                          SockDiag.TCP_LAST_ACK,
                          SockDiag.TCP_CLOSING),
                      Set.of(PORT));
                }
              });
      int unread =
          entries.stream()
              .filter(e -> e.remote().getPort() != 0)
              .mapToInt(SockDiag.Entry::recvQueue)
              .max()
              .orElse(0);
      if (unread >= bytes) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("A holds " + unread + " unread bytes, expected " + bytes);
      }
      Peers.nap(5);
    }
  }

  /**
   * The states, as {@code ss} names them, of the client's connections to the service; closed ones
   * are not listed, and {@code ss} runs in the client's namespace.
   */
  public List<String> clientStates() {
    List<String> out = new ArrayList<>();
    for (String line : client.run("ss", "-tnH").split("\n")) {
      String[] f = line.trim().split("\\s+");
      // The client talks to nothing but the service, so its port names the connection.
      if (f.length >= 5 && f[4].endsWith(":" + PORT)) {
        out.add(f[0]);
      }
    }
    return out;
  }

  /** The resets {@code host}'s kernel has sent (Tcp OutRsts in /proc/net/snmp). */
  public static long resetsSent(Host host) {
    String[] lines = host.run("cat", "/proc/net/snmp").split("\n");
    for (int i = 0; i + 1 < lines.length; i++) {
      if (lines[i].startsWith("Tcp:") && lines[i + 1].startsWith("Tcp:")) {
        List<String> names = List.of(lines[i].trim().split("\\s+"));
        String[] values = lines[i + 1].trim().split("\\s+");
        return Long.parseLong(values[names.indexOf("OutRsts")]);
      }
    }
    throw new IllegalStateException("no Tcp line in " + host + "'s /proc/net/snmp");
  }

  /** Holds every connection on A: its cable is pulled, so neither side can change them. */
  public void freezeA() {
    bed.unplug(a);
  }

  /** Exports each socket and closes it silently, as the source agent does. */
  public List<SocketState> exportAll(List<TcpSocket> sockets) throws IOException {
    SocketExporter exporter = new SocketExporter();
    List<SocketState> states = new ArrayList<>();
    for (TcpSocket s : sockets) {
      states.add(exporter.export(s));
      s.close();
    }
    return states;
  }

  /**
   * An upload caught by a move: the client sends pattern bytes [0, unread), which wait unread on A;
   * A's cable is pulled and the client sends up to {@code held}, lost as a hold would drop them;
   * A's socket is exported (its receive queue holds the unread bytes) and the address moves to B,
   * not yet announced.
   */
  public SocketState exportWithUploadHeld(
      SocketChannel client, TcpSocket onA, long seed, int unread, int held) throws IOException {
    Peers.upload(client, seed, 0, unread);
    awaitUnreadOnA(unread);
    freezeA();
    Peers.upload(client, seed, unread, held);
    SocketState state = exportAll(List.of(onA)).get(0);
    if (state.recvQueue().length != unread) {
      throw new AssertionError(
          "A's exported receive queue holds " + state.recvQueue().length + " bytes, not " + unread);
    }
    moveAddressToB();
    return state;
  }

  /** The address moves to B; the client still sends to A until {@link #announceB}. */
  public void moveAddressToB() {
    bed.moveAddress(family.cidr(100), a, b);
  }

  /** The client learns B's MAC for the address: from now on its segments reach B. */
  public void announceB() {
    bed.announce(family.cidr(100), b, client);
  }

  /** Restores every state on B (one namespace entry for the batch) and resumes each. */
  public List<TcpSocket> restoreAllOnB(List<SocketState> states) throws IOException {
    SocketRestorer restorer = new SocketRestorer();
    List<RestoredSocket> staged =
        bNs.call(
            () -> {
              List<RestoredSocket> out = new ArrayList<>();
              for (SocketState s : states) {
                out.add(track(restorer.restore(s)));
              }
              return out;
            });
    // Only now, with every socket staged on B, may the client's segments reach B.
    announceB();
    List<TcpSocket> live = new ArrayList<>();
    for (RestoredSocket r : staged) {
      live.add(track(r.resume()));
    }
    return live;
  }

  /** The whole move of one connection, through the wire format as agents would ship it. */
  public TcpSocket migrate(TcpSocket onA) throws IOException {
    return migrateAll(List.of(onA)).get(0);
  }

  public List<TcpSocket> migrateAll(List<TcpSocket> onA) throws IOException {
    freezeA();
    List<SocketState> exported = exportAll(onA);
    List<SocketState> shipped = new ArrayList<>();
    for (SocketState s : exported) {
      shipped.add(SocketStateCodec.decode(SocketStateCodec.encode(s)));
    }
    moveAddressToB();
    return restoreAllOnB(shipped);
  }

  @Override
  public void close() {
    for (int i = resources.size() - 1; i >= 0; i--) {
      try {
        resources.get(i).close();
      } catch (Exception ignored) {
        // Closing what the test made; the namespaces go next regardless.
      }
    }
    bed.close();
  }
}
