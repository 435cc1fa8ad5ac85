// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * hold_test: hold_tc and hold_xdp fed crafted packets in the kernel (BPF_PROG_TEST_RUN), one
 * named case per decision: input packet, map state, expected verdict, expected packet,
 * expected counter changes and the payload hold_xdp keeps in ferry_kept. Expected packets
 * are built here from scratch, checksums included, and compared byte for byte with what the
 * program returns.
 *
 * Usage (root): hold_test hold_tc.bpf.o hold_xdp.bpf.o
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "hold.h"

#define BPFFS "/sys/fs/bpf"
#define SERVER_PORT 8080
#define CLIENT_PORT 40000
#define OTHER_PORT 40001
#define FAR_FUTURE (~0ULL)
#define FRAME_MAX 2048

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

static const __u8 server_mac[6] = { 0x02, 0, 0, 0, 0, 0x64 };
static const __u8 client_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const __u8 server4[4] = { 198, 18, 0, 100 };
static const __u8 client4[4] = { 198, 18, 0, 1 };
static const __u8 server6[16] = { 0xfd, 0x66, [14] = 0x01, [15] = 0x00 };
static const __u8 client6[16] = { 0xfd, 0x66, [15] = 0x01 };

/* Option blocks a client sends after the handshake. */
static const __u8 opt_ts[] = { 1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0x23, 0x28 };
static const __u8 opt_sack_ts[] = { 1, 1, 5, 10, 0, 0, 0x13, 0x88, 0, 0, 0x17, 0x70,
				    1, 1, 8, 10, 0xca, 0xfe, 0xf0, 0x0d, 0, 0, 0x23, 0x28 };
static const __u8 opt_bad_len[] = { 1, 1, 5, 0, 8, 10, 0xca, 0xfe, 0xf0, 0x0d, 0, 0 };

enum l4 { L4_TCP, L4_UDP, L4_ARP };

/* One frame to build. Zero fields mean: the held connection, IPv4, TCP. */
struct seg {
	int v6;
	int to_server;  /* client -> server (what XDP sees), else server -> client (TC) */
	enum l4 l4;
	__u16 client_port;
	__u8 flags;
	__u32 seq, ack;
	__u16 window;
	const __u8 *opts;
	__u8 opts_len;  /* multiple of 4 */
	__u16 payload;
	__u8 ip_opts;   /* IPv4 option bytes (NOPs), multiple of 4 */
	__u8 tos;       /* IPv4 TOS or IPv6 traffic class: DSCP and ECN */
	__u8 ttl;       /* 0: 57 */
	__u16 ip_id;
	__u16 frag_off; /* host order, DF and MF bits included */
	__u16 cut;      /* frame truncated to this many bytes; 0: whole */
	int len_adjust; /* the IP length claims this many bytes more (or fewer) */
	__u8 pad;       /* Ethernet padding after the IP packet */
};

/* ---- packets ---- */

static __u32 sum16(const void *p, size_t n, __u32 sum)
{
	const __u8 *b = p;

	for (; n > 1; n -= 2, b += 2)
		sum += (b[0] << 8) | b[1];
	if (n)
		sum += b[0] << 8;
	return sum;
}

static __u16 fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(__u8 *p, __u32 v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static __u16 get16(const __u8 *p)
{
	return p[0] << 8 | p[1];
}

static __u32 get32(const __u8 *p)
{
	return (__u32)get16(p) << 16 | get16(p + 2);
}

/* The L4 checksum of a segment at l4 of length len, over the IPv4 or IPv6 pseudo-header. */
static __u16 l4_csum(const __u8 *frame, int v6, const __u8 *l4, size_t len, __u8 proto)
{
	__u32 sum;

	if (v6)
		sum = sum16(frame + 14 + 8, 32, 0) + (__u32)len + proto;
	else
		sum = sum16(frame + 14 + 12, 8, 0) + (__u32)len + proto;
	return fold(sum16(l4, len, sum));
}

static size_t build(const struct seg *s, __u8 *f)
{
	const __u8 *smac = s->to_server ? client_mac : server_mac;
	const __u8 *dmac = s->to_server ? server_mac : client_mac;
	__u16 cport = s->client_port ? s->client_port : CLIENT_PORT;
	__u16 sport = s->to_server ? cport : SERVER_PORT;
	__u16 dport = s->to_server ? SERVER_PORT : cport;
	size_t ip_hlen, l4_len, len, i;
	__u8 *ip = f + 14, *l4;

	memset(f, 0, FRAME_MAX);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	if (s->l4 == L4_ARP) {
		/* An ARP request from the client for the server's address. */
		put16(f + 12, ETH_P_ARP);
		put16(ip, 1);
		put16(ip + 2, ETH_P_IP);
		ip[4] = 6;
		ip[5] = 4;
		put16(ip + 6, 1);
		memcpy(ip + 8, client_mac, 6);
		memcpy(ip + 14, client4, 4);
		memcpy(ip + 24, server4, 4);
		return 14 + 28;
	}
	l4_len = s->l4 == L4_UDP ? 8 + s->payload : 20 + s->opts_len + s->payload;
	if (s->v6) {
		const __u8 *src = s->to_server ? client6 : server6;
		const __u8 *dst = s->to_server ? server6 : client6;

		ip_hlen = 40;
		put16(f + 12, ETH_P_IPV6);
		ip[0] = 0x60 | s->tos >> 4;
		ip[1] = (s->tos & 0xf) << 4;
		put16(ip + 4, l4_len + s->len_adjust);
		ip[6] = s->l4 == L4_UDP ? IPPROTO_UDP : IPPROTO_TCP;
		ip[7] = s->ttl ? s->ttl : 57;
		memcpy(ip + 8, src, 16);
		memcpy(ip + 24, dst, 16);
	} else {
		ip_hlen = 20 + s->ip_opts;
		put16(f + 12, ETH_P_IP);
		ip[0] = 0x40 | ip_hlen / 4;
		ip[1] = s->tos;
		put16(ip + 2, ip_hlen + l4_len + s->len_adjust);
		put16(ip + 4, s->ip_id);
		put16(ip + 6, s->frag_off);
		ip[8] = s->ttl ? s->ttl : 57;
		ip[9] = s->l4 == L4_UDP ? IPPROTO_UDP : IPPROTO_TCP;
		memcpy(ip + 12, s->to_server ? client4 : server4, 4);
		memcpy(ip + 16, s->to_server ? server4 : client4, 4);
		memset(ip + 20, 1, s->ip_opts);
		put16(ip + 10, fold(sum16(ip, ip_hlen, 0)));
	}
	l4 = ip + ip_hlen;
	put16(l4, sport);
	put16(l4 + 2, dport);
	if (s->l4 == L4_UDP) {
		put16(l4 + 4, l4_len);
		memset(l4 + 8, 'u', s->payload);
		put16(l4 + 6, l4_csum(f, s->v6, l4, l4_len, IPPROTO_UDP));
	} else {
		put32(l4 + 4, s->seq);
		put32(l4 + 8, s->ack);
		l4[12] = (20 + s->opts_len) / 4 << 4;
		l4[13] = s->flags;
		put16(l4 + 14, s->window);
		memcpy(l4 + 20, s->opts, s->opts_len);
		/* Distinct bytes, so that a record copied from the wrong offset shows. */
		for (i = 0; i < s->payload; i++)
			l4[20 + s->opts_len + i] = 'a' + i % 26;
		put16(l4 + 16, l4_csum(f, s->v6, l4, l4_len, IPPROTO_TCP));
	}
	len = 14 + ip_hlen + l4_len + s->pad; /* memset above: padding is zeros */
	return s->cut && s->cut < len ? s->cut : len;
}

/* ---- reporting ---- */

struct field {
	const char *name;
	int off, len;
};

static const struct field eth_fields[] = {
	{ "eth.dst", 0, 6 }, { "eth.src", 6, 6 }, { "eth.proto", 12, 2 },
};
static const struct field ip4_fields[] = {
	{ "ip.ihl", 0, 1 },  { "ip.tos", 1, 1 },     { "ip.tot_len", 2, 2 }, { "ip.id", 4, 2 },
	{ "ip.frag", 6, 2 }, { "ip.ttl", 8, 1 },     { "ip.protocol", 9, 1 }, { "ip.check", 10, 2 },
	{ "ip.saddr", 12, 4 }, { "ip.daddr", 16, 4 },
};
static const struct field ip6_fields[] = {
	{ "ip6.flow", 0, 4 },      { "ip6.payload_len", 4, 2 }, { "ip6.nexthdr", 6, 1 },
	{ "ip6.hop_limit", 7, 1 }, { "ip6.saddr", 8, 16 },      { "ip6.daddr", 24, 16 },
};
static const struct field tcp_fields[] = {
	{ "tcp.source", 0, 2 }, { "tcp.dest", 2, 2 },    { "tcp.seq", 4, 4 },
	{ "tcp.ack_seq", 8, 4 }, { "tcp.doff", 12, 1 }, { "tcp.flags", 13, 1 },
	{ "tcp.window", 14, 2 }, { "tcp.check", 16, 2 }, { "tcp.urg_ptr", 18, 2 },
};

static char msg[512];

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return -1;
}

