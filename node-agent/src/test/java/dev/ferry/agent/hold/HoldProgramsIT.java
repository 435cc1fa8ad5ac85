// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import static dev.ferry.agent.hold.TestPackets.ACK;
import static dev.ferry.agent.hold.TestPackets.PSH;
import static dev.ferry.agent.hold.TestPackets.RST;
import static dev.ferry.agent.hold.TestPackets.SYN;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.hold.TestPackets.Parsed;
import dev.ferry.sys.BpfMap;
import dev.ferry.sys.BpfObject;
import dev.ferry.sys.BpfRingBuffer;
import dev.ferry.testbed.Testbed;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The hold programs fed crafted packets in the kernel (BPF_PROG_TEST_RUN), one named case per
 * decision: input packet, map state, expected verdict, expected output, and the payload hold_xdp
 * keeps in the ferry_kept ring.
 */
class HoldProgramsIT {
  /** hold_tc lets a segment be with TC_ACT_UNSPEC, so that the filters after it run. */
  private static final int TC_ACT_UNSPEC = -1;

  private static final int TC_ACT_SHOT = 2;
  private static final int XDP_DROP = 1;
  private static final int XDP_PASS = 2;
  private static final int XDP_TX = 3;

  private static final String VIP4 = "198.18.0.100";
  private static final String CLIENT4 = "198.18.0.1";
  private static final String VIP6 = "fd66::100";
  private static final String CLIENT6 = "fd66::1";
  private static final long LATER = Long.MAX_VALUE;

  private static Path pins;
  private static BpfObject tc;
  private static BpfObject xdp;
  private static BpfMap holds;
  private static BpfMap stats;
  private static BpfMap keptCounts;
  private static BpfRingBuffer kept;

  @BeforeAll
  static void load() throws IOException {
    pins = Testbed.mountBpfFs().resolve("ferry-programs-test-" + ProcessHandle.current().pid());
    Files.createDirectories(pins);
    tc = ConnectionHold.load(HoldMaps.TC_OBJECT, pins);
    xdp = ConnectionHold.load(HoldMaps.XDP_OBJECT, pins);
    holds = tc.map(HoldMaps.HOLDS);
    stats = tc.map(HoldMaps.STATS);
    keptCounts = tc.map(HoldMaps.KEPT_COUNTS);
    kept = BpfRingBuffer.open(tc.map(HoldMaps.KEPT));
  }

  @AfterAll
  static void unload() throws IOException {
    if (kept != null) {
      kept.close();
    }
    if (tc != null) {
      tc.close();
    }
    if (xdp != null) {
      xdp.close();
    }
    for (String map : HoldMaps.PINNED) {
      Files.deleteIfExists(pins.resolve(map));
    }
    Files.deleteIfExists(pins);
  }

  /** One row of the table. {@code hold} null: the connection is not held. */
  private record Case(
      String name,
      byte[] packet,
      HoldKey key,
      HoldEntry hold,
      int verdict,
      BiConsumer<Parsed, HoldStats> check) {}

  private static HoldKey key(String vip, String client) {
    return new HoldKey(
        new InetSocketAddress(TestPackets.ip(vip), 8080),
        new InetSocketAddress(TestPackets.ip(client), 40000));
  }

  private static HoldEntry entry(int flags) {
    return new HoldEntry(flags, 5000, 778, 0, 0, System.nanoTime(), LATER);
  }

  private static byte[] serverSegment(
      String vip, String client, int seq, int flags, byte[] options, int payload) {
    return TestPackets.fromServer(
        TestPackets.tcp(
            vip, client, 8080, 40000, seq, 5000, flags, 501, options, new byte[payload]));
  }

  private static byte[] clientSegment(
      String client, String vip, int seq, int flags, byte[] options, int payload) {
    return TestPackets.tcp(
        client, vip, 40000, 8080, seq, 9000, flags, 1000, options, new byte[payload]);
  }

