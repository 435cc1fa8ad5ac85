// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;

/**
 * A connection's state handed ahead to the application on the target node (protocol version 2,
 * {@link HandoffServer#prestate}), so that its takeover carries only the tail: PRESTATE frames and
 * their BLOB frames go out now, while the client still runs on the source; the TAKEOVER_APPEND
 * inside the clients' pause carries only what the freeze added.
 *
 * <p>Use it from one thread (the engine's), in the order: {@link #snapshot} or {@link #append},
 * then exactly that many bytes through {@link #chunk}, then the next part. The state the
 * application holds is the last snapshot followed by every append after it. Each call writes its
 * frames before it returns and may block while the application reads them (flow control; a single
 * write that stalls for the agent's answer timeout fails, and the prestate ends). Hand it to the
 * takeover with {@link HandoffServer.Incoming#appending}; call {@link #drop} if the move is rolled
 * back.
 *
 * <p>The application may decline it at any time (it cannot keep that much, say): every method then
 * returns false and sends nothing (the argument checks are skipped too, so the caller may stop
 * half-way through a part), and the takeover carries the whole state instead.
 */
public final class Prestate {
  private final Session session;
  private final long id;
  private final Connection connection;
  private final Object writing = new Object();

  /** Why the application no longer holds it, or null while it does. Set from any thread. */
  private volatile String ended;

  private long remaining; // guarded by writing: bytes of the last part still to come
  private boolean begun; // guarded by writing: a snapshot was sent

  Prestate(Session session, long id, Connection connection) {
    this.session = session;
    this.id = id;
    this.connection = connection;
  }

  /** The request id its PRESTATE frames carry. */
  public long id() {
    return id;
  }

  public Connection connection() {
    return connection;
  }

  /**
   * Begins a snapshot of {@code length} bytes: it replaces everything handed ahead so far. Exactly
   * {@code length} bytes must follow through {@link #chunk} before the next part.
   *
   * @return false if the application no longer holds this prestate: nothing was sent
   * @throws IllegalStateException if the previous part is not complete
   */
  public boolean snapshot(long length) {
    return part(Frame.STATE_SNAPSHOT, length);
  }

  /**
   * Begins an append of {@code length} bytes: it follows what was handed ahead so far. The first
   * part must be a snapshot.
   *
   * @return false if the application no longer holds this prestate: nothing was sent
   * @throws IllegalStateException if no snapshot came first or the previous part is not complete
   */
  public boolean append(long length) {
    return part(Frame.STATE_APPEND, length);
  }

  /**
   * The next bytes of the part begun last, forwarded in order as BLOB frames (split at the largest
   * frame). Blocks while the application reads them.
   *
   * @return false if the application no longer holds this prestate: nothing was sent
   * @throws IllegalStateException if {@code data} runs past the length the part announced
   */
  public boolean chunk(byte[] data) {
    synchronized (writing) {
      if (ended != null) {
        return false; // checked first: once ended, the caller may stop at any point
      }
      if (data.length > remaining) {
        throw new IllegalStateException(
            "prestate " + id + ": " + data.length + " bytes, but only " + remaining + " announced");
      }
      remaining -= data.length;
      return session.sendPrestateChunk(this, data);
    }
  }

  /**
   * Tells the application to forget it (PRESTATE_DROP): the move was rolled back, or the engine
   * gives up on handing the state ahead. Does nothing if it has ended already (declined, taken
   * over, dropped, session closed). Never blocks longer than one frame write.
   */
  public void drop() {
    if (end("dropped by the agent")) {
      session.sendPrestateDrop(this);
    }
  }

  /**
   * True while the application holds the whole of what was handed ahead: a snapshot was sent, the
   * last part is complete, and it has neither declined nor lost its session. A takeover that
   * appends to it then sends only the tail.
   */
  public boolean held() {
    synchronized (writing) {
      return ended == null && begun && remaining == 0;
    }
  }

  /** Why the application no longer holds it, or null while it does (or may). */
  public String endedBecause() {
    return ended;
  }

  private boolean part(int kind, long length) {
    if (length < 0) {
      throw new IllegalArgumentException("length " + length);
    }
    synchronized (writing) {
      if (ended != null) {
        return false;
      }
      if (remaining > 0) {
        throw new IllegalStateException(
            "prestate " + id + ": " + remaining + " bytes of the previous part are still to come");
      }
      if (kind == Frame.STATE_APPEND && !begun) {
        throw new IllegalStateException("prestate " + id + ": the first part must be a snapshot");
      }
      if (!session.sendPrestatePart(this, kind, length)) {
        return false;
      }
      begun = true;
      remaining = length;
      return true;
    }
  }

  /** Marks it ended; true if this call ended it. */
  boolean end(String why) {
    synchronized (this) {
      if (ended != null) {
        return false;
      }
      ended = why;
    }
    session.forget(this);
    return true;
  }

  @Override
  public String toString() {
    return "prestate " + id + " of " + connection;
  }
}
