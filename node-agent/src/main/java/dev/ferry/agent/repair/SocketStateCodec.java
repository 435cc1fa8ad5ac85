// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.ferry.api.v1alpha1.SocketOptions;
import dev.ferry.api.v1alpha1.TcpSocketState;
import dev.ferry.sys.RepairWindow;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Optional;
import java.util.zip.CRC32C;

/**
 * Encodes a {@link SocketState} as the versioned protobuf message {@link TcpSocketState} and
 * decodes it back, rejecting anything truncated, corrupted or malformed with {@link
 * InvalidSocketStateException}.
 *
 * <p>{@link #encode} appends the checksum field itself, over the bytes protobuf wrote; {@link
 * #toMessage} and {@link #fromMessage} carry a state inside a larger message (the agents' gRPC
 * stream) whose transport already guards integrity.
 */
public final class SocketStateCodec {
  /**
   * The format this agent writes for an ESTABLISHED socket. Socket options came within it, as an
   * optional field (see socket_state.proto): a state without them still reads.
   */
  public static final int FORMAT_VERSION = 1;

  /**
   * The format of a half-closed socket's state: version 1 and its tcp_state. An agent that reads
   * only version 1 refuses it rather than restore a FIN as a byte.
   */
  public static final int HALF_CLOSED_FORMAT_VERSION = 2;

  private static final int OPT_TIMESTAMPS = 1;
  private static final int OPT_SACK = 2;
  private static final int OPT_WSCALE = 4;

  private SocketStateCodec() {}

  /** Field 17, wire type 5 (fixed32): the varint tag 0x8d 0x01. */
  private static final byte[] CHECKSUM_TAG = {(byte) 0x8d, 0x01};

  private static final int TRAILER = CHECKSUM_TAG.length + 4;

  /** The message followed by its checksum field. */
  public static byte[] encode(SocketState s) {
    byte[] body = toMessage(s).toByteArray();
    byte[] out = Arrays.copyOf(body, body.length + TRAILER);
    System.arraycopy(CHECKSUM_TAG, 0, out, body.length, CHECKSUM_TAG.length);
    ByteBuffer.wrap(out, body.length + CHECKSUM_TAG.length, 4)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putInt(crc32c(out, body.length));
    return out;
  }

  public static TcpSocketState toMessage(SocketState s) {
    int options =
        (s.timestamps() ? OPT_TIMESTAMPS : 0)
            | (s.sack() ? OPT_SACK : 0)
            | (s.windowScaling() ? OPT_WSCALE : 0);
    RepairWindow w = s.window();
    TcpSocketState.Builder b = TcpSocketState.newBuilder();
    s.options().ifPresent(o -> b.setSocketOptions(toMessage(o)));
    s.congestion().ifPresent(c -> b.setCongestion(toMessage(c)));
    if (s.tcpState() != MovableState.ESTABLISHED) {
      b.setFormatVersion(HALF_CLOSED_FORMAT_VERSION).setTcpState(s.tcpState().kernelState);
    } else {
      b.setFormatVersion(FORMAT_VERSION);
    }
    return b.setLocalAddress(ByteString.copyFrom(s.local().getAddress().getAddress()))
        .setLocalPort(s.local().getPort())
        .setRemoteAddress(ByteString.copyFrom(s.remote().getAddress().getAddress()))
        .setRemotePort(s.remote().getPort())
        .setSendSeq(s.sendSeq())
        .setRecvSeq(s.recvSeq())
        .setMssClamp(s.mssClamp())
        .setSndWscale(s.sndWscale())
        .setRcvWscale(s.rcvWscale())
        .setOptions(options)
        .setTimestamp(s.timestamp())
        .setWindow(
            dev.ferry.api.v1alpha1.RepairWindow.newBuilder()
                .setSndWl1(w.sndWl1())
                .setSndWnd(w.sndWnd())
                .setMaxWindow(w.maxWindow())
                .setRcvWnd(w.rcvWnd())
                .setRcvWup(w.rcvWup()))
        .setSendUnacked(ByteString.copyFrom(s.sendUnacked()))
        .setSendUnsent(ByteString.copyFrom(s.sendUnsent()))
        .setRecvQueue(ByteString.copyFrom(s.recvQueue()))
        .setExportedAtUnixMs(s.exportedAtMillis())
        .build();
  }

  private static SocketOptions toMessage(CarriedOptions o) {
    return SocketOptions.newBuilder()
        .setNoDelay(o.noDelay())
        .setCork(o.cork())
        .setKeepAlive(o.keepAlive())
        .setKeepIdleS(o.keepIdle())
        .setKeepIntervalS(o.keepInterval())
        .setKeepCount(o.keepCount())
        .setUserTimeoutMs(o.userTimeout())
        .setCongestion(o.congestion())
        .setNotSentLowat(o.notSentLowWatermark())
        .setMark(o.mark())
        .setPriority(o.priority())
        .setTrafficClass(o.trafficClass())
        .setLockedSendBuffer(o.lockedSendBuffer())
        .setLockedReceiveBuffer(o.lockedReceiveBuffer())
        .setLinger(o.linger())
        .setLingerS(o.lingerSeconds())
        .build();
  }

  private static dev.ferry.api.v1alpha1.CongestionState toMessage(CongestionState c) {
    return dev.ferry.api.v1alpha1.CongestionState.newBuilder()
        .setCwnd(c.cwnd())
        .setSsthresh(c.ssthresh())
        .setCaState(c.caState())
        .setRttUs(c.rttMicros())
        .setDeliveryRate(c.deliveryRate())
        .build();
  }

  private static CongestionState fromMessage(dev.ferry.api.v1alpha1.CongestionState m) {
    return new CongestionState(
        m.getCwnd(), m.getSsthresh(), m.getCaState(), m.getRttUs(), m.getDeliveryRate());
  }

