// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * hold_xdp: on the interface where a client's segments arrive (local = destination). While the
 * socket is frozen or exported it drops them; once the socket is gone it answers each one in
 * the socket's place with a zero-window ACK, so the client waits quietly in persist mode and
 * the kernel, which no longer knows the connection, never sees it and never answers a reset.
 * On the node the connection moves to, it drops them while the rebuilt socket is staged, until
 * the agent has written the kept payload into it (a segment the socket took meanwhile would be
 * queued twice). The payload of every segment it drops or answers goes to ferry_kept first, for
 * the agent to hand to the restored socket.
 */
#include <linux/bpf.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hold_maps.h"
#include "parse.h"

char LICENSE[] SEC("license") = "GPL";

/* The answer's options when timestamps are on: NOP, NOP, TS. 12 bytes, keeping 4-alignment. */
struct ts_block {
	__u8 nop1, nop2, kind, len;
	__be32 tsval;
	__be32 tsecr;
} __attribute__((packed));

struct pseudo4 {
	__be32 saddr, daddr;
	__u8 zero, proto;
	__be16 len;
};

struct pseudo6 {
	struct in6_addr saddr, daddr;
	__be32 len;
	__u8 zero[3], proto;
};

/*
 * The TSval of the client's timestamp option (host order), or 0 when it has none or the block
 * is malformed or cut short. The walk visits each byte position in turn and acts only where
 * an option starts: with constant positions the verifier's work stays linear, whereas a walk
 * that jumps by each option's length multiplies its paths past the instruction limit.
 */
static __always_inline __u32 client_tsval(struct xdp_md *ctx, __u32 opts_off, __u32 len)
{
	/* The zeroed tail keeps reads past len, at most an option's length, inside o. */
	__u8 o[TCP_MAX_OPTIONS + TCPOLEN_TIMESTAMP] = {};
	__u32 next = 0, i;
	__be32 tsval;

	if (len == 0 || len > TCP_MAX_OPTIONS || bpf_xdp_load_bytes(ctx, opts_off, o, len))
		return 0;
#pragma unroll
	for (i = 0; i < TCP_MAX_OPTIONS; i++) {
		if (i != next)
			continue;
		if (o[i] == TCPOPT_EOL)
			break;
		if (o[i] == TCPOPT_NOP) {
			next++;
			continue;
		}
		if (o[i + 1] < 2 || i + o[i + 1] > len)
			break;
		if (o[i] == TCPOPT_TIMESTAMP && o[i + 1] == TCPOLEN_TIMESTAMP) {
			__builtin_memcpy(&tsval, &o[i + 2], sizeof(tsval));
			return bpf_ntohl(tsval);
		}
		next += o[i + 1];
	}
	return 0;
}

/*
 * The connection's TCP timestamp clock now: the exported value moved on by the time since it
 * was read, in its own unit (ms; us when bit 0 says so, the bit kept), so it never goes back
 * and the client's PAWS check never drops an answer.
 */
static __always_inline __u32 tsval_now(const struct hold_value *h)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 elapsed = now > h->ts_base_ns ? now - h->ts_base_ns : 0;

	if (h->ts_val & 1)
		return (h->ts_val + (__u32)(elapsed / 1000)) | 1;
	return h->ts_val + (__u32)(elapsed / 1000000);
}

