// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.store;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The commit point of each migration that arrives on this node: one small durable file, written
 * before any of its sockets resumes here. Every path obeys it. Before it exists, a failure rolls
 * the migration back to the source, which still holds every state. Once it exists, nothing is
 * rebuilt on the source: the target retries forward, or closes a connection and says so.
 *
 * <p>The target writes it only on a COMMIT that arrives on the source's live stream, so a source
 * that restarted (its stream gone) asks here to learn, once and for all, which side won.
 */
public final class CommitRecords {
  private final DurableNames committed;
  // How migrations ended here, kept as long as their commit records: a signed plan is good for an
  // hour, and its source must not be able to run it a second time within it.
  private final DurableNames plansRolledBack;
  private final DurableNames resumed;

  public CommitRecords(Path stateDir) throws IOException {
    this.committed = new DurableNames(stateDir.resolve("commits"));
    this.plansRolledBack = new DurableNames(stateDir.resolve("plans-rolled-back"));
    this.resumed = new DurableNames(stateDir.resolve("commits-resumed"));
  }

  /** Writes the record of {@code id}; durable (file and directory synced) when this returns. */
  public void write(String id) {
    committed.write(id);
  }

  public boolean exists(String id) {
    return committed.exists(id);
  }

  /**
   * Notes, durably, that the signed plan {@code planId} ({@code MovePlans.idOf}) was rolled back
   * here before any commit: its source may not send it again (a plan runs once). The operator's
   * next attempt at the same migration is signed anew, and is another plan.
   */
  public void planRolledBack(String planId) {
    plansRolledBack.write(planId);
  }

  public boolean wasPlanRolledBack(String planId) {
    return plansRolledBack.exists(planId);
  }

  /**
   * Notes, durably, that every connection of the committed {@code id} resumed here: states sent
   * again after the commit are answered from this, never staged a second time.
   */
  public void allResumed(String id) {
    resumed.write(id);
  }

  public boolean wereAllResumed(String id) {
    return resumed.exists(id);
  }

  /**
   * Drops records older than {@code age}: by then every source that could ask has let go of its
   * states (its hold ended long before), and the migration's signed plan has expired.
   */
  public void expire(Duration age) {
    committed.expire(age);
    plansRolledBack.expire(age);
    resumed.expire(age);
  }
}
