// SPDX-License-Identifier: Apache-2.0
package dev.ferry.protocol;

import java.io.IOException;

/** The peer broke the handoff protocol; {@link #code()} is the ERROR code to answer with. */
public final class ProtocolException extends IOException {
  private final int code;

  public ProtocolException(int code, String message) {
    super(message);
    this.code = code;
  }

  public int code() {
    return code;
  }
}
