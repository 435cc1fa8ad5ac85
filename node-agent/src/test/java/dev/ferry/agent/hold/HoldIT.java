// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.address.AddressMover;
import dev.ferry.agent.address.ServiceAddress;
import dev.ferry.agent.repair.MigrationLab;
import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.agent.repair.Pattern;
import dev.ferry.agent.repair.Peers;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.agent.repair.SocketExporter;
import dev.ferry.agent.repair.SocketRestorer;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.Pidfd;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcAttachment;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.XdpAttachment;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Shell;
import dev.ferry.testbed.Testbed;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The eBPF hold with a real kernel TCP client: held quietly while its server's socket is gone, and
 * back to full speed the moment the socket is rebuilt elsewhere.
 */
class HoldIT {
  private static final long MINUTE = TimeUnit.SECONDS.toNanos(60);

  /** How long the long test holds its client: a minute in CI; the benchmark goes longer. */
  private static final long HOLD =
      TimeUnit.SECONDS.toNanos(Long.getLong("ferry.test.holdSeconds", 60));

  /** Far below a backed-off persist probe's interval, far above a wake's time on a busy machine. */
  private static final long WAKE_NOT_PROBE_MS = 1_000;

  /** Node A and node B each run the hold on their eth0, as their agents would. */
  private static final class Nodes implements AutoCloseable {
    final MigrationLab lab;
    final ConnectionHold onA;
    final ConnectionHold onB;
    final Path pinA;
    final Path pinB;

    Nodes(Family family) throws Exception {
      lab = new MigrationLab(family);
      try {
        pinA = lab.bed.bpfPinDir("a");
        pinB = lab.bed.bpfPinDir("b");
        onA = ConnectionHold.install(pinA, "eth0", lab.aNs);
        onB = ConnectionHold.install(pinB, "eth0", lab.bNs);
      } catch (Exception e) {
        lab.close();
        throw e;
      }
    }

    @Override
    public void close() throws Exception {
      try {
        onA.uninstall();
        onB.uninstall();
      } finally {
        lab.close();
      }
    }
  }

  private static long deadline() {
    return System.nanoTime() + 10 * MINUTE;
  }

