// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.RepairSocket;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.util.Optional;

/**
 * A rebuilt socket still in repair mode: it sends nothing until {@link #resume()}. Closing it
 * before then discards it silently, which is how a staged restore is rolled back.
 */
public final class RestoredSocket implements AutoCloseable {
  private static final int MAX_GROWTH = 8;
  private static final int NO_LIMIT = -1;

  private final RepairSocket repair;
  private final byte[] unsent;
  private final Optional<CarriedOptions> options;
  // What the two late options were when the socket was staged: a different value at resume
  // means the target application set its own (the handoff protocol lets it, between TAKEOVER
  // and TAKEN), and the application's choice wins over the carried one.
  private final boolean stagedKeepAlive;
  private final int stagedNotSentLowWatermark;
  private boolean resumed;

  RestoredSocket(RepairSocket repair, byte[] unsent, Optional<CarriedOptions> options)
      throws SyscallException {
    this.repair = repair;
    this.unsent = unsent;
    this.options = options;
    SocketOptions o = new SocketOptions(repair.socket());
    this.stagedKeepAlive = o.keepAlive();
    this.stagedNotSentLowWatermark = o.notSentLowWatermark();
  }

  public TcpSocket socket() {
    return repair.socket();
  }

  /**
   * Leaves repair mode, which makes the kernel send a window update that wakes the peer, then
   * queues the bytes the original socket had never sent, ahead of anything the application writes
   * next, and sets the socket options that had to wait for these steps. Returns the socket,
   * blocking again, now owned by the caller.
   */
  public TcpSocket resume() throws SyscallException {
    TcpSocket socket = repair.socket();
    repair.leave();
    resumed = true;
    // Repair mode left the socket with forced address reuse; an accepted socket has the
    // ordinary kind. Without this, its TIME_WAIT blocks the application from binding a new
    // listener on the port, even with SO_REUSEADDR.
    socket.setReuseAddress();
    SocketOptions o = new SocketOptions(socket);
    // SO_KEEPALIVE only now: on a connected socket it arms the keep-alive timer, and nothing
    // makes that timer respect repair mode; a staged socket may wait for the commit longer than
    // a short TCP_KEEPIDLE, and must send nothing before it.
    if (options.isPresent() && options.get().keepAlive() && o.keepAlive() == stagedKeepAlive) {
      o.setKeepAlive(true);
    }
    // TCP_NOTSENT_LOWAT only after the bytes never sent are queued: a low mark makes the kernel
    // refuse all but the first of them to a non-blocking write, though the original held them all.
    int lowat = o.notSentLowWatermark();
    int wantedLowat =
        options.isPresent() && lowat == stagedNotSentLowWatermark
            ? options.get().notSentLowWatermark()
            : lowat;
    if (unsent.length > 0) {
      o.setNotSentLowWatermark(NO_LIMIT);
    }
    int off = 0;
    int grown = 0;
    while (off < unsent.length) {
      int n = socket.write(unsent, off, unsent.length - off);
      if (n > 0) {
        off += n;
      } else if (grown++ < MAX_GROWTH) {
        // The original socket held these bytes, so this one must take them without waiting.
        socket.forceSendBuffer(Math.max(socket.sendBuffer(), unsent.length) * 2);
      } else {
        throw new IllegalStateException(
            socket + ": send buffer refuses " + (unsent.length - off) + " unsent bytes");
      }
    }
    if (unsent.length > 0 || wantedLowat != lowat) {
      o.setNotSentLowWatermark(wantedLowat);
    }
    socket.setBlocking(true);
    return socket;
  }

  /** Discards the socket without a trace on the wire if it was not resumed. */
  @Override
  public void close() {
    if (!resumed) {
      repair.socket().close();
    }
  }
}
