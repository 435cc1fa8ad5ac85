// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * hold_tc: a clsact classifier for the segments a server sends on a held connection (local =
 * source). It advertises a zero window (source node, while the socket is frozen), drops them
 * (a staged socket that must stay silent), or makes the restored socket's first window probe
 * acceptable to the client (target node, at resume). Every other packet leaves untouched.
 *
 * It never ends classification except to drop: a segment it lets be, rewritten or not, goes on
 * with TC_ACT_UNSPEC to the filters after it (the forwarding tunnel's, tunnel_tc.bpf.c, which
 * must see the rewrites), and leaves as it is when there are none.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hold_maps.h"
#include "parse.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * Direct packet access sees only the linear part of an skb. Locally built TCP segments keep
 * their headers there, but a driver on ingress may not: pull the headers in when they are
 * short of it. Returns 0, or an error to leave the packet alone.
 */
static __always_inline int pull_headers(struct __sk_buff *skb)
{
	__u32 want = skb->len < HEADERS_MAX ? skb->len : HEADERS_MAX;

	if ((long)skb->data + want <= (long)skb->data_end)
		return 0;
	return bpf_skb_pull_data(skb, want);
}

SEC("tc")
int hold_tc(struct __sk_buff *skb)
{
	struct tcp_packet p;
	struct hold_key key;
	struct hold_value *hold;
	__u32 csum_off;
	__be32 old_seq, new_seq;
	__be16 old_win, zero = 0;
	enum parse_result parsed;

	if (pull_headers(skb))
		parsed = PARSE_MALFORMED;
	else
		parsed = parse_tcp((void *)(long)skb->data, (void *)(long)skb->data_end, &p);
	if (parsed == PARSE_NOT_TCP) {
		count(CNT_PASS_NOT_TCP);
		return TC_ACT_UNSPEC;
	}
	if (parsed == PARSE_MALFORMED) {
		count(CNT_MALFORMED);
		return TC_ACT_UNSPEC;
	}
	count(CNT_TC_SEEN);
	key_of(&p, 1, &key);
	hold = bpf_map_lookup_elem(&ferry_holds, &key);
	if (!hold || !(hold->flags & (HOLD_F_ZERO_WINDOW | HOLD_F_MUTE | HOLD_F_WAKE))) {
		count(CNT_PASS_NOT_HELD);
		return TC_ACT_UNSPEC;
	}
	if (bpf_ktime_get_ns() > hold->deadline_ns) {
		count(CNT_TC_EXPIRED);
		STAT_INC(&key, expired);
		return TC_ACT_UNSPEC;
	}
	if (hold->flags & HOLD_F_MUTE) {
		count(CNT_TC_MUTED);
		STAT_INC(&key, segments_dropped);
		return TC_ACT_SHOT;
	}

	/*
	 * The helpers below write through the skb, which invalidates p.tcp: read what is needed
	 * first. Neither seq nor window is in the pseudo-header, so bpf_l4_csum_replace adjusts
	 * the checksum by the difference alone (RFC 1624); on a CHECKSUM_PARTIAL skb (offload) it
	 * leaves the field to the device, which sums the rewritten header.
	 */
	csum_off = p.l4_off + offsetof(struct tcphdr, check);
	old_seq = p.tcp->seq;
	old_win = p.tcp->window;

	/*
	 * seq: leaving repair mode, the kernel sends a window probe with seq = snd_una - 1, which
	 * a peer treats as old and answers with a duplicate ACK, ignoring its window. Rewritten to
	 * snd_nxt it is an acceptable ACK: a client in zero-window persist takes the window at
	 * once instead of at its next, backed-off, probe.
	 */
	if ((hold->flags & HOLD_F_WAKE) && p.payload_len == 0 &&
	    !(p.tcp->syn | p.tcp->fin | p.tcp->rst) && bpf_ntohl(old_seq) == hold->wake_from) {
		new_seq = bpf_htonl(hold->wake_to);
		if (bpf_l4_csum_replace(skb, csum_off, old_seq, new_seq, sizeof(new_seq)) ||
		    bpf_skb_store_bytes(skb, p.l4_off + offsetof(struct tcphdr, seq), &new_seq,
					sizeof(new_seq), 0))
			return TC_ACT_UNSPEC;
		count(CNT_TC_WOKEN);
	}

	/* window: 0, so the client sends nothing new while the socket is moved. */
	if ((hold->flags & HOLD_F_ZERO_WINDOW) && old_win != 0) {
		if (bpf_l4_csum_replace(skb, csum_off, old_win, zero, sizeof(zero)) ||
		    bpf_skb_store_bytes(skb, p.l4_off + offsetof(struct tcphdr, window), &zero,
					sizeof(zero), 0))
			return TC_ACT_UNSPEC;
		count(CNT_TC_ZEROED);
		STAT_INC(&key, windows_zeroed);
	}
	return TC_ACT_UNSPEC;
}
