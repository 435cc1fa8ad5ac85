// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import java.io.IOException;

/** The peer broke the handoff protocol; {@link #code()} is the ERROR code to answer with. */
final class ProtocolException extends IOException {
  private final int code;

  ProtocolException(int code, String message) {
    super(message);
    this.code = code;
  }

  int code() {
    return code;
  }
}
