// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

/** One connection's end: where it lives, in the agents' words. */
public class ConnectionDetail {
  /** LOCAL:PORT <- REMOTE:PORT, as the pod sees it. */
  private String connection;

  /** Migrated, Kept, RolledBack or Failed. */
  private String outcome;

  private String reason;

  public ConnectionDetail() {}

  public ConnectionDetail(String connection, String outcome, String reason) {
    this.connection = connection;
    this.outcome = outcome;
    this.reason = reason;
  }

  public String getConnection() {
    return connection;
  }

  public void setConnection(String connection) {
    this.connection = connection;
  }

  public String getOutcome() {
    return outcome;
  }

  public void setOutcome(String outcome) {
    this.outcome = outcome;
  }

  public String getReason() {
    return reason;
  }

  public void setReason(String reason) {
    this.reason = reason;
  }
}
