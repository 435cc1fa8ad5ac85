// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * hold_xdp: on the ingress of a node interface, for segments a client sends on a held
 * connection: drop them while the socket is being exported, and once it is gone, answer each
 * one in the socket's place with a zero-window ACK, so that the client waits quietly and the
 * kernel, which no longer knows the connection, never answers with a reset.
 */
#include <linux/bpf.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hold_maps.h"
#include "parse.h"

char LICENSE[] SEC("license") = "GPL";

#define TCPOPT_NOP 1
#define TCPOPT_TIMESTAMP 8
#define TCPOLEN_TIMESTAMP 10

/* The reply's TCP header: 20 bytes, then NOP NOP TS(10) when timestamps are on. */
struct reply_options {
	__u8 nop1, nop2, kind, len;
	__be32 tsval;
	__be32 tsecr;
} __attribute__((packed));

/*
 * The TSval of the client's timestamp option, or 0 (host order). Only the layouts stacks
 * actually send after the handshake are recognised, the option first or behind two NOPs:
 * an option walk costs the verifier more than a TSecr of 0 costs the client (it is echoed
 * back for RTT measurement only).
 */
static __always_inline __u32 client_tsval(struct tcphdr *tcp, void *end)
{
	__u8 *opt = (void *)(tcp + 1);
	__u32 len = tcp->doff * 4 - sizeof(*tcp);
	__be32 tsval;

	if (len >= 12 && (void *)(opt + 12) <= end && opt[0] == TCPOPT_NOP && opt[1] == TCPOPT_NOP &&
	    opt[2] == TCPOPT_TIMESTAMP && opt[3] == TCPOLEN_TIMESTAMP) {
		__builtin_memcpy(&tsval, opt + 4, 4);
		return bpf_ntohl(tsval);
	}
	if (len >= 10 && (void *)(opt + 10) <= end && opt[0] == TCPOPT_TIMESTAMP &&
	    opt[1] == TCPOLEN_TIMESTAMP) {
		__builtin_memcpy(&tsval, opt + 2, 4);
		return bpf_ntohl(tsval);
	}
	return 0;
}