  private static BiConsumer<Parsed, HoldStats> unchanged(byte[] in) {
    return (out, s) -> assertThat(out.raw()).as("packet bytes").isEqualTo(in);
  }

  @TestFactory
  Stream<DynamicTest> tcCases() {
    byte[] ts = TestPackets.timestamps(100, 200);
    byte[] unheld = serverSegment(VIP4, "198.18.0.9", 1, ACK, ts, 10);
    byte[] reverse = clientSegment(CLIENT4, VIP4, 1, ACK, ts, 10);
    byte[] dataAtWakeSeq = serverSegment(VIP4, CLIENT4, 999, ACK | PSH, ts, 5);
    byte[] expired = serverSegment(VIP4, CLIENT4, 1, ACK, ts, 10);
    return Stream.of(
            new Case(
                "zero window, IPv4",
                serverSegment(VIP4, CLIENT4, 1, ACK | PSH, ts, 10),
                key(VIP4, CLIENT4),
                entry(HoldMaps.F_ZERO_WINDOW),
                TC_ACT_UNSPEC,
                (out, s) -> {
                  assertThat(out.window()).isZero();
                  assertThat(out.seq()).isEqualTo(1);
                  assertThat(out.payloadLength()).isEqualTo(10);
                  assertThat(out.checksumsValid()).as("checksums").isTrue();
                  assertThat(s.windowsZeroed()).isEqualTo(1);
                }),
            new Case(
                "zero window, IPv6",
                serverSegment(VIP6, CLIENT6, 1, ACK, ts, 0),
                key(VIP6, CLIENT6),
                entry(HoldMaps.F_ZERO_WINDOW),
                TC_ACT_UNSPEC,
                (out, s) -> {
                  assertThat(out.window()).isZero();
                  assertThat(out.checksumsValid()).as("checksums").isTrue();
                }),
            new Case(
                "unheld tuple untouched",
                unheld,
                key(VIP4, CLIENT4),
                entry(HoldMaps.F_ZERO_WINDOW),
                TC_ACT_UNSPEC,
                unchanged(unheld)),
            new Case(
                "client-to-server direction untouched",
                reverse,
                key(VIP4, CLIENT4),
                entry(HoldMaps.F_ZERO_WINDOW),
                TC_ACT_UNSPEC,
                unchanged(reverse)),
            new Case(
                "mute drops the server's segment",
                serverSegment(VIP4, CLIENT4, 1, ACK, ts, 10),
                key(VIP4, CLIENT4),
                entry(HoldMaps.F_MUTE),
                TC_ACT_SHOT,
                (out, s) -> assertThat(s.segmentsDropped()).isEqualTo(1)),
            new Case(
                "wake turns the repair-off probe into an acceptable ACK",
                serverSegment(VIP6, CLIENT6, 999, ACK, ts, 0),
                key(VIP6, CLIENT6),
                new HoldEntry(HoldMaps.F_WAKE, 0, 0, 999, 1500, 0, LATER),
                TC_ACT_UNSPEC,
                (out, s) -> {
                  assertThat(out.seq()).isEqualTo(1500);
                  assertThat(out.window()).isEqualTo(501);
                  assertThat(out.checksumsValid()).as("checksums").isTrue();
                }),
            new Case(
                "wake leaves a data segment alone",
                dataAtWakeSeq,
                key(VIP4, CLIENT4),
                new HoldEntry(HoldMaps.F_WAKE, 0, 0, 999, 1500, 0, LATER),
                TC_ACT_UNSPEC,
                unchanged(dataAtWakeSeq)),
            new Case(
                "expired hold lets the segment through untouched",
                expired,
                key(VIP4, CLIENT4),
                new HoldEntry(HoldMaps.F_ZERO_WINDOW, 0, 0, 0, 0, 0, 1),
                TC_ACT_UNSPEC,
                (out, s) -> {
                  assertThat(out.raw()).isEqualTo(expired);
                  assertThat(s.expired()).isEqualTo(1);
                }))
        .map(c -> DynamicTest.dynamicTest(c.name(), () -> run(tc, "hold_tc", c)));
  }

