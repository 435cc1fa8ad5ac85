// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * hold_tc: on the egress of a node interface, for segments the server sends on a held
 * connection: advertise a zero window (source node, while the socket is frozen), drop them
 * (a staged socket that must stay silent), or make the restored socket's first window probe
 * acceptable to the client (target node, at resume).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hold_maps.h"
#include "parse.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int hold_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct tcp_packet p;
	struct hold_key key;
	struct hold_value *hold;
	__u32 csum_off, seq_off, win_off;
	__be32 old_seq, new_seq;
	__be16 old_win, zero = 0;

	switch (parse_tcp(data, end, &p)) {
	case PARSE_NOT_TCP:
		count(CNT_PASS_NOT_TCP);
		return TC_ACT_OK;
	case PARSE_MALFORMED:
		count(CNT_MALFORMED);
		return TC_ACT_OK;
	default:
		break;
	}
	count(CNT_TC_SEEN);
	key_of(&p, 1, &key);
	hold = bpf_map_lookup_elem(&ferry_holds, &key);
	if (!hold) {
		count(CNT_PASS_NOT_HELD);
		return TC_ACT_OK;
	}
	if (bpf_ktime_get_ns() > hold->deadline_ns) {
		count(CNT_EXPIRED);
		STAT_ADD(&key, expired);
		return TC_ACT_OK;
	}
	if (hold->flags & HOLD_F_MUTE) {
		count(CNT_TC_MUTED);
		STAT_ADD(&key, segments_dropped);
		return TC_ACT_SHOT;
	}

	csum_off = p.l4_off + offsetof(struct tcphdr, check);
	seq_off = p.l4_off + offsetof(struct tcphdr, seq);
	win_off = p.l4_off + offsetof(struct tcphdr, window);
	old_seq = p.tcp->seq;
	old_win = p.tcp->window;

	/*
	 * Leaving repair mode, the kernel sends a window probe with seq = snd_una - 1, which a
	 * peer treats as old and answers with a duplicate ACK, ignoring its window. Rewritten to
	 * snd_nxt it is an acceptable ACK: a client parked in zero-window persist takes the new
	 * window at once. The seq is not in the pseudo-header: a plain 4-byte checksum update.
	 */
	if ((hold->flags & HOLD_F_WAKE) && p.payload_len == 0 && !(p.tcp->syn | p.tcp->fin | p.tcp->rst) &&
	    bpf_ntohl(old_seq) == hold->wake_from) {
		new_seq = bpf_htonl(hold->wake_to);
		if (bpf_l4_csum_replace(skb, csum_off, old_seq, new_seq, sizeof(new_seq)) ||
		    bpf_skb_store_bytes(skb, seq_off, &new_seq, sizeof(new_seq), 0))
			return TC_ACT_OK;
		count(CNT_TC_WOKEN);
	}

	/*
	 * The advertised window becomes 0, so the client sends nothing new while the socket
	 * is moved. The window is not in the pseudo-header: a plain 2-byte checksum update.
	 */
	if ((hold->flags & HOLD_F_ZERO_WINDOW) && old_win != 0) {
		if (bpf_l4_csum_replace(skb, csum_off, old_win, zero, sizeof(zero)) ||
		    bpf_skb_store_bytes(skb, win_off, &zero, sizeof(zero), 0))
			return TC_ACT_OK;
		count(CNT_TC_ZEROED);
		STAT_ADD(&key, windows_zeroed);
	}
	return TC_ACT_OK;
}
