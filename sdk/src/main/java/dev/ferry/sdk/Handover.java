// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

/** A server's answer to a freeze: the connection's socket and state, or no. */
public sealed interface Handover {

  /** Hands over the socket behind {@code fd} with {@code state}; {@code then} hears the end. */
  static Handover give(int fd, byte[] state, AfterHandover then) {
    if (fd < 0) {
      throw new IllegalArgumentException("fd must be a descriptor, got " + fd);
    }
    return new Give(fd, state, then);
  }

  /** Keeps the connection; the agent reports it as not migrated, with {@code reason}. */
  static Handover decline(String reason) {
    return new Decline(reason);
  }

  record Give(int fd, byte[] state, AfterHandover then) implements Handover {}

  record Decline(String reason) implements Handover {}

  /** How a handover ended. Exactly one of the two is called. */
  interface AfterHandover {
    /**
     * The connection lives elsewhere now. The SDK has already replaced the server's descriptor with
     * an unconnected placeholder socket: close the server's socket object as usual; nothing reaches
     * the client.
     */
    void released();

    /**
     * The agent did not take the connection (it came too late, or the move failed before the socket
     * was read): it is the server's again, untouched; carry on writing.
     */
    void kept(String why);
  }
}
