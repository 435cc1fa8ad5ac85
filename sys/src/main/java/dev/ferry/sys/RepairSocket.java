// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;

/**
 * A TCP socket in repair mode ({@code TCP_REPAIR}): its state can be read and written without the
 * peer seeing anything.
 *
 * <p><b>Dump</b>, on a socket the peer can no longer change (held or unreachable):
 *
 * <ol>
 *   <li>{@link #enter}: TCP_REPAIR = 1. From here no segment leaves the socket.
 *   <li>{@link TcpSocket#info()}: state, negotiated options, window scales.
 *   <li>{@link #inputQueueSize()}, {@link #outputQueueSize()}, {@link #unsentQueueSize()}.
 *   <li>{@link #mssClamp()} (in repair mode TCP_MAXSEG reports the clamp, not the current MSS),
 *       {@link #timestamp()}.
 *   <li>{@link #window()}.
 *   <li>For each queue: {@link #queueSequence}, then {@link #peekQueue}.
 *   <li>{@link TcpSocket#close()} while still in repair mode: no FIN, no RST.
 * </ol>
 *
 * <p><b>Restore</b>, into a fresh socket:
 *
 * <ol>
 *   <li>{@link #enter}, then {@code bind} to the original local address (it must exist in this
 *       namespace). Repair mode forces address reuse, so a listener on the same port is no
 *       obstacle; setting SO_REUSEADDR afterwards would undo that.
 *   <li>{@link #setQueueSequence} for both queues: only while the socket is closed.
 *   <li>{@code connect}: straight to ESTABLISHED, no SYN.
 *   <li>{@link #setOptions}: only while ESTABLISHED and before any byte is queued.
 *   <li>{@link #setTimestamp} so the peer's PAWS check keeps passing.
 *   <li>{@link #fillQueue} for the receive queue, then the sent-but-unacknowledged part of the send
 *       queue (the kernel counts it as in flight and arms retransmission).
 *   <li>{@link #setWindow} last: the kernel checks it against rcv_nxt.
 *   <li>{@link #leave}: the kernel sends a window probe, which wakes a peer parked in zero-window
 *       persist. Bytes never sent are then written as ordinary data.
 * </ol>
 */
public final class RepairSocket {
  /** TCP_REPAIR_QUEUE values. */
  public enum Queue {
    /**
     * TCP_NO_QUEUE. With SEND selected, the kernel's transmit path does not transmit: it marks each
     * segment due as sent and moves on (how a restore fills the send queue); with no queue
     * selected, a socket in repair mode transmits as it would otherwise.
     */
    NONE(0),
    RECV(1),
    SEND(2);

    final int code;

    Queue(int code) {
      this.code = code;
    }
  }

  private static final int TCP_REPAIR_ON = 1;
  private static final int TCP_REPAIR_OFF = 0;
  private static final int MIN_CHUNK = 4096;
  private static final int MAX_GROWTH = 8;

  private final TcpSocket socket;

  private RepairSocket(TcpSocket socket) {
    this.socket = socket;
  }

