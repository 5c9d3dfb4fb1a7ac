/*
 * nfq_delay: holds every packet of one NFQUEUE queue for a fixed time, then lets it through.
 *
 * This kernel has no netem, so the zone experiment (Benchmarks/peers/zones) delays the traffic of zone b's
 * instances with an iptables rule `-j NFQUEUE --queue-num N --queue-bypass` and this program:
 *
 *     nfq_delay QUEUE_NUMBER DELAY_MICROSECONDS
 *
 * The delay is the same for every packet, so packets leave in the order they came (a FIFO ring) and each
 * flow keeps its order. Only packet ids are copied from the kernel (NFQNL_COPY_META), never payloads. The
 * wait is ppoll with nanosecond timeouts and a 1 ns timer slack, so the hold is the delay plus the wake-up
 * latency of this machine (the harness measures the delay it really gets). On SIGTERM or SIGINT, and when
 * the process that started it ends, every held packet is accepted at once and the queue is unbound; with
 * --queue-bypass the rule then passes packets undelayed until it is removed.
 *
 * Build: gcc -O2 -Wall -o nfq_delay nfq_delay.c -lnetfilter_queue -lnfnetlink   (Debian: libnetfilter-queue-dev)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#define RING_SIZE 65536 /* held packets; a full ring accepts new packets at once */

struct held {
    uint32_t id;
    int64_t due_ns; /* CLOCK_MONOTONIC */
};

static struct held ring[RING_SIZE];
static size_t head, count;
static int64_t delay_ns;
static struct nfq_q_handle *queue;
static volatile sig_atomic_t stopping;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void accept_packet(uint32_t id) { nfq_set_verdict(queue, id, NF_ACCEPT, 0, NULL); }

/* Called by nfq_handle_packet for each queued packet: remember it with its due time. */
static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *data, void *context) {
    (void)q, (void)msg, (void)context;
    struct nfqnl_msg_packet_hdr *header = nfq_get_msg_packet_hdr(data);
    if (header == NULL) return 0;
    uint32_t id = ntohl(header->packet_id);
    if (count == RING_SIZE) {
        accept_packet(id);
        return 0;
    }
    ring[(head + count) % RING_SIZE] = (struct held){id, now_ns() + delay_ns};
    count++;
    return 0;
}

/* Accepts every held packet whose time has come (all of them when `all`). */
static void release(int all) {
    int64_t now = now_ns();
    while (count > 0 && (all || ring[head].due_ns <= now)) {
        accept_packet(ring[head].id);
        head = (head + 1) % RING_SIZE;
        count--;
    }
}

static void on_signal(int signal) {
    (void)signal;
    stopping = 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s QUEUE_NUMBER DELAY_MICROSECONDS\n", argv[0]);
        return 2;
    }
    int queue_number = atoi(argv[1]);
    delay_ns = atoll(argv[2]) * 1000;

    struct sigaction action = {.sa_handler = on_signal};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake up when asked, not up to 50 µs later */
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* end with the harness, however it ends */

    struct nfq_handle *handle = nfq_open();
    if (handle == NULL) {
        perror("nfq_open");
        return 1;
    }
    queue = nfq_create_queue(handle, queue_number, on_packet, NULL);
    if (queue == NULL) {
        perror("nfq_create_queue (is another program bound to this queue?)");
        return 1;
    }
    if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0) {
        perror("nfq_set_mode");
        return 1;
    }
    nfq_set_queue_maxlen(queue, RING_SIZE);
    int fd = nfq_fd(handle);
    nfnl_rcvbufsiz(nfq_nfnlh(handle), 16 << 20);
    int on = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on);

    fprintf(stderr, "nfq_delay: queue %d, %lld us per packet\n", queue_number, (long long)(delay_ns / 1000));
    char buffer[65536];
    struct pollfd readable = {.fd = fd, .events = POLLIN};
    while (!stopping) {
        struct timespec timeout, *wait = NULL; /* nothing held: wait for a packet */
        if (count > 0) {
            int64_t left = ring[head].due_ns - now_ns();
            if (left < 0) left = 0;
            timeout = (struct timespec){left / 1000000000, left % 1000000000};
            wait = &timeout;
        }
        int ready = ppoll(&readable, 1, wait, NULL);
        if (ready < 0 && errno != EINTR) {
            perror("ppoll");
            break;
        }
        if (ready > 0) {
            /* Drain what the kernel has queued so far without blocking. */
            ssize_t length;
            while ((length = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0) {
                nfq_handle_packet(handle, buffer, (int)length);
            }
        }
        release(0);
    }
    release(1);
    nfq_destroy_queue(queue);
    nfq_close(handle);
    fprintf(stderr, "nfq_delay: stopped\n");
    return 0;
}
