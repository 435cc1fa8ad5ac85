// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import java.util.logging.Logger;

/**
 * Logs an outage once when it begins and once when it ends, so that a dependency down for an hour
 * does not write a line every poll. Used from one thread.
 */
final class OutageLog {
  private static final Logger LOG = Logger.getLogger(OutageLog.class.getName());

  private final String what;
  private boolean out;

  OutageLog(String what) {
    this.what = what;
  }

  void failed(Exception e) {
    if (!out) {
      out = true;
      LOG.warning(() -> what + " failing, retrying every poll: " + e.getMessage());
    }
  }

  void succeeded() {
    if (out) {
      out = false;
      LOG.info(() -> what + " working again");
    }
  }
}
