// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.sys.RepairWindow;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

class ContinuedTimestampTest {
  private static SocketState exportedAt(int tsval, long exportedAtMillis) throws Exception {
    InetAddress ip = InetAddress.getByName("198.18.0.100");
    return new SocketState(
        new InetSocketAddress(ip, 8080),
        new InetSocketAddress(ip, 9000),
        1,
        1,
        1460,
        true,
        7,
        7,
        true,
        true,
        tsval,
        new RepairWindow(1, 1, 1, 1, 1),
        new byte[0],
        new byte[0],
        new byte[0],
        exportedAtMillis);
  }

  @Test
  void clockMovesOnByTheTimeSinceTheExportPlusTheSkewMargin() throws Exception {
    SocketState s = exportedAt(5_000, 1_000_000);
    assertThat(SocketRestorer.continuedTimestamp(s, 1_060_000))
        .isEqualTo(5_000 + 60_000 + (int) SocketRestorer.CLOCK_SKEW_MARGIN_MS);
  }

  @Test
  void clockWrapsAroundLikeTheKernelsDoes() throws Exception {
    SocketState s = exportedAt(0xfffff000, 1_000_000);
    int restored = SocketRestorer.continuedTimestamp(s, 1_010_000);
    assertThat(restored - 0xfffff000).as("serial-number distance").isEqualTo(10_000 + 1000);
  }

  @Test
  void theMicrosecondModeBitIsKeptAndTheClockMovesInMicroseconds() throws Exception {
    SocketState usec = exportedAt(1_000_001, 1_000_000);
    assertThat(SocketRestorer.continuedTimestamp(usec, 1_002_000)).isEqualTo(1_000_001 + 3_000_000);
    SocketState ms = exportedAt(1_000_000, 1_000_000);
    assertThat(SocketRestorer.continuedTimestamp(ms, 1_000_001) & 1)
        .as("an odd number of ms must not switch the connection to microseconds")
        .isZero();
  }

  @Test
  void aTargetClockBehindTheSourceNeverMovesTheClockBack() throws Exception {
    SocketState s = exportedAt(5_000, 1_000_000);
    assertThat(SocketRestorer.continuedTimestamp(s, 999_000)).isGreaterThan(5_000);
  }

  /** At COMMIT the time since the export is known on one clock: no lead, in the clock's unit. */
  @Test
  void movedOnByAKnownTimeAddsExactlyThatTime() throws Exception {
    assertThat(SocketRestorer.movedOn(exportedAt(5_000, 1_000_000), 45)).isEqualTo(5_044);
    assertThat(SocketRestorer.movedOn(exportedAt(1_000_001, 1_000_000), 45))
        .as("microsecond clocks keep their bit and move in microseconds")
        .isEqualTo(1_045_001);
    assertThat(SocketRestorer.movedOn(exportedAt(5_000, 1_000_000), -3))
        .as("never back")
        .isEqualTo(5_000);
  }
}
