// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.SocketOptions.Linger;
import dev.ferry.sys.TcpSocket;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Each socket option an application sets moves with its connection: set away from its default on a
 * real connected socket, it reads back the same on the socket restored in another namespace, and
 * the connection still carries data both ways.
 */
class SocketOptionsMigrationIT {

  /** One option, or a group set together: how to set it away from its default, how to read it. */
  record Option(String name, Setter setter, Getter getter) {
    @Override
    public String toString() {
      return name;
    }
  }

  interface Setter {
    void set(TcpSocket s, SocketOptions o, Family f) throws Exception;
  }

  interface Getter {
    Object get(SocketOptions o, Family f) throws Exception;
  }

  static Stream<Arguments> optionsInBothFamilies() {
    List<Option> options =
        List.of(
            new Option("TCP_NODELAY", (s, o, f) -> o.setNoDelay(true), (o, f) -> o.noDelay()),
            new Option("TCP_CORK", (s, o, f) -> o.setCork(true), (o, f) -> o.cork()),
            new Option(
                "SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT",
                (s, o, f) -> {
                  o.setKeepAlive(true);
                  o.setKeepIdle(61);
                  o.setKeepInterval(17);
                  o.setKeepCount(5);
                },
                (o, f) -> List.of(o.keepAlive(), o.keepIdle(), o.keepInterval(), o.keepCount())),
            new Option(
                "TCP_USER_TIMEOUT", (s, o, f) -> o.setUserTimeout(4321), (o, f) -> o.userTimeout()),
            new Option(
                "TCP_CONGESTION",
                (s, o, f) -> o.setCongestion(otherCongestion(o)),
                (o, f) -> o.congestion()),
            new Option(
                "TCP_NOTSENT_LOWAT",
                (s, o, f) -> o.setNotSentLowWatermark(16384),
                (o, f) -> o.notSentLowWatermark()),
            new Option("SO_MARK", (s, o, f) -> o.setMark(0x5eed), (o, f) -> o.mark()),
            new Option("SO_PRIORITY", (s, o, f) -> o.setPriority(5), (o, f) -> o.priority()),
            new Option(
                "IP_TOS / IPV6_TCLASS",
                (s, o, f) -> {
                  if (f == Family.IPV4) {
                    o.setIpv4Tos(0xb8);
                  } else {
                    o.setIpv6TrafficClass(0xb8);
                  }
                },
                (o, f) -> f == Family.IPV4 ? o.ipv4Tos() : o.ipv6TrafficClass()),
            // Setting IP_TOS also sets the priority, so the restore must set it first.
            new Option(
                "IP_TOS / IPV6_TCLASS, then SO_PRIORITY",
                (s, o, f) -> {
                  if (f == Family.IPV4) {
                    o.setIpv4Tos(0x28);
                  } else {
                    o.setIpv6TrafficClass(0x28);
                  }
                  o.setPriority(3);
                },
                (o, f) ->
                    List.of(f == Family.IPV4 ? o.ipv4Tos() : o.ipv6TrafficClass(), o.priority())),
            new Option(
                "SO_SNDBUF locked",
                (s, o, f) -> s.setSendBuffer(96 * 1024),
                (o, f) -> List.of(o.sendBuffer(), o.bufferLocks())),
            new Option(
                "SO_RCVBUF locked",
                (s, o, f) -> s.setReceiveBuffer(80 * 1024),
                (o, f) -> List.of(o.receiveBuffer(), o.bufferLocks())),
            new Option(
                "SO_LINGER", (s, o, f) -> o.setLinger(new Linger(true, 9)), (o, f) -> o.linger()));
    return Stream.of(Family.values())
        .flatMap(family -> options.stream().map(option -> Arguments.of(family, option)));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("optionsInBothFamilies")
  void optionReadsBackEqualOnTheRestoredSocketAndTheConnectionStillWorks(
      Family family, Option option) throws Exception {
    String name = option.name();
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      SocketOptions a = new SocketOptions(onA);
      Object kernelDefault = option.getter().get(a, family);
      option.setter().set(onA, a, family);
      Object set = option.getter().get(a, family);
      assertThat(set).as("%s after setting it on the source", name).isNotEqualTo(kernelDefault);
      CarriedOptions all = CarriedOptions.read(onA, family == Family.IPV6);

      TcpSocket onB = lab.migrate(onA);

      SocketOptions b = new SocketOptions(onB);
      assertThat(option.getter().get(b, family))
          .as("%s on the restored socket", name)
          .isEqualTo(set);
      assertThat(CarriedOptions.read(onB, family == Family.IPV6))
          .as("every carried option on the restored socket")
          .isEqualTo(all);
      exchangeBothWays(client, onB);
    }
  }

