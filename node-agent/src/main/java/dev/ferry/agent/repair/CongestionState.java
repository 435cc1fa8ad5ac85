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
 */
public record CongestionState(int cwnd, int ssthresh, int caState, int rttMicros) {
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
    if (rttMicros < 0) {
      throw new IllegalArgumentException(
          "congestion.rtt_us must be 0-2147483647, got " + Integer.toUnsignedString(rttMicros));
    }
  }

  static CongestionState of(TcpInfo info) {
    return new CongestionState(
        info.sndCwnd(), info.sndSsthresh(), info.caState(), info.rttMicros());
  }

  /**
   * The window to start from, or 0 to keep the kernel's initial one: in CWR, Recovery or Loss the
   * window is cut for as long as the loss is being repaired, and starting from it would keep the
   * cut; ssthresh, already lowered, then leads the slow start back.
   */
  int seedCwnd() {
    return caState <= TcpInfo.CA_DISORDER ? cwnd : 0;
  }
}
