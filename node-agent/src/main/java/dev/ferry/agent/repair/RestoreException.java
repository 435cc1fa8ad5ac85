// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import java.io.IOException;

/** A socket could not be rebuilt; nothing of it was left behind. */
public class RestoreException extends IOException {
  public RestoreException(String message, Throwable cause) {
    super(message, cause);
  }
}
