// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

/** What the policy has done. */
public class MigrationPolicyStatus {
  private int requestsCreated;

  /** The last node signal acted on: NODE: REASON at TIME. */
  private String lastTrigger;

  public int getRequestsCreated() {
    return requestsCreated;
  }

  public void setRequestsCreated(int requestsCreated) {
    this.requestsCreated = requestsCreated;
  }

  public String getLastTrigger() {
    return lastTrigger;
  }

  public void setLastTrigger(String lastTrigger) {
    this.lastTrigger = lastTrigger;
  }
}
