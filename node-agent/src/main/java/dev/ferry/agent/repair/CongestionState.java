// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.TcpInfo;

/**
 * How fast a connection was allowed to send when it was exported, as TCP_INFO reported it. A socket
 * rebuilt with TCP_REPAIR starts from the kernel's initial window (10 segments) and would
 * slow-start again from there; {@link CongestionSeed} gives it these values instead.
 *
 * @param cwnd tcpi_snd_cwnd, segments
 * @param ssthresh tcpi_snd_ssthresh, segments; {@link TcpInfo#INFINITE_SSTHRESH} while the
 *     connection is still in its first slow start
 * @param caState tcpi_ca_state: 0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4 Loss
 * @param rttMicros tcpi_rtt: carried for the record, since nothing can set it on the restored
 *     socket; its first acknowledgement gives it a sample
 * @param deliveryRate tcpi_delivery_rate, bytes per second: the restored socket paces its first
 *     flight at it; 0 where the source's kernel had no sample
 */
public record CongestionState(
    int cwnd, int ssthresh, int caState, int rttMicros, long deliveryRate) {
  private static final int CA_LOSS = 4;

  public CongestionState {
    if (cwnd < 1) {
      throw new IllegalArgumentException(
          "congestion.cwnd must be 1 or more segments, got " + Integer.toUnsignedString(cwnd));
    }
    if (ssthresh < 1) {
      throw new IllegalArgumentException(
          "congestion.ssthresh must be 1-2147483647 segments, got "
              + Integer.toUnsignedString(ssthresh));
    }
    if (caState < 0 || caState > CA_LOSS) {
      throw new IllegalArgumentException("congestion.ca_state must be 0-4, got " + caState);
    }
    if (deliveryRate < 0) {
      throw new IllegalArgumentException(
          "congestion.delivery_rate must be 0-9223372036854775807 bytes/s, got "
              + Long.toUnsignedString(deliveryRate));
    }
    if (rttMicros < 0) {
      throw new IllegalArgumentException(
          "congestion.rtt_us must be 0-2147483647, got " + Integer.toUnsignedString(rttMicros));
    }
  }

  static CongestionState of(TcpInfo info) {
    return new CongestionState(
        info.sndCwnd(), info.sndSsthresh(), info.caState(), info.rttMicros(), info.deliveryRate());
  }

  /** The kernel's initial window (TCP_INIT_CWND), in segments. */
  static final int INITIAL_WINDOW = 10;

  /**
   * The window to start from, given the segments the restored socket counts in flight: those the
   * source had sent and the client had not acknowledged when it was frozen (the client's ACKs of
   * them were held). A window cut for a loss being repaired (CWR, Recovery) is what the source
   * would have gone on with, and is kept; after a retransmission timeout (Loss) the window is 1,
   * and the initial one is used instead.
   *
   * <p>Never less than the segments in flight plus the initial window. Most of what was in flight
   * has reached the client by the resume; a socket with no room left sends nothing new until some
   * of it is acknowledged, and a downloading client, with nothing to send, acknowledges nothing
   * until a timer of the restored socket fires (1 s or more, as it has no RTT sample yet).
   */
  int seedCwnd(int inFlightSegments) {
    int own = caState == CA_LOSS ? INITIAL_WINDOW : cwnd;
    return (int)
        Math.min(Integer.MAX_VALUE, Math.max(own, (long) inFlightSegments + INITIAL_WINDOW));
  }
}
