// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import java.io.IOException;

/** Bytes that do not decode to a socket state this agent can restore. */
public class InvalidSocketStateException extends IOException {
  public InvalidSocketStateException(String message, Throwable cause) {
    super(message, cause);
  }
}
