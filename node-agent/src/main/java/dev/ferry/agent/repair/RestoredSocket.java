// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.RepairSocket;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.util.Optional;

/**
 * A rebuilt socket still in repair mode: it sends nothing until {@link #resume()}. Closing it
 * before then discards it silently, which is how a staged restore is rolled back.
 */
public final class RestoredSocket implements AutoCloseable {
  private static final int MAX_GROWTH = 8;

  private final RepairSocket repair;
  private final byte[] unsent;
  private final Optional<CarriedOptions> options;
  private boolean resumed;

  RestoredSocket(RepairSocket repair, byte[] unsent, Optional<CarriedOptions> options) {
    this.repair = repair;
    this.unsent = unsent;
    this.options = options;
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
    if (options.isPresent()) {
      options.get().applyAfterRepair(socket);
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
    if (options.isPresent()) {
      options.get().applyAfterUnsent(socket);
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
