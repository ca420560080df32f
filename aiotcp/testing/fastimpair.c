/* fastimpair: a small NFQUEUE helper that delays (and optionally drops) packets.
 *
 * The C counterpart of ``python -m aiotcp.testing.impair`` for what is cheap to do
 * in bulk: a constant one-way delay and seeded random loss.  Built on demand by
 * aiotcp.testing.fastimpair (gcc, libnetfilter_queue) into a cache directory; never
 * committed as a binary.
 *
 * Why it is cheap:
 *   - metadata only (NFQNL_COPY_META): the kernel copies no payload to user space;
 *   - recvmmsg: up to BATCH queue messages per system call;
 *   - batch verdicts: the delay is constant, so packets leave in arrival order and
 *     one nfq_set_verdict_batch() accepts every packet that is due (all ids <= n);
 *   - --gso: NFQA_CFG_F_GSO, the kernel hands over GSO/GRO aggregates (up to 64 KB)
 *     whole instead of segmenting them first.  Only with --loss 0: a drop would
 *     then remove a whole aggregate, not one wire segment.
 *
 * Usage: fastimpair --queue N [--delay-us D] [--loss P] [--seed S] [--gso]
 *                   [--maxlen M]
 * Prints "ready" once bound, and on SIGTERM/SIGINT releases every held packet and
 * prints one JSON line of counters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/netfilter.h> /* NF_ACCEPT, NF_DROP: after the libc headers */
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnfnetlink/libnfnetlink.h>

#define BATCH 128
#define BUFSIZE 4096 /* one metadata-only message is a few hundred bytes */

struct held {
    uint32_t id;
    uint64_t due_ns;
};

