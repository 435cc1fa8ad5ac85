// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.RepairWindow;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.util.Objects;
import java.util.Optional;

/**
 * Everything needed to rebuild one TCP socket elsewhere, ESTABLISHED or half-closed: addresses,
 * sequence numbers, negotiated options, window, the bytes in both queues, the socket options the
 * application set and the FINs already sent or received.
 *
 * @param sendSeq write_seq as the kernel had it: after the last byte the application wrote, and
 *     after our FIN when one was queued ({@link MovableState#sentFin})
 * @param recvSeq rcv_nxt as the kernel had it: after the last byte received, and after the peer's
 *     FIN when it arrived ({@link MovableState#receivedFin})
 * @param mssClamp the MSS the peer announced
 * @param timestamp TCP_TIMESTAMP when exported: the TSval clock, in ms, or in us when the low bit
 *     is set (Linux 6.7+ microsecond timestamps); meaningful with timestamps
 * @param sendUnacked send-queue bytes transmitted but not acknowledged
 * @param sendUnsent send-queue bytes never transmitted
 * @param recvQueue bytes received and acknowledged but not read by the application
 * @param exportedAtMillis wall-clock time of the export, ms since the epoch
 * @param options the socket options; empty in a state from an agent that carried none, which
 *     restores with the kernel's defaults
 * @param tcpState the state it was exported in; ESTABLISHED in a state from an agent that moved no
 *     other
 * @param congestion the congestion window and threshold; empty in a state from an agent that
 *     carried none, which restores with the kernel's initial window
 */
