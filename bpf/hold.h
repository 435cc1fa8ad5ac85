/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Structs shared by the hold programs and the node-agent. The Java side mirrors them in
 * dev.ferry.agent.hold (HoldKey, HoldEntry, HoldStats, HoldMaps): change both together;
 * StructLayoutTest and the _Static_asserts below keep the sizes honest.
 */
#ifndef FERRY_HOLD_H
#define FERRY_HOLD_H

#include <linux/types.h>

#define HOLD_F_ZERO_WINDOW (1u << 0) /* TC: advertise a zero window to the client */
#define HOLD_F_DROP (1u << 1)        /* XDP: drop the client's segments */
#define HOLD_F_ANSWER (1u << 2)      /* XDP: the socket is gone, answer in its place */
#define HOLD_F_TIMESTAMPS (1u << 3)  /* answers carry a timestamp option */
#define HOLD_F_MUTE (1u << 4)        /* TC: drop the server's segments */
#define HOLD_F_WAKE (1u << 5)        /* TC: make the repair-off window probe acceptable */

/* One connection, seen from the server. 40 bytes. */
struct hold_key {
	__u8 local_addr[16];  /* server; IPv4 as ::ffff:a.b.c.d */
	__u8 remote_addr[16]; /* client; same encoding */
	__be16 local_port;
	__be16 remote_port;
	__u32 pad; /* always zero */
};

/* What to do for it. 40 bytes, host order. */
struct hold_value {
	__u32 flags;      /* HOLD_F_* */
	__u32 rcv_nxt;    /* ack number of answers: the exported rcv_nxt */
	__u32 ts_val;     /* exported TCP_TIMESTAMP clock: ms, or us when its low bit is set */
	__u32 wake_from;  /* sequence number of the restored socket's window probe */
	__u32 wake_to;    /* ... rewritten to this one (snd_nxt) */
	__u32 pad;
	__u64 ts_base_ns; /* CLOCK_MONOTONIC when ts_val was read */
	__u64 deadline_ns; /* CLOCK_MONOTONIC; past it the programs let the connection go */
};

/* Per-connection counters. 40 bytes. */
struct hold_stats {
	__u64 probes_answered;
	__u64 segments_dropped;
	__u64 windows_zeroed;
	__u64 resets;
	__u64 expired;
};

/* Index of each per-CPU counter in ferry_counters: one per decision. */
enum hold_counter {
	CNT_TC_SEEN,
	CNT_TC_ZEROED,
	CNT_TC_MUTED,
	CNT_TC_WOKEN,
	CNT_XDP_SEEN,
	CNT_XDP_ANSWERED,
	CNT_XDP_DROPPED,
	CNT_XDP_RESET,
	CNT_XDP_NO_ROOM,
	CNT_EXPIRED,
	CNT_PASS_NOT_TCP,
	CNT_PASS_NOT_HELD,
	CNT_MALFORMED,
	CNT_MAX,
};

_Static_assert(sizeof(struct hold_key) == 40, "hold_key is mirrored in HoldKey.java");
_Static_assert(sizeof(struct hold_value) == 40, "hold_value is mirrored in HoldEntry.java");
_Static_assert(sizeof(struct hold_stats) == 40, "hold_stats is mirrored in HoldStats.java");

#endif
