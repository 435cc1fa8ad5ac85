// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.RepairSocket;
import dev.ferry.sys.RepairSocket.Queue;
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
 * is read) and closes the socket afterwards; closing in repair mode sends nothing.
 */
public final class SocketExporter {

  /**
   * Exports the socket, leaving it in repair mode for the caller to close.
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
    try {
      return read(socket, repair);
    } catch (SyscallException | RuntimeException e) {
      try {
        repair.leave();
      } catch (SyscallException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw new ExportException(socket + ": export failed, socket left as it was", e);
    }
  }

  private static SocketState read(TcpSocket socket, RepairSocket repair) throws SyscallException {
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
    var window = repair.window();
    int recvSeq = repair.queueSequence(Queue.RECV);
    byte[] recvQueue = repair.peekQueue(Queue.RECV, inq);
    int sendSeq = repair.queueSequence(Queue.SEND);
    byte[] sendQueue = repair.peekQueue(Queue.SEND, outq);
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
