// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.v1alpha1.TcpSocketState;
import dev.ferry.sys.RepairWindow;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SocketStateCodecTest {

  /** Every option away from its default, so that a field the codec drops shows. */
  static final CarriedOptions OPTIONS =
      new CarriedOptions(
          true, true, true, 61, 17, 5, 4321, "cubic", 16384, 0x5eed, 5, 0xb8, 96 * 1024, 80 * 1024,
          true, 9);

  static final CongestionState CONGESTION = new CongestionState(4453, 2210, 1, 20123, 12_500_000);

  private static SocketState state(String local, String remote, int queueBytes) throws Exception {
    return stateWithoutOptions(local, remote, queueBytes)
        .withOptions(Optional.of(OPTIONS))
        .withCongestion(Optional.of(CONGESTION));
  }

  private static SocketState stateWithoutOptions(String local, String remote, int queueBytes)
      throws Exception {
    return new SocketState(
        new InetSocketAddress(InetAddress.getByName(local), 8080),
        new InetSocketAddress(InetAddress.getByName(remote), 40312),
        0xfedcba98,
        0x12345678,
        1460,
        true,
        7,
        10,
        true,
        true,
        0x7fff0000,
        new RepairWindow(0x12345000, 64512, 65535, 64256, 0x12345000),
        Pattern.bytes(1, 0, queueBytes),
        Pattern.bytes(2, 0, queueBytes * 2),
        Pattern.bytes(3, 0, queueBytes / 2),
        1_795_000_000_000L);
  }

  @Test
  void decodesWhatItEncodedIncludingQueuesAndIpv6() throws Exception {
    for (SocketState s :
        new SocketState[] {
          state("198.18.0.100", "198.18.0.1", 5000), state("fd66::100", "fd66::1", 7)
        }) {
      SocketState back = SocketStateCodec.decode(SocketStateCodec.encode(s));
      assertThat(back)
          .usingRecursiveComparison()
          .withEqualsForType(Arrays::equals, byte[].class)
          .isEqualTo(s);
    }
  }

  @Test
  void aStateWithoutOptionsStaysWithoutOptions() throws Exception {
    SocketState s = stateWithoutOptions("198.18.0.100", "198.18.0.1", 10);
    assertThat(SocketStateCodec.decode(SocketStateCodec.encode(s)).options()).isEmpty();
  }

  /**
   * Bytes the agent wrote before socket options were carried (commit 08a64ef, the state of {@link
   * #stateWithoutOptions} with 5, 2 and 3 queue bytes): they still decode, to a state without
   * options, which restores with the kernel's defaults.
   */
  @Test
  void stateEncodedBeforeOptionsWereCarriedStillDecodes() throws Exception {
    String ipv4 =
        "08011204c612006418903f2204c612000128f8ba023098f5f2f60f38f8acd1910140b40b4807500a5807608080"
            + "fcff076a180880a0d191011080f80318ffff032080f6032880a0d19101720501020304057a0206078201"
            + "0308090a900180bcd9f29e348d01bc9a533b";
    String ipv6 =
        "08011210fd66000000000000000000000000010018903f2210fd66000000000000000000000000000128f8ba02"
            + "3098f5f2f60f38f8acd1910140b40b4807500a5807608080fcff076a180880a0d191011080f80318ffff"
            + "032080f6032880a0d19101720501020304057a02060782010308090a900180bcd9f29e348d01e69719cb";
    for (String[] c :
        new String[][] {{ipv4, "198.18.0.100", "198.18.0.1"}, {ipv6, "fd66::100", "fd66::1"}}) {
      SocketState old = SocketStateCodec.decode(HexFormat.of().parseHex(c[0]));
      SocketState want = stateWithoutOptions(c[1], c[2], 0);
      assertThat(old.options()).isEmpty();
      assertThat(old)
          .usingRecursiveComparison()
          .withEqualsForType(Arrays::equals, byte[].class)
          .ignoringFields("sendUnacked", "sendUnsent", "recvQueue")
          .isEqualTo(want);
      assertThat(old.sendUnacked()).containsExactly(1, 2, 3, 4, 5);
      assertThat(old.sendUnsent()).containsExactly(6, 7);
      assertThat(old.recvQueue()).containsExactly(8, 9, 10);
    }
  }

  @Test
  void optionsOutOfTheKernelsRangeAreRejectedWithTheField() throws Exception {
    TcpSocketState good = SocketStateCodec.toMessage(state("198.18.0.100", "198.18.0.1", 10));
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder()
                        .setSocketOptions(good.getSocketOptions().toBuilder().setKeepCount(0))
                        .build()))
        .isInstanceOf(InvalidSocketStateException.class)
        .hasMessageContaining("keep_count must be 1-127, got 0");
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder()
                        .setSocketOptions(
                            good.getSocketOptions().toBuilder().setCongestion("cubic; rm"))
                        .build()))
        .isInstanceOf(InvalidSocketStateException.class)
        .hasMessageContaining("congestion must be an algorithm's name");
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder()
                        .setSocketOptions(good.getSocketOptions().toBuilder().setTrafficClass(256))
                        .build()))
        .hasMessageContaining("traffic_class must be 0-255, got 256");
  }

  @Test
  void aStateWithoutCongestionStateStaysWithoutAndOneWithItKeepsIt() throws Exception {
    SocketState s = stateWithoutOptions("198.18.0.100", "198.18.0.1", 10);
    assertThat(SocketStateCodec.decode(SocketStateCodec.encode(s)).congestion()).isEmpty();
    assertThat(
            SocketStateCodec.decode(
                    SocketStateCodec.encode(state("198.18.0.100", "198.18.0.1", 10)))
                .congestion())
        .contains(CONGESTION);
  }

  @Test
  void congestionStateOutOfRangeIsRejectedWithTheField() throws Exception {
    TcpSocketState good = SocketStateCodec.toMessage(state("198.18.0.100", "198.18.0.1", 10));
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder()
                        .setCongestion(good.getCongestion().toBuilder().setCwnd(0))
                        .build()))
        .isInstanceOf(InvalidSocketStateException.class)
        .hasMessageContaining("congestion.cwnd must be 1 or more segments, got 0");
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder()
                        .setCongestion(good.getCongestion().toBuilder().setSsthresh(-1))
                        .build()))
        .hasMessageContaining("congestion.ssthresh must be 1-2147483647 segments, got 4294967295");
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder()
                        .setCongestion(good.getCongestion().toBuilder().setCaState(5))
                        .build()))
        .hasMessageContaining("congestion.ca_state must be 0-4, got 5");
  }

  @Test
  void idleIpv4SocketEncodesInAtMostOneHundredBytesWithoutOptionsAndOneHundredSixtyWithThem()
      throws Exception {
    assertThat(SocketStateCodec.encode(stateWithoutOptions("198.18.0.100", "198.18.0.1", 0)).length)
        .isLessThanOrEqualTo(100);
    // With the socket options (about 40 bytes) and the congestion state (about 15).
    assertThat(SocketStateCodec.encode(state("198.18.0.100", "198.18.0.1", 0)).length)
        .isLessThanOrEqualTo(160);
  }

  @Test
  void unknownFormatVersionIsRejectedByName() throws Exception {
    TcpSocketState future =
        SocketStateCodec.toMessage(state("198.18.0.100", "198.18.0.1", 10)).toBuilder()
            .setFormatVersion(3)
            .build();
    assertThatThrownBy(() -> SocketStateCodec.fromMessage(future))
        .isInstanceOf(InvalidSocketStateException.class)
        .hasMessageContaining("format_version 3 is not supported")
        .hasMessageContaining("reads versions 1 and 2");
  }

  @Test
  void halfClosedStateTravelsAsVersionTwoAndEstablishedStaysVersionOne() throws Exception {
    for (MovableState tcp : MovableState.values()) {
      SocketState s = state("fd66::100", "fd66::1", tcp.finAcknowledged ? 0 : 10).withTcpState(tcp);
      TcpSocketState m = SocketStateCodec.toMessage(s);
      assertThat(m.getFormatVersion())
          .as("version of " + tcp)
          .isEqualTo(tcp == MovableState.ESTABLISHED ? 1 : 2);
      assertThat(SocketStateCodec.decode(SocketStateCodec.encode(s)))
          .usingRecursiveComparison()
          .withEqualsForType(Arrays::equals, byte[].class)
          .isEqualTo(s);
    }
  }

  @Test
  void versionAndTcpStateMustAgree() throws Exception {
    TcpSocketState established = SocketStateCodec.toMessage(state("198.18.0.100", "198.18.0.1", 1));
    // An older reader would take a version-1 CLOSE_WAIT state's FIN for a byte: never written.
    assertThatThrownBy(
            () -> SocketStateCodec.fromMessage(established.toBuilder().setTcpState(8).build()))
        .isInstanceOf(InvalidSocketStateException.class)
        .hasMessageContaining("tcp_state 8");
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    established.toBuilder().setFormatVersion(2).setTcpState(3).build()))
        .hasMessageContaining("tcp_state 3");
  }

  @Test
  void finsAreSequenceNumbersNotQueueBytes() throws Exception {
    SocketState est = state("198.18.0.100", "198.18.0.1", 10);
    SocketState lastAck = est.withTcpState(MovableState.LAST_ACK);
    // write_seq and rcv_nxt count both FINs; snd_una (the hold's) counts none, the queues' first
    // sequence numbers neither.
    assertThat(lastAck.sendQueueSeq()).isEqualTo(est.sendQueueSeq() - 1);
    assertThat(lastAck.restoredSendQueueSeq()).isEqualTo(est.sendQueueSeq() - 1);
    assertThat(lastAck.recvQueueSeq()).isEqualTo(est.recvQueueSeq() - 1);
    assertThat(lastAck.dataRecvSeq()).isEqualTo(est.recvSeq() - 1);
    SocketState finWait2 =
        state("198.18.0.100", "198.18.0.1", 0).withTcpState(MovableState.FIN_WAIT2);
    // The peer acknowledged our FIN: snd_una is past it, and the restore sends it once more.
    assertThat(finWait2.sendQueueSeq()).isEqualTo(finWait2.sendSeq());
    assertThat(finWait2.restoredSendQueueSeq()).isEqualTo(finWait2.sendSeq() - 1);
  }

  @Test
  void missingVersionWindowOrBadAddressesAreRejectedWithTheField() throws Exception {
    TcpSocketState good = SocketStateCodec.toMessage(state("198.18.0.100", "198.18.0.1", 10));
    assertThatThrownBy(
            () -> SocketStateCodec.fromMessage(good.toBuilder().clearFormatVersion().build()))
        .hasMessageContaining("no format_version");
    assertThatThrownBy(() -> SocketStateCodec.fromMessage(good.toBuilder().clearWindow().build()))
        .hasMessageContaining("no window");
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder().setLocalAddress(good.getLocalAddress().substring(1)).build()))
        .hasMessageContaining("local_address must be 4 or 16 bytes, got 3");
    assertThatThrownBy(
            () -> SocketStateCodec.fromMessage(good.toBuilder().setRemotePort(70000).build()))
        .hasMessageContaining("remote_port must be 1-65535, got 70000");
    assertThatThrownBy(
            () -> SocketStateCodec.fromMessage(good.toBuilder().setSndWscale(15).build()))
        .hasMessageContaining("window scales must be 0-14");
    assertThatThrownBy(
            () ->
                SocketStateCodec.fromMessage(
                    good.toBuilder()
                        .setRemoteAddress(com.google.protobuf.ByteString.copyFrom(new byte[16]))
                        .build()))
        .hasMessageContaining("different address families");
  }

  /**
   * Fuzz-style: every truncation and every single-bit flip of a real encoding, and random noise,
   * fail with InvalidSocketStateException: never another exception, never a state.
   */
  @Test
  void truncatedCorruptedOrRandomBytesAreAlwaysRejected() throws Exception {
    Random random = new Random(20261122);
    byte[] valid = SocketStateCodec.encode(state("fd66::100", "fd66::1", 300));
    int tries = 0;
    for (int len = 0; len < valid.length; len++, tries++) {
      assertRejected(Arrays.copyOf(valid, len));
    }
    for (int bit = 0; bit < valid.length * 8; bit++, tries++) {
      byte[] flipped = valid.clone();
      flipped[bit / 8] ^= (byte) (1 << (bit % 8));
      assertRejected(flipped);
    }
    for (int i = 0; i < 20_000; i++, tries++) {
      byte[] noise = new byte[random.nextInt(256)];
      random.nextBytes(noise);
      assertRejected(noise);
    }
    // A length prefix claiming 2 GiB of queue data is refused, not allocated.
    assertRejected(
        new byte[] {
          0x08, 0x01, (byte) 0x82, 0x01, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x07
        });
    assertThat(tries).isGreaterThan(20_000 + valid.length * 9 - 1);
  }

  @Test
  void aStructurallyBrokenMessageWithAValidChecksumIsStillRejected() throws Exception {
    byte[] garbage = {0x0f, 0x00}; // field 1 with wire type 7, which does not exist
    byte[] withChecksum = Arrays.copyOf(garbage, garbage.length + 6);
    withChecksum[garbage.length] = (byte) 0x8d;
    withChecksum[garbage.length + 1] = 0x01;
    java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
    crc.update(garbage);
    java.nio.ByteBuffer.wrap(withChecksum, garbage.length + 2, 4)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN)
        .putInt((int) crc.getValue());
    assertThatThrownBy(() -> SocketStateCodec.decode(withChecksum))
        .isInstanceOf(InvalidSocketStateException.class)
        .hasMessageContaining("not a socket state");
  }

  private static void assertRejected(byte[] bytes) {
    assertThatThrownBy(() -> SocketStateCodec.decode(bytes))
        .as("decoding %d bytes", bytes.length)
        .isInstanceOf(InvalidSocketStateException.class)
        .hasMessageContaining("socket state");
  }
}
