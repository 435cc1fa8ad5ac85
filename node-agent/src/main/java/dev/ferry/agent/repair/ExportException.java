// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import java.io.IOException;

/** A socket could not be exported; it was left working where it was. */
public class ExportException extends IOException {
  public ExportException(String message, Throwable cause) {
    super(message + ": " + cause.getMessage(), cause);
  }
}
