// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The fields of {@code struct tcp_info} (linux/tcp.h) that Ferry reads.
 *
 * @param state TCP_ESTABLISHED is 1; see {@link #stateName()}
 * @param options tcpi_options: {@link #OPT_TIMESTAMPS}, {@link #OPT_SACK}, {@link #OPT_WSCALE}
 * @param sndWscale the shift the peer announced, applied to windows it sends
 * @param rcvWscale the shift we announced, applied to windows we send
 * @param caState tcpi_ca_state: {@link #CA_OPEN} unless the connection is recovering from a loss
 * @param rttMicros tcpi_rtt, the smoothed RTT; 0 before the first sample
 * @param sndSsthresh tcpi_snd_ssthresh, segments; {@link #INFINITE_SSTHRESH} in the first slow
 *     start
 */
public record TcpInfo(
    int state,
    int options,
    int sndWscale,
    int rcvWscale,
    int rtoMicros,
    int sndMss,
    int rcvMss,
    int advMss,
    int unacked,
    int sndCwnd,
    int caState,
    int rttMicros,
    int sndSsthresh,
    long deliveryRate,
    long pacingRate) {

  public static final int ESTABLISHED = 1;
  public static final int OPT_TIMESTAMPS = 1;
  public static final int OPT_SACK = 2;
  public static final int OPT_WSCALE = 4;

  /** enum tcp_ca_state: no loss seen (Open), or only reordering or duplicate ACKs (Disorder). */
  public static final int CA_OPEN = 0;

  public static final int CA_DISORDER = 1;

  /** TCP_INFINITE_SSTHRESH: ssthresh until the first loss ends slow start. */
  public static final int INFINITE_SSTHRESH = 0x7fffffff;

  /** Bytes up to and including tcpi_advmss; every kernel since 2.6 returns at least this. */
  static final int MIN_LENGTH = 88;

  /** Bytes up to and including tcpi_delivery_rate (Linux 4.9+). */
  static final int DELIVERY_RATE_END = 168;

  private static final String[] STATES = {
    "UNKNOWN",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV"
  };

  static TcpInfo parse(byte[] raw) {
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    // Byte 6 holds the bitfields tcpi_snd_wscale:4 (low nibble) and tcpi_rcv_wscale:4.
    int scales = b.get(6) & 0xff;
    return new TcpInfo(
        b.get(0) & 0xff,
        b.get(5) & 0xff,
        scales & 0x0f,
        scales >> 4,
        b.getInt(8),
        b.getInt(16),
        b.getInt(20),
        b.getInt(84),
        b.getInt(24),
        b.getInt(80),
        b.get(1) & 0xff,
        b.getInt(68),
        b.getInt(76),
        raw.length >= DELIVERY_RATE_END ? b.getLong(160) : 0,
        raw.length >= DELIVERY_RATE_END ? b.getLong(104) : 0);
  }

  public String stateName() {
    return stateName(state);
  }

  /** The name of a TCP state number (net/tcp_states.h), as {@code ss} prints it. */
  public static String stateName(int state) {
    return state >= 0 && state < STATES.length ? STATES[state] : "state " + state;
  }

  public boolean timestamps() {
    return (options & OPT_TIMESTAMPS) != 0;
  }

  public boolean sack() {
    return (options & OPT_SACK) != 0;
  }

  public boolean windowScaling() {
    return (options & OPT_WSCALE) != 0;
  }
}
