// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

/**
 * Where a server takes in a connection's state while the agent hands it ahead of the takeover
 * (protocol version 2, PRESTATE), so that checking a large state is done before the clients' pause
 * instead of inside it. Asked for through {@link MigrationHandler#arriving}; the SDK then passes
 * each part on as it arrives and keeps no copy of its own.
 *
 * <p>The state is the bytes of the last {@link #snapshot}, then of every {@link #append} after it,
 * then the tail given to {@link #takeover}: the very bytes {@link MigrationHandler#takeover} would
 * get in one array. Each part's bytes follow its announcement in {@link #bytes} calls, in order,
 * exactly its length in all; the next announcement comes only once a part is whole.
 *
 * <p>Threading: {@link #snapshot}, {@link #bytes}, {@link #append} and {@link #dropped} are called
 * on the session's reader thread, one at a time. While one runs, no other message of the session is
 * read, for this connection or any other (freezes included): copy, hash, parse and apply there, at
 * the pace of the wire, but never wait for anything. {@link #takeover} is called on a worker
 * thread, as {@link MigrationHandler#takeover} is, after every call before it has returned (so is
 * {@link #dropped} in its stead if the port was unregistered meanwhile). Exactly one of {@link
 * #takeover} and {@link #dropped} ends the intake; nothing is called after it.
 *
 * <p>An exception thrown by {@code snapshot}, {@code bytes} or {@code append} declines what is
 * handed ahead: the SDK answers the agent {@code DECLINED}, calls {@link #dropped}, and the agent
 * sends the whole state with the takeover, to {@link MigrationHandler#takeover}.
 */
public interface IncomingState {
  /**
   * A snapshot of {@code length} bytes begins: it replaces everything taken in before, which is now
   * void.
   */
  void snapshot(long length) throws Exception;

  /**
   * The next bytes of the part announced last; the array is the server's to keep. Calls for one
   * part add up to its length exactly (none for a part of 0 bytes).
   */
  void bytes(byte[] chunk) throws Exception;

  /** A part of {@code length} bytes begins: it follows everything taken in since the snapshot. */
  void append(long length) throws Exception;

  /**
   * The connection arrives (TAKEOVER_APPEND): its state is everything taken in, then {@code tail}.
   * Check it and answer as {@link MigrationHandler#takeover} does; an exception declines. The
   * socket is not live yet: nothing may be written before the accepting callback runs.
   */
  Takeover takeover(byte[] tail) throws Exception;

  /**
   * What was taken in is void and nothing more comes: the agent dropped it, a plain TAKEOVER brings
   * the whole state instead, the takeover named another prestate, the session ended, or this intake
   * (or the SDK) declined it. Let go of what is held. Must not throw, nor wait.
   */
  void dropped(String why);
}
