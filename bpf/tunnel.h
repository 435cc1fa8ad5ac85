/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The forwarding tunnel of a moved address, shared by tunnel_tc, its test and the node-agent
 * (dev.ferry.agent.tunnel mirrors struct tunnel_entry: change both together).
 *
 * On AWS the VPC keeps delivering a moved service address to the source node for seconds after
 * EC2 accepted its assignment to the target. Meanwhile the source node forwards the address's
 * packets to the target node in IPv4-in-IPv4 between the two nodes' own addresses, and the target
 * sends its replies back the same way, so that they leave the source node, where the VPC still
 * has the address (EC2's source/destination check drops a packet an interface sends from an
 * address it does not have); until then the target also sends each reply directly, in case the
 * VPC has switched unseen. The first segment that reaches the target directly says the VPC has
 * switched: the target then answers directly only, and the source stops seeing the address's
 * traffic.
 * Past deadline_ns both programs let every packet be, so forwarding ends on its own.
 */
#ifndef FERRY_TUNNEL_H
#define FERRY_TUNNEL_H
#include <linux/types.h>

/* The VPC still delivers the address here: forward its clients' packets, send back the replies. */
#define TUNNEL_SOURCE 1
/* The address lives here: take the forwarded packets, reply through the source until switched. */
#define TUNNEL_TARGET 2

/* One moved address (the key: an IPv4 address, network order). 64 bytes; [offset]. */
struct tunnel_entry {
	__u32 role;        /* [0]  TUNNEL_SOURCE or TUNNEL_TARGET; written by the agent */
	__be32 local;      /* [4]  this node's address on ifindex: the outer source */
	__be32 peer;       /* [8]  the other node's address, on ifindex's link: the outer destination */
	__be32 gateway;    /* [12] SOURCE: next hop towards the clients; 0: they are on the link */
	__u32 ifindex;     /* [16] the interface that carries the address's traffic */
	__u32 pad;         /* [20] always zero */
	__u64 deadline_ns; /* [24] CLOCK_MONOTONIC; past it, both programs let every packet be */
	__u64 switched_ns; /* [32] TARGET: when the first direct segment came (written by tunnel_tc) */
	__u64 forwarded;   /* [40] packets this node put into the tunnel */
	__u64 received;    /* [48] packets this node took out of it */
	__u64 too_big;     /* [56] packets dropped: with the outer header over ifindex's MTU */
};

/* Index of each per-CPU counter in ferry_tunnel_cnt. */
enum tunnel_counter {
	CNT_TUN_ENCAP,      /* put into the tunnel */
	CNT_TUN_DECAP,      /* taken out of it */
	CNT_TUN_SWITCHED,   /* direct segment for a TARGET address: the VPC has switched */
	CNT_TUN_EXPIRED,    /* entry past its deadline: untouched */
	CNT_TUN_TOO_BIG,    /* over the MTU with the outer header: dropped */
	CNT_TUN_FOREIGN,    /* IPv4-in-IPv4 not from an entry's peer to its local address: untouched */
	CNT_TUN_FAILED,     /* a helper failed (no room, no route): dropped */
	CNT_TUN_MAX,
};

_Static_assert(sizeof(struct tunnel_entry) == 64, "tunnel_entry is mirrored in TunnelEntry.java");
_Static_assert(__builtin_offsetof(struct tunnel_entry, ifindex) == 16, "TunnelEntry offsets");
_Static_assert(__builtin_offsetof(struct tunnel_entry, deadline_ns) == 24, "TunnelEntry offsets");
_Static_assert(__builtin_offsetof(struct tunnel_entry, too_big) == 56, "TunnelEntry offsets");
#endif