static void hex(char *out, const __u8 *p, int n)
{
	out += sprintf(out, "0x");
	while (n--)
		out += sprintf(out, "%02x", *p++);
}

/* Names the field of a frame laid out like want that holds byte off. */
static struct field field_at(const __u8 *want, size_t want_len, size_t off)
{
	const struct field *tab = eth_fields;
	size_t n = 3, base = 0, i;
	struct field rest = { "byte", (int)off, 1 };

	if (off >= 14 && want_len >= 34) {
		int v6 = get16(want + 12) == ETH_P_IPV6;
		size_t ip_hlen = v6 ? 40 : (want[14] & 15) * 4;

		base = 14;
		tab = v6 ? ip6_fields : ip4_fields;
		n = v6 ? 6 : 10;
		if (off >= 14 + ip_hlen) {
			const __u8 *ts = want + 14 + ip_hlen + 20;

			base = 14 + ip_hlen;
			tab = tcp_fields;
			n = 9;
			rest.name = "tcp.options/payload";
			/* An answer's NOP, NOP, TS block: name its two clocks. */
			if (want_len >= base + 32 && off >= base + 24 &&
			    !memcmp(ts, "\1\1\10\12", 4))
				return (struct field){ off < base + 28 ? "tcp.tsval" : "tcp.tsecr",
						       (int)base + (off < base + 28 ? 24 : 28), 4 };
		} else if (!v6 && off >= 34) {
			rest.name = "ip.options";
		}
	}
	for (i = 0; i < n; i++)
		if (off >= base + tab[i].off && off < base + tab[i].off + tab[i].len)
			return (struct field){ tab[i].name, (int)base + tab[i].off, tab[i].len };
	return rest;
}

/* The first differing field, checksums last: they differ whenever anything else does. */
static int compare(const __u8 *got, size_t got_len, const __u8 *want, size_t want_len)
{
	char g[40], w[40];
	struct field f;
	size_t i;
	int pass;

	if (got_len != want_len)
		return fail("frame length got %zu want %zu", got_len, want_len);
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < want_len; i++) {
			if (got[i] == want[i])
				continue;
			f = field_at(want, want_len, i);
			if (pass == 0 && strstr(f.name, ".check"))
				continue;
			hex(g, got + f.off, f.len);
			hex(w, want + f.off, f.len);
			return fail("%s (byte %d) got %s want %s", f.name, f.off, g, w);
		}
	}
	return 0;
}

/* Recomputes the IP header and TCP checksums of a TCP frame, as a receiver would. */
static int check_sums(const __u8 *f, size_t len)
{
	int v6 = get16(f + 12) == ETH_P_IPV6;
	size_t ip_hlen = v6 ? 40 : (f[14] & 15) * 4;
	size_t l4_len = v6 ? get16(f + 18) : get16(f + 16) - ip_hlen;
	const __u8 *tcp = f + 14 + ip_hlen;
	__u8 copy[FRAME_MAX];
	__u16 want;

	if (len != 14 + ip_hlen + l4_len || len > sizeof(copy))
		return fail("frame length %zu disagrees with its IP length %zu", len,
			    14 + ip_hlen + l4_len);
	memcpy(copy, f, len);
	if (!v6) {
		put16(copy + 24, 0);
		want = fold(sum16(copy + 14, ip_hlen, 0));
		if (get16(f + 24) != want)
			return fail("ip.check got 0x%04x want 0x%04x", get16(f + 24), want);
	}
	put16(copy + 14 + ip_hlen + 16, 0);
	want = l4_csum(copy, v6, copy + 14 + ip_hlen, l4_len, IPPROTO_TCP);
	if (get16(tcp + 16) != want)
		return fail("tcp.check got 0x%04x want 0x%04x", get16(tcp + 16), want);
	return 0;
}

/* ---- cases ---- */