public record SocketState(
    InetSocketAddress local,
    InetSocketAddress remote,
    int sendSeq,
    int recvSeq,
    int mssClamp,
    boolean windowScaling,
    int sndWscale,
    int rcvWscale,
    boolean sack,
    boolean timestamps,
    int timestamp,
    RepairWindow window,
    byte[] sendUnacked,
    byte[] sendUnsent,
    byte[] recvQueue,
    long exportedAtMillis,
    Optional<CarriedOptions> options,
    MovableState tcpState,
    Optional<CongestionState> congestion) {

  /** RFC 7323 caps the shift at 14. */
  public static final int MAX_WSCALE = 14;

  public SocketState {
    Objects.requireNonNull(local, "local");
    Objects.requireNonNull(remote, "remote");
    Objects.requireNonNull(window, "window");
    Objects.requireNonNull(sendUnacked, "sendUnacked");
    Objects.requireNonNull(sendUnsent, "sendUnsent");
    Objects.requireNonNull(recvQueue, "recvQueue");
    Objects.requireNonNull(options, "options");
    Objects.requireNonNull(tcpState, "tcpState");
    Objects.requireNonNull(congestion, "congestion");
    if (tcpState.finAcknowledged && (sendUnacked.length > 0 || sendUnsent.length > 0)) {
      throw new IllegalArgumentException(
          tcpState + " has every byte acknowledged, yet the send queue holds some");
    }
    if (local.getAddress() == null || remote.getAddress() == null) {
      throw new IllegalArgumentException("local and remote must be resolved IP addresses");
    }
    if ((local.getAddress() instanceof Inet4Address)
        != (remote.getAddress() instanceof Inet4Address)) {
      throw new IllegalArgumentException(
          "local " + local + " and remote " + remote + " are of different address families");
    }
    if (local.getPort() == 0 || remote.getPort() == 0) {
      throw new IllegalArgumentException("ports must be 1-65535: " + local + " / " + remote);
    }
    if (mssClamp <= 0 || mssClamp > 0xffff) {
      throw new IllegalArgumentException("mssClamp must be 1-65535, got " + mssClamp);
    }
    if (sndWscale < 0 || sndWscale > MAX_WSCALE || rcvWscale < 0 || rcvWscale > MAX_WSCALE) {
      throw new IllegalArgumentException(
          "window scales must be 0-" + MAX_WSCALE + ", got " + sndWscale + "/" + rcvWscale);
    }
  }

  /** This state with {@code options} instead of its own (an older agent's has none). */
  public SocketState withOptions(Optional<CarriedOptions> options) {
    return new SocketState(
        local,
        remote,
        sendSeq,
        recvSeq,
        mssClamp,
        windowScaling,
        sndWscale,
        rcvWscale,
        sack,
        timestamps,
        timestamp,
        window,
        sendUnacked,
        sendUnsent,
        recvQueue,
        exportedAtMillis,
        options,
        tcpState,
        congestion);
  }

  /** This state as if exported in {@code tcpState}: for tests of the FIN accounting. */
  public SocketState withTcpState(MovableState tcpState) {
    return new SocketState(
        local,
        remote,
        sendSeq,
        recvSeq,
        mssClamp,
        windowScaling,
        sndWscale,
        rcvWscale,
        sack,
        timestamps,
        timestamp,
        window,
        sendUnacked,
        sendUnsent,
        recvQueue,
        exportedAtMillis,
        options,
        tcpState,
        congestion);
  }

  /** This state with {@code congestion} instead of its own (an older agent's has none). */
  public SocketState withCongestion(Optional<CongestionState> congestion) {
    return new SocketState(
        local,
        remote,
        sendSeq,
        recvSeq,
        mssClamp,
        windowScaling,
        sndWscale,
        rcvWscale,
        sack,
        timestamps,
        timestamp,
        window,
        sendUnacked,
        sendUnsent,
        recvQueue,
        exportedAtMillis,
        options,
        tcpState,
        congestion);
  }

  /** An ESTABLISHED socket's state, as agents before half-closed connections moved exported it. */
  public SocketState(
      InetSocketAddress local,
      InetSocketAddress remote,
      int sendSeq,
      int recvSeq,
      int mssClamp,
      boolean windowScaling,
      int sndWscale,
      int rcvWscale,
      boolean sack,
      boolean timestamps,
      int timestamp,
      RepairWindow window,
      byte[] sendUnacked,
      byte[] sendUnsent,
      byte[] recvQueue,
      long exportedAtMillis,
      Optional<CarriedOptions> options) {
    this(
        local,
        remote,
        sendSeq,
        recvSeq,
        mssClamp,
        windowScaling,
        sndWscale,
        rcvWscale,
        sack,
        timestamps,
        timestamp,
        window,
        sendUnacked,
        sendUnsent,
        recvQueue,
        exportedAtMillis,
        options,
        MovableState.ESTABLISHED,
        Optional.empty());
  }

  /** A state without socket options, as agents before they were carried exported it. */
  public SocketState(
      InetSocketAddress local,
      InetSocketAddress remote,
      int sendSeq,
      int recvSeq,
      int mssClamp,
      boolean windowScaling,
      int sndWscale,
      int rcvWscale,
      boolean sack,
      boolean timestamps,
      int timestamp,
      RepairWindow window,
      byte[] sendUnacked,
      byte[] sendUnsent,
      byte[] recvQueue,
      long exportedAtMillis) {
    this(
        local,
        remote,
        sendSeq,
        recvSeq,
        mssClamp,
        windowScaling,
        sndWscale,
        rcvWscale,
        sack,
        timestamps,
        timestamp,
        window,
        sendUnacked,
        sendUnsent,
        recvQueue,
        exportedAtMillis,
        Optional.empty());
  }

  /** Whether the addresses are IPv6. */
  public boolean ipv6() {
    return !(local.getAddress() instanceof Inet4Address);
  }

  /**
   * snd_una as the kernel had it: what the peer acknowledged, our FIN included once it did (the
   * hold answers the client with it).
   */
  public int sendQueueSeq() {
    return sendSeq - (tcpState.finInSendQueue() ? 1 : 0) - sendUnacked.length - sendUnsent.length;
  }

  /**
   * The first sequence number of the send queue as restored: the data's, without our FIN, which the
   * restored socket sends again (once more if the peer had acknowledged it already).
   */
  public int restoredSendQueueSeq() {
    return sendSeq - (tcpState.sentFin ? 1 : 0) - sendUnacked.length - sendUnsent.length;
  }

  /** The first sequence number of the receive queue (copied_seq), without the peer's FIN. */
  public int recvQueueSeq() {
    return dataRecvSeq() - recvQueue.length;
  }

  /** rcv_nxt before the peer's FIN: where the restored socket expects it. */
  public int dataRecvSeq() {
    return recvSeq - (tcpState.receivedFin ? 1 : 0);
  }

  /** "198.18.0.100:8080 <- 198.18.0.1:40312", for messages and logs. */
  public String connection() {
    return local.getAddress().getHostAddress()
        + ":"
        + local.getPort()
        + " <- "
        + remote.getAddress().getHostAddress()
        + ":"
        + remote.getPort();
  }

  @Override
  public String toString() {
    return "SocketState["
        + connection()
        + ", "
        + tcpState
        + ", sendSeq="
        + Integer.toUnsignedString(sendSeq)
        + ", recvSeq="
        + Integer.toUnsignedString(recvSeq)
        + ", unacked="
        + sendUnacked.length
        + ", unsent="
        + sendUnsent.length
        + ", recvQueue="
        + recvQueue.length
        + "]";
  }
}
