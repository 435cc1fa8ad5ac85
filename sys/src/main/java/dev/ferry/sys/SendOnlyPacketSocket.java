// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * An AF_PACKET SOCK_DGRAM socket that only sends link-layer frames, in the calling thread's network
 * namespace, and is closed off the caller's thread.
 *
 * <p>Why the close is deferred: closing a packet socket waits for an RCU grace period
 * (packet_release calls synchronize_net), 8–24 ms on the 2-core test machine, where socket() and
 * sendto() take 20 µs together. The target agent announces a moved address right after it resumes
 * the sockets, and answers the source's COMMIT only then: the close was about half of that round
 * trip (commit-round-trip 36–38 ms with it, 18–27 ms without, one stream). The frame has left when
 * {@link #send} returns, so nothing needs to wait for the close; one thread closes them in turn.
 * Each announcement opens its own socket, because a socket belongs to the namespace it was opened
 * in, and a kept one would keep that namespace alive.
 */
final class SendOnlyPacketSocket implements AutoCloseable {
  private static final ExecutorService CLOSER =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "ferry-packet-socket-close");
            t.setDaemon(true);
            return t;
          });

  private final int fd;

  /** Protocol 0: the socket only sends, so no incoming frame is ever queued on it. */
  SendOnlyPacketSocket() throws SyscallException {
    this.fd =
        check(
            () -> Native.LIBC.socket(Native.AF_PACKET, Native.SOCK_DGRAM | Native.SOCK_CLOEXEC, 0),
            () -> "socket(AF_PACKET, SOCK_DGRAM)");
  }

  /**
   * Sends {@code payload} to the link-layer address {@code to} (a struct sockaddr_ll, which names
   * the interface and the frame's protocol); the kernel adds the Ethernet header.
   */
  void send(byte[] payload, byte[] to, String what) throws SyscallException {
    check(() -> Native.LIBC.sendto(fd, payload, payload.length, 0, to, to.length), () -> what);
  }

  @Override
  public void close() {
    CLOSER.execute(() -> Native.LIBC.close(fd));
  }
}
