// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.RepairSocket;
import dev.ferry.sys.RepairSocket.Queue;
import dev.ferry.sys.RepairWindow;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpInfo;
import dev.ferry.sys.TcpSocket;
import java.net.Inet4Address;
import java.util.Arrays;
import java.util.Optional;

/**
 * Reads a live socket's whole state with TCP_REPAIR, without waiting for anything: the send queue
 * is copied as it is, so a peer that reads slowly or not at all cannot stall an export. ESTABLISHED
 * and half-closed sockets export ({@link MovableState} says how their FINs are counted); any other
 * state is refused with its name.
 *
 * <p>The caller must hold the connection first (nothing from the peer may reach the socket while it
 * is read) and closes the socket afterwards; closing in repair mode sends nothing. The export
 * closes the peer's window for the time the socket stays open (see {@link #export}).
 */
public final class SocketExporter {

  /**
   * Exports the socket, leaving it in repair mode for the caller to close, or to give back with
   * {@link #putBack}.
   *
   * @throws ExportException if the socket cannot be exported; it has then left repair mode and
   *     carries on where it is, as if nothing had happened
   */
  public SocketState export(TcpSocket socket) throws ExportException {
    RepairSocket repair;
    try {
      repair = RepairSocket.enter(socket);
    } catch (SyscallException e) {
      throw new ExportException(socket + ": cannot enter repair mode", e);
    }
    RepairWindow window = null;
    try {
      window = repair.window();
      // Holding the client stops its ACKs, not our sending: a paced socket with room in its
      // window goes on sending its queue on the pacing timer, repair mode or not, until the SEND
      // queue is selected. A segment sent between the reads below would be counted as unsent, and
      // the target would send it a second time at its resume, where the client's ACK of the copy
      // gave the restored socket its first RTT sample from the source's timestamps (a second too
      // long while the restored clock kept its lead, see RestoredSocket.continueClock), and BBR
      // paced the connection from it for many round trips: make bench-link's slow runs were the
      // ones with such copies. With the peer's window closed nothing new leaves, so what the
      // reads find is what the client can have.
      repair.setWindow(window.withSendWindowClosed());
      return read(socket, repair, window);
    } catch (SyscallException | RuntimeException e) {
      try {
        if (window != null) {
          repair.setWindow(window);
        }
        repair.leave();
      } catch (SyscallException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw new ExportException(socket + ": export failed, socket left as it was", e);
    }
  }

  /**
   * Gives a socket {@link #export} read, still open in repair mode, back as it was: the peer's
   * window the export closed opens again, and the socket leaves repair mode.
   */
  public void putBack(TcpSocket socket, SocketState exported) throws SyscallException {
    RepairSocket repair = RepairSocket.enter(socket); // in repair mode already: changes nothing
    repair.setWindow(exported.window());
    repair.leave();
  }

  private static SocketState read(TcpSocket socket, RepairSocket repair, RepairWindow window)
      throws SyscallException {
    TcpInfo info = socket.info();
    MovableState tcp =
        MovableState.of(info.state())
            .orElseThrow(
                () ->
                    new IllegalStateException(
                        "a connection in "
                            + info.stateName()
                            + " cannot be moved: only ESTABLISHED and half-closed ones can"));
    // SIOCINQ already leaves the peer's FIN out; SIOCOUTQ and SIOCOUTQNSD count ours while it is
    // unacknowledged (unsent): it is a sequence number, not a byte of the queue.
    int fin = tcp.finInSendQueue() ? 1 : 0;
    int inq = repair.inputQueueSize();
    int outq = repair.outputQueueSize() - fin;
    int unsentWithFin = repair.unsentQueueSize();
    int unsent = unsentWithFin > 0 ? unsentWithFin - fin : 0;
    int mss = repair.mssClamp();
    int timestamp = info.timestamps() ? repair.timestamp() : 0;
    int recvSeq = repair.queueSequence(Queue.RECV);
    byte[] recvQueue = repair.peekQueue(Queue.RECV, inq);
    int sendSeq = repair.queueSequence(Queue.SEND);
    byte[] sendQueue = repair.peekQueue(Queue.SEND, outq);
    // With SEND selected the kernel marks a due segment sent without sending it; with none, the
    // closed window holds it back until the socket is closed or put back. (A pacing tick that
    // falls inside the send queue's read still marks the rest sent: harmless to a socket that is
    // closed next, and on one put back, the client's ACKs have loss recovery send it.)
    repair.select(Queue.NONE);
    int unacked = outq - unsent;
    var local = socket.localAddress();
    CarriedOptions options =
        CarriedOptions.read(socket, !(local.getAddress() instanceof Inet4Address));
    return new SocketState(
        local,
        socket.remoteAddress(),
        sendSeq,
        recvSeq,
        mss,
        info.windowScaling(),
        info.windowScaling() ? info.sndWscale() : 0,
        info.windowScaling() ? info.rcvWscale() : 0,
        info.sack(),
        info.timestamps(),
        timestamp,
        window,
        Arrays.copyOfRange(sendQueue, 0, unacked),
        Arrays.copyOfRange(sendQueue, unacked, outq),
        recvQueue,
        System.currentTimeMillis(),
        Optional.of(options),
        tcp,
        Optional.of(CongestionState.of(info)));
  }
}
