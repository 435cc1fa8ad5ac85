// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.sys.RepairWindow;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

/**
 * Which acknowledgments from the source's hold a restored socket takes: data it has in flight and
 * no more, never on a half-closed connection, and with a TSval where timestamps are on (else the
 * socket's PAWS check would drop the segment).
 */
class ClientAckTest {
  private static final int IN_FLIGHT = 3000;
  private static final int UNSENT = 500;

  /** snd_una at {@code una}, IN_FLIGHT bytes sent and unacknowledged, UNSENT not yet sent. */
  private static SocketState state(int una, boolean timestamps) throws Exception {
    InetAddress ip = InetAddress.getByName("198.18.0.100");
    return new SocketState(
        new InetSocketAddress(ip, 8080),
        new InetSocketAddress(InetAddress.getByName("198.18.0.1"), 40312),
        una + IN_FLIGHT + UNSENT,
        1,
        1460,
        true,
        7,
        7,
        true,
        timestamps,
        5000,
        new RepairWindow(1, 1, 1, 1, 1),
        new byte[IN_FLIGHT],
        new byte[UNSENT],
        new byte[0],
        0);
  }

  @Test
  void takesAnAcknowledgmentOfSomeOrAllOfTheDataInFlight() throws Exception {
    SocketState s = state(10_000, true);
    assertThat(RestoredSocket.takes(s, new ClientAck(10_001, 100, 7))).isTrue();
    assertThat(RestoredSocket.takes(s, new ClientAck(10_000 + IN_FLIGHT, 100, 7))).isTrue();
  }

  @Test
  void countsInSequenceSpaceAcrossTheWrap() throws Exception {
    SocketState s = state(-1000, false); // snd_una 2^32 - 1000
    assertThat(RestoredSocket.takes(s, new ClientAck(1000, 100, 0))).isTrue();
    assertThat(RestoredSocket.takes(s, new ClientAck(-1001, 100, 0))).isFalse();
  }

  @Test
  void refusesWhatItHadAlreadyAndWhatItNeverSent() throws Exception {
    SocketState s = state(10_000, true);
    assertThat(RestoredSocket.takes(s, new ClientAck(10_000, 100, 7))).as("nothing new").isFalse();
    assertThat(RestoredSocket.takes(s, new ClientAck(9_000, 100, 7))).as("older").isFalse();
    assertThat(RestoredSocket.takes(s, new ClientAck(10_000 + IN_FLIGHT + 1, 100, 7)))
        .as("past snd_nxt, into the unsent bytes")
        .isFalse();
  }

  @Test
  void needsTheClientsTsvalWhereTimestampsAreOn() throws Exception {
    assertThat(RestoredSocket.takes(state(10_000, true), new ClientAck(10_500, 100, 0))).isFalse();
    assertThat(RestoredSocket.takes(state(10_000, false), new ClientAck(10_500, 100, 0))).isTrue();
  }

  @Test
  void neverOnAHalfClosedConnection() throws Exception {
    SocketState s = state(10_000, true).withTcpState(MovableState.CLOSE_WAIT);
    assertThat(RestoredSocket.takes(s, new ClientAck(10_500, 100, 7))).isFalse();
  }
}