static __always_inline __sum16 csum_fold(__s64 csum)
{
	__u32 sum = (__u32)csum;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

static __always_inline void swap_mac(struct ethhdr *eth)
{
	__u8 mac[ETH_ALEN];

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
}

/*
 * Turns the client's segment (already cut to the answer's length) into the answer. The TCP
 * header is rewritten whole, options included, and its checksum computed fresh over the new
 * pseudo-header and header: no old field survives into it unaccounted.
 */
static __always_inline int answer(struct xdp_md *ctx, const struct hold_value *h, int v4,
				  __be32 ack, __u32 tsecr, __u32 tcp_len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	struct ts_block *ts;
	__s64 csum;
	__be16 port;

	if ((void *)(eth + 1) > end)
		return -1;
	swap_mac(eth);

	if (v4) {
		struct iphdr *ip = (void *)(eth + 1);
		struct pseudo4 ph = {};
		__be32 addr;

		tcp = (void *)(ip + 1);
		if ((void *)(tcp + 1) > end)
			return -1;
		/*
		 * Addresses swap; length, TTL, ID and fragment bits are new, and the ECN field is
		 * cleared (a pure ACK is never ECN-capable, RFC 3168 6.1.4): the header checksum
		 * is computed fresh over the 20 bytes (the caller refused IP options).
		 */
		addr = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = addr;
		ip->tot_len = bpf_htons(sizeof(*ip) + tcp_len);
		ip->tos &= ~0x3;
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000); /* DF, as Linux sends in-connection segments */
		ip->ttl = 64;
		ip->check = 0;
		ip->check = csum_fold(bpf_csum_diff(NULL, 0, (void *)ip, sizeof(*ip), 0));
		ph.saddr = ip->saddr;
		ph.daddr = ip->daddr;
		ph.proto = IPPROTO_TCP;
		ph.len = bpf_htons(tcp_len);
		csum = bpf_csum_diff(NULL, 0, (void *)&ph, sizeof(ph), 0);
	} else {
		/*
		 * Addresses swap, payload length and hop limit are new, ECN is cleared as for IPv4
		 * (the low two bits of the traffic class); IPv6 has no header checksum.
		 */
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct pseudo6 ph = {};

		tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end)
			return -1;
		ph.saddr = ip6->daddr;
		ph.daddr = ip6->saddr;
		ip6->saddr = ph.saddr;
		ip6->daddr = ph.daddr;
		ip6->payload_len = bpf_htons(tcp_len);
		ip6->hop_limit = 64;
		ip6->flow_lbl[0] &= ~0x30;
		ph.proto = IPPROTO_TCP;
		ph.len = bpf_htonl(tcp_len);
		csum = bpf_csum_diff(NULL, 0, (void *)&ph, sizeof(ph), 0);
	}

	/*
	 * seq is what the client acknowledged, exactly what it expects next, so the answer is
	 * acceptable and draws no duplicate ACK; ack stays at the exported rcv_nxt, so nothing it
	 * sent meanwhile (data, FIN, retransmissions) counts as received; window 0 keeps it in
	 * persist mode.
	 */
	port = tcp->source;
	tcp->source = tcp->dest;
	tcp->dest = port;
	tcp->seq = ack;
	tcp->ack_seq = bpf_htonl(h->rcv_nxt);
	((__u8 *)tcp)[12] = (tcp_len / 4) << 4; /* data offset; reserved bits clear */
	((__u8 *)tcp)[13] = 0x10;               /* ACK only */
	tcp->window = 0;
	tcp->check = 0;
	tcp->urg_ptr = 0;
	if (tcp_len == sizeof(*tcp)) {
		csum = bpf_csum_diff(NULL, 0, (void *)tcp, sizeof(*tcp), csum);
	} else {
		ts = (void *)(tcp + 1);
		if ((void *)(ts + 1) > end)
			return -1;
		ts->nop1 = TCPOPT_NOP;
		ts->nop2 = TCPOPT_NOP;
		ts->kind = TCPOPT_TIMESTAMP;
		ts->len = TCPOLEN_TIMESTAMP;
		ts->tsval = bpf_htonl(tsval_now(h));
		ts->tsecr = bpf_htonl(tsecr);
		csum = bpf_csum_diff(NULL, 0, (void *)tcp, sizeof(*tcp) + sizeof(*ts), csum);
	}
	tcp->check = csum_fold(csum);
	return 0;
}

/*
 * Copies a held segment's payload, with its connection and sequence number, into ferry_kept,
 * in records of at most KEPT_PAYLOAD_MAX bytes. Its length is the IP header's, not the frame's:
 * a short frame carries Ethernet padding. Called before anything changes the frame. A segment
 * whose copy fails part way counts as not kept; the records already written are a correct
 * prefix, which the agent may use.
 */
static __always_inline void keep(struct xdp_md *ctx, const struct tcp_packet *p,
				 const struct hold_key *key)
{
	struct kept_record *r;
	__u32 zero = 0, len = p->payload_len, off, seq, done, i;
	__u64 n;

	if (len == 0)
		return;
	r = bpf_map_lookup_elem(&ferry_kept_buf, &zero);
	if (!r || len > KEPT_CHUNKS * KEPT_PAYLOAD_MAX) {
		count_kept(CNT_NOT_KEPT);
		return;
	}
	off = p->l4_off + p->tcp->doff * 4;
	seq = bpf_ntohl(p->tcp->seq);
	for (i = 0; i < KEPT_CHUNKS; i++) {
		done = i * KEPT_PAYLOAD_MAX;
		if (done >= len)
			break;
		n = len - done;
		/*
		 * Opaque to the compiler, so that the verifier sees both bounds tested rather than
		 * a folded min(); n is never 0 here (done < len), the test is for the lower bound.
		 */
		asm volatile("" : "+r"(n));
		if (n == 0 || n > KEPT_PAYLOAD_MAX)
			n = KEPT_PAYLOAD_MAX;
		r->head.key = *key;
		r->head.seq = seq + done;
		r->head.len = n;
		/*
		 * Fails when the frame is shorter than its IP length says; n is 1..KEPT_PAYLOAD_MAX
		 * here, the bound the verifier needs for both copies.
		 */
		if (bpf_xdp_load_bytes(ctx, off + done, r->payload, n) ||
		    bpf_ringbuf_output(&ferry_kept, r, sizeof(r->head) + n, 0)) {
			count_kept(CNT_NOT_KEPT);
			return;
		}
	}
	count_kept(CNT_KEPT);
}

