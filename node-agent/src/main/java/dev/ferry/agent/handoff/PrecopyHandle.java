// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

/** A pre-copy in progress ({@link HandoffServer#precopy}). */
public interface PrecopyHandle {
  /**
   * Stops it: the application is told to offer no more, the listener hears nothing more, and the
   * next freeze of the connection hands over the whole state again. Does nothing once the pre-copy
   * has ended, and does not undo a freeze already asked for: a freeze sent before the stop still
   * answers with an append.
   */
  void stop();
}