  private static HoldKey keyOf(SocketState s) {
    return new HoldKey(s.local(), s.remote());
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void clientHeldForAMinuteStaysEstablishedAndResumesOnTheWakeNotOnItsNextProbe(Family family)
      throws Exception {
    try (Nodes nodes = new Nodes(family)) {
      MigrationLab lab = nodes.lab;
      SocketChannel client = lab.connect(0);
      TcpSocket server = lab.accept();
      ByteArrayOutputStream downloaded = new ByteArrayOutputStream();
      server.writeFully(Pattern.bytes(7, 0, 1000));
      Peers.readExactly(client, 1000, downloaded);

      HoldKey key = new HoldKey(server.localAddress(), server.remoteAddress());
      nodes.onA.freeze(key, deadline());
      // The application's last write before it quiesces: its segment tells the client that
      // the window is now zero.
      server.writeFully(Pattern.bytes(7, 1000, 1));
      Peers.readExactly(client, 1, downloaded);
      SocketState state = new SocketExporter().export(server);
      long exportedAt = System.nanoTime();
      server.close();
      nodes.onA.answer(state, exportedAt, deadline());

      // While held, the client writes: it meets a zero window and probes, with back-off.
      byte[] upload = Pattern.bytes(8, 0, 3000);
      client.configureBlocking(false);
      int uploaded = 0;
      long holdEnds = System.nanoTime() + HOLD;
      while (System.nanoTime() < holdEnds) {
        if (uploaded < upload.length) {
          uploaded += client.write(ByteBuffer.wrap(upload, uploaded, 100));
        }
        assertThat(client.read(ByteBuffer.allocate(1)))
            .as("nothing arrives, no reset, no EOF")
            .isZero();
        Peers.nap(500);
      }
      client.configureBlocking(true);
      assertThat(
              lab.client.run(
                  "ss", "-tanH", "state", "established", "dport", "= :" + MigrationLab.PORT))
          .as("the client's socket after a minute's hold")
          .contains(":" + MigrationLab.PORT);
      HoldStats held = nodes.onA.stats(key).orElseThrow();
      assertThat(held.probesAnswered()).as("client probes answered by XDP").isPositive();
      assertThat(held.resets()).isZero();

      lab.moveAddressToB();
      RestoredSocket staged = lab.bNs.call(() -> new SocketRestorer().restore(state));
      nodes.onB.wake(state, deadline());
      lab.announceB();
      CompletableFuture<Long> firstByte =
          CompletableFuture.supplyAsync(() -> timeOfFirstByte(client, downloaded));
      long resumedAt = System.nanoTime();
      TcpSocket restored = lab.track(staged.resume());
      // The server says nothing until the upload is in: only the wake-up can end the
      // client's persist state, not a data segment carrying the window.
      byte[] got = new byte[uploaded];
      for (int off = 0; off < got.length; ) {
        off += restored.read(got, off, got.length - off);
      }
      long uploadArrived = System.nanoTime();
      restored.writeFully(Pattern.bytes(7, 1001, 999));
      long clientGot = firstByte.get(10, TimeUnit.SECONDS);
      nodes.onA.release(key);
      nodes.onB.release(key);

      // After a minute in persist the client's next probe is tens of seconds away (its timer
      // backs off to 51 s and more): only the wake can have brought the upload within a second,
      // however busy the machine. How fast the wake is (milliseconds) is `make bench-hold`'s.
      assertThat(TimeUnit.NANOSECONDS.toMillis(clientGot - resumedAt))
          .as("ms from resume to the client's next byte")
          .isLessThan(WAKE_NOT_PROBE_MS);
      assertThat(TimeUnit.NANOSECONDS.toMillis(uploadArrived - resumedAt))
          .as(
              "ms from resume until the client, woken from zero-window persist, delivered its upload")
          .isLessThan(WAKE_NOT_PROBE_MS);
      assertThat(Pattern.firstMismatch(8, got)).isEqualTo(-1);
      Peers.readExactly(client, 998, downloaded);
      assertThat(Pattern.firstMismatch(7, downloaded.toByteArray())).isEqualTo(-1);
    }
  }

  @Test
  void holdOutlivesTheProcessThatOwnedTheSocket() throws Exception {
    try (Nodes nodes = new Nodes(Family.IPV4)) {
      MigrationLab lab = nodes.lab;
      // The listener on A belongs to the lab; the owner process needs the port for itself.
      Process owner =
          lab.a
              .process(
                  "java",
                  "-cp",
                  System.getProperty("java.class.path"),
                  SocketOwner.class.getName(),
                  lab.service.getAddress().getHostAddress(),
                  Integer.toString(MigrationLab.PORT + 1))
              .redirectError(ProcessBuilder.Redirect.INHERIT)
              .start();
      try {
        BufferedReader out =
            new BufferedReader(
                new InputStreamReader(owner.getInputStream(), StandardCharsets.US_ASCII));
        assertThat(out.readLine()).isEqualTo("listening");
        SocketChannel client =
            lab.clientNs.call(
                () ->
                    SocketChannel.open(
                        new InetSocketAddress(lab.service.getAddress(), MigrationLab.PORT + 1)));
        lab.track(client);
        String fdLine = out.readLine();
        assertThat(fdLine).startsWith("fd ");
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        Peers.readExactly(client, 6, got);

        SocketState state;
        try (Pidfd pidfd = Pidfd.open(owner.pid());
            TcpSocket taken =
                TcpSocket.adopt(pidfd.duplicate(Integer.parseInt(fdLine.substring(3))))) {
          HoldKey key = new HoldKey(taken.localAddress(), taken.remoteAddress());
          nodes.onA.freeze(key, deadline());
          state = new SocketExporter().export(taken);
          nodes.onA.answer(state, System.nanoTime(), deadline());
        }
        owner.destroyForcibly().waitFor(10, TimeUnit.SECONDS);

        client.write(ByteBuffer.wrap("ping".getBytes(StandardCharsets.US_ASCII)));
        Peers.nap(3000);
        HoldStats held = nodes.onA.stats(keyOf(state)).orElseThrow();
        assertThat(held.probesAnswered()).as("answers after the owner died").isPositive();
        assertThat(held.resets()).isZero();
        client.configureBlocking(false);
        assertThat(client.read(ByteBuffer.allocate(1))).as("no reset, no EOF").isZero();
        client.configureBlocking(true);

        lab.moveAddressToB();
        RestoredSocket staged = lab.bNs.call(() -> new SocketRestorer().restore(state));
        nodes.onB.wake(state, deadline());
        lab.announceB();
        TcpSocket restored = lab.track(staged.resume());
        byte[] ping = new byte[4];
        for (int off = 0; off < 4; ) {
          off += restored.read(ping, off, 4 - off);
        }
        assertThat(new String(ping, StandardCharsets.US_ASCII)).isEqualTo("ping");
        nodes.onA.release(keyOf(state));
      } finally {
        owner.destroyForcibly();
      }
    }
  }

  @Test
  void trafficOfConnectionsThatAreNotHeldPassesUntouched() throws Exception {
    try (Nodes nodes = new Nodes(Family.IPV4)) {
      MigrationLab lab = nodes.lab;
      SocketChannel heldClient = lab.connect(0);
      TcpSocket held = lab.accept();
      SocketChannel otherClient = lab.connect(0);
      TcpSocket other = lab.accept();
      HoldKey heldKey = new HoldKey(held.localAddress(), held.remoteAddress());
      nodes.onA.freeze(heldKey, deadline());
      held.writeFully("last words\n".getBytes(StandardCharsets.US_ASCII));
      otherClient.setOption(StandardSocketOptions.TCP_NODELAY, true);

      // A thousand round trips on the neighbour connection while the other one is frozen.
      byte[] buf = new byte[64];
      ByteArrayOutputStream echoed = new ByteArrayOutputStream();
      for (int i = 0; i < 1000; i++) {
        byte[] msg = Pattern.bytes(9, i * 64L, 64);
        otherClient.write(ByteBuffer.wrap(msg));
        for (int off = 0; off < 64; ) {
          off += other.read(buf, off, 64 - off);
        }
        other.writeFully(buf);
        Peers.readExactly(otherClient, 64, echoed);
      }
      assertThat(Pattern.firstMismatch(9, echoed.toByteArray())).isEqualTo(-1);
      assertThat(nodes.onA.stats(heldKey).orElseThrow().windowsZeroed())
          .as("the held connection's segment had its window zeroed")
          .isPositive();
      assertThat(nodes.onA.stats(new HoldKey(other.localAddress(), other.remoteAddress())))
          .as("the neighbour connection is not held")
          .isEmpty();
      Peers.readExactly(heldClient, 11, new ByteArrayOutputStream());
    }
  }

  @Test
  void aRestartedAgentFindsTheHoldsInForceAndCanReleaseThem() throws Exception {
    MigrationLab lab = new MigrationLab(Family.IPV4);
    try (lab) {
      Path pins = lab.bed.bpfPinDir("a");
      SocketChannel client = lab.connect(0);
      TcpSocket server = lab.accept();
      SocketState state;
      try (ConnectionHold first = ConnectionHold.install(pins, "eth0", lab.aNs)) {
        first.freeze(new HoldKey(server.localAddress(), server.remoteAddress()), deadline());
        state = new SocketExporter().export(server);
        server.close();
        first.answer(state, System.nanoTime(), deadline());
      } // the agent exits: its descriptors close, programs and pinned maps stay

      client.write(ByteBuffer.wrap(new byte[] {1}));
      Peers.nap(500);
      ConnectionHold again = ConnectionHold.reopen(pins, "eth0", lab.aNs);
      assertThat(again.held()).containsExactly(keyOf(state));
      assertThat(again.stats(keyOf(state)).orElseThrow().probesAnswered())
          .as("answered while no agent ran")
          .isPositive();
      again.release(keyOf(state));
      assertThat(again.held()).isEmpty();
      again.uninstall();
      assertThat(Files.exists(pins)).isFalse();
    }
  }

  /**
   * What a held client sends is kept, whether the XDP program drops it (the socket frozen) or
   * answers it (the socket gone): every record of the connection carries exactly the client's
   * stream bytes at its sequence number, counted from the exported rcv_nxt, and together they cover
   * all it sent.
   */
  @ParameterizedTest
  @EnumSource(Family.class)
  void whatAHeldClientSendsIsKeptAtItsSequenceNumberWhetherDroppedOrAnswered(Family family)
      throws Exception {
    try (Nodes nodes = new Nodes(family)) {
      MigrationLab lab = nodes.lab;
      SocketChannel client = lab.connect(0);
      TcpSocket server = lab.accept();
      client.setOption(StandardSocketOptions.TCP_NODELAY, true);
      HoldKey key = new HoldKey(server.localAddress(), server.remoteAddress());
      nodes.onA.freeze(key, deadline());
      // Two writes while the window is still open: both leave at once, and both are dropped.
      byte[] upload = Pattern.bytes(8, 0, 1000);
      client.write(ByteBuffer.wrap(upload, 0, 700));
      client.write(ByteBuffer.wrap(upload, 700, 300));
      List<KeptBytes> dropped = takeUntil(nodes.onA, key, got -> covers(got, 0, 1000, null));
      SocketState state = new SocketExporter().export(server);
      int rcvNxt = state.recvSeq();
      server.close();
      nodes.onA.answer(state, System.nanoTime(), deadline());

      // The client retransmits on its timeout. Once one segment was answered, every later one is
      // answered too: what was kept until then goes with the dropped records.
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (nodes.onA.stats(key).orElseThrow().probesAnswered() == 0
          && System.nanoTime() < until) {
        Peers.nap(20);
      }
      dropped.addAll(takeUntil(nodes.onA, key, got -> true));
      List<KeptBytes> answered = takeUntil(nodes.onA, key, got -> !got.isEmpty());
      HoldStats held = nodes.onA.stats(key).orElseThrow();
      KeptBytes.Counts counts = nodes.onA.keptCounts();
      nodes.onA.release(key);

      assertThat(dropped).as("kept while frozen").isNotEmpty();
      assertThat(dropped.get(0)).isEqualTo(new KeptBytes(key, rcvNxt, Arrays.copyOf(upload, 700)));
      assertThat(covers(dropped, 0, 1000, rcvNxt)).as("kept while frozen: all 1000 bytes").isTrue();
      assertThat(answered).as("kept while answered").isNotEmpty();
      assertThat(held.probesAnswered()).as("segments answered").isPositive();
      for (KeptBytes k : concat(dropped, answered)) {
        int offset = k.seq() - rcvNxt;
        assertThat(offset).as("offset of %s", k).isBetween(0, 999);
        assertThat(k.data()).as("%s", k).isEqualTo(Pattern.bytes(8, offset, k.data().length));
      }
      assertThat(counts.kept()).isGreaterThanOrEqualTo(dropped.size() + answered.size());
      assertThat(counts.notKept()).isZero();
    }
  }

  @Test
  void aRestartedAgentTakesWhatWasKeptWhileNoAgentRan() throws Exception {
    MigrationLab lab = new MigrationLab(Family.IPV6);
    try (lab) {
      Path pins = lab.bed.bpfPinDir("a");
      SocketChannel client = lab.connect(0);
      TcpSocket server = lab.accept();
      HoldKey key = new HoldKey(server.localAddress(), server.remoteAddress());
      SocketState state;
      try (ConnectionHold first = ConnectionHold.install(pins, "eth0", lab.aNs)) {
        first.freeze(key, deadline());
        state = new SocketExporter().export(server);
        server.close();
        first.answer(state, System.nanoTime(), deadline());
      } // the agent exits: programs, maps and the ring's records stay

      byte[] sent = Pattern.bytes(3, 0, 200);
      client.write(ByteBuffer.wrap(sent));
      Peers.nap(300);
      ConnectionHold again = ConnectionHold.reopen(pins, "eth0", lab.aNs);
      try {
        assertThat(again.keepsBytes()).isTrue();
        List<KeptBytes> got = takeUntil(again, key, g -> !g.isEmpty());
        assertThat(got).isNotEmpty();
        assertThat(got.get(0)).isEqualTo(new KeptBytes(key, state.recvSeq(), sent));
        again.release(key);
      } finally {
        again.uninstall();
      }
    }
  }

  /**
   * An agent from before the ring leaves its maps pinned without one, and programs that keep
   * nothing: the new agent replaces the programs over the same maps, the holds in force carry on,
   * and from then on what the client sends is kept.
   */
  @Test
  void aRestartedAgentOverAHoldWithoutTheRingReplacesItsProgramsAndKeepsFromThen()
      throws Exception {
    MigrationLab lab = new MigrationLab(Family.IPV4);
    try (lab) {
      Path pins = lab.bed.bpfPinDir("a");
      SocketChannel client = lab.connect(0);
      TcpSocket server = lab.accept();
      client.setOption(StandardSocketOptions.TCP_NODELAY, true);
      HoldKey key = new HoldKey(server.localAddress(), server.remoteAddress());
      try (ConnectionHold first = ConnectionHold.install(pins, "eth0", lab.aNs)) {
        first.freeze(key, deadline());
      }
      // Unpinned, the ring lives on only for the programs attached now, as an older agent's
      // programs would have none: whatever they keep, no agent can read.
      for (String map :
          List.of(HoldMaps.KEPT, HoldMaps.KEPT_COUNTS, HoldMaps.KEPT_SCRATCH, HoldMaps.ACKS)) {
        Files.delete(pins.resolve(map));
      }
      int olderXdp =
          lab.aNs.call(() -> XdpAttachment.attachedProgramId("eth0", XdpAttachment.Mode.GENERIC));

      ConnectionHold again = ConnectionHold.reopen(pins, "eth0", lab.aNs);
      try {
        assertThat(again.keepsBytes()).isTrue();
        assertThat(Files.exists(pins.resolve(HoldMaps.KEPT))).as("ring pinned again").isTrue();
        assertThat(Files.exists(pins.resolve(HoldMaps.ACKS)))
            .as("acknowledgments pinned again")
            .isTrue();
        assertThat(again.held()).as("holds in force").containsExactly(key);
        assertThat(
                lab.aNs.call(
                    () -> XdpAttachment.attachedProgramId("eth0", XdpAttachment.Mode.GENERIC)))
            .as("XDP program on eth0")
            .isPositive()
            .isNotEqualTo(olderXdp);
        byte[] sent = Pattern.bytes(4, 0, 100);
        client.write(ByteBuffer.wrap(sent));
        List<KeptBytes> got = takeUntil(again, key, g -> !g.isEmpty());
        int rcvNxt = new SocketExporter().export(server).recvSeq();
        assertThat(got).as("kept after the upgrade").isNotEmpty();
        assertThat(got.get(0)).isEqualTo(new KeptBytes(key, rcvNxt, sent));
        again.release(key);
      } finally {
        again.uninstall();
      }
      assertThat(Files.exists(pins)).isFalse();
    }
  }

  /**
   * Takes {@code key}'s kept records until {@code done} says they are enough (checked after each
   * take), for up to 10 s.
   */
  private static List<KeptBytes> takeUntil(
      ConnectionHold hold, HoldKey key, Predicate<List<KeptBytes>> done) throws Exception {
    List<KeptBytes> got = new ArrayList<>();
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      hold.takeKeptBytes(
          k -> {
            if (k.key().equals(key)) {
              got.add(k);
            }
          });
      if (done.test(got) || System.nanoTime() > until) {
        return got;
      }
      Peers.nap(20);
    }
  }

