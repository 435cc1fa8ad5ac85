// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

/** The metadata service did not answer the question: unreachable, failing, or refusing us. */
final class MetadataUnavailable extends Exception {
  MetadataUnavailable(String message, Throwable cause) {
    super(message, cause);
  }
}