#define N(c) [c] = #c
static const char *const counter_names[CNT_MAX] = {
	N(CNT_TC_SEEN),
	N(CNT_TC_ZEROED),
	N(CNT_TC_MUTED),
	N(CNT_TC_WOKEN),
	N(CNT_TC_EXPIRED),
	N(CNT_XDP_SEEN),
	N(CNT_XDP_ANSWERED),
	N(CNT_XDP_DROPPED),
	N(CNT_XDP_RESET),
	N(CNT_XDP_SYN),
	N(CNT_XDP_NO_ACK),
	N(CNT_XDP_UNANSWERED),
	N(CNT_XDP_EXPIRED),
	N(CNT_PASS_NOT_TCP),
	N(CNT_PASS_NOT_HELD),
	N(CNT_MALFORMED),
};
#undef N
_Static_assert(CNT_MAX == 16, "name every counter of hold.h in counter_names");

enum prog { TC, XDP };
enum expect { SAME, DROPPED, ZERO_WINDOW, WOKEN, ANSWER };

struct hold_spec {
	__u32 flags;
	__u32 rcv_nxt, ts_val, wake_from, wake_to;
	int expired;     /* deadline already past */
	int ts_age_ms;   /* ts_val was read this long ago */
};

struct test_case {
	const char *name;
	enum prog prog;
	struct seg in;
	struct hold_spec hold; /* flags 0: the connection is not held */
	__u32 verdict;
	enum expect expect;
	__u32 tsecr;     /* ANSWER: expected TSecr */
	int twice;       /* ANSWER: run again 20 ms later; TSval must have moved on */
	__u64 cnt[CNT_MAX];
	struct hold_stats stats;
	int kept;        /* XDP: one record per run with the segment's whole payload */
	int not_kept;    /* XDP: CNT_NOT_KEPT per run */
	int check_ack;   /* XDP: compare the connection's ferry_acks entry with acked */
	struct client_ack ack_before; /* its entry before the run (zeroed when not seen) */
	struct client_ack acked;      /* ... and after it */
};

#define HELD_ACK .to_server = 1, .flags = F_ACK, .seq = 5000, .ack = 9000, .ip_id = 0x1234
#define SERVER_DATA .flags = F_ACK | F_PSH, .seq = 9000, .ack = 5000, .window = 0x1000, \
		    .opts = opt_ts, .opts_len = 12, .payload = 100
#define ANSWERING(f) { .flags = HOLD_F_ANSWER | HOLD_F_ZERO_WINDOW | (f), .rcv_nxt = 5000, \
		       .ts_val = 100000, .ts_age_ms = 1500 }
#define FROZEN { .flags = HOLD_F_DROP | HOLD_F_ZERO_WINDOW }
#define MUTED { .flags = HOLD_F_MUTE }
#define XDP_ANSWERED .verdict = XDP_TX, .expect = ANSWER, \
		     .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_ANSWERED] = 1 }, \
		     .stats = { .probes_answered = 1 }

