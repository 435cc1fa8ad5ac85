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

/* One counter per decision (enum hold_counter), per CPU. */
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
		*c += 1; /* per-CPU: no atomic needed */
}

/* Adds one to a connection's counter, if the agent created its entry. */
#define STAT_INC(key, field)							\
	do {									\
		struct hold_stats *__s = bpf_map_lookup_elem(&ferry_hstats, key); \
		if (__s)							\
			__sync_fetch_and_add(&__s->field, 1);			\
	} while (0)

#endif
