/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Structs shared by the hold programs, their test runner and the node-agent. The Java side
 * mirrors them in dev.ferry.agent.hold (HoldMaps for the flags and map names, HoldKey,
 * HoldEntry, HoldStats and KeptBytes for the structs): change both together. The
 * _Static_asserts below and HoldStructsTest keep sizes and offsets honest. Layouts are the
 * x86-64/arm64 ones: little-endian host, natural alignment, no implicit padding.
 */
#ifndef FERRY_HOLD_H
#define FERRY_HOLD_H

#include <linux/types.h>

#define HOLD_F_ZERO_WINDOW (1u << 0) /* TC: advertise a zero window to the client */
#define HOLD_F_DROP (1u << 1)        /* XDP: drop the client's segments (frozen or staged socket) */
#define HOLD_F_ANSWER (1u << 2)      /* XDP: the socket is gone, answer (wins over DROP) */
#define HOLD_F_TIMESTAMPS (1u << 3)  /* XDP: answers carry a timestamp option */
#define HOLD_F_MUTE (1u << 4)        /* TC: drop the server's segments (staged socket) */
#define HOLD_F_WAKE (1u << 5)        /* TC: make the repair-off window probe acceptable */

/* One connection, seen from the server. 40 bytes; [offset]. */
struct hold_key {
	__u8 local_addr[16];  /* [0]  server; IPv4 as IPv4-mapped IPv6 ::ffff:a.b.c.d */
	__u8 remote_addr[16]; /* [16] client; same encoding */
	__be16 local_port;    /* [32] network byte order */
	__be16 remote_port;   /* [34] network byte order */
	__u32 pad;            /* [36] always zero: hashed with the rest */
};

/* What to do for one connection. 40 bytes, host byte order; [offset]. */
struct hold_value {
	__u32 flags;       /* [0]  HOLD_F_* */
	__u32 rcv_nxt;     /* [4]  ack number of the XDP answers: the exported rcv_nxt */
	__u32 ts_val;      /* [8]  exported TCP_TIMESTAMP: ms, or us when bit 0 is set (6.7+) */
	__u32 wake_from;   /* [12] seq of the restored socket's repair-off window probe */
	__u32 wake_to;     /* [16] ... rewritten to this one (snd_nxt) */
	__u32 pad;         /* [20] always zero */
	__u64 ts_base_ns;  /* [24] CLOCK_MONOTONIC (bpf_ktime_get_ns) when ts_val was read */
	__u64 deadline_ns; /* [32] CLOCK_MONOTONIC; past it the programs let the segment be */
};

/* Per-connection counters: the agent inserts a zeroed entry with each hold. 40 bytes. */
struct hold_stats {
	__u64 probes_answered;  /* [0]  XDP answers sent */
	__u64 segments_dropped; /* [8]  client segments (XDP) or muted server ones (TC) */
	__u64 windows_zeroed;   /* [16] server segments whose window TC set to 0 */
	__u64 resets;           /* [24] RSTs from the client: it gave up */
	__u64 expired;          /* [32] segments seen past deadline_ns */
};

/*
 * The client's latest acknowledgment seen while held (hold_xdp, in both modes): the agent
 * inserts a zeroed entry with each hold, the program fills it in. The source's hold absorbs
 * every ACK the client sends for the data in flight at the freeze; unless the target is told,
 * its restored socket counts that data as unacknowledged, and sends only once the client
 * answers its window probe, a round trip after the resume. 16 bytes, host order.
 */
struct client_ack {
	__u32 ack;    /* [0]  the highest ack_seq seen, in sequence space */
	__u32 tsval;  /* [4]  the TSval of the segment that carried it; 0 without one */
	__u32 window; /* [8]  its window field, as sent (in the client's scale) */
	__u32 seen;   /* [12] 1 once a segment has filled the entry in */
};

/*
 * The head of each record in ferry_kept: a held client's payload that hold_xdp dropped or
 * answered, kept so that the agent can hand it to the restored socket instead of waiting for
 * the client to send it again. len bytes of payload follow. Records come in arrival order,
 * retransmissions and overlaps included; flags (FIN, PSH, URG) are not kept. 48 bytes.
 */
