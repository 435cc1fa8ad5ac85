// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** The kernel structs written from Java have the kernel's sizes and field order. */
class StructLayoutTest {

  @Test
  void tcpRepairWindowIsFiveU32InDeclarationOrder() {
    byte[] raw = new RepairWindow(1, 2, 3, 4, 5).encode();
    assertThat(raw).hasSize(20);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(new int[] {b.getInt(), b.getInt(), b.getInt(), b.getInt(), b.getInt()})
        .containsExactly(1, 2, 3, 4, 5);
    assertThat(RepairWindow.parse(raw)).isEqualTo(new RepairWindow(1, 2, 3, 4, 5));
  }

  @Test
  void tcpRepairOptsCarryScalesAsSndOrRcvShiftedAndTimestampAsZero() {
    byte[] raw = new RepairOptions(1460, true, 7, 10, true, true).encode();
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(raw).hasSize(4 * 8);
    assertThat(new int[] {b.getInt(), b.getInt()}).containsExactly(2, 1460);
    assertThat(new int[] {b.getInt(), b.getInt()}).containsExactly(3, 7 | 10 << 16);
    assertThat(new int[] {b.getInt(), b.getInt()}).containsExactly(4, 0);
    assertThat(new int[] {b.getInt(), b.getInt()}).containsExactly(8, 0);
    assertThat(new RepairOptions(536, false, 0, 0, false, false).encode()).hasSize(8);
  }

  @Test
  void tcpInfoBitfieldPutsSndWscaleInTheLowNibble() {
    byte[] raw = new byte[TcpInfo.MIN_LENGTH];
    raw[0] = 1;
    raw[5] = 7;
    raw[6] = (byte) (10 << 4 | 7);
    ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder()).putInt(16, 1448);
    TcpInfo info = TcpInfo.parse(raw);
    assertThat(info.sndWscale()).isEqualTo(7);
    assertThat(info.rcvWscale()).isEqualTo(10);
    assertThat(info.sndMss()).isEqualTo(1448);
    assertThat(info.timestamps() && info.sack() && info.windowScaling()).isTrue();
  }

  @Test
  void lingerIsOnOffThenSecondsAsTwoInts() {
    byte[] raw = new SocketOptions.Linger(true, 9).encode();
    assertThat(raw).hasSize(8);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(new int[] {b.getInt(), b.getInt()}).containsExactly(1, 9);
    assertThat(SocketOptions.Linger.parse(raw)).isEqualTo(new SocketOptions.Linger(true, 9));
  }
}
