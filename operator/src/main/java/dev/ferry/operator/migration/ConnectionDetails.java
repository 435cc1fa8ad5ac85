// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.ConnectionDetail;
import dev.ferry.api.crd.MigrationRequestStatus;
import java.util.Comparator;
import java.util.List;

/**
 * Which connections status.connectionDetails lists: at most {@link
 * MigrationRequestStatus#MAX_CONNECTION_DETAILS}, those that need a person first (Failed, then Kept
 * on the source, then RolledBack, then the rest), and how many it leaves out; status.connections
 * counts them all. 10,000 connections listed one by one would come near etcd's 1.5 MB object limit.
 */
final class ConnectionDetails {
  /** A reason is a sentence; an agent's longer one is cut here. */
  static final int REASON_LENGTH = 256;

  private static final List<String> FIRST =
      List.of(Outcomes.FAILED, Outcomes.KEPT, Outcomes.ROLLED_BACK);

  private ConnectionDetails() {}

  /** Records {@code all} in {@code st}, bounded. */
  static void record(MigrationRequestStatus st, List<ConnectionDetail> all) {
    if (all == null) {
      st.setConnectionDetails(null);
      st.setConnectionDetailsOmitted(null);
      return;
    }
    List<ConnectionDetail> listed =
        all.stream()
            .sorted(Comparator.comparingInt(ConnectionDetails::rank)) // stable: agent order kept
            .limit(MigrationRequestStatus.MAX_CONNECTION_DETAILS)
            .map(ConnectionDetails::shortened)
            .toList();
    st.setConnectionDetails(listed);
    st.setConnectionDetailsOmitted(all.size() - listed.size());
  }

  private static int rank(ConnectionDetail d) {
    int i = FIRST.indexOf(d.getOutcome());
    return i < 0 ? FIRST.size() : i;
  }

  private static ConnectionDetail shortened(ConnectionDetail d) {
    String reason = d.getReason();
    if (reason == null || reason.length() <= REASON_LENGTH) {
      return d;
    }
    return new ConnectionDetail(
        d.getConnection(), d.getOutcome(), reason.substring(0, REASON_LENGTH - 1) + "…");
  }
}
