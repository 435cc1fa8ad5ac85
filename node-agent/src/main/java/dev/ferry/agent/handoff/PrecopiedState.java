// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import java.io.ByteArrayOutputStream;

/**
 * Puts a pre-copied state back together where it is needed whole: the last snapshot, the appends
 * after it, then the freeze's state. The target agent feeds it what the source forwarded; the
 * application there gets {@link #whole} in its TAKEOVER, as if nothing had been pre-copied.
 */
public final class PrecopiedState implements PrecopyListener {
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private volatile String ended;

  @Override
  public synchronized void snapshot(long length) {
    bytes.reset();
  }

  @Override
  public void append(long length) {}

  @Override
  public synchronized void chunk(byte[] data) {
    bytes.write(data, 0, data.length);
  }

  @Override
  public void ended(String why) {
    ended = why;
  }

  /** Why the pre-copy ended without a freeze, or null. */
  public String endedBecause() {
    return ended;
  }

  /** The whole state: what was offered, then {@code frozen}'s state if it appends to it. */
  public byte[] whole(HandoffOutcome.Frozen frozen) {
    return frozen.appendsToPrecopy() ? whole(frozen.state()) : frozen.state();
  }

  /** The whole state: what was offered, then {@code tail}, the freeze's append. */
  public synchronized byte[] whole(byte[] tail) {
    byte[] out = new byte[bytes.size() + tail.length];
    System.arraycopy(bytes.toByteArray(), 0, out, 0, bytes.size());
    System.arraycopy(tail, 0, out, bytes.size(), tail.length);
    return out;
  }
}
