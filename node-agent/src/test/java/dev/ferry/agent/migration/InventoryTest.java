// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.move.ConnectionTable.Listed;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.SockDiag;
import java.net.InetSocketAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

class InventoryTest {
  private static Listed listed(int clientPort, int state) {
    return new Listed(
        new Connection(
            new InetSocketAddress("198.18.0.100", 8080),
            new InetSocketAddress("198.18.0.1", clientPort)),
        state,
        false);
  }

  @Test
  void establishedAndTheFiveHalfClosedStatesMove() {
    List<Listed> movable =
        List.of(
            listed(1, SockDiag.TCP_ESTABLISHED),
            listed(2, SockDiag.TCP_FIN_WAIT1),
            listed(3, SockDiag.TCP_FIN_WAIT2),
            listed(4, SockDiag.TCP_CLOSE_WAIT),
            listed(5, SockDiag.TCP_LAST_ACK),
            listed(6, SockDiag.TCP_CLOSING));
    Inventory.Found found = Inventory.sort(movable);
    assertThat(found.movable()).isEqualTo(movable);
    assertThat(found.leftBehind()).isEmpty();
  }

  @Test
  void aHandshakeInProgressIsLeftBehindWithItsStateAndTimeWaitIsNotCounted() {
    Inventory.Found found =
        Inventory.sort(
            List.of(
                listed(1, SockDiag.TCP_ESTABLISHED),
                listed(2, SockDiag.TCP_SYN_RECV),
                listed(3, SockDiag.TCP_TIME_WAIT)));
    assertThat(found.connections()).containsExactly(listed(1, 0).connection());
    assertThat(found.leftBehind()).hasSize(1);
    Inventory.LeftBehind l = found.leftBehind().get(0);
    assertThat(l.connection()).isEqualTo(listed(2, 0).connection());
    assertThat(l.described()).startsWith("SYN_RECV: ").contains("handshake");
  }

  @Test
  void aHalfClosedConnectionItsApplicationClosedIsLeftBehind() {
    Listed orphan = new Listed(listed(1, 0).connection(), SockDiag.TCP_FIN_WAIT1, true);
    Inventory.Found found = Inventory.sort(List.of(orphan));
    assertThat(found.movable()).isEmpty();
    assertThat(found.leftBehind().get(0).described()).startsWith("FIN_WAIT1: ").contains("closed");
    Listed waiting = new Listed(listed(2, 0).connection(), SockDiag.TCP_ESTABLISHED, true);
    assertThat(Inventory.sort(List.of(waiting)).leftBehind().get(0).described())
        .startsWith("ESTABLISHED: ")
        .contains("not accepted");
  }

  @Test
  void onlyAMoveThatTakesTheAddressLeavesAnythingBehind() {
    Inventory.Found found =
        Inventory.sort(
            List.of(listed(1, SockDiag.TCP_CLOSE_WAIT), listed(2, SockDiag.TCP_SYN_RECV)));
    assertThat(Inventory.chosen(found, List.of(), true).leftBehind()).hasSize(1);
    Inventory.Found stays = Inventory.chosen(found, List.of(), false);
    assertThat(stays.leftBehind()).as("without the address nothing is cut").isEmpty();
    assertThat(stays.connections()).containsExactly(listed(1, 0).connection());
  }

  @Test
  void aConnectionTheRequestDoesNotNameIsLeftBehindWhenTheAddressMoves() {
    Inventory.Found found =
        Inventory.sort(
            List.of(listed(1, SockDiag.TCP_ESTABLISHED), listed(2, SockDiag.TCP_FIN_WAIT2)));
    Inventory.Found chosen =
        Inventory.chosen(found, List.of(Wire.id(listed(1, 0).connection())), true);
    assertThat(chosen.connections()).containsExactly(listed(1, 0).connection());
    assertThat(chosen.leftBehind())
        .singleElement()
        .satisfies(
            l -> {
              assertThat(l.connection()).isEqualTo(listed(2, 0).connection());
              assertThat(l.described()).startsWith("FIN_WAIT2: ").contains("names other");
            });
  }
}
