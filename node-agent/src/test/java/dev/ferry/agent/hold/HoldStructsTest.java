// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** The Java mirrors of bpf/hold.h have its sizes (asserted there too) and its byte layout. */
class HoldStructsTest {

  @Test
  void sizesMatchTheStaticAssertsInHoldH() {
    assertThat(new HoldEntry(0, 0, 0, 0, 0, 0, 0).encode()).hasSize(40);
    assertThat(HoldStats.ZERO.encode()).hasSize(40);
  }

  @Test
  void keyHoldsIpv4AsMappedIpv6AndPortsInNetworkOrder() throws Exception {
    HoldKey key =
        new HoldKey(
            new InetSocketAddress(InetAddress.getByName("198.18.0.100"), 8080),
            new InetSocketAddress(InetAddress.getByName("198.18.0.1"), 40000));
    byte[] raw = key.encode();
    assertThat(raw).hasSize(40);
    assertThat(raw[10]).isEqualTo((byte) 0xff);
    assertThat(raw[11]).isEqualTo((byte) 0xff);
    assertThat(new byte[] {raw[12], raw[13], raw[14], raw[15]})
        .containsExactly((byte) 198, (byte) 18, (byte) 0, (byte) 100);
    assertThat(new byte[] {raw[32], raw[33]}).containsExactly((byte) 0x1f, (byte) 0x90);
    assertThat(new byte[] {raw[36], raw[37], raw[38], raw[39]}).containsOnly((byte) 0);
    assertThat(HoldKey.decode(raw)).isEqualTo(key);
  }

  /** struct kept_bytes as hold_xdp writes it: key, then seq and len in host order, then data. */
  private static ByteBuffer keptRecord(HoldKey key, int seq, int len, byte[] data) {
    ByteBuffer b = ByteBuffer.allocate(KeptBytes.HEAD_SIZE + data.length);
    b.put(key.encode()).order(ByteOrder.nativeOrder()).putInt(seq).putInt(len).put(data);
    return b.flip();
  }

  @Test
  void keptRecordHeadIs48BytesWithSeqAndLenAfterTheKey() throws Exception {
    HoldKey key =
        new HoldKey(
            new InetSocketAddress(InetAddress.getByName("fd66::100"), 8080),
            new InetSocketAddress(InetAddress.getByName("fd66::1"), 40000));
    byte[] data = {1, 2, 3, 4, 5};
    ByteBuffer record = keptRecord(key, 0xfffffff0, data.length, data);
    assertThat(record.remaining()).isEqualTo(48 + 5);
    assertThat(KeptBytes.decode(record)).isEqualTo(new KeptBytes(key, 0xfffffff0, data));
  }

  @Test
  void keptRecordWhoseLenDisagreesWithItsSizeIsRefused() throws Exception {
    HoldKey key =
        new HoldKey(
            new InetSocketAddress(InetAddress.getByName("198.18.0.100"), 8080),
            new InetSocketAddress(InetAddress.getByName("198.18.0.1"), 40000));
    assertThatThrownBy(() -> KeptBytes.decode(keptRecord(key, 1, 6, new byte[5])))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("6 bytes of payload");
  }

  @Test
  void entryFieldsSitAtTheirOffsets() {
    HoldEntry e = new HoldEntry(1, 2, 3, 4, 5, 6, 7);
    assertThat(HoldEntry.decode(e.encode())).isEqualTo(e);
  }
}