  @TestFactory
  Stream<DynamicTest> xdpCases() {
    byte[] ts = TestPackets.timestamps(123, 700);
    long fiveSecondsAgo = System.nanoTime() - TimeUnit.SECONDS.toNanos(5);
    HoldEntry answerWithTimestamps =
        new HoldEntry(
            HoldMaps.F_ANSWER | HoldMaps.F_TIMESTAMPS | HoldMaps.F_ZERO_WINDOW,
            5000,
            778,
            0,
            0,
            fiveSecondsAgo,
            LATER);
    byte[] unheld = clientSegment("198.18.0.9", VIP4, 5000, ACK, ts, 0);
    byte[] udp = TestPackets.udp4();
    byte[] arp = TestPackets.arp();
    byte[] full = clientSegment(CLIENT4, VIP4, 5000, ACK, ts, 0);
    byte[] ethOnly = Arrays.copyOf(full, 14);
    byte[] ipCut = Arrays.copyOf(full, 14 + 12);
    byte[] tcpCut = Arrays.copyOf(full, 14 + 20 + 10);
    byte[] expired = clientSegment(CLIENT4, VIP4, 5000, ACK, ts, 0);
    return Stream.of(
            new Case(
                "answers IPv4 with an advancing timestamp",
                clientSegment(CLIENT4, VIP4, 5000, ACK, ts, 0),
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_TX,
                (out, s) -> {
                  assertThat(out.src()).isEqualTo(TestPackets.ip(VIP4).getAddress());
                  assertThat(out.dst()).isEqualTo(TestPackets.ip(CLIENT4).getAddress());
                  assertThat(out.srcMac()).isEqualTo(TestPackets.SERVER_MAC);
                  assertThat(out.sport()).isEqualTo(8080);
                  assertThat(out.dport()).isEqualTo(40000);
                  assertThat(out.seq()).as("seq = what the client acknowledged").isEqualTo(9000);
                  assertThat(out.ack()).as("ack = exported rcv_nxt").isEqualTo(5000);
                  assertThat(out.flags()).isEqualTo(ACK);
                  assertThat(out.window()).isZero();
                  assertThat(out.payloadLength()).isZero();
                  int[] t = out.timestamps();
                  assertThat(t).as("timestamp option").isNotNull();
                  assertThat(t[0])
                      .as("TSval: 778 + about 5000 ms held")
                      .isBetween(778 + 5000, 778 + 5000 + 2000);
                  assertThat(t[1]).as("TSecr echoes the client's TSval").isEqualTo(123);
                  assertThat(out.checksumsValid()).as("checksums").isTrue();
                  assertThat(s.probesAnswered()).isEqualTo(1);
                }),
            new Case(
                "answers IPv6 without timestamps",
                clientSegment(CLIENT6, VIP6, 5000, ACK, new byte[0], 0),
                key(VIP6, CLIENT6),
                entry(HoldMaps.F_ANSWER),
                XDP_TX,
                (out, s) -> {
                  assertThat(out.headerLength()).isEqualTo(20);
                  assertThat(out.seq()).isEqualTo(9000);
                  assertThat(out.ack()).isEqualTo(5000);
                  assertThat(out.window()).isZero();
                  assertThat(out.checksumsValid()).as("checksums").isTrue();
                }),
            new Case(
                "answers a one-byte window probe without acknowledging the byte",
                clientSegment(CLIENT4, VIP4, 5000, ACK | PSH, ts, 1),
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_TX,
                (out, s) -> {
                  assertThat(out.ack()).isEqualTo(5000);
                  assertThat(out.payloadLength()).isZero();
                  assertThat(out.checksumsValid()).as("checksums").isTrue();
                }),
            new Case(
                "answers a retransmission with the exported rcv_nxt",
                clientSegment(CLIENT6, VIP6, 4000, ACK, ts, 1000),
                key(VIP6, CLIENT6),
                answerWithTimestamps,
                XDP_TX,
                (out, s) -> {
                  assertThat(out.ack()).isEqualTo(5000);
                  assertThat(out.payloadLength()).isZero();
                  assertThat(out.checksumsValid()).as("checksums").isTrue();
                }),
            new Case(
                "drop-only while the socket is exported",
                clientSegment(CLIENT4, VIP4, 5000, ACK, ts, 10),
                key(VIP4, CLIENT4),
                entry(HoldMaps.F_DROP),
                XDP_DROP,
                (out, s) -> assertThat(s.segmentsDropped()).isEqualTo(1)),
            new Case(
                "reset from the client is dropped and counted",
                clientSegment(CLIENT4, VIP4, 5000, RST | ACK, new byte[0], 0),
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_DROP,
                (out, s) -> assertThat(s.resets()).isEqualTo(1)),
            new Case(
                "SYN for a held tuple is dropped",
                clientSegment(CLIENT4, VIP4, 1, SYN, new byte[0], 0),
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_DROP,
                (out, s) -> assertThat(s.probesAnswered()).isZero()),
            new Case(
                "unheld tuple passes",
                unheld,
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_PASS,
                unchanged(unheld)),
            new Case(
                "UDP passes",
                udp,
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_PASS,
                unchanged(udp)),
            new Case(
                "ARP passes",
                arp,
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_PASS,
                unchanged(arp)),
            new Case(
                "expired hold passes",
                expired,
                key(VIP4, CLIENT4),
                new HoldEntry(HoldMaps.F_ANSWER, 5000, 0, 0, 0, 0, 1),
                XDP_PASS,
                (out, s) -> {
                  assertThat(out.raw()).isEqualTo(expired);
                  assertThat(s.expired()).isEqualTo(1);
                }),
            new Case(
                "truncated: Ethernet only",
                ethOnly,
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_PASS,
                unchanged(ethOnly)),
            new Case(
                "truncated: IP header cut",
                ipCut,
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_PASS,
                unchanged(ipCut)),
            new Case(
                "truncated: TCP header cut",
                tcpCut,
                key(VIP4, CLIENT4),
                answerWithTimestamps,
                XDP_PASS,
                unchanged(tcpCut)))
        .map(c -> DynamicTest.dynamicTest(c.name(), () -> run(xdp, "hold_xdp", c)));
  }

