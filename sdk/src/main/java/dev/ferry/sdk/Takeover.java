// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import java.util.function.Consumer;

/** A server's answer to a connection that arrives: take it, or leave it. */
public sealed interface Takeover {

  /** Takes the connection; {@code live} runs once the socket is live and may be written. */
  static Takeover accept(Consumer<MovedSocket> live) {
    return new Accept(live);
  }

  /** Leaves the connection; the agent moves it back where it came from. */
  static Takeover decline(String reason) {
    return new Decline(reason);
  }

  record Accept(Consumer<MovedSocket> live) implements Takeover {}

  record Decline(String reason) implements Takeover {}
}