/*
 * Notes the client's acknowledgment in its ferry_acks entry, if the agent made one: the highest
 * ack in sequence space, with the TSval and window of the segment that carried it (a later
 * segment with the same ack brings a newer window). Two CPUs may write one entry at once; each
 * field is then a client's own value, from one of two segments, which is all the agent needs.
 */
static __always_inline void note_ack(const struct hold_key *key, __u32 ack, __u32 tsval,
				     __u16 window)
{
	struct client_ack *a = bpf_map_lookup_elem(&ferry_acks, key);

	if (!a || (a->seen && (__s32)(ack - a->ack) < 0))
		return;
	a->ack = ack;
	a->tsval = tsval;
	a->window = window;
	a->seen = 1;
}

SEC("xdp")
int hold_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct tcp_packet p;
	struct hold_key key;
	struct hold_value *hold;
	struct hold_value h;
	__u32 tsecr = 0, tsval, tcp_len;
	__be32 ack;
	int delta;

	switch (parse_tcp(data, end, &p)) {
	case PARSE_NOT_TCP:
		count(CNT_PASS_NOT_TCP);
		return XDP_PASS;
	case PARSE_MALFORMED:
		count(CNT_MALFORMED);
		return XDP_PASS;
	default:
		break;
	}
	count(CNT_XDP_SEEN);
	key_of(&p, 0, &key);
	hold = bpf_map_lookup_elem(&ferry_holds, &key);
	if (!hold || !(hold->flags & (HOLD_F_DROP | HOLD_F_ANSWER))) {
		count(CNT_PASS_NOT_HELD);
		return XDP_PASS;
	}
	h = *hold; /* read once: the agent may replace the entry meanwhile */
	if (bpf_ktime_get_ns() > h.deadline_ns) {
		count(CNT_XDP_EXPIRED);
		STAT_INC(&key, expired);
		return XDP_PASS;
	}
	if (p.tcp->rst) {
		/* The client gave up: the agent reads this and reports the connection lost. */
		count(CNT_XDP_RESET);
		STAT_INC(&key, resets);
		return XDP_DROP;
	}
	if (p.tcp->syn) {
		/* A new connection on a held tuple: nothing may answer it before the resume. */
		count(CNT_XDP_SYN);
		STAT_INC(&key, segments_dropped);
		return XDP_DROP;
	}
	if (!p.tcp->ack) {
		count(CNT_XDP_NO_ACK);
		STAT_INC(&key, segments_dropped);
		return XDP_DROP;
	}
	/* The client's TSval: the answer echoes it, and the latest ACK's record keeps it. */
	tsval = client_tsval(ctx, p.l4_off + sizeof(struct tcphdr),
			     p.tcp->doff * 4 - sizeof(struct tcphdr));
	note_ack(&key, bpf_ntohl(p.tcp->ack_seq), tsval, bpf_ntohs(p.tcp->window));
	/* Whatever follows drops the segment or cuts its payload: keep that payload first. */
	keep(ctx, &p, &key);
	if (!(h.flags & HOLD_F_ANSWER)) {
		count(CNT_XDP_DROPPED);
		STAT_INC(&key, segments_dropped);
		return XDP_DROP;
	}

	/*
	 * An IPv4 header with options would have to move; clients do not send them on an
	 * established connection, and a dropped segment is sent again.
	 */
	if (p.v4 && p.l4_off != ETH_HLEN + sizeof(struct iphdr)) {
		count(CNT_XDP_UNANSWERED);
		STAT_INC(&key, segments_dropped);
		return XDP_DROP;
	}
	/* What the answer needs from the client's segment, read before it is overwritten. */
	ack = p.tcp->ack_seq;
	if (h.flags & HOLD_F_TIMESTAMPS)
		tsecr = tsval;

	/* Payload and options go: the frame is cut (or grown) to exactly the answer. */
	tcp_len = sizeof(struct tcphdr);
	if (h.flags & HOLD_F_TIMESTAMPS)
		tcp_len += sizeof(struct ts_block);
	delta = (int)(p.l4_off + tcp_len) - (int)(end - data);
	if ((delta && bpf_xdp_adjust_tail(ctx, delta)) ||
	    answer(ctx, &h, p.v4, ack, tsecr, tcp_len)) {
		count(CNT_XDP_UNANSWERED);
		STAT_INC(&key, segments_dropped);
		return XDP_DROP;
	}
	count(CNT_XDP_ANSWERED);
	STAT_INC(&key, probes_answered);
	return XDP_TX;
}
