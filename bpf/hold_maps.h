/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Maps shared by hold_tc and hold_xdp. Pinned by name: the agent sets each map's pin path
 * before loading, so the second object reuses the first one's maps, and a restarted agent
 * finds them.
 */
#ifndef FERRY_HOLD_MAPS_H
#define FERRY_HOLD_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "hold.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hold_key);
	__type(value, struct hold_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_holds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hold_key);
	__type(value, struct hold_stats);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_hstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CNT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&ferry_counters, &which);

	if (c)
		*c += 1; /* per-CPU: no other writer */
}

static __always_inline struct hold_stats *stats_of(struct hold_key *key)
{
	return bpf_map_lookup_elem(&ferry_hstats, key);
}

#define STAT_ADD(key, field)                                      \
	do {                                                      \
		struct hold_stats *__s = stats_of(key);           \
		if (__s)                                          \
			__sync_fetch_and_add(&__s->field, 1);     \
	} while (0)

#endif