static struct held *fifo;
static size_t fifo_cap, fifo_head, fifo_len;
static uint64_t delay_ns;
static double loss;
static uint64_t rng_state;
static struct nfq_q_handle *qh;
static volatile sig_atomic_t stopping;
static uint64_t seen, dropped, delayed, verdict_calls, recv_calls, enobufs, max_held;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, seeded, the same sequence on every machine */
static double next_uniform(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static void push(uint32_t id, uint64_t due)
{
    if (fifo_len == fifo_cap) {
        size_t cap = fifo_cap ? fifo_cap * 2 : 65536;
        struct held *grown = malloc(cap * sizeof *grown);
        if (!grown) {
            perror("fastimpair: malloc");
            exit(1);
        }
        for (size_t i = 0; i < fifo_len; i++)
            grown[i] = fifo[(fifo_head + i) % fifo_cap];
        free(fifo);
        fifo = grown;
        fifo_cap = cap;
        fifo_head = 0;
    }
    fifo[(fifo_head + fifo_len) % fifo_cap] = (struct held){id, due};
    fifo_len++;
    if (fifo_len > max_held)
        max_held = fifo_len;
}

/* Accept every held packet due by `now` (all of them when now == UINT64_MAX). */
static void release_due(uint64_t now)
{
    uint32_t last = 0;
    int any = 0;
    while (fifo_len && fifo[fifo_head].due_ns <= now) {
        last = fifo[fifo_head].id;
        any = 1;
        fifo_head = (fifo_head + 1) % fifo_cap;
        fifo_len--;
    }
    if (any) {
        nfq_set_verdict_batch(qh, last, NF_ACCEPT);
        verdict_calls++;
    }
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data)
{
    (void)msg;
    (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    seen++;
    /* One draw per packet whatever the settings: packet n's fate depends on n only. */
    double r = next_uniform();
    if (!stopping && r < loss) {
        /* Dropped at once; later batch verdicts cover only packets still queued. */
        dropped++;
        nfq_set_verdict(q, id, NF_DROP, 0, NULL);
        verdict_calls++;
        return 0;
    }
    if (delay_ns && !stopping)
        delayed++;
    push(id, *(uint64_t *)data);
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: fastimpair --queue N [--delay-us D] [--loss P] [--seed S] [--gso] "
                    "[--maxlen M]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long queue = -1;
    uint64_t seed = 0;
    int gso = 0;
    unsigned maxlen = 1u << 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--gso")) {
            gso = 1;
            continue;
        }
        if (!v)
            usage();
        if (!strcmp(a, "--queue"))
            queue = strtol(v, NULL, 10);
        else if (!strcmp(a, "--delay-us"))
            delay_ns = strtoull(v, NULL, 10) * 1000u;
        else if (!strcmp(a, "--loss"))
            loss = strtod(v, NULL);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--maxlen"))
            maxlen = (unsigned)strtoul(v, NULL, 10);
        else
            usage();
        i++;
    }
    if (queue < 0 || queue > 65535 || loss < 0 || loss > 1)
        usage();
    if (gso && loss > 0) {
        fprintf(stderr, "fastimpair: --gso drops whole aggregates; use it with --loss 0\n");
        return 2;
    }
    rng_state = seed;

    struct nfq_handle *h = nfq_open();
    if (!h) {
        perror("fastimpair: nfq_open");
        return 1;
    }
    uint64_t arrival_due = 0; /* filled per batch, read by on_packet */
    qh = nfq_create_queue(h, (uint16_t)queue, on_packet, &arrival_due);
    if (!qh) {
        perror("fastimpair: nfq_create_queue");
        return 1;
    }
    if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
        perror("fastimpair: nfq_set_mode");
        return 1;
    }
    if (nfq_set_queue_maxlen(qh, maxlen) < 0)
        perror("fastimpair: nfq_set_queue_maxlen");
    if (gso && nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0) {
        perror("fastimpair: NFQA_CFG_F_GSO");
        return 1;
    }
    int fd = nfq_fd(h);
    int rcvbuf = 64 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: ppoll returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static char bufs[BATCH][BUFSIZE];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){bufs[i], BUFSIZE};
        msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
    }
    printf("ready\n");
    fflush(stdout);

    /* After SIGTERM the rule is already gone (the caller removes it first): keep
     * reading what is still queued for a short while, then release everything. */
    uint64_t drain_until = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (stopping && !drain_until)
            drain_until = now + 50000000u; /* 50 ms */
        release_due(stopping ? UINT64_MAX : now);
        if (drain_until && now >= drain_until)
            break;
        struct timespec ts, *tp = NULL;
        uint64_t wake = fifo_len ? fifo[fifo_head].due_ns : 0;
        if (drain_until && (!wake || drain_until < wake))
            wake = drain_until;
        if (wake) {
            uint64_t wait = wake > now ? wake - now : 0;
            ts.tv_sec = (time_t)(wait / 1000000000u);
            ts.tv_nsec = (long)(wait % 1000000000u);
            tp = &ts;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = ppoll(&pfd, 1, tp, NULL);
        if (ready < 0 && errno != EINTR) {
            perror("fastimpair: ppoll");
            break;
        }
        if (ready <= 0)
            continue;
        for (;;) {
            int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (n < 0) {
                if (errno == ENOBUFS) { /* the kernel dropped queue messages */
                    enobufs++;
                    continue;
                }
                if (errno != EAGAIN && errno != EINTR)
                    perror("fastimpair: recvmmsg");
                break;
            }
            recv_calls++;
            arrival_due = now_ns() + delay_ns;
            for (int i = 0; i < n; i++)
                nfq_handle_packet(h, bufs[i], (int)msgs[i].msg_len);
            if (!delay_ns)
                release_due(arrival_due);
            if (n < BATCH)
                break;
        }
    }
    release_due(UINT64_MAX);
    nfq_destroy_queue(qh);
    nfq_close(h);
    printf("{\"seen\": %" PRIu64 ", \"dropped\": %" PRIu64 ", \"delayed\": %" PRIu64
           ", \"verdict_calls\": %" PRIu64 ", \"recv_calls\": %" PRIu64
           ", \"enobufs\": %" PRIu64 ", \"max_held\": %" PRIu64 "}\n",
           seen, dropped, delayed, verdict_calls, recv_calls, enobufs, max_held);
    fflush(stdout);
    return 0;
}
