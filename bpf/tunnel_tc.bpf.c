// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tunnel_tc: the forwarding tunnel of a moved address (tunnel.h), as two clsact classifiers on
 * the interface that carries the address's traffic.
 *
 *   tunnel_in (ingress)
 *     SOURCE, a client's packet for the address: encapsulate, send to the peer.
 *     SOURCE, from the peer, a reply from the address: decapsulate, send on to the client.
 *     TARGET, from the peer, a client's packet for the address: decapsulate, let the stack
 *             deliver it to the pod.
 *     TARGET, a client's packet for the address that came directly: note that the VPC has
 *             switched (switched_ns), let it be.
 *   tunnel_out (egress, after the hold's hold_tc)
 *     TARGET, a reply from the address before the switch: encapsulate, send to the peer, and
 *             send a copy directly (see DIRECT_MARK below).
 *
 * Encapsulation is IPv4-in-IPv4 (protocol 4) built here, so no ipip module is needed on
 * either node. Only packets from an entry's peer to its local address are taken out of the
 * tunnel: EC2's source/destination check keeps another instance from sending with the
 * peer's address, and the entry's inner address must match, so the tunnel carries nothing
 * but the moved address's traffic. Every other packet is left untouched.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tunnel.h"

char LICENSE[] SEC("license") = "GPL";

/* Linux 6.3's flag (the uapi headers here may be older): the packet left is IPv4. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif

/* <sys/socket.h>'s value; the uapi headers do not define it. */
#define AF_INET 2

#define OUTER_LEN ((__u32)sizeof(struct iphdr))
#define OUTER_TTL 64
#define IP_DF 0x4000

/* Moved addresses, keyed by the address (IPv4, network order); written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, struct tunnel_entry);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_tunnels SEC(".maps");

/* One counter per decision (enum tunnel_counter), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CNT_TUN_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_tunnel_cnt SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&ferry_tunnel_cnt, &which);

	if (c)
		*c += 1; /* per-CPU: no atomic needed */
}

/* The IPv4 header after Ethernet, or NULL when the frame is not IPv4 or too short for it. */
static __always_inline struct iphdr *ipv4_of(struct __sk_buff *skb, __u32 want)
{
	void *data, *end;
	struct ethhdr *eth;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return NULL;
	if (skb->len < ETH_HLEN + want)
		return NULL;
	/* A driver may leave headers outside the linear part: pull in what is read here. */
	if ((long)skb->data + ETH_HLEN + want > (long)skb->data_end &&
	    bpf_skb_pull_data(skb, ETH_HLEN + want))
		return NULL;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) + want > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return (void *)(eth + 1);
}

