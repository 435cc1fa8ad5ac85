// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.peer;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.repair.ClientAck;
import dev.ferry.api.v1alpha1.ArrivalDecision;
import dev.ferry.protocol.Connection;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * COMMIT carries the clients' acknowledgments as a hint: however many connections move, it stays
 * far under the Arrive stream's 4 MiB message limit, which would otherwise fail the commit itself.
 */
class CommitDecisionTest {
  @Test
  void commitStaysUnderTheMessageLimitWithTheLargestAcknowledgmentsOfTheMostConnections()
      throws Exception {
    Map<Connection, ClientAck> acks = new LinkedHashMap<>();
    InetAddress service = InetAddress.getByName("fd66:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    for (int i = 0; i < 65_536; i++) { // as many as a node holds at once
      InetAddress client =
          InetAddress.getByName("fd66:ffff:ffff:ffff:ffff:ffff:ffff:" + Integer.toHexString(i));
      acks.put(
          new Connection(
              new InetSocketAddress(service, 65535), new InetSocketAddress(client, 65535)),
          new ClientAck(-1, 0xffff, -1));
    }
    ArrivalDecision d = ArrivalCall.commitDecision(Long.MAX_VALUE, acks);
    assertThat(d.getClientAcksCount()).isEqualTo(ArrivalCall.MAX_CLIENT_ACKS);
    assertThat(d.getSerializedSize()).as("bytes").isLessThan(3 * Peers.CHUNK / 2);
    assertThat(d.getClientAcks(0).getAck()).isEqualTo(-1);
  }
}