  /** Puts the socket into repair mode; needs CAP_NET_ADMIN in its network namespace. */
  public static RepairSocket enter(TcpSocket socket) throws SyscallException {
    socket.setInt(Native.SOL_TCP, Native.TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR=1");
    return new RepairSocket(socket);
  }

  public TcpSocket socket() {
    return socket;
  }

  /** Leaves repair mode; on an ESTABLISHED socket the kernel sends a window probe. */
  public void leave() throws SyscallException {
    socket.setInt(Native.SOL_TCP, Native.TCP_REPAIR, TCP_REPAIR_OFF, "TCP_REPAIR=0");
  }

  /** SIOCINQ: received bytes not yet read. */
  public int inputQueueSize() throws SyscallException {
    return socket.ioctlInt(Native.SIOCINQ, "SIOCINQ");
  }

  /** SIOCOUTQ: written bytes not yet acknowledged (write_seq - snd_una). */
  public int outputQueueSize() throws SyscallException {
    return socket.ioctlInt(Native.SIOCOUTQ, "SIOCOUTQ");
  }

  /** SIOCOUTQNSD: the part of {@link #outputQueueSize()} never sent. */
  public int unsentQueueSize() throws SyscallException {
    return socket.ioctlInt(Native.SIOCOUTQNSD, "SIOCOUTQNSD");
  }

  public int mssClamp() throws SyscallException {
    return socket.getInt(Native.SOL_TCP, Native.TCP_MAXSEG, "TCP_MAXSEG");
  }

  /** The connection's TSval clock, in its own units (ms). */
  public int timestamp() throws SyscallException {
    return socket.getInt(Native.SOL_TCP, Native.TCP_TIMESTAMP, "TCP_TIMESTAMP");
  }

  public void setTimestamp(int tsval) throws SyscallException {
    socket.setInt(Native.SOL_TCP, Native.TCP_TIMESTAMP, tsval, "TCP_TIMESTAMP");
  }

  public RepairWindow window() throws SyscallException {
    byte[] raw =
        socket.getBytes(
            Native.SOL_TCP, Native.TCP_REPAIR_WINDOW, RepairWindow.SIZE, "TCP_REPAIR_WINDOW");
    if (raw.length != RepairWindow.SIZE) {
      throw new IllegalStateException(
          "getsockopt(fd="
              + socket.fd()
              + ", TCP_REPAIR_WINDOW) returned "
              + raw.length
              + " bytes");
    }
    return RepairWindow.parse(raw);
  }

  public void setWindow(RepairWindow window) throws SyscallException {
    socket.setBytes(Native.SOL_TCP, Native.TCP_REPAIR_WINDOW, window.encode(), "TCP_REPAIR_WINDOW");
  }

  public void setOptions(RepairOptions options) throws SyscallException {
    socket.setBytes(
        Native.SOL_TCP, Native.TCP_REPAIR_OPTIONS, options.encode(), "TCP_REPAIR_OPTIONS");
  }

  /** TCP_QUEUE_SEQ of {@code queue}: rcv_nxt for RECV, write_seq for SEND. */
  public int queueSequence(Queue queue) throws SyscallException {
    select(queue);
    return socket.getInt(Native.SOL_TCP, Native.TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ(" + queue + ")");
  }

  /** Sets the first sequence number of {@code queue}'s bytes; before connect only. */
  public void setQueueSequence(Queue queue, int seq) throws SyscallException {
    select(queue);
    socket.setInt(Native.SOL_TCP, Native.TCP_QUEUE_SEQ, seq, "TCP_QUEUE_SEQ(" + queue + ")");
  }

  /**
   * Copies exactly {@code length} bytes of {@code queue} without consuming them.
   *
   * @throws IllegalStateException if the queue does not hold exactly that many bytes: it changed
   *     since it was measured, which means the socket was not held
   */
  public byte[] peekQueue(Queue queue, int length) throws SyscallException {
    select(queue);
    // Ask for one byte more than expected, so that a queue that grew is noticed.
    ByteBuffer buf = ByteBuffer.allocate(length + 1);
    // An empty queue answers EAGAIN rather than 0.
    long got = Math.max(0, socket.recv(buf, length + 1, Native.MSG_PEEK | Native.MSG_DONTWAIT));
    if (got != length) {
      throw new IllegalStateException(
          "fd="
              + socket.fd()
              + ": "
              + queue
              + " queue holds "
              + got
              + " bytes, expected "
              + length
              + " (did the connection change while it was being exported?)");
    }
    byte[] out = new byte[length];
    buf.get(0, out);
    return out;
  }

  /**
   * Queues {@code data} into {@code queue} as if it had been received (RECV) or sent (SEND).
   *
   * <p>Whatever the socket's blocking mode, each write is {@code MSG_DONTWAIT}. The kernel refuses
   * a large chunk with ENOMEM (receive memory) or EAGAIN (send buffer); the chunk is halved, and
   * when even a small one does not fit, the buffer is grown with SO_*BUFFORCE: the original socket
   * held these bytes, so the new one must too.
   */
  public void fillQueue(Queue queue, byte[] data) throws SyscallException {
    if (data.length == 0) {
      return;
    }
    select(queue);
    ByteBuffer buf = ByteBuffer.wrap(data);
    int chunk = data.length;
    int grown = 0;
    while (buf.hasRemaining()) {
      int len = Math.min(chunk, buf.remaining());
      long n;
      try {
        n = socket.send(buf.slice(), len, Native.MSG_DONTWAIT);
      } catch (SyscallException e) {
        if (e.errno() != Errno.ENOMEM) {
          throw e;
        }
        n = 0;
      }
      if (n > 0) {
        buf.position(buf.position() + (int) n);
      } else if (chunk > MIN_CHUNK) {
        chunk = Math.max(MIN_CHUNK, chunk / 2);
      } else if (grown++ < MAX_GROWTH) {
        growBuffer(queue, buf.remaining());
      } else {
        throw new IllegalStateException(
            "fd="
                + socket.fd()
                + ": the kernel keeps refusing "
                + queue
                + " queue data ("
                + buf.remaining()
                + " of "
                + data.length
                + " bytes left) after growing the buffer");
      }
    }
  }

  private void growBuffer(Queue queue, int needed) throws SyscallException {
    if (queue == Queue.RECV) {
      int size = socket.receiveBuffer();
      socket.forceReceiveBuffer(Math.max(size, needed) * 2);
    } else {
      int size = socket.sendBuffer();
      socket.forceSendBuffer(Math.max(size, needed) * 2);
    }
  }

  /** Selects the queue that TCP_QUEUE_SEQ and reads and writes in repair mode act on. */
  public void select(Queue queue) throws SyscallException {
    socket.setInt(Native.SOL_TCP, Native.TCP_REPAIR_QUEUE, queue.code, "TCP_REPAIR_QUEUE=" + queue);
  }
}
