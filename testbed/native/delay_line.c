// SPDX-License-Identifier: Apache-2.0
/*
 * delay_line: a one-way delay for IP packets, for test links (this kernel has no netem).
 *
 *   delay_line IN OUT DELAY_US
 *
 * Creates the TUN devices IN and OUT (they go when the process does), prints "ready" once
 * they exist, and from then on writes every packet routed into IN out of OUT, DELAY_US
 * microseconds after it arrived, in arrival order. The caller brings the devices up and
 * routes through them. On SIGTERM or SIGINT it prints one line of figures and exits:
 *
 *   packets N dropped D late_p50_us A late_p99_us B late_max_us C
 *
 * "late" is how long after its due time a packet went out: the delay line's own error, added
 * to DELAY_US. A packet that finds the queue full (QUEUE packets) is dropped and counted.
 * It runs SCHED_FIFO with 1 us timer slack where it may, so that a busy machine delays it
 * as little as possible; it says on stderr when it may not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define QUEUE 32768
#define MAX_PACKET 2048
#define LATE_BUCKETS 100000 /* 1 us each; later than 100 ms counts in the last */

struct packet {
	uint64_t due_ns;
	uint16_t len;
	unsigned char data[MAX_PACKET];
};

static struct packet queue[QUEUE];
static uint64_t late_counts[LATE_BUCKETS];
static uint64_t sent, dropped, late_max_ns;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int open_tun(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		perror("delay_line: /dev/net/tun");
		exit(1);
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	if (strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "delay_line: device name %s is longer than %d\n", name, IFNAMSIZ - 1);
		exit(2);
	}
	strcpy(ifr.ifr_name, name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "delay_line: TUNSETIFF %s: %s\n", name, strerror(errno));
		exit(1);
	}
	return fd;
}

static uint64_t percentile(double p)
{
	uint64_t want = (uint64_t)(p * (double)sent), seen = 0;
	for (int i = 0; i < LATE_BUCKETS; i++) {
		seen += late_counts[i];
		if (seen > want)
			return (uint64_t)i;
	}
	return LATE_BUCKETS;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: delay_line IN OUT DELAY_US\n");
		return 2;
	}
	char *end;
	long delay_us = strtol(argv[3], &end, 10);
	if (*end || delay_us < 0 || delay_us > 10000000) {
		fprintf(stderr, "delay_line: DELAY_US must be 0-10000000, got %s\n", argv[3]);
		return 2;
	}
	uint64_t delay_ns = (uint64_t)delay_us * 1000;
	int in = open_tun(argv[1]);
	int out = open_tun(argv[2]);

	struct sched_param sp = { .sched_priority = 10 };
	if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
		fprintf(stderr, "delay_line: no SCHED_FIFO (%s): a busy machine makes it later\n",
			strerror(errno));
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready\n");
	fflush(stdout);

	size_t head = 0, tail = 0; /* queue[head..tail) waits, oldest first */
	while (!stop) {
		struct pollfd pfd = { .fd = in, .events = POLLIN };
		struct timespec timeout, *wait = NULL;
		if (head != tail) {
			uint64_t now = now_ns(), due = queue[head % QUEUE].due_ns;
			uint64_t left = due > now ? due - now : 0;
			timeout.tv_sec = (time_t)(left / 1000000000u);
			timeout.tv_nsec = (long)(left % 1000000000u);
			wait = &timeout;
		}
		if (ppoll(&pfd, 1, wait, NULL) < 0 && errno != EINTR) {
			perror("delay_line: ppoll");
			return 1;
		}
		for (;;) {
			struct packet *p = &queue[tail % QUEUE];
			unsigned char scratch[MAX_PACKET];
			int full = tail - head == QUEUE;
			ssize_t n = read(in, full ? scratch : p->data, MAX_PACKET);
			if (n <= 0)
				break;
			if (full) {
				dropped++;
				continue;
			}
			p->len = (uint16_t)n;
			p->due_ns = now_ns() + delay_ns;
			tail++;
		}
		uint64_t now = now_ns();
		while (head != tail && queue[head % QUEUE].due_ns <= now) {
			struct packet *p = &queue[head % QUEUE];
			/* OUT is not read by anyone: a write injects the packet as received there. */
			if (write(out, p->data, p->len) < 0 && errno != EAGAIN)
				dropped++;
			uint64_t late = now - p->due_ns;
			late_counts[late / 1000 < LATE_BUCKETS ? late / 1000 : LATE_BUCKETS - 1]++;
			if (late > late_max_ns)
				late_max_ns = late;
			sent++;
			head++;
			now = now_ns();
		}
	}
	printf("packets %llu dropped %llu late_p50_us %llu late_p99_us %llu late_max_us %llu\n",
	       (unsigned long long)sent, (unsigned long long)dropped,
	       (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99),
	       (unsigned long long)(late_max_ns / 1000));
	return 0;
}
