// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

/**
 * One message of the handoff protocol (docs/handoff-protocol.md): its type, its payload and the
 * descriptor that came with it, or -1.
 */
record Frame(int type, byte[] payload, int fd) {
  static final int HELLO = 1;
  static final int WELCOME = 2;
  static final int REGISTER = 3;
  static final int REGISTERED = 4;
  static final int FREEZE = 5;
  static final int FROZEN = 6;
  static final int BLOB = 7;
  static final int DECLINED = 8;
  static final int TAKEOVER = 9;
  static final int TAKEN = 10;
  static final int RESUMED = 11;
  static final int ERROR = 15;

  static final int ERR_MALFORMED = 1;
  static final int ERR_UNKNOWN_TYPE = 2;
  static final int ERR_TOO_LARGE = 3;
  static final int ERR_OUT_OF_ORDER = 4;
  static final int ERR_UNKNOWN_REQUEST = 5;
  static final int ERR_NOT_TCP = 6;
  static final int ERR_PORT_TAKEN = 7;
  static final int ERR_TIMED_OUT = 8;

  /** The largest frame either side sends or accepts: length prefix excluded. */
  static final int MAX_FRAME = 1 << 20;

  /** The most blob bytes one BLOB frame carries (type and request id take 9 bytes). */
  static final int MAX_CHUNK = MAX_FRAME - 9;
}
