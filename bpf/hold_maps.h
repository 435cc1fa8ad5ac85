/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Maps shared by hold_tc and hold_xdp. Pinned by name: the loader gives both objects the same
 * pin root (bpf_object_open_opts.pin_root_path, or each map's pin path), so the second object
 * reuses the first one's maps and a restarted agent finds them. A pinned map whose type, sizes
 * or max_entries differ from these makes the load fail: remove old pins after changing them.
 */
#ifndef FERRY_HOLD_MAPS_H
#define FERRY_HOLD_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "hold.h"

/* What to do per connection; written only by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hold_key);
	__type(value, struct hold_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_holds SEC(".maps");

/* Per-connection counters; the agent creates and deletes entries, the programs add. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hold_key);
	__type(value, struct hold_stats);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_hstats SEC(".maps");

/*
 * Each held client's latest acknowledgment (struct client_ack); the agent creates and deletes
 * entries, hold_xdp fills them in. A map of its own, as ferry_hstats' value size is fixed by
 * the pins an older agent may have left.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hold_key);
	__type(value, struct client_ack);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_acks SEC(".maps");
/* One counter per decision (enum hold_counter), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CNT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_counters SEC(".maps");

/*
 * Client payload hold_xdp kept: struct kept_bytes records for the agent to read. 16 MiB holds
 * about 1,800 full 9000-byte segments, or far more small ones.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_kept SEC(".maps");

/*
 * Kept and lost segments (enum kept_counter), per CPU. A map of its own: ferry_counters'
 * max_entries is fixed by the pins an older agent may have left.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CNT_KEPT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_kept_cnt SEC(".maps");

/* One record being built, per CPU: the stack's 512 bytes cannot hold a segment's payload. */
struct kept_record {
	struct kept_bytes head;
	__u8 payload[KEPT_PAYLOAD_MAX];
};

/*
 * Pinned like the others only because the agent pins every map of its objects; the scratch
 * needs no sharing. Its value size follows KEPT_PAYLOAD_MAX.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct kept_record);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_kept_buf SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&ferry_counters, &which);

	if (c)
		*c += 1; /* per-CPU: no atomic needed */
}

static __always_inline void count_kept(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&ferry_kept_cnt, &which);

	if (c)
		*c += 1;
}

/* Adds one to a connection's counter, if the agent created its entry. */
#define STAT_INC(key, field)							\
	do {									\
		struct hold_stats *__s = bpf_map_lookup_elem(&ferry_hstats, key); \
		if (__s)							\
			__sync_fetch_and_add(&__s->field, 1);			\
	} while (0)

#endif