static const struct test_case cases[] = {
	/* hold_tc: the server's segments */
	{ "tc zero window ipv4", TC, { SERVER_DATA }, FROZEN, TC_ACT_UNSPEC, ZERO_WINDOW,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_ZEROED] = 1 }, .stats = { .windows_zeroed = 1 } },
	{ "tc zero window ipv6", TC, { SERVER_DATA, .v6 = 1 }, FROZEN, TC_ACT_UNSPEC, ZERO_WINDOW,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_ZEROED] = 1 }, .stats = { .windows_zeroed = 1 } },
	{ "tc zero window behind ipv4 options", TC, { SERVER_DATA, .ip_opts = 8 }, FROZEN,
	  TC_ACT_UNSPEC, ZERO_WINDOW,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_ZEROED] = 1 }, .stats = { .windows_zeroed = 1 } },
	{ "tc zero window while answering", TC, { SERVER_DATA, .v6 = 1 }, ANSWERING(0),
	  TC_ACT_UNSPEC, ZERO_WINDOW,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_ZEROED] = 1 }, .stats = { .windows_zeroed = 1 } },
	{ "tc untouched for an unheld tuple", TC, { SERVER_DATA, .client_port = OTHER_PORT },
	  FROZEN, TC_ACT_UNSPEC, SAME, .cnt = { [CNT_TC_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 } },
	{ "tc untouched in the reverse direction", TC, { HELD_ACK, .window = 0x1000 }, FROZEN,
	  TC_ACT_UNSPEC, SAME, .cnt = { [CNT_TC_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 } },
	{ "tc untouched without a tc flag", TC, { SERVER_DATA },
	  { .flags = HOLD_F_DROP | HOLD_F_ANSWER }, TC_ACT_UNSPEC, SAME,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 } },
	{ "tc mute drops", TC, { SERVER_DATA }, MUTED, TC_ACT_SHOT, DROPPED,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_MUTED] = 1 }, .stats = { .segments_dropped = 1 } },
	{ "tc mute drops ipv6", TC, { SERVER_DATA, .v6 = 1 }, MUTED, TC_ACT_SHOT, DROPPED,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_MUTED] = 1 }, .stats = { .segments_dropped = 1 } },
	{ "tc wake rewrites the window probe's seq", TC,
	  { .flags = F_ACK, .seq = 8999, .ack = 5000, .window = 0x2000 },
	  { .flags = HOLD_F_WAKE, .wake_from = 8999, .wake_to = 9100 }, TC_ACT_UNSPEC, WOKEN,
	  .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_WOKEN] = 1 } },
	{ "tc wake leaves other segments", TC,
	  { .flags = F_ACK, .seq = 9000, .ack = 5000, .window = 0x2000 },
	  { .flags = HOLD_F_WAKE, .wake_from = 8999, .wake_to = 9100 }, TC_ACT_UNSPEC, SAME,
	  .cnt = { [CNT_TC_SEEN] = 1 } },
	{ "tc expired hold untouched", TC, { SERVER_DATA },
	  { .flags = HOLD_F_ZERO_WINDOW, .expired = 1 },
	  TC_ACT_UNSPEC, SAME, .cnt = { [CNT_TC_SEEN] = 1, [CNT_TC_EXPIRED] = 1 },
	  .stats = { .expired = 1 } },
	{ "tc udp untouched", TC, { .l4 = L4_UDP, .payload = 20 }, FROZEN, TC_ACT_UNSPEC, SAME,
	  .cnt = { [CNT_PASS_NOT_TCP] = 1 } },
	{ "tc arp untouched", TC, { .l4 = L4_ARP }, FROZEN, TC_ACT_UNSPEC, SAME,
	  .cnt = { [CNT_PASS_NOT_TCP] = 1 } },
	/*
	 * The kernel refuses skb test runs whose IPv4 or IPv6 header is shorter than its fixed
	 * part (EINVAL), so frames cut before it are the XDP cases' (same parse.h).
	 */
	{ "tc truncated: ipv4 options cut short", TC,
	  { SERVER_DATA, .ip_opts = 40, .cut = 14 + 24 },
	  FROZEN, TC_ACT_UNSPEC, SAME, .cnt = { [CNT_MALFORMED] = 1 } },
	{ "tc truncated: tcp header cut short", TC, { SERVER_DATA, .cut = 14 + 20 + 19 }, FROZEN,
	  TC_ACT_UNSPEC, SAME, .cnt = { [CNT_MALFORMED] = 1 } },
	{ "tc truncated: tcp header cut short ipv6", TC,
	  { SERVER_DATA, .v6 = 1, .cut = 14 + 40 + 14 }, FROZEN, TC_ACT_UNSPEC, SAME,
	  .cnt = { [CNT_MALFORMED] = 1 } },

	/* hold_xdp: the client's segments */
	{ "xdp answer ipv4 with timestamps", XDP, { HELD_ACK, .opts = opt_ts, .opts_len = 12 },
	  ANSWERING(HOLD_F_TIMESTAMPS), .tsecr = 0x11223344, XDP_ANSWERED },
	{ "xdp answer tsval advances between runs", XDP,
	  { HELD_ACK, .v6 = 1, .opts = opt_ts, .opts_len = 12 }, ANSWERING(HOLD_F_TIMESTAMPS),
	  .tsecr = 0x11223344, .twice = 1, XDP_ANSWERED },
	{ "xdp answer ipv6 without timestamps", XDP, { HELD_ACK, .v6 = 1 }, ANSWERING(0),
	  XDP_ANSWERED },
	{ "xdp answer strips options without timestamps", XDP,
	  { HELD_ACK, .opts = opt_ts, .opts_len = 12 }, ANSWERING(0), XDP_ANSWERED },
	{ "xdp answer probe with 1 byte keeps ack at rcv_nxt", XDP,
	  { HELD_ACK, .flags = F_ACK | F_PSH, .opts = opt_ts, .opts_len = 12, .payload = 1 },
	  ANSWERING(HOLD_F_TIMESTAMPS), .tsecr = 0x11223344, XDP_ANSWERED, .kept = 1 },
	{ "xdp answer retransmission with data ipv6", XDP,
	  { HELD_ACK, .v6 = 1, .seq = 4000, .flags = F_ACK | F_PSH, .payload = 1000 },
	  ANSWERING(0), XDP_ANSWERED, .kept = 1 },
	{ "xdp answer fin without acknowledging it", XDP,
	  { HELD_ACK, .flags = F_ACK | F_FIN, .opts = opt_ts, .opts_len = 12 },
	  ANSWERING(HOLD_F_TIMESTAMPS), .tsecr = 0x11223344, XDP_ANSWERED },
	{ "xdp answer finds tsval behind sack", XDP,
	  { HELD_ACK, .opts = opt_sack_ts, .opts_len = 24 }, ANSWERING(HOLD_F_TIMESTAMPS),
	  .tsecr = 0xcafef00d, XDP_ANSWERED },
	{ "xdp answer grows a bare ack, tsecr 0", XDP, { HELD_ACK, .v6 = 1 },
	  ANSWERING(HOLD_F_TIMESTAMPS), .tsecr = 0, XDP_ANSWERED },
	{ "xdp answer malformed options, tsecr 0", XDP,
	  { HELD_ACK, .opts = opt_bad_len, .opts_len = 12 }, ANSWERING(HOLD_F_TIMESTAMPS),
	  .tsecr = 0, XDP_ANSWERED },
	{ "xdp answer options cut short, tsecr 0", XDP,
	  { HELD_ACK, .opts = opt_ts, .opts_len = 12, .cut = 14 + 20 + 24 },
	  ANSWERING(HOLD_F_TIMESTAMPS), .tsecr = 0, XDP_ANSWERED },
	{ "xdp answer keeps dscp, clears ecn", XDP, { HELD_ACK, .tos = 0xb9 }, ANSWERING(0),
	  XDP_ANSWERED },
	{ "xdp answer keeps dscp, clears ecn ipv6", XDP, { HELD_ACK, .v6 = 1, .tos = 0xb9 },
	  ANSWERING(0), XDP_ANSWERED },
	{ "xdp answer microsecond clock", XDP, { HELD_ACK, .opts = opt_ts, .opts_len = 12 },
	  { .flags = HOLD_F_ANSWER | HOLD_F_TIMESTAMPS, .rcv_nxt = 5000, .ts_val = 2000001,
	    .ts_age_ms = 1500 }, .tsecr = 0x11223344, XDP_ANSWERED },
	{ "xdp drop-only mode", XDP, { HELD_ACK, .opts = opt_ts, .opts_len = 12, .payload = 1 },
	  FROZEN, XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 }, .kept = 1 },
	{ "xdp drop-only mode ipv6", XDP, { HELD_ACK, .v6 = 1 }, FROZEN, XDP_DROP, DROPPED,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 } },
	{ "xdp rst dropped and counted", XDP, { HELD_ACK, .flags = F_RST | F_ACK },
	  ANSWERING(0), XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_RESET] = 1 },
	  .stats = { .resets = 1 } },
	{ "xdp rst dropped and counted while frozen", XDP, { HELD_ACK, .v6 = 1, .flags = F_RST },
	  FROZEN, XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_RESET] = 1 },
	  .stats = { .resets = 1 } },
	{ "xdp syn dropped and counted", XDP, { HELD_ACK, .flags = F_SYN, .ack = 0 },
	  ANSWERING(0), XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_SYN] = 1 },
	  .stats = { .segments_dropped = 1 } },
	{ "xdp segment without ack dropped", XDP, { HELD_ACK, .flags = F_PSH, .payload = 10 },
	  ANSWERING(0), XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_NO_ACK] = 1 },
	  .stats = { .segments_dropped = 1 } },
	/* ferry_acks: the client's latest acknowledgment, in both modes */
	{ "xdp frozen notes the client's ack, tsval and window", XDP,
	  { HELD_ACK, .window = 0x1234, .opts = opt_ts, .opts_len = 12 }, FROZEN, XDP_DROP,
	  DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 }, .check_ack = 1,
	  .acked = { .ack = 9000, .tsval = 0x11223344, .window = 0x1234, .seen = 1 } },
	{ "xdp answering notes the ack ipv6, tsval 0 without timestamps", XDP,
	  { HELD_ACK, .v6 = 1, .window = 0x40 }, ANSWERING(0), XDP_ANSWERED, .check_ack = 1,
	  .acked = { .ack = 9000, .window = 0x40, .seen = 1 } },
	{ "xdp ack moves on across 2^32", XDP,
	  { HELD_ACK, .ack = 5, .window = 7, .opts = opt_sack_ts, .opts_len = 24 },
	  ANSWERING(HOLD_F_TIMESTAMPS), XDP_ANSWERED, .tsecr = 0xcafef00d, .check_ack = 1,
	  .ack_before = { .ack = 0xfffffff0, .tsval = 1, .window = 1, .seen = 1 },
	  .acked = { .ack = 5, .tsval = 0xcafef00d, .window = 7, .seen = 1 } },
	{ "xdp an older ack leaves the entry", XDP, { HELD_ACK, .window = 9 }, FROZEN, XDP_DROP,
	  DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 }, .check_ack = 1,
	  .ack_before = { .ack = 9500, .tsval = 3, .window = 4, .seen = 1 },
	  .acked = { .ack = 9500, .tsval = 3, .window = 4, .seen = 1 } },
	{ "xdp the same ack brings a newer window", XDP, { HELD_ACK, .window = 9 }, FROZEN,
	  XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 }, .check_ack = 1,
	  .ack_before = { .ack = 9000, .tsval = 3, .window = 4, .seen = 1 },
	  .acked = { .ack = 9000, .window = 9, .seen = 1 } },
	{ "xdp an rst notes no ack", XDP, { HELD_ACK, .flags = F_RST | F_ACK }, ANSWERING(0),
	  XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_RESET] = 1 },
	  .stats = { .resets = 1 }, .check_ack = 1 },
	{ "xdp an unheld tuple notes no ack", XDP, { HELD_ACK, .client_port = OTHER_PORT },
	  FROZEN, XDP_PASS, SAME, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 },
	  .check_ack = 1 },
	{ "xdp ipv4 options dropped unanswered", XDP, { HELD_ACK, .ip_opts = 4 }, ANSWERING(0),
	  XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_UNANSWERED] = 1 },
	  .stats = { .segments_dropped = 1 } },
	{ "xdp drop keeps 1900 bytes ipv6, seq near 2^32", XDP,
	  { HELD_ACK, .v6 = 1, .seq = 0xfffffff0, .flags = F_ACK | F_PSH, .opts = opt_ts,
	    .opts_len = 12, .payload = 1900 },
	  FROZEN, XDP_DROP, DROPPED, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 }, .kept = 1 },
	{ "xdp drop keeps the ip payload, not the ethernet padding", XDP,
	  { HELD_ACK, .payload = 3, .pad = 3 }, FROZEN, XDP_DROP, DROPPED,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 }, .kept = 1 },
	{ "xdp answer keeps the ip payload, not the ethernet padding", XDP,
	  { HELD_ACK, .payload = 2, .pad = 4 }, ANSWERING(0), XDP_ANSWERED, .kept = 1 },
	{ "xdp unanswered keeps payload", XDP, { HELD_ACK, .ip_opts = 4, .payload = 30 },
	  ANSWERING(0), XDP_DROP, DROPPED,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_UNANSWERED] = 1 },
	  .stats = { .segments_dropped = 1 }, .kept = 1 },
	{ "xdp payload cut short by the frame is counted, not kept", XDP,
	  { HELD_ACK, .payload = 10, .len_adjust = 100 }, FROZEN, XDP_DROP, DROPPED,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_DROPPED] = 1 },
	  .stats = { .segments_dropped = 1 }, .not_kept = 1 },
	{ "xdp syn with data keeps nothing", XDP,
	  { HELD_ACK, .flags = F_SYN | F_ACK, .payload = 10 }, FROZEN, XDP_DROP, DROPPED,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_SYN] = 1 }, .stats = { .segments_dropped = 1 } },
	{ "xdp rst with data keeps nothing", XDP,
	  { HELD_ACK, .flags = F_RST | F_ACK, .payload = 10 }, ANSWERING(0), XDP_DROP, DROPPED,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_RESET] = 1 }, .stats = { .resets = 1 } },
	{ "xdp pass for unheld tuple with data keeps nothing", XDP,
	  { HELD_ACK, .client_port = OTHER_PORT, .payload = 10 }, FROZEN, XDP_PASS, SAME,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 } },
	{ "xdp pass for unheld tuple", XDP, { HELD_ACK, .client_port = OTHER_PORT },
	  ANSWERING(0), XDP_PASS, SAME, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 } },
	{ "xdp pass for the server's direction", XDP, { SERVER_DATA }, ANSWERING(0), XDP_PASS,
	  SAME, .cnt = { [CNT_XDP_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 } },
	{ "xdp pass without an xdp flag", XDP, { HELD_ACK },
	  { .flags = HOLD_F_WAKE | HOLD_F_ZERO_WINDOW }, XDP_PASS, SAME,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_PASS_NOT_HELD] = 1 } },
	{ "xdp pass for udp", XDP, { .to_server = 1, .l4 = L4_UDP, .payload = 20 }, ANSWERING(0),
	  XDP_PASS, SAME, .cnt = { [CNT_PASS_NOT_TCP] = 1 } },
	{ "xdp pass for udp ipv6", XDP, { .to_server = 1, .v6 = 1, .l4 = L4_UDP, .payload = 3 },
	  ANSWERING(0), XDP_PASS, SAME, .cnt = { [CNT_PASS_NOT_TCP] = 1 } },
	{ "xdp pass for arp", XDP, { .l4 = L4_ARP }, ANSWERING(0), XDP_PASS, SAME,
	  .cnt = { [CNT_PASS_NOT_TCP] = 1 } },
	{ "xdp pass for an ipv4 fragment", XDP, { HELD_ACK, .frag_off = 0x2000, .payload = 8 },
	  ANSWERING(0), XDP_PASS, SAME, .cnt = { [CNT_PASS_NOT_TCP] = 1 } },
	{ "xdp expired hold passes", XDP, { HELD_ACK },
	  { .flags = HOLD_F_ANSWER, .rcv_nxt = 5000, .expired = 1 }, XDP_PASS, SAME,
	  .cnt = { [CNT_XDP_SEEN] = 1, [CNT_XDP_EXPIRED] = 1 }, .stats = { .expired = 1 } },
	{ "xdp truncated: ethernet only", XDP, { HELD_ACK, .cut = 14 }, ANSWERING(0), XDP_PASS,
	  SAME, .cnt = { [CNT_MALFORMED] = 1 } },
	{ "xdp truncated: ipv4 header cut short", XDP, { HELD_ACK, .cut = 14 + 19 }, ANSWERING(0),
	  XDP_PASS, SAME, .cnt = { [CNT_MALFORMED] = 1 } },
	{ "xdp truncated: ipv6 header cut short", XDP, { HELD_ACK, .v6 = 1, .cut = 14 + 39 },
	  ANSWERING(0), XDP_PASS, SAME, .cnt = { [CNT_MALFORMED] = 1 } },
	{ "xdp truncated: tcp header cut short", XDP, { HELD_ACK, .cut = 14 + 20 + 19 },
	  ANSWERING(0), XDP_PASS, SAME, .cnt = { [CNT_MALFORMED] = 1 } },
	{ "xdp malformed: ip length shorter than tcp header", XDP,
	  { HELD_ACK, .opts = opt_ts, .opts_len = 12, .len_adjust = -16 },
	  ANSWERING(0), XDP_PASS, SAME, .cnt = { [CNT_MALFORMED] = 1 } },
};