struct kept_bytes {
	struct hold_key key; /* [0]  the connection, as in ferry_holds */
	__u32 seq;           /* [40] host order: sequence number of the first payload byte */
	__u32 len;           /* [44] payload bytes after this header */
};

/*
 * The most payload one record carries: a 9001-byte MTU (AWS VPCs) less the IPv4 and TCP headers
 * leaves 8961. A longer segment (a GSO one, as veth passes them on, up to 64 KiB) is kept in
 * consecutive records of at most this much, each with its own seq, up to KEPT_CHUNKS of them;
 * one longer still (BIG TCP) is counted in CNT_NOT_KEPT and left to the client's retransmission,
 * as before. Changing KEPT_PAYLOAD_MAX changes ferry_kept_buf's value size: remove that pin when
 * it does.
 */
#define KEPT_PAYLOAD_MAX 9000
#define KEPT_CHUNKS 8

/* Index of each per-CPU counter in ferry_kept_cnt. Segments, not bytes. */
enum kept_counter {
	CNT_KEPT,     /* segment written to ferry_kept whole (in one record or more) */
	CNT_NOT_KEPT, /* payload lost: ring full, over KEPT_CHUNKS records long, or cut short */
	CNT_KEPT_MAX,
};

/* Index of each per-CPU counter in ferry_counters: one per decision the programs make. */
enum hold_counter {
	CNT_TC_SEEN,         /* TCP segment parsed by hold_tc */
	CNT_TC_ZEROED,       /* window rewritten to 0 */
	CNT_TC_MUTED,        /* server segment dropped */
	CNT_TC_WOKEN,        /* window probe's seq rewritten */
	CNT_TC_EXPIRED,      /* held tuple past its deadline: untouched */
	CNT_XDP_SEEN,        /* TCP segment parsed by hold_xdp */
	CNT_XDP_ANSWERED,    /* answered in place (XDP_TX) */
	CNT_XDP_DROPPED,     /* dropped while the socket is frozen */
	CNT_XDP_RESET,       /* client RST dropped */
	CNT_XDP_SYN,         /* client SYN dropped */
	CNT_XDP_NO_ACK,      /* segment without ACK dropped */
	CNT_XDP_UNANSWERED,  /* would be answered, but cannot be (IP options, no room) */
	CNT_XDP_EXPIRED,     /* held tuple past its deadline: passed */
	CNT_PASS_NOT_TCP,    /* not TCP over IPv4/IPv6 (or a fragment): untouched */
	CNT_PASS_NOT_HELD,   /* tuple not in ferry_holds, or no flag for this program */
	CNT_MALFORMED,       /* truncated or inconsistent headers: untouched */
	CNT_MAX,
};

_Static_assert(sizeof(struct hold_key) == 40, "hold_key is mirrored in HoldKey.java");
_Static_assert(__builtin_offsetof(struct hold_key, local_port) == 32, "HoldKey offsets");
_Static_assert(__builtin_offsetof(struct hold_key, pad) == 36, "HoldKey offsets");
_Static_assert(sizeof(struct hold_value) == 40, "hold_value is mirrored in HoldEntry.java");
_Static_assert(__builtin_offsetof(struct hold_value, wake_to) == 16, "HoldEntry offsets");
_Static_assert(__builtin_offsetof(struct hold_value, ts_base_ns) == 24, "HoldEntry offsets");
_Static_assert(__builtin_offsetof(struct hold_value, deadline_ns) == 32, "HoldEntry offsets");
_Static_assert(sizeof(struct hold_stats) == 40, "hold_stats is mirrored in HoldStats.java");
_Static_assert(sizeof(struct client_ack) == 16, "client_ack is mirrored in HoldMaps.java");
_Static_assert(sizeof(struct kept_bytes) == 48, "kept_bytes is mirrored in KeptBytes.java");
_Static_assert(__builtin_offsetof(struct kept_bytes, seq) == 40, "KeptBytes offsets");
_Static_assert(__builtin_offsetof(struct kept_bytes, len) == 44, "KeptBytes offsets");

#endif
