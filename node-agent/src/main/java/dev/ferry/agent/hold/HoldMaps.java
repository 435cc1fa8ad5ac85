// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import java.util.List;

/**
 * Names and flags shared with the BPF programs; mirrors bpf/hold.h and bpf/hold_maps.h. A change
 * there is a change here, and StructLayoutTest checks the sizes.
 */
public final class HoldMaps {
  /** The TC program rewrites the server's advertised window to 0. */
  public static final int F_ZERO_WINDOW = 1;

  /** The XDP program drops the client's segments (the socket still exists). */
  public static final int F_DROP = 1 << 1;

  /** The XDP program answers the client's segments (the socket is gone). */
  public static final int F_ANSWER = 1 << 2;

  /** The connection negotiated timestamps: answers carry a TSval that keeps advancing. */
  public static final int F_TIMESTAMPS = 1 << 3;

  /** The TC program drops the server's segments (a staged socket must stay silent). */
  public static final int F_MUTE = 1 << 4;

  /** The TC program makes the restored socket's window probe acceptable to the client. */
  public static final int F_WAKE = 1 << 5;

  static final String HOLDS = "ferry_holds";
  static final String STATS = "ferry_hstats";
  static final String COUNTERS = "ferry_counters";

  /** Ring buffer of {@link KeptBytes} records; missing where an older agent pinned the maps. */
  static final String KEPT = "ferry_kept";

  /** Per-CPU counters: index {@link #CNT_KEPT} and {@link #CNT_NOT_KEPT} (enum kept_counter). */
  static final String KEPT_COUNTS = "ferry_kept_cnt";

  /** hold_xdp's per-CPU scratch for one record; pinned only because every map is. */
  static final String KEPT_SCRATCH = "ferry_kept_buf";

  /**
   * Each held client's latest acknowledgment ({@code struct client_ack}, {@link #ACK_SIZE} bytes);
   * missing where an older agent pinned the maps.
   */
  static final String ACKS = "ferry_acks";

  static final int ACK_SIZE = 16;

  static final int CNT_KEPT = 0;
  static final int CNT_NOT_KEPT = 1;

  /**
   * Every map the objects pin, for removal; agents before the ring pinned only the first three, and
   * those before the acknowledgments all but the last.
   */
  static final List<String> PINNED =
      List.of(HOLDS, STATS, COUNTERS, KEPT, KEPT_COUNTS, KEPT_SCRATCH, ACKS);

  static final String TC_OBJECT = "bpf/hold_tc.bpf.o";
  static final String XDP_OBJECT = "bpf/hold_xdp.bpf.o";
  static final String TC_PROGRAM = "hold_tc";
  static final String XDP_PROGRAM = "hold_xdp";

  private HoldMaps() {}
}