  @ParameterizedTest
  @EnumSource(Family.class)
  void buffersTheApplicationDidNotLockStayAutotunedAfterTheMove(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      assertThat(new SocketOptions(onA).bufferLocks()).isZero();

      TcpSocket onB = lab.migrate(onA);

      assertThat(new SocketOptions(onB).bufferLocks())
          .as("SO_BUF_LOCK on the restored socket")
          .isZero();
      exchangeBothWays(client, onB);
    }
  }

  /**
   * A low TCP_NOTSENT_LOWAT caps what a write may add to the queue of bytes never sent, not what
   * the queue holds: a connection whose queue is past the mark moves whole, and keeps the mark.
   */
  @ParameterizedTest
  @EnumSource(Family.class)
  void aLowNotSentMarkBelowTheNeverSentQueueStillMovesEveryByte(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      Download download = new Download(lab);
      new SocketOptions(download.onA).setNotSentLowWatermark(4096);

      TcpSocket onB = lab.restoreAllOnB(List.of(download.export())).get(0);

      assertThat(new SocketOptions(onB).notSentLowWatermark()).isEqualTo(4096);
      download.finishFrom(onB);
    }
  }

  /**
   * The target application may set options on the socket between TAKEOVER and TAKEN, while it is
   * still in repair mode (handoff protocol): what it sets wins over what was carried, a low mark
   * included, and the bytes never sent still all go.
   */
  @ParameterizedTest
  @EnumSource(Family.class)
  void optionsTheTargetApplicationSetsBeforeTheResumeWinOverTheCarriedOnes(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      Download download = new Download(lab);
      new SocketOptions(download.onA).setNotSentLowWatermark(65536);
      new SocketOptions(download.onA).setUserTimeout(4321);
      SocketState state = download.export();

      RestoredSocket staged = lab.track(lab.bNs.call(() -> new SocketRestorer().restore(state)));
      SocketOptions asTheApplication = new SocketOptions(staged.socket());
      asTheApplication.setNotSentLowWatermark(2048);
      asTheApplication.setUserTimeout(1234);
      asTheApplication.setKeepAlive(true);
      lab.announceB();
      TcpSocket onB = lab.track(staged.resume());

      SocketOptions b = new SocketOptions(onB);
      assertThat(b.notSentLowWatermark()).isEqualTo(2048);
      assertThat(b.userTimeout()).isEqualTo(1234);
      assertThat(b.keepAlive()).isTrue();
      download.finishFrom(onB);
    }
  }

  static Stream<Arguments> familiesAndModes() {
    return Stream.of(Family.values())
        .flatMap(f -> Stream.of(Arguments.of(f, false), Arguments.of(f, true)));
  }

  /**
   * The socket's blocking mode is the application's (handoff protocol): one the target application
   * makes non-blocking between TAKEOVER and TAKEN is non-blocking after the resume, one it leaves
   * alone is blocking, and either way the resume queues every byte never sent, far more than the
   * send buffer takes at once, without waiting for the client.
   */
  @ParameterizedTest(name = "{0}, the application makes it non-blocking: {1}")
  @MethodSource("familiesAndModes")
  void theBlockingModeIsTheApplicationsAndEveryNeverSentByteStillGoes(
      Family family, boolean nonBlocking) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      Download download = new Download(lab);
      SocketState state = download.export();

      RestoredSocket staged = lab.track(lab.bNs.call(() -> new SocketRestorer().restore(state)));
      if (nonBlocking) {
        staged.socket().setBlocking(false);
      }
      lab.announceB();
      TcpSocket onB = lab.track(staged.resume());

      assertThat(onB.blocking()).as("blocking after the resume").isEqualTo(!nonBlocking);
      download.finishFrom(onB);
    }
  }

  /** A download frozen with bytes in flight and a never-sent queue well past 64 KiB. */
  private static final class Download {
    static final int TOTAL = 4 << 20;
    static final long SEED = 5;
    final MigrationLab lab;
    final SocketChannel client;
    final TcpSocket onA;
    final ByteArrayOutputStream received = new ByteArrayOutputStream();
    long written;

    Download(MigrationLab lab) throws Exception {
      this.lab = lab;
      client = lab.connect(16 * 1024);
      onA = lab.accept();
      written = Peers.fill(onA, SEED, 0, TOTAL);
      // Never more than was written: the send buffer may not have grown yet.
      Peers.readExactly(client, (int) Math.min(64 * 1024, written), received);
      written = Peers.fill(onA, SEED, written, TOTAL);
    }

    /** Freezes A, exports through the wire format and moves the address to B. */
    SocketState export() throws Exception {
      lab.freezeA();
      SocketState state = lab.exportAll(List.of(onA)).get(0);
      assertThat(state.sendUnsent().length).as("never-sent bytes at export").isGreaterThan(65536);
      lab.moveAddressToB();
      return SocketStateCodec.decode(SocketStateCodec.encode(state));
    }

    /** The rest of the download from B; the client gets every byte once, in order. */
    void finishFrom(TcpSocket onB) throws Exception {
      Peers.finishDownload(client, received, onB, SEED, written, TOTAL);
    }
  }

  /**
   * A state from an agent that carried no options (the old encoding) restores with this kernel's
   * defaults, whatever the source socket had.
   */
  @ParameterizedTest
  @EnumSource(Family.class)
  void aStateWithoutOptionsRestoresWithTheKernelsDefaults(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      SocketOptions a = new SocketOptions(onA);
      a.setNoDelay(true);
      a.setKeepAlive(true);
      a.setUserTimeout(4321);

      lab.freezeA();
      SocketState exported = lab.exportAll(List.of(onA)).get(0);
      assertThat(exported.options()).isPresent();
      SocketState old =
          SocketStateCodec.decode(SocketStateCodec.encode(exported.withOptions(Optional.empty())));
      lab.moveAddressToB();
      TcpSocket onB = lab.restoreAllOnB(List.of(old)).get(0);

      SocketOptions b = new SocketOptions(onB);
      assertThat(b.noDelay()).isFalse();
      assertThat(b.keepAlive()).isFalse();
      assertThat(b.userTimeout()).isZero();
      exchangeBothWays(client, onB);
    }
  }

  /**
   * A congestion control the target's kernel lacks is not a reason to lose the connection: it keeps
   * the kernel's default (and the agent logs it).
   */
  @ParameterizedTest
  @EnumSource(Family.class)
  void aCongestionControlTheTargetLacksLeavesTheDefaultAndTheRestoreSucceeds(Family family)
      throws Exception {
    try (MigrationLab lab = new MigrationLab(family)) {
      SocketChannel client = lab.connect(0);
      TcpSocket onA = lab.accept();
      new SocketOptions(onA).setNoDelay(true);

      lab.freezeA();
      SocketState exported = lab.exportAll(List.of(onA)).get(0);
      CarriedOptions o = exported.options().orElseThrow();
      CarriedOptions unknown =
          new CarriedOptions(
              o.noDelay(),
              o.cork(),
              o.keepAlive(),
              o.keepIdle(),
              o.keepInterval(),
              o.keepCount(),
              o.userTimeout(),
              "nosuchcc",
              o.notSentLowWatermark(),
              o.mark(),
              o.priority(),
              o.trafficClass(),
              o.lockedSendBuffer(),
              o.lockedReceiveBuffer(),
              o.linger(),
              o.lingerSeconds());
      lab.moveAddressToB();
      TcpSocket onB = lab.restoreAllOnB(List.of(exported.withOptions(Optional.of(unknown)))).get(0);

      SocketOptions b = new SocketOptions(onB);
      String targetDefault = lab.b.run("sysctl", "-n", "net.ipv4.tcp_congestion_control").strip();
      assertThat(b.congestion()).isEqualTo(targetDefault);
      assertThat(b.noDelay()).as("the other options are still set").isTrue();
      exchangeBothWays(client, onB);
    }
  }

  /** One message each way; a corked socket holds a short one until uncorked, as on the source. */
  private static void exchangeBothWays(SocketChannel client, TcpSocket onB) throws Exception {
    byte[] up = "from the client\n".getBytes(StandardCharsets.US_ASCII);
    client.write(ByteBuffer.wrap(up));
    byte[] got = new byte[up.length];
    int off = 0;
    while (off < got.length) {
      int n = onB.read(got, off, got.length - off);
      assertThat(n).as("bytes the restored socket reads").isPositive();
      off += n;
    }
    assertThat(got).isEqualTo(up);

    byte[] down = "from the restored server\n".getBytes(StandardCharsets.US_ASCII);
    onB.writeFully(down);
    new SocketOptions(onB).setCork(false);
    ByteArrayOutputStream received = new ByteArrayOutputStream();
    Peers.readExactly(client, down.length, received);
    assertThat(received.toByteArray()).isEqualTo(down);
  }

  /** An algorithm this kernel has other than the socket's current one. */
  private static String otherCongestion(SocketOptions o) throws Exception {
    String current = o.congestion();
    String[] available =
        Files.readString(Path.of("/proc/sys/net/ipv4/tcp_available_congestion_control"))
            .strip()
            .split("\\s+");
    return Arrays.stream(available)
        .filter(n -> !n.equals(current))
        .findFirst()
        .orElseThrow(
            () ->
                new AssertionError(
                    "this kernel has only the congestion control "
                        + current
                        + "; the test needs a second one (tcp_available_congestion_control)"));
  }
}
