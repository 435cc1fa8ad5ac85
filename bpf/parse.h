/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Header parsing shared by the hold programs: bounds-checked, in parse order. */
#ifndef FERRY_PARSE_H
#define FERRY_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include "hold.h"

struct tcp_packet {
	struct tcphdr *tcp;
	__u8 saddr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 daddr[16];
	__u8 v4;
	__u32 l3_off;
	__u32 l4_off;
	__u32 payload_len; /* TCP payload bytes */
};

enum parse_result { PARSE_TCP, PARSE_NOT_TCP, PARSE_MALFORMED };

static __always_inline void map_v4(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

/* Ethernet, then IPv4 (any IHL) or IPv6 (no extension headers), then TCP with its options. */
static __always_inline enum parse_result parse_tcp(void *data, void *end, struct tcp_packet *p)
{
	struct ethhdr *eth = data;
	__u32 ip_total;

	if ((void *)(eth + 1) > end)
		return PARSE_MALFORMED;
	p->l3_off = sizeof(*eth);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > end)
			return PARSE_MALFORMED;
		if (ip->protocol != IPPROTO_TCP)
			return PARSE_NOT_TCP;
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip) || (ip->frag_off & bpf_htons(0x3fff)))
			return PARSE_NOT_TCP; /* bad header or a fragment: not ours to judge */
		p->v4 = 1;
		map_v4(p->saddr, ip->saddr);
		map_v4(p->daddr, ip->daddr);
		p->l4_off = p->l3_off + ihl;
		ip_total = bpf_ntohs(ip->tot_len);
		if (ip_total < ihl)
			return PARSE_MALFORMED;
		ip_total -= ihl;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return PARSE_MALFORMED;
		if (ip6->nexthdr != IPPROTO_TCP)
			return PARSE_NOT_TCP;
		p->v4 = 0;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		p->l4_off = p->l3_off + sizeof(*ip6);
		ip_total = bpf_ntohs(ip6->payload_len);
	} else {
		return PARSE_NOT_TCP;
	}
	if (p->l4_off > ETH_HLEN + 60)
		return PARSE_MALFORMED;
	p->tcp = data + p->l4_off;
	if ((void *)(p->tcp + 1) > end)
		return PARSE_MALFORMED;
	if (p->tcp->doff * 4 < sizeof(struct tcphdr) || p->tcp->doff * 4 > ip_total)
		return PARSE_MALFORMED;
	p->payload_len = ip_total - p->tcp->doff * 4;
	return PARSE_TCP;
}

/* The hold key of a packet: local is the source (egress, server side) or the destination. */
static __always_inline void key_of(struct tcp_packet *p, int local_is_source, struct hold_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->local_addr, local_is_source ? p->saddr : p->daddr, 16);
	__builtin_memcpy(k->remote_addr, local_is_source ? p->daddr : p->saddr, 16);
	k->local_port = local_is_source ? p->tcp->source : p->tcp->dest;
	k->remote_port = local_is_source ? p->tcp->dest : p->tcp->source;
}

#endif
