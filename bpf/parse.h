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

#define IP_MF 0x2000     /* more fragments (not in the uapi headers) */
#define IP_OFFSET 0x1fff /* fragment offset */

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_TIMESTAMP 8
#define TCPOLEN_TIMESTAMP 10
#define TCP_MAX_OPTIONS 40 /* doff is at most 15 words */

/* The most a held segment's headers can take: Ethernet, IPv4 with options, TCP. */
#define HEADERS_MAX (ETH_HLEN + 60 + sizeof(struct tcphdr))

struct tcp_packet {
	struct tcphdr *tcp;
	__u8 saddr[16]; /* IPv4 as ::ffff:a.b.c.d, like the map keys */
	__u8 daddr[16];
	__u32 l4_off;
	__u32 payload_len; /* TCP payload bytes, as the IP header tells */
	__u8 v4;
};

enum parse_result { PARSE_TCP, PARSE_NOT_TCP, PARSE_MALFORMED };

static __always_inline void map_v4(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

/*
 * Ethernet, then IPv4 (any IHL, no fragments) or IPv6 (no extension headers), then the fixed
 * TCP header. Options and payload are not touched here: their length comes from the headers,
 * which a truncated frame may contradict, so whoever reads them checks against end again.
 */
static __always_inline enum parse_result parse_tcp(void *data, void *end, struct tcp_packet *p)
{
	struct ethhdr *eth = data;
	__u32 ip_len, tcp_hlen;

	if ((void *)(eth + 1) > end)
		return PARSE_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > end)
			return PARSE_MALFORMED;
		if (ip->version != 4)
			return PARSE_MALFORMED;
		if (ip->protocol != IPPROTO_TCP)
			return PARSE_NOT_TCP;
		/* A fragment's TCP header may be elsewhere: not a segment we can judge. */
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return PARSE_NOT_TCP;
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip))
			return PARSE_MALFORMED;
		ip_len = bpf_ntohs(ip->tot_len);
		if (ip_len < ihl)
			return PARSE_MALFORMED;
		ip_len -= ihl;
		p->v4 = 1;
		map_v4(p->saddr, ip->saddr);
		map_v4(p->daddr, ip->daddr);
		p->l4_off = ETH_HLEN + ihl; /* at most ETH_HLEN + 60: ihl is 4 bits */
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return PARSE_MALFORMED;
		if (ip6->version != 6)
			return PARSE_MALFORMED;
		if (ip6->nexthdr != IPPROTO_TCP)
			return PARSE_NOT_TCP;
		ip_len = bpf_ntohs(ip6->payload_len);
		p->v4 = 0;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		p->l4_off = ETH_HLEN + sizeof(*ip6);
	} else {
		return PARSE_NOT_TCP;
	}
	p->tcp = data + p->l4_off;
	if ((void *)(p->tcp + 1) > end)
		return PARSE_MALFORMED;
	tcp_hlen = p->tcp->doff * 4;
	if (tcp_hlen < sizeof(struct tcphdr) || tcp_hlen > ip_len)
		return PARSE_MALFORMED;
	p->payload_len = ip_len - tcp_hlen;
	return PARSE_TCP;
}

/* The hold key of a segment: local is its source (sent by the server) or its destination. */
static __always_inline void key_of(const struct tcp_packet *p, int local_is_source,
				   struct hold_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (local_is_source) {
		__builtin_memcpy(k->local_addr, p->saddr, 16);
		__builtin_memcpy(k->remote_addr, p->daddr, 16);
		k->local_port = p->tcp->source;
		k->remote_port = p->tcp->dest;
	} else {
		__builtin_memcpy(k->local_addr, p->daddr, 16);
		__builtin_memcpy(k->remote_addr, p->saddr, 16);
		k->local_port = p->tcp->dest;
		k->remote_port = p->tcp->source;
	}
}

#endif
