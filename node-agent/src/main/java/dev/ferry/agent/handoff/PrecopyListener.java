// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

/**
 * Hears the state an application offers for one connection ahead of its freeze (protocol version 2,
 * {@link HandoffServer#precopy}). The state so far is the last snapshot followed by every append
 * after it; at the freeze, {@link HandoffOutcome.Frozen#state()} is one more append.
 *
 * <p>Calls come one at a time, in the order the application sent the parts, on the thread that
 * reads the application's session: forward or copy the bytes and return; a listener that blocks
 * holds up every answer of that application.
 */
public interface PrecopyListener {
  /** A snapshot of {@code length} bytes begins: everything offered before it is void. */
  void snapshot(long length);

  /** An append of {@code length} bytes begins: it follows what was offered so far. */
  void append(long length);

  /**
   * The next bytes of the snapshot or append begun last, in order. The array is the listener's to
   * keep. A part of length 0 has no chunks.
   */
  void chunk(byte[] data);

  /**
   * The pre-copy ended without a freeze: the application declined it, closed its session, or speaks
   * version 1. The freeze that may follow hands over the whole state. Not called after {@link
   * PrecopyHandle#stop} or once a freeze of the connection was answered.
   */
  default void ended(String why) {}
}