static __always_inline __u16 ip_checksum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(OUTER_LEN / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/*
 * Wraps the packet in an IPv4 header from e->local to e->peer and sends it out of e->ifindex
 * to the peer, a neighbour on that link. A packet that would then exceed the interface's MTU
 * is dropped and counted: a full-sized segment is sent again at the same size and dropped again,
 * so the path needs 20 bytes of headroom (docs/aws.md, on the MTU).
 */
static __always_inline int encapsulate(struct __sk_buff *skb, struct tunnel_entry *e)
{
	struct bpf_redir_neigh nh;
	struct iphdr *inner = ipv4_of(skb, OUTER_LEN);
	__u32 mtu_len = 0, ip_len = skb->len - ETH_HLEN + OUTER_LEN;
	struct iphdr outer;

	if (!inner) {
		count(CNT_TUN_FAILED);
		return TC_ACT_SHOT;
	}
	/*
	 * Field by field, as nh: a constant initializer would become a .rodata map, which the
	 * agent would pin with the others and a second load could not reuse.
	 */
	__builtin_memset(&outer, 0, sizeof(outer));
	outer.version = 4;
	outer.ihl = OUTER_LEN / 4;
	outer.tos = inner->tos;
	outer.frag_off = inner->frag_off & bpf_htons(IP_DF);
	outer.ttl = OUTER_TTL;
	outer.protocol = IPPROTO_IPIP;
	outer.saddr = e->local;
	outer.daddr = e->peer;
	__builtin_memset(&nh, 0, sizeof(nh));
	nh.nh_family = AF_INET;
	nh.ipv4_nh = e->peer;

	if (ip_len > 0xffff && !skb->gso_size) {
		count(CNT_TUN_TOO_BIG);
		__sync_fetch_and_add(&e->too_big, 1);
		return TC_ACT_SHOT;
	}
	/* A GSO packet passes: its segments shrink by the outer header (no FIXED_GSO below). */
	if (bpf_check_mtu(skb, e->ifindex, &mtu_len, OUTER_LEN, 0)) {
		count(CNT_TUN_TOO_BIG);
		__sync_fetch_and_add(&e->too_big, 1);
		return TC_ACT_SHOT;
	}
	/* A GSO packet's total may pass 64 KiB; each segment's own length is set at segmentation. */
	outer.tot_len = bpf_htons(ip_len > 0xffff ? 0xffff : ip_len);
	outer.check = ip_checksum(&outer);
	if (bpf_skb_adjust_room(skb, OUTER_LEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &outer, OUTER_LEN, 0)) {
		count(CNT_TUN_FAILED);
		return TC_ACT_SHOT;
	}
	count(CNT_TUN_ENCAP);
	__sync_fetch_and_add(&e->forwarded, 1);
	return bpf_redirect_neigh(e->ifindex, &nh, sizeof(nh), 0);
}

/* Removes the outer header; the packet that is left is the inner IPv4 one. */
static __always_inline int decapsulate(struct __sk_buff *skb, struct tunnel_entry *e)
{
	/* FIXED_GSO: a GRO'd packet's segments carry as much payload without the outer header. */
	if (bpf_skb_adjust_room(skb, -(__s32)OUTER_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV4)) {
		count(CNT_TUN_FAILED);
		return -1;
	}
	count(CNT_TUN_DECAP);
	__sync_fetch_and_add(&e->received, 1);
	return 0;
}

static __always_inline int live(const struct tunnel_entry *e)
{
	if (bpf_ktime_get_ns() <= e->deadline_ns)
		return 1;
	count(CNT_TUN_EXPIRED);
	return 0;
}

/* A packet out of the tunnel: from the peer, to us, about one of our entries. */
static __always_inline int from_tunnel(struct __sk_buff *skb)
{
	struct iphdr *outer, *inner;
	struct tunnel_entry *e;
	struct bpf_redir_neigh nh;
	__be32 saddr, daddr, inner_src, inner_dst;

	outer = ipv4_of(skb, OUTER_LEN + sizeof(*inner));
	if (!outer || outer->ihl != OUTER_LEN / 4 ||
	    (outer->frag_off & bpf_htons(0x3fff))) /* our outer headers: no options, no fragments */
		return TC_ACT_OK;
	inner = (void *)outer + OUTER_LEN;
	if (inner->version != 4) {
		count(CNT_TUN_FOREIGN);
		return TC_ACT_OK;
	}
	saddr = outer->saddr;
	daddr = outer->daddr;
	inner_src = inner->saddr;
	inner_dst = inner->daddr;

	/* TARGET: a client's packet for our address, forwarded by the source. */
	e = bpf_map_lookup_elem(&ferry_tunnels, &inner_dst);
	if (e && e->role == TUNNEL_TARGET && saddr == e->peer && daddr == e->local) {
		if (!live(e))
			return TC_ACT_OK;
		return decapsulate(skb, e) ? TC_ACT_SHOT : TC_ACT_OK;
	}
	/* SOURCE: the target's reply to a client, to leave here where the VPC has the address. */
	e = bpf_map_lookup_elem(&ferry_tunnels, &inner_src);
	if (e && e->role == TUNNEL_SOURCE && saddr == e->peer && daddr == e->local) {
		if (!live(e))
			return TC_ACT_OK;
		if (decapsulate(skb, e))
			return TC_ACT_SHOT;
		__builtin_memset(&nh, 0, sizeof(nh));
		nh.nh_family = AF_INET;
		nh.ipv4_nh = e->gateway ? e->gateway : inner_dst;
		return bpf_redirect_neigh(e->ifindex, &nh, sizeof(nh), 0);
	}
	count(CNT_TUN_FOREIGN);
	return TC_ACT_OK;
}

SEC("tc")
int tunnel_in(struct __sk_buff *skb)
{
	struct tunnel_entry *e;
	struct iphdr *ip;
	__be32 daddr;

	ip = ipv4_of(skb, OUTER_LEN);
	if (!ip)
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_IPIP)
		return from_tunnel(skb);
	daddr = ip->daddr;
	e = bpf_map_lookup_elem(&ferry_tunnels, &daddr);
	if (!e || !live(e))
		return TC_ACT_OK;
	if (e->role == TUNNEL_SOURCE)
		return encapsulate(skb, e);
	if (e->role == TUNNEL_TARGET && !e->switched_ns) {
		/* Racing CPUs write nearly the same time: a plain store is enough. */
		e->switched_ns = bpf_ktime_get_ns();
		count(CNT_TUN_SWITCHED);
	}
	return TC_ACT_OK;
}

/*
 * Until the target sees the switch, each reply goes both ways: through the tunnel, and directly as
 * a copy. Before the switch the VPC drops the copy (the target's interface does not have the
 * address yet); after it, the source's interface no longer has it and the VPC drops the tunnelled
 * one. Without the copy, a client that only receives (a download) would send nothing directly
 * after the switch, the target would never see it, and every reply would be lost until the
 * deadline. The copy carries DIRECT_MARK so that this program lets it pass when it comes by again.
 */
#define DIRECT_MARK 0x46455259 /* "FERY" */

SEC("tc")
int tunnel_out(struct __sk_buff *skb)
{
	struct tunnel_entry *e;
	struct iphdr *ip;
	__be32 saddr;
	__u32 mark;

	if (skb->mark == DIRECT_MARK)
		return TC_ACT_OK;
	ip = ipv4_of(skb, OUTER_LEN);
	if (!ip || ip->protocol == IPPROTO_IPIP)
		return TC_ACT_OK;
	saddr = ip->saddr;
	e = bpf_map_lookup_elem(&ferry_tunnels, &saddr);
	if (!e || e->role != TUNNEL_TARGET || e->switched_ns || !live(e))
		return TC_ACT_OK;
	mark = skb->mark;
	skb->mark = DIRECT_MARK;
	if (bpf_clone_redirect(skb, skb->ifindex, 0))
		count(CNT_TUN_FAILED); /* the tunnelled one may still arrive */
	skb->mark = mark;
	return encapsulate(skb, e);
}
