// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.TcpInfo;
import dev.ferry.sys.TcpSocket;
import java.io.ByteArrayOutputStream;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A moved bulk stream keeps the speed it had: the restored socket starts from its original's
 * congestion window and threshold, not from the initial window, and stays on its own algorithm.
 * Real sockets in namespaces, the real BPF congestion control; a kernel that cannot register it
 * fails these tests (the agent itself would log it and carry nothing).
 */
class CongestionCarryIT {
  private static final long SEED = 17;

  /** Enough for slow start, without loss between namespaces, to open the window well past 10. */
  private static final int WARM_UP = 16 << 20;

  private static final int REST = 4 << 20;

  @ParameterizedTest
  @EnumSource(Family.class)
  void theRestoredSocketStartsFromTheOriginalsWindowAndAlgorithm(Family family) throws Exception {
    try (MigrationLab lab = new MigrationLab(family);
        CongestionSeed seed = CongestionSeed.registerOrFail()) {
      Stream stream = new Stream(lab);
      new SocketOptions(stream.onA).setCongestion("reno");
      stream.warmUp();
      SocketState state = stream.export();
      CongestionState carried = state.congestion().orElseThrow();
      assertThat(carried.cwnd())
          .as(
              "the source's window after %d MiB (the test needs it past the initial 10)",
              WARM_UP >> 20)
          .isGreaterThan(20);

      RestoredSocket staged =
          lab.track(lab.bNs.call(() -> new SocketRestorer(Optional.of(seed)).restore(state)));
      TcpInfo restored = staged.socket().info();
      assertThat(restored.sndCwnd()).isEqualTo(carried.cwnd());
      assertThat(restored.sndSsthresh()).isEqualTo(carried.ssthresh());
      assertThat(carried.deliveryRate()).as("the source's delivery rate").isPositive();
      assertThat(restored.pacingRate())
          .as("paced at the source's delivery rate until its first ACK")
          .isEqualTo(carried.deliveryRate());
      assertThat(new SocketOptions(staged.socket()).congestion()).isEqualTo("reno");

      lab.announceB();
      TcpSocket onB = lab.track(staged.resume());
      assertThat(onB.info().sndCwnd()).as("after the resume").isEqualTo(carried.cwnd());
      stream.finishFrom(onB);
    }
  }

  /** Without the seed (an older agent, or a kernel that cannot), the initial window, as before. */
  @Test
  void withoutTheSeedTheRestoredSocketStartsFromTheInitialWindow() throws Exception {
    try (MigrationLab lab = new MigrationLab(Family.IPV4)) {
      Stream stream = new Stream(lab);
      stream.warmUp();
      SocketState state = stream.export();
      assertThat(state.congestion().orElseThrow().cwnd()).isGreaterThan(20);

      RestoredSocket staged = lab.track(lab.bNs.call(() -> new SocketRestorer().restore(state)));
      assertThat(staged.socket().info().sndCwnd()).isLessThanOrEqualTo(10);
      assertThat(staged.socket().info().pacingRate())
          .isNotEqualTo(state.congestion().orElseThrow().deliveryRate());

      lab.announceB();
      stream.finishFrom(lab.track(staged.resume()));
    }
  }

  /**
   * Agents of several nodes share one kernel here and in the one-machine cluster: each registers a
   * name of its own, and a name is free again once its agent is gone.
   */
  @Test
  void twoAgentsOnOneKernelRegisterTwoNamesAndAClosedOneIsUnregistered() throws Exception {
    String first;
    try (CongestionSeed one = CongestionSeed.registerOrFail();
        CongestionSeed two = CongestionSeed.registerOrFail()) {
      first = one.algorithm();
      assertThat(two.algorithm()).isNotEqualTo(first).startsWith("ferry_seed_");
      assertThat(available()).contains(first, two.algorithm());
    }
    assertThat(available()).doesNotContain(first);
  }

  private static List<String> available() throws Exception {
    return List.of(
        Files.readString(Path.of("/proc/sys/net/ipv4/tcp_available_congestion_control"))
            .trim()
            .split("\\s+"));
  }

  /** A download from A that has run long enough to leave slow start's first round trips behind. */
  private static final class Stream {
    final MigrationLab lab;
    final SocketChannel client;
    final TcpSocket onA;
    final ByteArrayOutputStream received = new ByteArrayOutputStream();
    CompletableFuture<Void> reader;

    Stream(MigrationLab lab) throws Exception {
      this.lab = lab;
      client = lab.connect(0);
      onA = lab.accept();
    }

    void warmUp() throws Exception {
      reader =
          CompletableFuture.runAsync(
              () -> {
                try {
                  Peers.readExactly(client, WARM_UP, received);
                } catch (Exception e) {
                  throw new IllegalStateException("client read failed", e);
                }
              });
      Peers.writeRest(onA, SEED, 0, WARM_UP);
      reader.get(60, TimeUnit.SECONDS);
    }

    /** Freezes A, exports through the wire format and moves the address to B. */
    SocketState export() throws Exception {
      lab.freezeA();
      SocketState state = lab.exportAll(List.of(onA)).get(0);
      lab.moveAddressToB();
      return SocketStateCodec.decode(SocketStateCodec.encode(state));
    }

    /** The rest of the download from B: every byte once, in order. */
    void finishFrom(TcpSocket onB) throws Exception {
      Peers.finishDownload(client, received, onB, SEED, WARM_UP, WARM_UP + REST);
    }
  }
}