/* ---- the kernel side ---- */

static struct bpf_object *objs[2];
static int prog_fd[2], holds_fd, stats_fd, acks_fd, counters_fd, kept_cnt_fd, ncpus;
static struct ring_buffer *kept_ring;
static char pin_dir[64];
static int mounted_bpffs;
static int libbpf_warnings;

static const char *const map_names[] = { "ferry_holds", "ferry_hstats", "ferry_counters",
					  "ferry_kept", "ferry_kept_cnt", "ferry_kept_buf",
					  "ferry_acks" };
#define NMAPS (sizeof(map_names) / sizeof(map_names[0]))

static void cleanup(void)
{
	char path[128];
	size_t i;

	ring_buffer__free(kept_ring); /* accepts NULL */
	kept_ring = NULL;
	for (i = 0; i < 2; i++) {
		bpf_object__close(objs[i]); /* accepts NULL */
		objs[i] = NULL;
	}
	if (pin_dir[0]) {
		for (i = 0; i < NMAPS; i++) {
			snprintf(path, sizeof(path), "%s/%s", pin_dir, map_names[i]);
			unlink(path);
		}
		if (rmdir(pin_dir))
			fprintf(stderr, "hold_test: cannot remove %s: %s\n", pin_dir,
				strerror(errno));
		pin_dir[0] = 0;
	}
	if (mounted_bpffs) {
		umount(BPFFS); /* leave the machine as found */
		mounted_bpffs = 0;
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	if (level == LIBBPF_WARN)
		libbpf_warnings++;
	return vfprintf(stderr, fmt, ap);
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns() reads the same clock */
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int ensure_bpffs(void)
{
	struct statfs st;

	if (statfs(BPFFS, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpffs", BPFFS, "bpf", 0, "mode=0700"))
		return fail("mount bpffs on %s: %s", BPFFS, strerror(errno));
	mounted_bpffs = 1;
	return 0;
}

/* What one case left in ferry_kept: the records' copies, in order. */
#define KEPT_SEEN_MAX 4
static struct {
	struct kept_bytes head;
	__u8 payload[FRAME_MAX];
} kept_seen[KEPT_SEEN_MAX];
static int kept_count;

static int on_kept(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (kept_count < KEPT_SEEN_MAX && size <= sizeof(kept_seen[0]))
		memcpy(&kept_seen[kept_count], data, size);
	kept_count++;
	return 0;
}

static char verifier_log[2][1 << 16];

static int load(const char *tc_path, const char *xdp_path)
{
	const char *paths[2] = { tc_path, xdp_path };
	const char *progs[2] = { "hold_tc", "hold_xdp" };
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct bpf_program *prog;
	int i, err;

	for (i = 0; i < 2; i++) {
		objs[i] = bpf_object__open_file(paths[i], &opts);
		if (!objs[i])
			return fail("open %s: %s", paths[i], strerror(errno));
		prog = bpf_object__find_program_by_name(objs[i], progs[i]);
		if (!prog)
			return fail("%s has no program %s", paths[i], progs[i]);
		/* Level 4: the verifier's statistics, kept even when the load succeeds. */
		bpf_program__set_log_buf(prog, verifier_log[i], sizeof(verifier_log[i]));
		bpf_program__set_log_level(prog, 4);
		err = bpf_object__load(objs[i]);
		if (err)
			return fail("load %s: %s\n%s", paths[i], strerror(-err), verifier_log[i]);
		prog_fd[i] = bpf_program__fd(prog);
	}
	holds_fd = bpf_object__find_map_fd_by_name(objs[0], "ferry_holds");
	stats_fd = bpf_object__find_map_fd_by_name(objs[0], "ferry_hstats");
	acks_fd = bpf_object__find_map_fd_by_name(objs[0], "ferry_acks");
	counters_fd = bpf_object__find_map_fd_by_name(objs[0], "ferry_counters");
	ncpus = libbpf_num_possible_cpus();
	kept_cnt_fd = bpf_object__find_map_fd_by_name(objs[0], "ferry_kept_cnt");
	if (holds_fd < 0 || stats_fd < 0 || acks_fd < 0 || counters_fd < 0 || kept_cnt_fd < 0 ||
	    ncpus <= 0)
		return fail("maps not found in %s", tc_path);
	kept_ring = ring_buffer__new(bpf_object__find_map_fd_by_name(objs[0], "ferry_kept"),
				     on_kept, NULL, NULL);
	if (!kept_ring)
		return fail("ring_buffer__new(ferry_kept): %s", strerror(errno));
	return 0;
}

static __u32 map_id(struct bpf_object *obj, const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_object__find_map_fd_by_name(obj, name), &info, &len))
		return 0;
	return info.id;
}

/* Both objects use the same maps, pinned under the root given at open. */
static int check_shared_maps(void)
{
	char path[128];
	size_t i;
	int fd;

	for (i = 0; i < NMAPS; i++) {
		__u32 tc = map_id(objs[0], map_names[i]), xdp = map_id(objs[1], map_names[i]);
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (!tc || tc != xdp)
			return fail("%s: hold_tc's map id %u, hold_xdp's %u", map_names[i], tc,
				    xdp);
		snprintf(path, sizeof(path), "%s/%s", pin_dir, map_names[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			return fail("%s not pinned: %s", path, strerror(errno));
		bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		if (info.id != tc)
			return fail("%s pins map id %u, programs use %u", path, info.id, tc);
	}
	return 0;
}

static void key_for(int v6, struct hold_key *k)
{
	memset(k, 0, sizeof(*k));
	if (v6) {
		memcpy(k->local_addr, server6, 16);
		memcpy(k->remote_addr, client6, 16);
	} else {
		k->local_addr[10] = k->local_addr[11] = 0xff;
		k->remote_addr[10] = k->remote_addr[11] = 0xff;
		memcpy(k->local_addr + 12, server4, 4);
		memcpy(k->remote_addr + 12, client4, 4);
	}
	k->local_port = htons(SERVER_PORT);
	k->remote_port = htons(CLIENT_PORT);
}

/* Sums n per-CPU counters of a map (ferry_counters or ferry_kept_cnt). */
static int read_counters(int fd, __u32 n, __u64 *out)
{
	__u64 per_cpu[ncpus];
	__u32 i;
	int c;

	for (i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(fd, &i, per_cpu))
			return fail("read counter %u: %s", i, strerror(errno));
		for (out[i] = 0, c = 0; c < ncpus; c++)
			out[i] += per_cpu[c];
	}
	return 0;
}

/*
 * Both connections get zeroed stats and the case's ack_before; only the case's gets a hold, if
 * it has one.
 */
static int set_maps(const struct test_case *tc, struct hold_key *key)
{
	struct hold_stats zero = {};
	struct hold_key k;
	int v6;

	for (v6 = 0; v6 < 2; v6++) {
		key_for(v6, &k);
		bpf_map_delete_elem(holds_fd, &k);
		if (bpf_map_update_elem(stats_fd, &k, &zero, BPF_ANY))
			return fail("set stats: %s", strerror(errno));
		if (bpf_map_update_elem(acks_fd, &k, &tc->ack_before, BPF_ANY))
			return fail("set acks: %s", strerror(errno));
	}
	key_for(tc->in.v6, key);
	if (tc->hold.flags) {
		__u64 now = now_ns();
		struct hold_value v = {
			.flags = tc->hold.flags,
			.rcv_nxt = tc->hold.rcv_nxt,
			.ts_val = tc->hold.ts_val,
			.wake_from = tc->hold.wake_from,
			.wake_to = tc->hold.wake_to,
			.ts_base_ns = now - tc->hold.ts_age_ms * 1000000ULL,
			.deadline_ns = tc->hold.expired ? now - 1 : FAR_FUTURE,
		};

		if (bpf_map_update_elem(holds_fd, key, &v, BPF_ANY))
			return fail("set hold: %s", strerror(errno));
	}
	return 0;
}

static const char *verdict_name(enum prog p, __u32 v)
{
	static const char *const tc[] = { "TC_ACT_OK", "TC_ACT_RECLASSIFY", "TC_ACT_SHOT" };
	static const char *const xdp[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					   "XDP_REDIRECT" };
	static char other[16];

	if (p == TC && v == (__u32)TC_ACT_UNSPEC)
		return "TC_ACT_UNSPEC";
	if (p == TC && v < 3)
		return tc[v];
	if (p == XDP && v < 5)
		return xdp[v];
	snprintf(other, sizeof(other), "%u", v);
	return other;
}

/* The answer hold_xdp must make of the client's segment in, given the TSval it chose. */
static size_t expected_answer(const struct test_case *tc, __u32 tsval, __u8 *out)
{
	struct seg s = {
		.v6 = tc->in.v6,
		.to_server = 0,
		.flags = F_ACK,
		.seq = tc->in.ack,
		.ack = tc->hold.rcv_nxt,
		.tos = tc->in.tos & ~3, /* same DSCP, no ECN */
		.ttl = 64,
		.frag_off = 0x4000,
	};
	__u8 ts[12] = { 1, 1, 8, 10 };

	if (tc->hold.flags & HOLD_F_TIMESTAMPS) {
		put32(ts + 4, tsval);
		put32(ts + 8, tc->tsecr);
		s.opts = ts;
		s.opts_len = sizeof(ts);
	}
	return build(&s, out);
}

/* The TSval an answer sent between before and after may carry. */
static int check_tsval(const struct hold_spec *h, __u32 got, __u64 base, __u64 before,
		       __u64 after)
{
	int us = h->ts_val & 1;
	__u64 unit = us ? 1000 : 1000000;
	__u32 lo = h->ts_val + (before - base) / unit, hi = h->ts_val + (after - base) / unit;

	if (us && !(got & 1))
		return fail("tsval 0x%08x lost the microsecond bit", got);
	if (got - lo > hi + us - lo)
		return fail("tsval got %u want %u..%u", got, lo, hi + us);
	return 0;
}

static int run_once(const struct test_case *tc, const __u8 *in, size_t in_len, __u32 *tsval)
{
	__u8 out[4096], want[FRAME_MAX];
	size_t want_len;
	__u64 before, after, base;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = in_len,
		    .data_out = out, .data_size_out = sizeof(out));
	struct hold_key key;
	struct hold_value v;
	struct seg s;
	const __u8 *tcp;
	int err;

	key_for(tc->in.v6, &key);
	before = now_ns();
	err = bpf_prog_test_run_opts(prog_fd[tc->prog], &opts);
	after = now_ns();
	if (err)
		return fail("BPF_PROG_TEST_RUN: %s", strerror(-err));
	if (opts.retval != tc->verdict)
		return fail("verdict got %s want %s", verdict_name(tc->prog, opts.retval),
			    verdict_name(tc->prog, tc->verdict));
	switch (tc->expect) {
	case DROPPED:
		return 0;
	case SAME:
		return compare(out, opts.data_size_out, in, in_len);
	case ZERO_WINDOW:
	case WOKEN:
		s = tc->in;
		if (tc->expect == ZERO_WINDOW)
			s.window = 0;
		else
			s.seq = tc->hold.wake_to;
		if (check_sums(out, opts.data_size_out))
			return -1;
		return compare(out, opts.data_size_out, want, build(&s, want));
	case ANSWER:
		if (opts.data_size_out < 14 + (tc->in.v6 ? 40 : 20) + 20)
			return fail("answer of %u bytes", opts.data_size_out);
		tcp = out + 14 + (tc->in.v6 ? 40 : 20);
		*tsval = opts.data_size_out >= (size_t)(tcp + 32 - out) ? get32(tcp + 24) : 0;
		if (check_sums(out, opts.data_size_out))
			return -1;
		want_len = expected_answer(tc, *tsval, want);
		if (compare(out, opts.data_size_out, want, want_len))
			return -1;
		if (!(tc->hold.flags & HOLD_F_TIMESTAMPS))
			return 0;
		if (bpf_map_lookup_elem(holds_fd, &key, &v))
			return fail("hold vanished");
		base = v.ts_base_ns;
		return check_tsval(&tc->hold, *tsval, base, before, after);
	}
	return 0;
}

/*
 * The records the case's runs left in ferry_kept: each with the case's key, the segment's seq
 * and exactly the payload bytes the IP length covers, and the counters to match.
 */
static int check_kept(const struct test_case *tc, const __u8 *in, int runs,
		      const __u64 k0[CNT_KEPT_MAX])
{
	size_t off = 14 + (tc->in.v6 ? 40 : 20 + tc->in.ip_opts) + 20 + tc->in.opts_len;
	int i, want = tc->kept * runs;
	__u64 k1[CNT_KEPT_MAX];
	struct hold_key key;

	kept_count = 0;
	if (ring_buffer__consume(kept_ring) < 0)
		return fail("ring_buffer__consume(ferry_kept): %s", strerror(errno));
	if (kept_count != want)
		return fail("records in ferry_kept got %d want %d", kept_count, want);
	key_for(tc->in.v6, &key);
	for (i = 0; i < kept_count && i < KEPT_SEEN_MAX; i++) {
		const struct kept_bytes *h = &kept_seen[i].head;

		if (memcmp(&h->key, &key, sizeof(key)))
			return fail("kept record %d: key differs from the held connection's", i);
		if (h->seq != tc->in.seq)
			return fail("kept record %d: seq got %u want %u", i, h->seq, tc->in.seq);
		if (h->len != tc->in.payload)
			return fail("kept record %d: len got %u want %u", i, h->len,
				    tc->in.payload);
		if (memcmp(kept_seen[i].payload, in + off, h->len))
			return fail("kept record %d: payload differs from the segment's", i);
	}
	if (read_counters(kept_cnt_fd, CNT_KEPT_MAX, k1))
		return -1;
	if (k1[CNT_KEPT] - k0[CNT_KEPT] != (__u64)want)
		return fail("CNT_KEPT got +%llu want +%d",
			    (unsigned long long)(k1[CNT_KEPT] - k0[CNT_KEPT]), want);
	if (k1[CNT_NOT_KEPT] - k0[CNT_NOT_KEPT] != (__u64)(tc->not_kept * runs))
		return fail("CNT_NOT_KEPT got +%llu want +%d",
			    (unsigned long long)(k1[CNT_NOT_KEPT] - k0[CNT_NOT_KEPT]),
			    tc->not_kept * runs);
	return 0;
}

static int run_case(const struct test_case *tc)
{
	__u64 c0[CNT_MAX], c1[CNT_MAX], k0[CNT_KEPT_MAX];
	__u8 in[FRAME_MAX];
	size_t in_len = build(&tc->in, in);
	struct hold_stats got, want = tc->stats;
	struct hold_key key;
	__u32 ts1 = 0, ts2 = 0;
	int i, runs = tc->twice ? 2 : 1;

	if (set_maps(tc, &key) || read_counters(counters_fd, CNT_MAX, c0) ||
	    read_counters(kept_cnt_fd, CNT_KEPT_MAX, k0))
		return -1;
	if (run_once(tc, in, in_len, &ts1))
		return -1;
	if (tc->twice) {
		usleep(20 * 1000);
		if (run_once(tc, in, in_len, &ts2))
			return -1;
		if ((__s32)(ts2 - ts1) < 19)
			return fail("tsval after 20 ms got %u want >= %u", ts2, ts1 + 19);
	}
	if (read_counters(counters_fd, CNT_MAX, c1) || check_kept(tc, in, runs, k0))
		return -1;
	for (i = 0; i < CNT_MAX; i++)
		if (c1[i] - c0[i] != tc->cnt[i] * runs)
			return fail("%s got +%llu want +%llu", counter_names[i],
				    (unsigned long long)(c1[i] - c0[i]),
				    (unsigned long long)tc->cnt[i] * runs);
	if (tc->check_ack) {
		struct client_ack a;

		if (bpf_map_lookup_elem(acks_fd, &key, &a))
			return fail("acks entry vanished");
		if (memcmp(&a, &tc->acked, sizeof(a)))
			return fail("acks got {ack %u tsval %#x window %#x seen %u} "
				    "want {%u %#x %#x %u}",
				    a.ack, a.tsval, a.window, a.seen, tc->acked.ack, tc->acked.tsval,
				    tc->acked.window, tc->acked.seen);
	}
	if (bpf_map_lookup_elem(stats_fd, &key, &got))
		return fail("stats entry vanished");
	want.probes_answered *= runs;
	if (memcmp(&got, &want, sizeof(got)))
		return fail("stats got {answered %llu dropped %llu zeroed %llu resets %llu "
			    "expired %llu} want {%llu %llu %llu %llu %llu}",
			    got.probes_answered, got.segments_dropped, got.windows_zeroed,
			    got.resets, got.expired, want.probes_answered, want.segments_dropped,
			    want.windows_zeroed, want.resets, want.expired);
	return 0;
}

static int passed, failed;

static void report(const char *name, int err)
{
	if (err) {
		failed++;
		printf("FAIL %s: %s\n", name, msg);
	} else {
		passed++;
		printf("PASS %s\n", name);
	}
}

/* The verifier's "processed N insns" line, for the record. */
static void report_load(const char *name, int i)
{
	const char *p = strstr(verifier_log[i], "processed ");
	int len = p ? (int)strcspn(p, "\n") : 0;

	if (libbpf_warnings) {
		report(name, fail("%d libbpf warning(s) while loading, see above",
				  libbpf_warnings));
		return;
	}
	passed++;
	printf("PASS %s (verifier: %.*s)\n", name, len, p ? p : "no statistics");
}

int main(int argc, char **argv)
{
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 3) {
		fprintf(stderr, "usage: %s hold_tc.bpf.o hold_xdp.bpf.o\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		report("setup", fail("hold_test must run as root: BPF_PROG_TEST_RUN and pinning "
				     "maps in bpffs need it (try sudo make -C bpf test)"));
		printf("%d passed, %d failed\n", passed, failed);
		return 1;
	}
	libbpf_set_print(print_libbpf);
	atexit(cleanup);
	/* Pins outlive the process: remove them whatever ends it. */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGABRT, on_signal);
	if (ensure_bpffs()) {
		report("setup", -1);
		goto out;
	}
	strcpy(pin_dir, BPFFS "/ferry-hold-test-XXXXXX");
	if (!mkdtemp(pin_dir)) {
		report("setup", fail("mkdtemp %s: %s", pin_dir, strerror(errno)));
		pin_dir[0] = 0;
		goto out;
	}
	if (load(argv[1], argv[2])) {
		report("load", -1);
		goto out;
	}
	report_load("load hold_tc", 0);
	report_load("load hold_xdp", 1);
	report("maps shared through pins", check_shared_maps());
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		report(cases[i].name, run_case(&cases[i]));
out:
	cleanup();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
