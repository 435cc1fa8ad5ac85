// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.RepairWindow;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.util.Objects;
import java.util.Optional;

/**
 * Everything needed to rebuild one ESTABLISHED TCP socket elsewhere: addresses, sequence numbers,
 * negotiated options, window, the bytes in both queues and the socket options the application set.
 *
 * @param sendSeq write_seq: the sequence number after the last byte the application wrote
 * @param recvSeq rcv_nxt: the sequence number after the last byte received
 * @param mssClamp the MSS the peer announced
 * @param timestamp TCP_TIMESTAMP when exported: the TSval clock, in ms, or in us when the low bit
 *     is set (Linux 6.7+ microsecond timestamps); meaningful with timestamps
 * @param sendUnacked send-queue bytes transmitted but not acknowledged
 * @param sendUnsent send-queue bytes never transmitted
 * @param recvQueue bytes received and acknowledged but not read by the application
 * @param exportedAtMillis wall-clock time of the export, ms since the epoch
 * @param options the socket options; empty in a state from an agent that carried none, which
 *     restores with the kernel's defaults
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
    Optional<CarriedOptions> options) {

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
        options);
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

  /** The first sequence number of the send queue (snd_una). */
  public int sendQueueSeq() {
    return sendSeq - sendUnacked.length - sendUnsent.length;
  }

  /** The first sequence number of the receive queue (copied_seq). */
  public int recvQueueSeq() {
    return recvSeq - recvQueue.length;
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
