// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

/**
 * A rollback that must wait: the source may have let the target commit, and the target's agent does
 * not answer whether it did (it is down, or starting again). Nothing may be rebuilt on the source
 * until it answers, or the connection could live on both nodes.
 */
public final class TargetCannotSay extends RuntimeException {
  public TargetCannotSay(String message) {
    super(message);
  }
}
