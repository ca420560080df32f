/* Connections/s load for bench/reuseport.py: a kernel TCP client that costs little
 * more than the kernel's own work, so that on a 2-CPU machine the servers, not the
 * client, use the CPUs.
 *
 *   connload ADDRESS PORT CONCURRENCY SECONDS SIZE
 *
 * CONCURRENCY connections at a time, each: connect, send SIZE bytes, half-close,
 * read the echo to EOF (it must be SIZE bytes), close; then the next.  Prints one
 * JSON line: connections right, failed, seconds, CPU seconds of this process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, AWAITING_ECHO };

struct conn {
    int state;
    long got;
};

static struct sockaddr_in server;
static char payload[65536];
static long size;
static struct conn *conns;
static long ok, failed;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 when a connection is under way, 0 when it failed at once. */
static int open_one(int ep) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        failed++;
        return 0;
    }
    conns[fd].state = CONNECTING;
    conns[fd].got = 0;
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        failed++;
        close(fd);
        return 0;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return 1;
}

/* 1 when the connection is over (right or not), 0 while it goes on. */
static int step(int ep, int fd, unsigned events) {
    struct conn *c = &conns[fd];
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || send(fd, payload, size, MSG_NOSIGNAL) != size || shutdown(fd, SHUT_WR) < 0) {
            failed++;
            return 1;
        }
        c->state = AWAITING_ECHO;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        return 0;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            c->got += n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return (events & (EPOLLERR | EPOLLHUP)) ? (failed++, 1) : 0;
        if (n == 0 && c->got == size)
            ok++;
        else
            failed++;
        return 1;
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: connload ADDRESS PORT CONCURRENCY SECONDS SIZE\n");
        return 2;
    }
    server.sin_family = AF_INET;
    server.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
        fprintf(stderr, "connload: bad IPv4 address %s\n", argv[1]);
        return 2;
    }
    int concurrency = atoi(argv[3]);
    double seconds = atof(argv[4]);
    size = atol(argv[5]);
    if (size < 1 || size > (long)sizeof payload || concurrency < 1) {
        fprintf(stderr, "connload: SIZE 1..65536, CONCURRENCY >= 1\n");
        return 2;
    }
    memset(payload, 'x', size);
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    conns = calloc(nofile.rlim_cur, sizeof *conns);
    int ep = epoll_create1(0);
    double start = now(), deadline = start + seconds;
    int open_count = 0;
    for (int i = 0; i < concurrency; i++)
        open_count += open_one(ep);
    struct epoll_event events[256];
    while (open_count > 0) {
        int n = epoll_wait(ep, events, 256, 100);
        double t = now();
        if (t > deadline + 10)
            break; /* a server that stopped answering: what is left has failed */
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (step(ep, fd, events[i].events)) {
                close(fd);
                open_count--;
                if (t < deadline)
                    open_count += open_one(ep);
            }
        }
    }
    failed += open_count;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    printf("{\"ok\": %ld, \"failed\": %ld, \"seconds\": %.3f, \"cpu\": %.3f}\n", ok, failed,
           now() - start, cpu);
    return 0;
}