static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline __u64 add16(const void *p, int words)
{
	const __u16 *w = p;
	__u64 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < 20; i++)
		if (i < words)
			sum += w[i];
	return sum;
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
	__u8 mac[ETH_ALEN];
	__u32 ack, tsecr = 0, tcp_len, reply_len, ts;
	__be16 port;
	int v4, delta;
	__u64 sum;

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
	h = *hold;
	if (bpf_ktime_get_ns() > h.deadline_ns) {
		count(CNT_EXPIRED);
		STAT_ADD(&key, expired);
		return XDP_PASS;
	}
	if (p.tcp->rst) {
		/* The client gave up; the agent reads this and reports the connection lost. */
		count(CNT_XDP_RESET);
		STAT_ADD(&key, resets);
		return XDP_DROP;
	}
	if (!(h.flags & HOLD_F_ANSWER) || p.tcp->syn || !p.tcp->ack) {
		count(CNT_XDP_DROPPED);
		STAT_ADD(&key, segments_dropped);
		return XDP_DROP;
	}

	/* What the answer needs from the client's segment, read before it is overwritten. */
	ack = p.tcp->ack_seq;
	if (h.flags & HOLD_F_TIMESTAMPS)
		tsecr = client_tsval(p.tcp, end);
	v4 = p.v4;
	if (v4 && p.l4_off != ETH_HLEN + sizeof(struct iphdr)) {
		count(CNT_XDP_DROPPED); /* IP options: not worth answering, the client retries */
		STAT_ADD(&key, segments_dropped);
		return XDP_DROP;
	}

	/* The answer is the client's segment turned around, cut (or grown) to its new size. */
	tcp_len = sizeof(struct tcphdr) + ((h.flags & HOLD_F_TIMESTAMPS) ? sizeof(struct reply_options) : 0);
	reply_len = p.l4_off + tcp_len;
	delta = (int)reply_len - (int)(end - data);
	if (delta && bpf_xdp_adjust_tail(ctx, delta)) {
		count(CNT_XDP_NO_ROOM);
		STAT_ADD(&key, segments_dropped);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;

	{
		struct ethhdr *eth = data;
		struct tcphdr *tcp;
		struct reply_options *opt;

		if ((void *)(eth + 1) > end)
			return XDP_DROP;
		__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

		if (v4) {
			struct iphdr *ip = (void *)(eth + 1);
			__be32 addr;

			tcp = (void *)(ip + 1);
			if ((void *)(tcp + 1) > end)
				return XDP_DROP;
			/* Addresses swap; length, TTL and ID are new: the header checksum is recomputed whole. */
			addr = ip->saddr;
			ip->saddr = ip->daddr;
			ip->daddr = addr;
			ip->tot_len = bpf_htons(sizeof(*ip) + tcp_len);
			ip->ttl = 64;
			ip->id = 0;
			ip->frag_off = bpf_htons(0x4000); /* DF */
			ip->check = 0;
			ip->check = fold(add16(ip, sizeof(*ip) / 2));
			/* TCP pseudo-header: the addresses, protocol and TCP length. */
			sum = add16(&ip->saddr, 4) + bpf_htons(IPPROTO_TCP) + bpf_htons(tcp_len);
		} else {
			struct ipv6hdr *ip6 = (void *)(eth + 1);
			struct in6_addr addr;

			tcp = (void *)(ip6 + 1);
			if ((void *)(tcp + 1) > end)
				return XDP_DROP;
			addr = ip6->saddr;
			ip6->saddr = ip6->daddr;
			ip6->daddr = addr;
			ip6->payload_len = bpf_htons(tcp_len);
			ip6->hop_limit = 64;
			sum = add16(&ip6->saddr, 16) + bpf_htons(IPPROTO_TCP) + bpf_htons(tcp_len);
		}

		/*
		 * seq is what the client acknowledged, exactly what it expects next, so the answer is
		 * acceptable and draws no duplicate ACK; ack stays at the exported rcv_nxt, so nothing
		 * the client sent meanwhile (data, FIN, retransmissions) counts as received; window 0.
		 * The checksum is computed fresh over the whole new header.
		 */
		port = tcp->source;
		tcp->source = tcp->dest;
		tcp->dest = port;
		tcp->seq = ack;
		tcp->ack_seq = bpf_htonl(h.rcv_nxt);
		((__u8 *)tcp)[12] = (tcp_len / 4) << 4; /* data offset; reserved bits clear */
		((__u8 *)tcp)[13] = 0x10;               /* ACK only */
		tcp->window = 0;
		tcp->urg_ptr = 0;
		tcp->check = 0;
		if (h.flags & HOLD_F_TIMESTAMPS) {
			opt = (void *)(tcp + 1);
			if ((void *)(opt + 1) > end)
				return XDP_DROP;
			/*
			 * TSval keeps ticking from the exported clock, so PAWS never rejects it: in ms,
			 * or in us for a connection whose clock has the microsecond bit (bit 0) set,
			 * which stays as it is.
			 */
			if (h.ts_val & 1)
				ts = (h.ts_val + (__u32)((bpf_ktime_get_ns() - h.ts_base_ns) / 1000)) | 1;
			else
				ts = h.ts_val + (__u32)((bpf_ktime_get_ns() - h.ts_base_ns) / 1000000);
			opt->nop1 = TCPOPT_NOP;
			opt->nop2 = TCPOPT_NOP;
			opt->kind = TCPOPT_TIMESTAMP;
			opt->len = TCPOLEN_TIMESTAMP;
			opt->tsval = bpf_htonl(ts);
			opt->tsecr = bpf_htonl(tsecr);
			sum += add16(tcp, (sizeof(*tcp) + sizeof(*opt)) / 2);
		} else {
			sum += add16(tcp, sizeof(*tcp) / 2);
		}
		tcp->check = fold(sum);
	}
	count(CNT_XDP_ANSWERED);
	STAT_ADD(&key, probes_answered);
	return XDP_TX;
}
