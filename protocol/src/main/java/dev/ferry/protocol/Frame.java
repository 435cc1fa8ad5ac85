// SPDX-License-Identifier: Apache-2.0
package dev.ferry.protocol;

/**
 * One message of the handoff protocol (docs/handoff-protocol.md): its type, its payload and the
 * descriptor that came with it, or -1.
 */
public record Frame(int type, byte[] payload, int fd) {
  /** The highest protocol version spoken here; 1 and 2 are the others. */
  public static final int VERSION = 3;

  public static final int HELLO = 1;
  public static final int WELCOME = 2;
  public static final int REGISTER = 3;
  public static final int REGISTERED = 4;
  public static final int FREEZE = 5;
  public static final int FROZEN = 6;
  public static final int BLOB = 7;
  public static final int DECLINED = 8;
  public static final int TAKEOVER = 9;
  public static final int TAKEN = 10;
  public static final int RESUMED = 11;
  public static final int RELEASED = 12;
  public static final int RETURNED = 13;
  public static final int ERROR = 15;

  /** Version 2: the agent asks for a connection's state ahead of the freeze. */
  public static final int PRECOPY = 16;

  /** Version 2: a part of the state offered ahead of the freeze; BLOB frames follow. */
  public static final int STATE = 17;

  /** Version 2: the agent wants no more of the state offered ahead of the freeze. */
  public static final int PRECOPY_STOP = 18;

  /**
   * Version 2, target side: the agent hands the application part of a connection's state ahead of
   * its takeover (u64 id, u8 kind, u64 length, connection); BLOB frames follow.
   */
  public static final int PRESTATE = 19;

  /** Version 2: the application is to forget the state handed ahead (u64 id, connection). */
  public static final int PRESTATE_DROP = 20;

  /**
   * Version 2: TAKEOVER whose blob follows the state handed ahead with PRESTATE (u64 request id,
   * u64 the PRESTATE's id, u64 tail length, connection); carries the restored socket.
   */
  public static final int TAKEOVER_APPEND = 21;

  /**
   * STATE and PRESTATE kinds: a snapshot replaces everything offered so far; an append follows it.
   */
  public static final int STATE_SNAPSHOT = 1;

  public static final int STATE_APPEND = 2;

  /** Version 3, application: 32 random bytes; the agent answers PROOF. */
  public static final int PROVE = 22;

  /** Version 3, agent: that it holds the key of a Ferry agent certificate ({@link AgentProof}). */
  public static final int PROOF = 23;

  public static final int ERR_MALFORMED = 1;
  public static final int ERR_UNKNOWN_TYPE = 2;
  public static final int ERR_TOO_LARGE = 3;
  public static final int ERR_OUT_OF_ORDER = 4;
  public static final int ERR_UNKNOWN_REQUEST = 5;
  public static final int ERR_NOT_TCP = 6;
  public static final int ERR_PORT_TAKEN = 7;
  public static final int ERR_TIMED_OUT = 8;

  /** HELLO named a version this end does not speak; the session is closed after it. */
  public static final int ERR_UNSUPPORTED_VERSION = 9;

  /**
   * The agent serves as many sessions as it may (in all, or from one network namespace): this one
   * is refused and closed, possibly before its HELLO is read.
   */
  public static final int ERR_TOO_MANY_SESSIONS = 10;

  /** PROVE to an agent that holds no key to prove with; the session goes on. */
  public static final int ERR_CANNOT_PROVE = 11;

  /** The longest application name HELLO may carry, in UTF-8 bytes. */
  public static final int MAX_NAME = 255;

  /** The largest frame either side sends or accepts: length prefix excluded. */
  public static final int MAX_FRAME = 1 << 20;

  /** The most blob bytes one BLOB frame carries (type and request id take 9 bytes). */
  public static final int MAX_CHUNK = MAX_FRAME - 9;

  /** A name for an ERROR code, for logs and metrics: {@code too-large} for 3. */
  public static String errorName(int code) {
    return switch (code) {
      case ERR_MALFORMED -> "malformed";
      case ERR_UNKNOWN_TYPE -> "unknown-type";
      case ERR_TOO_LARGE -> "too-large";
      case ERR_OUT_OF_ORDER -> "out-of-order";
      case ERR_UNKNOWN_REQUEST -> "unknown-request";
      case ERR_NOT_TCP -> "not-tcp";
      case ERR_PORT_TAKEN -> "port-taken";
      case ERR_TIMED_OUT -> "timed-out";
      case ERR_UNSUPPORTED_VERSION -> "unsupported-version";
      case ERR_TOO_MANY_SESSIONS -> "too-many-sessions";
      case ERR_CANNOT_PROVE -> "cannot-prove";
      default -> "code-" + code;
    };
  }
}