  private static CarriedOptions fromMessage(SocketOptions m) {
    return new CarriedOptions(
        m.getNoDelay(),
        m.getCork(),
        m.getKeepAlive(),
        m.getKeepIdleS(),
        m.getKeepIntervalS(),
        m.getKeepCount(),
        m.getUserTimeoutMs(),
        m.getCongestion(),
        m.getNotSentLowat(),
        m.getMark(),
        m.getPriority(),
        m.getTrafficClass(),
        m.getLockedSendBuffer(),
        m.getLockedReceiveBuffer(),
        m.getLinger(),
        m.getLingerS());
  }

  public static SocketState decode(byte[] bytes) throws InvalidSocketStateException {
    verifyChecksum(bytes);
    TcpSocketState m;
    try {
      m = TcpSocketState.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new InvalidSocketStateException(
          "not a socket state (" + bytes.length + " bytes): " + e.getMessage(), e);
    }
    return fromMessage(m);
  }

  public static SocketState fromMessage(TcpSocketState m) throws InvalidSocketStateException {
    if (m.getFormatVersion() != FORMAT_VERSION
        && m.getFormatVersion() != HALF_CLOSED_FORMAT_VERSION) {
      throw new InvalidSocketStateException(
          m.getFormatVersion() == 0
              ? "socket state has no format_version: it was not written by a Ferry agent"
              : "socket state format_version "
                  + m.getFormatVersion()
                  + " is not supported: this agent reads versions "
                  + FORMAT_VERSION
                  + " and "
                  + HALF_CLOSED_FORMAT_VERSION
                  + "; run the same Ferry version on both nodes",
          null);
    }
    MovableState tcpState = tcpState(m);
    if (!m.hasWindow()) {
      throw new InvalidSocketStateException("socket state has no window", null);
    }
    var w = m.getWindow();
    try {
      return new SocketState(
          endpoint("local", m.getLocalAddress(), m.getLocalPort()),
          endpoint("remote", m.getRemoteAddress(), m.getRemotePort()),
          m.getSendSeq(),
          m.getRecvSeq(),
          m.getMssClamp(),
          (m.getOptions() & OPT_WSCALE) != 0,
          m.getSndWscale(),
          m.getRcvWscale(),
          (m.getOptions() & OPT_SACK) != 0,
          (m.getOptions() & OPT_TIMESTAMPS) != 0,
          m.getTimestamp(),
          new RepairWindow(
              w.getSndWl1(), w.getSndWnd(), w.getMaxWindow(), w.getRcvWnd(), w.getRcvWup()),
          m.getSendUnacked().toByteArray(),
          m.getSendUnsent().toByteArray(),
          m.getRecvQueue().toByteArray(),
          m.getExportedAtUnixMs(),
          // Absent from states written before options were carried: restored with defaults.
          m.hasSocketOptions() ? Optional.of(fromMessage(m.getSocketOptions())) : Optional.empty(),
          tcpState,
          // Absent from states written before it was carried: the kernel's initial window.
          m.hasCongestion() ? Optional.of(fromMessage(m.getCongestion())) : Optional.empty());
    } catch (IllegalArgumentException e) {
      throw new InvalidSocketStateException("invalid socket state: " + e.getMessage(), e);
    }
  }

  private static MovableState tcpState(TcpSocketState m) throws InvalidSocketStateException {
    int kernel = m.getTcpState() == 0 ? MovableState.ESTABLISHED.kernelState : m.getTcpState();
    MovableState s = MovableState.of(kernel).orElse(null);
    boolean halfClosed = s != null && s != MovableState.ESTABLISHED;
    if (s == null || halfClosed != (m.getFormatVersion() == HALF_CLOSED_FORMAT_VERSION)) {
      throw new InvalidSocketStateException(
          "socket state format_version "
              + m.getFormatVersion()
              + " with tcp_state "
              + m.getTcpState()
              + ": version 2 is for a half-closed state (4, 5, 8, 9 or 11), version 1 for"
              + " ESTABLISHED",
          null);
    }
    return s;
  }

  private static void verifyChecksum(byte[] bytes) throws InvalidSocketStateException {
    int body = bytes.length - TRAILER;
    if (body < 0 || bytes[body] != CHECKSUM_TAG[0] || bytes[body + 1] != CHECKSUM_TAG[1]) {
      throw new InvalidSocketStateException(
          "socket state ("
              + bytes.length
              + " bytes) does not end with its checksum: truncated"
              + " or not written by a Ferry agent",
          null);
    }
    int want =
        ByteBuffer.wrap(bytes, body + CHECKSUM_TAG.length, 4)
            .order(ByteOrder.LITTLE_ENDIAN)
            .getInt();
    int got = crc32c(bytes, body);
    if (want != got) {
      throw new InvalidSocketStateException(
          String.format(
              "socket state checksum mismatch (stored %08x, computed %08x): corrupted", want, got),
          null);
    }
  }

  private static int crc32c(byte[] bytes, int length) {
    CRC32C crc = new CRC32C();
    crc.update(bytes, 0, length);
    return (int) crc.getValue();
  }

  private static InetSocketAddress endpoint(String which, ByteString address, int port) {
    if (address.size() != 4 && address.size() != 16) {
      throw new IllegalArgumentException(
          which + "_address must be 4 or 16 bytes, got " + address.size());
    }
    if (port <= 0 || port > 0xffff) {
      throw new IllegalArgumentException(which + "_port must be 1-65535, got " + port);
    }
    try {
      return new InetSocketAddress(InetAddress.getByAddress(address.toByteArray()), port);
    } catch (UnknownHostException impossible) {
      throw new AssertionError(impossible);
    }
  }
}
