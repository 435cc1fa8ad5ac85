// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.agent.handoff.Session;
import dev.ferry.agent.repair.ClientAck;
import dev.ferry.agent.repair.RestoredSocket;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.PeerSegment;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;

/** How a connection's arrival on this node went. */
public sealed interface Arrival {
  Connection connection();

  /**
   * The socket is rebuilt in repair mode and the application has taken it and its state; the client
   * is still held. {@link #resume} once the address points here.
   */
  final class Staged implements Arrival {
    private final Connection connection;
    private final RestoredSocket socket;
    private final Session application;
    private final long requestId;
    private final StagedClient client;

    Staged(
        Connection connection,
        RestoredSocket socket,
        Session application,
        long requestId,
        StagedClient client) {
      this.connection = connection;
      this.socket = socket;
      this.application = application;
      this.requestId = requestId;
      this.client = client;
    }

    @Override
    public Connection connection() {
      return connection;
    }

    /** Sets the restored TSval clock from the time since the export: see RestoredSocket. */
    public void continueClock(long millisSinceExport) throws SyscallException {
      socket.continueClock(millisSinceExport);
    }

    /** What the client acknowledged while held: see RestoredSocket. */
    public boolean clientAcknowledged(ClientAck ack) {
      return socket.clientAcknowledged(ack);
    }

    public boolean hasClientAck() {
      return socket.hasClientAck();
    }

    /**
     * Appends {@code keptClientBytes} (what the client sent while held, past the exported queue, as
     * the source's hold kept it) to the receive queue, with what this node's hold kept of the
     * client's meanwhile, lets the client reach the socket, leaves repair mode (the client wakes at
     * once, and learns those bytes arrived), hands the socket what the client acknowledged while
     * held (from {@code peer}; null leaves it out), tells the application it may write, and clears
     * this node's hold entry for the connection ({@link StagedClient}).
     */
    public void resume(byte[] keptClientBytes, PeerSegment peer) throws SyscallException {
      try (TcpSocket live = client.resume(socket, keptClientBytes, peer)) {
        application.resumed(requestId); // the application has its own descriptor for it
      } finally {
        client.release();
      }
    }

    /**
     * Gives up before resuming: the agent's descriptor goes silently (repair mode), and the
     * application is told the takeover is void (RELEASED with the takeover's request id), so that
     * it closes its own descriptor too instead of keeping a socket that will never go live.
     */
    public void abandon() throws SyscallException {
      try {
        socket.close();
        client.release();
      } finally {
        try {
          application.released(requestId);
        } catch (SyscallException sessionGone) {
          // The application's session ended: its descriptors went with it.
        }
      }
    }
  }

  /** Not staged here, for {@code reason}; the departed state is untouched and may go elsewhere. */
  record Refused(Connection connection, String reason) implements Arrival {}
}
