// SPDX-License-Identifier: GPL-2.0
/*
 * congestion_seed: gives a socket restored with TCP_REPAIR the congestion window and slow-start
 * threshold its original had, which no socket option can set.
 *
 * It is a congestion control (struct tcp_congestion_ops) that exists only to run its init:
 * the agent writes the source's values into the socket's storage (ferry_seeds, keyed by the
 * socket's descriptor), sets the socket's TCP_CONGESTION to one of the names below while it is
 * still closed, and connects it in repair mode. connect() initialises the congestion control
 * after it has set the initial window, so init overwrites that window with the seed; the agent
 * then switches the socket to the algorithm it had (cubic, bbr, ...), and a switch leaves cwnd
 * and ssthresh as they are. Should the socket ever stay on it, it behaves as reno. It also paces
 * the first flight at the rate the original delivered (see seed_init).
 *
 * The RTT estimate is not carried: the verifier refuses writes to srtt_us, mdev_us and
 * rttvar_us from a congestion control (bpf_tcp_ca_btf_struct_access on Linux 6.18).
 *
 * The agent registers one of four names, the first free one: agents of several nodes share one
 * kernel in the one-machine cluster and in tests. It registers through a BPF link (BPF_F_LINK
 * on the map), so the name is unregistered when the agent exits, however it exits.
 *
 * The kernel types are declared here with only the fields used, relocated by name against the
 * running kernel's BTF (CO-RE), which a struct_ops program needs anyway: no vmlinux.h.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* Defined, not only declared: libbpf matches a kfunc's argument types by kind, and a forward
 * declaration is not the kernel's struct. */
struct sock {
	unsigned long sk_pacing_rate;
	__u32 sk_pacing_status;
} __attribute__((preserve_access_index));

/* enum sk_pacing: TCP paces itself (an hrtimer) rather than leaving it to the fq qdisc. */
#define SK_PACING_NONE 0
#define SK_PACING_NEEDED 1

struct tcp_sock {
	__u32 snd_cwnd;
	__u32 snd_ssthresh;
	__u32 snd_cwnd_clamp;
	__u32 snd_cwnd_cnt;
} __attribute__((preserve_access_index));

/* libbpf fills the kernel's struct member by member, by name. */
struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	void (*init)(struct sock *sk);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
};

/* Mirrored by dev.ferry.agent.repair.CongestionSeed. 0 leaves a value as connect() set it. */
struct seed {
	__u32 cwnd;
	__u32 ssthresh;
	__u64 pacing_rate; /* bytes per second */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct seed);
} ferry_seeds SEC(".maps");

extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

/* A struct_ops program's context is its arguments, each widened to 64 bits. */
SEC("struct_ops")
void seed_init(unsigned long long *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct seed *s = bpf_sk_storage_get(&ferry_seeds, sk, 0, 0);

	if (!s)
		return;
	if (s->cwnd) {
		tp->snd_cwnd = s->cwnd < tp->snd_cwnd_clamp ? s->cwnd : tp->snd_cwnd_clamp;
		tp->snd_cwnd_cnt = 0;
	}
	if (s->ssthresh)
		tp->snd_ssthresh = s->ssthresh;
	/*
	 * The original sent its window in step with the ACKs coming back; the restored socket has
	 * none yet, and would send the whole seeded window in one burst at line rate, which the
	 * bottleneck's queue drops. Paced at the rate the original delivered, the first flight
	 * leaves as its last one did; the first ACK then sets the rate from cwnd and the RTT, and
	 * TCP keeps pacing the connection (as BBR has it do), qdisc or not.
	 */
	if (s->pacing_rate) {
		sk->sk_pacing_rate = s->pacing_rate;
		if (sk->sk_pacing_status == SK_PACING_NONE)
			sk->sk_pacing_status = SK_PACING_NEEDED;
	}
	/* Used once: a later init (a switch back to this name) must not seed again. */
	bpf_sk_storage_delete(&ferry_seeds, sk);
}

SEC("struct_ops")
__u32 seed_ssthresh(unsigned long long *ctx)
{
	return tcp_reno_ssthresh((struct sock *)ctx[0]);
}

SEC("struct_ops")
void seed_cong_avoid(unsigned long long *ctx)
{
	tcp_reno_cong_avoid((struct sock *)ctx[0], (__u32)ctx[1], (__u32)ctx[2]);
}

SEC("struct_ops")
__u32 seed_undo_cwnd(unsigned long long *ctx)
{
	return tcp_reno_undo_cwnd((struct sock *)ctx[0]);
}

#define SEED_SLOT(n)                                            \
	SEC(".struct_ops")                                      \
	struct tcp_congestion_ops ferry_seed_##n = {            \
		.init = (void *)seed_init,                      \
		.ssthresh = (void *)seed_ssthresh,              \
		.cong_avoid = (void *)seed_cong_avoid,          \
		.undo_cwnd = (void *)seed_undo_cwnd,            \
		.name = "ferry_seed_" #n,                       \
	};

SEED_SLOT(0)
SEED_SLOT(1)
SEED_SLOT(2)
SEED_SLOT(3)