  /**
   * A client segment fed to hold_xdp, and what must come out of the ring: {@code kept} in that
   * order, and {@code notKept} segments counted as lost.
   */
  private record KeptCase(
      String name,
      byte[] packet,
      HoldKey key,
      HoldEntry hold,
      int verdict,
      Consumer<Parsed> check,
      List<KeptBytes> kept,
      long notKept) {}

  /** Distinct bytes, so that a copy from the wrong offset shows. */
  private static byte[] payload(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (seed + i * 7);
    }
    return b;
  }

  private static byte[] clientData(String client, String vip, int seq, int flags, byte[] data) {
    return TestPackets.tcp(
        client, vip, 40000, 8080, seq, 9000, flags, 1000, TestPackets.timestamps(123, 700), data);
  }

  /** The frame followed by Ethernet padding (non-zero here, so that it cannot pass for payload). */
  private static byte[] padded(byte[] frame, int to) {
    byte[] out = Arrays.copyOf(frame, to);
    Arrays.fill(out, frame.length, to, (byte) 0xee);
    return out;
  }

  private static Consumer<Parsed> answered() {
    return out -> {
      assertThat(out.flags()).isEqualTo(ACK);
      assertThat(out.seq()).as("seq = what the client acknowledged").isEqualTo(9000);
      assertThat(out.ack())
          .as("ack = exported rcv_nxt: nothing kept is acknowledged")
          .isEqualTo(5000);
      assertThat(out.window()).isZero();
      assertThat(out.payloadLength()).isZero();
      assertThat(out.raw()).as("answer frame length").hasSize(out.l4() + out.headerLength());
      assertThat(out.checksumsValid()).as("checksums").isTrue();
    };
  }

  private static Consumer<Parsed> any() {
    return out -> {};
  }

  @TestFactory
  Stream<DynamicTest> keptCases() {
    HoldEntry frozen = entry(HoldMaps.F_DROP | HoldMaps.F_ZERO_WINDOW);
    HoldEntry answering = entry(HoldMaps.F_ANSWER | HoldMaps.F_TIMESTAMPS | HoldMaps.F_ZERO_WINDOW);
    HoldKey v4 = key(VIP4, CLIENT4);
    HoldKey v6 = key(VIP6, CLIENT6);
    byte[] p100 = payload(100, 1);
    byte[] p1400 = payload(1400, 2);
    byte[] p300 = payload(300, 3);
    byte[] p2 = payload(2, 4);
    byte[] p5 = payload(5, 5);
    byte[] p40 = payload(40, 6);
    byte[] cutShort = clientData(CLIENT4, VIP4, 5000, ACK | PSH, payload(100, 7));
    cutShort = Arrays.copyOf(cutShort, cutShort.length - 10);
    return Stream.of(
            new KeptCase(
                "dropped while frozen, IPv4: payload kept",
                clientData(CLIENT4, VIP4, 5000, ACK | PSH, p100),
                v4,
                frozen,
                XDP_DROP,
                any(),
                List.of(new KeptBytes(v4, 5000, p100)),
                0),
            new KeptCase(
                "dropped while frozen, IPv6, seq near 2^32: payload kept",
                clientData(CLIENT6, VIP6, 0xfffffff0, ACK, p1400),
                v6,
                frozen,
                XDP_DROP,
                any(),
                List.of(new KeptBytes(v6, 0xfffffff0, p1400)),
                0),
            new KeptCase(
                "answered, IPv4: payload kept and the answer intact",
                clientData(CLIENT4, VIP4, 5000, ACK | PSH, p300),
                v4,
                answering,
                XDP_TX,
                answered()
                    .andThen(out -> assertThat(out.timestamps()).as("timestamps").isNotNull()),
                List.of(new KeptBytes(v4, 5000, p300)),
                0),
            new KeptCase(
                "answered, IPv6 without timestamps: payload kept and the answer intact",
                TestPackets.tcp(
                    CLIENT6, VIP6, 40000, 8080, 4000, 9000, ACK, 1000, new byte[0], p1400),
                v6,
                entry(HoldMaps.F_ANSWER),
                XDP_TX,
                answered().andThen(out -> assertThat(out.headerLength()).isEqualTo(20)),
                List.of(new KeptBytes(v6, 4000, p1400)),
                0),
            new KeptCase(
                "dropped with Ethernet padding: only the IP payload kept",
                padded(
                    TestPackets.tcp(
                        CLIENT4, VIP4, 40000, 8080, 5000, 9000, ACK, 1000, new byte[0], p2),
                    60),
                v4,
                frozen,
                XDP_DROP,
                any(),
                List.of(new KeptBytes(v4, 5000, p2)),
                0),
            new KeptCase(
                "answered with Ethernet padding: only the IP payload kept, padding cut",
                padded(
                    TestPackets.tcp(
                        CLIENT4, VIP4, 40000, 8080, 5000, 9000, ACK, 1000, new byte[0], p5),
                    60),
                v4,
                entry(HoldMaps.F_ANSWER),
                XDP_TX,
                answered(),
                List.of(new KeptBytes(v4, 5000, p5)),
                0),
            new KeptCase(
                "unheld tuple: passed, nothing kept",
                clientData("198.18.0.9", VIP4, 5000, ACK | PSH, p40),
                v4,
                answering,
                XDP_PASS,
                any(),
                List.of(),
                0),
            new KeptCase(
                "SYN with data: dropped, nothing kept",
                TestPackets.tcp(CLIENT4, VIP4, 40000, 8080, 1, 0, SYN, 1000, new byte[0], p40),
                v4,
                answering,
                XDP_DROP,
                any(),
                List.of(),
                0),
            new KeptCase(
                "RST with data: dropped, nothing kept",
                clientData(CLIENT6, VIP6, 5000, RST | ACK, p40),
                v6,
                frozen,
                XDP_DROP,
                any(),
                List.of(),
                0),
            new KeptCase(
                "pure ACK: answered, nothing kept",
                clientData(CLIENT4, VIP4, 5000, ACK, new byte[0]),
                v4,
                answering,
                XDP_TX,
                answered(),
                List.of(),
                0),
            new KeptCase(
                "data without ACK: dropped, nothing kept",
                clientData(CLIENT4, VIP4, 5000, PSH, p40),
                v4,
                frozen,
                XDP_DROP,
                any(),
                List.of(),
                0),
            new KeptCase(
                "frame shorter than its IP length: counted as not kept",
                cutShort,
                v4,
                frozen,
                XDP_DROP,
                any(),
                List.of(),
                1))
        .map(c -> DynamicTest.dynamicTest(c.name(), () -> runKept(c)));
  }

  private static void runKept(KeptCase c) throws Exception {
    for (byte[] k : holds.keys(HoldKey.SIZE)) {
      holds.delete(k);
      stats.delete(k);
    }
    kept.consume(leftover -> {}); // what other cases left
    holds.update(c.key().encode(), c.hold().encode(), BpfMap.BPF_ANY);
    stats.update(c.key().encode(), HoldStats.ZERO.encode(), BpfMap.BPF_ANY);
    long keptBefore = keptCounts.sumPerCpu(HoldMaps.CNT_KEPT);
    long notKeptBefore = keptCounts.sumPerCpu(HoldMaps.CNT_NOT_KEPT);

    BpfObject.TestRun result = xdp.testRun("hold_xdp", c.packet());
    List<KeptBytes> got = new ArrayList<>();
    int records = kept.consume(r -> got.add(KeptBytes.decode(r)));
    try {
      assertThat(result.verdict()).as("verdict").isEqualTo(c.verdict());
      if (result.verdict() == XDP_TX) {
        c.check().accept(Parsed.of(result.packet()));
      }
      assertThat(got).as("records in the ring").containsExactlyElementsOf(c.kept());
      assertThat(records).as("records consume counted").isEqualTo(c.kept().size());
      assertThat(keptCounts.sumPerCpu(HoldMaps.CNT_KEPT) - keptBefore)
          .as("CNT_KEPT")
          .isEqualTo(c.kept().size());
      assertThat(keptCounts.sumPerCpu(HoldMaps.CNT_NOT_KEPT) - notKeptBefore)
          .as("CNT_NOT_KEPT")
          .isEqualTo(c.notKept());
    } catch (AssertionError e) {
      throw new AssertionError("hold_xdp case \"" + c.name() + "\": " + e.getMessage(), e);
    }
  }

  private static void run(BpfObject object, String program, Case c) throws Exception {
    for (byte[] k : holds.keys(HoldKey.SIZE)) {
      holds.delete(k);
      stats.delete(k);
    }
    if (c.hold() != null) {
      holds.update(c.key().encode(), c.hold().encode(), BpfMap.BPF_ANY);
      stats.update(c.key().encode(), HoldStats.ZERO.encode(), BpfMap.BPF_ANY);
    }
    BpfObject.TestRun result = object.testRun(program, c.packet());
    assertThat(result.verdict()).as("%s: verdict", c.name()).isEqualTo(c.verdict());
    HoldStats s =
        stats
            .lookup(c.key().encode(), HoldStats.SIZE)
            .map(HoldStats::decode)
            .orElse(HoldStats.ZERO);
    Parsed out =
        result.packet().length >= 54
            ? Parsed.of(result.packet())
            : new Parsed(result.packet(), true, 34, 0);
    try {
      c.check().accept(out, s);
    } catch (AssertionError e) {
      throw new AssertionError(program + " case \"" + c.name() + "\": " + e.getMessage(), e);
    }
  }
}