  /**
   * Whether the records cover stream offsets [from, to) of the stream that starts at {@code base}
   * (null: at the first record's seq).
   */
  private static boolean covers(List<KeptBytes> got, int from, int to, Integer base) {
    if (got.isEmpty()) {
      return false;
    }
    int start = base != null ? base : got.get(0).seq();
    boolean[] seen = new boolean[to - from];
    for (KeptBytes k : got) {
      for (int i = 0; i < k.data().length; i++) {
        int offset = k.seq() - start + i;
        if (offset >= from && offset < to) {
          seen[offset - from] = true;
        }
      }
    }
    for (boolean b : seen) {
      if (!b) {
        return false;
      }
    }
    return true;
  }

  private static List<KeptBytes> concat(List<KeptBytes> a, List<KeptBytes> b) {
    List<KeptBytes> out = new ArrayList<>(a);
    out.addAll(b);
    return out;
  }

  @Test
  void aHoldPastItsDeadlineLetsTheClientGoWithAReset() throws Exception {
    try (Nodes nodes = new Nodes(Family.IPV4)) {
      MigrationLab lab = nodes.lab;
      SocketChannel client = lab.connect(0);
      TcpSocket server = lab.accept();
      long soon = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500);
      nodes.onA.freeze(new HoldKey(server.localAddress(), server.remoteAddress()), soon);
      SocketState state = new SocketExporter().export(server);
      server.close();
      nodes.onA.answer(state, System.nanoTime(), soon);
      Peers.nap(1000);

      client.write(ByteBuffer.wrap(new byte[] {1}));
      assertThatThrownBy(() -> client.read(ByteBuffer.allocate(1)))
          .as("past its deadline the hold steps aside and node A's kernel resets the connection")
          .hasMessageContaining("reset");
      assertThat(nodes.onA.stats(keyOf(state)).orElseThrow().expired()).isPositive();
    }
  }

  @Test
  void uninstallLeavesNoProgramAttachedAndNothingPinned() throws Exception {
    MigrationLab lab = new MigrationLab(Family.IPV4);
    try (lab) {
      Path pins = lab.bed.bpfPinDir("a");
      ConnectionHold hold = ConnectionHold.install(pins, "eth0", lab.aNs);
      assertThat(Files.list(pins).map(p -> p.getFileName().toString()).toList())
          .contains(
              "ferry_holds",
              "ferry_hstats",
              "ferry_counters",
              "ferry_kept",
              "ferry_kept_cnt",
              "ferry_acks");
      assertThat(
              lab.aNs.call(
                  () -> XdpAttachment.attachedProgramId("eth0", XdpAttachment.Mode.GENERIC)))
          .isPositive();
      assertThat(lab.aNs.call(() -> TcAttachment.isAttached("eth0", TcAttachment.Direction.EGRESS)))
          .isTrue();

      hold.uninstall();

      assertThat(Files.exists(pins)).as("pin directory " + pins).isFalse();
      assertThat(
              lab.aNs.call(
                  () -> XdpAttachment.attachedProgramId("eth0", XdpAttachment.Mode.GENERIC)))
          .isZero();
      assertThat(lab.aNs.call(() -> TcAttachment.isAttached("eth0", TcAttachment.Direction.EGRESS)))
          .isFalse();
      assertThat(lab.a.run("tc", "filter", "show", "dev", "eth0", "egress")).isBlank();
    }
  }

  /**
   * docs/aws.md's layout: the service address on a second interface of the node (the {@code
   * no_manage} ENI), in a subnet of its own whose traffic never crosses eth0. With the hold on both
   * interfaces, as {@code FERRY_AGENT_HOLD_INTERFACES=eth0,eth1} has it, the client's segments on
   * eth1 are held on node A while the socket is gone (answered, never reset); on node B the
   * restored socket's window probe leaves through eth1 and wakes the client there, and the
   * announcement leaves from eth1, the interface whose subnet holds the address.
   */
  @ParameterizedTest
  @ValueSource(strings = {"198.19.0.", "fd67::"})
  void clientOnTheServiceInterfaceIsHeldThereAndWokenThereAfterTheMove(String subnet)
      throws Exception {
    String mask = subnet.contains(":") ? "/64" : "/24";
    ServiceAddress address = ServiceAddress.parse(subnet + "100" + mask);
    InetSocketAddress service = new InetSocketAddress(address.ip(), MigrationLab.PORT);
    try (Testbed bed = Testbed.create()) {
      Host client = bed.host("client", "198.18.0.1/24");
      Host a = bed.host("a", "198.18.0.2/24");
      Host b = bed.host("b", "198.18.0.3/24");
      bed.serviceInterface(client, "eth1", subnet + "1" + mask);
      bed.serviceInterface(a, "eth1", subnet + "2" + mask, address.toString());
      bed.serviceInterface(b, "eth1", subnet + "3" + mask);
      List<String> holdInterfaces = List.of("eth0", "eth1");
      try (NetNamespace clientNs = NetNamespace.named(client.netns());
          NetNamespace aNs = NetNamespace.named(a.netns());
          NetNamespace bNs = NetNamespace.named(b.netns())) {
        ConnectionHold onA = ConnectionHold.install(bed.bpfPinDir("a"), holdInterfaces, aNs);
        ConnectionHold onB = ConnectionHold.install(bed.bpfPinDir("b"), holdInterfaces, bNs);
        try (TcpSocket listener = listenOn(aNs, service);
            SocketChannel ch = clientNs.call(() -> SocketChannel.open(service));
            TcpSocket server = listener.accept()) {
          assertThat(a.run("ip", "route", "get", subnet + "1"))
              .as("node A reaches the client's service subnet through eth1, not eth0")
              .contains("dev eth1");
          ByteArrayOutputStream downloaded = new ByteArrayOutputStream();
          server.writeFully(Pattern.bytes(7, 0, 1000));
          Peers.readExactly(ch, 1000, downloaded);

          HoldKey key = new HoldKey(server.localAddress(), server.remoteAddress());
          onA.freeze(key, deadline());
          server.writeFully(Pattern.bytes(7, 1000, 1));
          Peers.readExactly(ch, 1, downloaded);
          SocketState state = new SocketExporter().export(server);
          long exportedAt = System.nanoTime();
          server.close();
          onA.answer(state, exportedAt, deadline());

          // Long enough for the client's persist timer to back off past a second: only the wake
          // can then bring its upload in within one.
          byte[] upload = Pattern.bytes(8, 0, 300);
          ch.configureBlocking(false);
          int uploaded = 0;
          long holdEnds = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
          while (System.nanoTime() < holdEnds) {
            if (uploaded < upload.length) {
              uploaded += ch.write(ByteBuffer.wrap(upload, uploaded, 100));
            }
            assertThat(ch.read(ByteBuffer.allocate(1))).as("nothing, no reset, no EOF").isZero();
            Peers.nap(200);
          }
          HoldStats held = onA.stats(key).orElseThrow();
          assertThat(held.windowsZeroed()).as("windows zeroed on eth1's egress").isPositive();
          assertThat(held.probesAnswered()).as("probes answered on eth1's ingress").isPositive();
          assertThat(held.resets()).isZero();

          a.removeAddress("eth1", address.toString());
          b.addAddress("eth1", address.toString());
          RestoredSocket staged = bNs.call(() -> new SocketRestorer().restore(state));
          onB.wake(state, deadline());
          AddressMover mover = new AddressMover();
          String carrier = mover.carrier(address, bNs, holdInterfaces, "eth0");
          assertThat(carrier)
              .as("the interface that carries %s on node B", address)
              .isEqualTo("eth1");
          mover.announce(address, bNs, carrier);
          String ip = subnet + "100";
          long announced = System.nanoTime();
          while (!neighbour(client, ip).contains(b.mac("eth1"))
              && System.nanoTime() - announced < MINUTE / 30) {
            Peers.nap(10);
          }
          assertThat(neighbour(client, ip)).as("client's entry").contains(b.mac("eth1"));

          long resumedAt = System.nanoTime();
          try (TcpSocket restored = staged.resume()) {
            byte[] got = readExactly(restored, uploaded, 5000);
            long uploadArrived = System.nanoTime();
            restored.writeFully(Pattern.bytes(7, 1001, 999));
            readExactly(ch, 999, downloaded, 5000);
            System.out.printf(
                "%s on eth1: held %s; upload in %d ms after the resume%n",
                address, held, TimeUnit.NANOSECONDS.toMillis(uploadArrived - resumedAt));
            assertThat(TimeUnit.NANOSECONDS.toMillis(uploadArrived - resumedAt))
                .as("ms from resume until the client, woken on eth1, delivered its upload")
                .isLessThan(1000);
            assertThat(Pattern.firstMismatch(8, got)).isEqualTo(-1);
            assertThat(Pattern.firstMismatch(7, downloaded.toByteArray())).isEqualTo(-1);
          }
          onA.release(key);
          onB.release(key);
        } finally {
          onA.uninstall();
          onB.uninstall();
        }
        for (NetNamespace ns : List.of(aNs, bNs)) {
          for (String ifname : holdInterfaces) {
            assertThat(
                    ns.call(
                        () -> XdpAttachment.attachedProgramId(ifname, XdpAttachment.Mode.GENERIC)))
                .as("XDP on %s after uninstall", ifname)
                .isZero();
            assertThat(
                    ns.call(() -> TcAttachment.isAttached(ifname, TcAttachment.Direction.EGRESS)))
                .as("TC on %s after uninstall", ifname)
                .isFalse();
          }
        }
      }
    }
  }

  /**
   * An agent restarted with an interface added to its setting finds the hold in force on the old
   * one and attaches the programs to the new one, over the same pinned maps: the programs on both
   * read one holds map.
   */
  @Test
  void aRestartedAgentWithAnInterfaceAddedAttachesThereOverTheSameMaps() throws Exception {
    try (Testbed bed = Testbed.create()) {
      Host a = bed.host("a", "198.18.0.2/24");
      bed.serviceInterface(a, "eth1", "198.19.0.2/24");
      Path pins = bed.bpfPinDir("a");
      try (NetNamespace aNs = NetNamespace.named(a.netns())) {
        HoldKey key =
            new HoldKey(
                new InetSocketAddress("198.19.0.100", 8080),
                new InetSocketAddress("198.19.0.1", 40000));
        try (ConnectionHold first = ConnectionHold.install(pins, "eth0", aNs)) {
          first.freeze(key, deadline());
        }
        assertThat(
                aNs.call(() -> XdpAttachment.attachedProgramId("eth1", XdpAttachment.Mode.GENERIC)))
            .isZero();

        ConnectionHold again = ConnectionHold.reopen(pins, List.of("eth0", "eth1"), aNs);
        try {
          assertThat(again.held()).containsExactly(key);
          assertThat(aNs.call(() -> TcAttachment.isAttached("eth1", TcAttachment.Direction.EGRESS)))
              .isTrue();
          int onEth0 =
              aNs.call(() -> XdpAttachment.attachedProgramId("eth0", XdpAttachment.Mode.GENERIC));
          int onEth1 =
              aNs.call(() -> XdpAttachment.attachedProgramId("eth1", XdpAttachment.Mode.GENERIC));
          assertThat(onEth1).isPositive();
          assertThat(mapIds(onEth1))
              .as("maps of the XDP program on eth1 (id %d) and on eth0 (id %d)", onEth1, onEth0)
              .isEqualTo(mapIds(onEth0));
        } finally {
          again.uninstall();
        }
        for (String ifname : List.of("eth0", "eth1")) {
          assertThat(
                  aNs.call(
                      () -> XdpAttachment.attachedProgramId(ifname, XdpAttachment.Mode.GENERIC)))
              .isZero();
          assertThat(a.run("tc", "filter", "show", "dev", ifname, "egress")).isBlank();
        }
        assertThat(Files.exists(pins)).isFalse();
      }
    }
  }

  /** The ids of the maps a loaded program uses, as bpftool shows them. */
  private static String mapIds(int programId) {
    String shown = Shell.run("bpftool", "prog", "show", "id", Integer.toString(programId));
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("map_ids ([0-9,]+)").matcher(shown);
    assertThat(m.find()).as("bpftool prog show id %d: %s", programId, shown).isTrue();
    return m.group(1);
  }

  private static TcpSocket listenOn(NetNamespace ns, InetSocketAddress local) throws Exception {
    return ns.call(
        () -> {
          TcpSocket s = TcpSocket.open(local.getAddress());
          try {
            s.setReuseAddress();
            s.bind(local);
            s.listen(16);
            return s;
          } catch (SyscallException e) {
            s.close();
            throw e;
          }
        });
  }

  /** Reads exactly {@code n} bytes, failing when none come for {@code timeoutMs}. */
  private static byte[] readExactly(TcpSocket socket, int n, int timeoutMs) throws Exception {
    byte[] got = new byte[n];
    for (int off = 0; off < n; ) {
      assertThat(socket.awaitReadable(timeoutMs)).as("%d of %d bytes came", off, n).isTrue();
      int r = socket.read(got, off, n - off);
      assertThat(r).as("end of stream after %d of %d bytes", off, n).isNotNegative();
      off += r;
    }
    return got;
  }

  /** Reads exactly {@code n} bytes from a non-blocking channel, within {@code timeoutMs}. */
  private static void readExactly(
      SocketChannel ch, int n, ByteArrayOutputStream into, int timeoutMs) throws Exception {
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    ByteBuffer buf = ByteBuffer.allocate(n);
    while (buf.hasRemaining()) {
      assertThat(System.nanoTime()).as("%d of %d bytes came", buf.position(), n).isLessThan(until);
      if (ch.read(buf) < 0) {
        throw new AssertionError("end of stream after " + buf.position() + " of " + n + " bytes");
      }
      if (buf.hasRemaining()) {
        Peers.nap(5);
      }
    }
    into.write(buf.array(), 0, n);
  }

  private static String neighbour(Host host, String ip) {
    return host.run("ip", "neigh", "show", ip, "dev", "eth1").trim();
  }

  private static long timeOfFirstByte(SocketChannel client, ByteArrayOutputStream into) {
    try {
      ByteBuffer one = ByteBuffer.allocate(1);
      if (client.read(one) != 1) {
        throw new IllegalStateException("end of stream");
      }
      long at = System.nanoTime();
      into.write(one.array(), 0, 1);
      return at;
    } catch (Exception e) {
      throw new IllegalStateException("client read failed", e);
    }
  }
}
