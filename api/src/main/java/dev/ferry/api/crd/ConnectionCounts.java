// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

/** How many connections ended where. */
public class ConnectionCounts {
  /** Found when the migration froze. */
  private int total;

  /** Live on the target. */
  private int migrated;

  /** Never moved: their application declined or did not answer in time; still on the source. */
  private int kept;

  /** Closed, or their state saved but not live on either side: see connectionDetails. */
  private int failed;

  /** Live on the source again after a rollback. */
  private int rolledBack;

  public int getTotal() {
    return total;
  }

  public void setTotal(int total) {
    this.total = total;
  }

  public int getMigrated() {
    return migrated;
  }

  public void setMigrated(int migrated) {
    this.migrated = migrated;
  }

  public int getKept() {
    return kept;
  }

  public void setKept(int kept) {
    this.kept = kept;
  }

  public int getFailed() {
    return failed;
  }

  public void setFailed(int failed) {
    this.failed = failed;
  }

  public int getRolledBack() {
    return rolledBack;
  }

  public void setRolledBack(int rolledBack) {
    this.rolledBack = rolledBack;
  }
}
