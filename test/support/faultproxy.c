/* SPDX-License-Identifier: Apache-2.0 */
#include "faultproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE  (64 * 1024)
#define MAX_CONNS 256

typedef struct pipe_buf {
        char data[BUF_SIZE];
        size_t len;
} pipe_buf;

typedef struct conn {
        int cfd, ufd;
        pipe_buf up;   /* client -> upstream */
        pipe_buf down; /* upstream -> client */
        bool stalled;
} conn;

typedef enum cmd {
        CMD_NONE,
        CMD_DROP,
        CMD_DROP_RST,
        CMD_STALL,
        CMD_UNSTALL,
        CMD_QUIT,
} cmd;

struct faultproxy {
        struct sockaddr_in upstream;
        int lfd;
        int port;
        char url[64];
        int wake[2];
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        cmd pending;
        int cmd_result;
        unsigned long cmd_seq, cmd_done;
        bool refuse;
        faultproxy_stats stats;

        conn *conns[MAX_CONNS];
        size_t n_conns;
};

static void close_conn(faultproxy *p, size_t i, bool rst) {
        conn *c = p->conns[i];
        if (rst) {
                struct linger l = {.l_onoff = 1, .l_linger = 0};
                setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
                setsockopt(c->ufd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        close(c->cfd);
        close(c->ufd);
        free(c);
        p->conns[i] = p->conns[--p->n_conns];
        pthread_mutex_lock(&p->lock);
        p->stats.active--;
        pthread_mutex_unlock(&p->lock);
}

static void set_nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void accept_one(faultproxy *p) {
        int cfd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) return;
        pthread_mutex_lock(&p->lock);
        bool refuse = p->refuse;
        p->stats.accepted++;
        if (refuse) p->stats.refused++;
        pthread_mutex_unlock(&p->lock);
        if (refuse || p->n_conns >= MAX_CONNS) {
                close(cfd);
                return;
        }
        /* Loopback connects complete at once; blocking keeps this simple. */
        int ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ufd < 0 || connect(ufd, (struct sockaddr *)&p->upstream, sizeof(p->upstream)) < 0) {
                if (ufd >= 0) close(ufd);
                close(cfd);
                return;
        }
        set_nonblock(ufd);
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn *c = calloc(1, sizeof(*c));
        if (!c) {
                close(cfd);
                close(ufd);
                return;
        }
        c->cfd = cfd;
        c->ufd = ufd;
        p->conns[p->n_conns++] = c;
        pthread_mutex_lock(&p->lock);
        p->stats.active++;
        pthread_mutex_unlock(&p->lock);
}

/* Moves bytes from fd into b; false when the connection is over. */
static bool fill(int fd, pipe_buf *b) {
        ssize_t n = read(fd, b->data + b->len, BUF_SIZE - b->len);
        if (n > 0) {
                b->len += (size_t)n;
                return true;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        return false;
}

static bool flush_to(faultproxy *p, int fd, pipe_buf *b, bool up) {
        if (b->len == 0) return true;
        ssize_t n = send(fd, b->data, b->len, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        memmove(b->data, b->data + n, b->len - (size_t)n);
        b->len -= (size_t)n;
        pthread_mutex_lock(&p->lock);
        if (up)
                p->stats.bytes_up += (unsigned long long)n;
        else
                p->stats.bytes_down += (unsigned long long)n;
        pthread_mutex_unlock(&p->lock);
        return true;
}

static void run_cmd(faultproxy *p, cmd c) {
        int n = 0;
        switch (c) {
        case CMD_DROP:
        case CMD_DROP_RST:
                n = (int)p->n_conns;
                while (p->n_conns > 0) close_conn(p, p->n_conns - 1, c == CMD_DROP_RST);
                pthread_mutex_lock(&p->lock);
                p->stats.dropped += (unsigned long)n;
                pthread_mutex_unlock(&p->lock);
                break;
        case CMD_STALL:
        case CMD_UNSTALL:
                for (size_t i = 0; i < p->n_conns; i++) p->conns[i]->stalled = c == CMD_STALL;
                n = (int)p->n_conns;
                break;
        default:
                break;
        }
        pthread_mutex_lock(&p->lock);
        p->cmd_result = n;
        p->cmd_done = p->cmd_seq;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
}

static void *thread_main(void *ud) {
        faultproxy *p = ud;
        struct pollfd pfd[2 + 2 * MAX_CONNS];

        for (;;) {
                size_t n = 0;
                pfd[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
                for (size_t i = 0; i < p->n_conns; i++) {
                        conn *c = p->conns[i];
                        short ce = 0, ue = 0;
                        if (!c->stalled) {
                                if (c->up.len < BUF_SIZE) ce |= POLLIN;
                                if (c->down.len > 0) ce |= POLLOUT;
                                if (c->down.len < BUF_SIZE) ue |= POLLIN;
                                if (c->up.len > 0) ue |= POLLOUT;
                        }
                        /* A stalled connection is not polled at all: not even a hang-up
                         * of the peer is noticed, as with a black-holed route. */
                        pfd[n++] = (struct pollfd){.fd = c->stalled ? -1 : c->cfd, .events = ce};
                        pfd[n++] = (struct pollfd){.fd = c->stalled ? -1 : c->ufd, .events = ue};
                }
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR) continue;
                        break;
                }
                if (pfd[0].revents & POLLIN) {
                        char b[64];
                        while (read(p->wake[0], b, sizeof(b)) > 0) {
                        }
                        pthread_mutex_lock(&p->lock);
                        cmd c = p->pending;
                        p->pending = CMD_NONE;
                        pthread_mutex_unlock(&p->lock);
                        if (c == CMD_QUIT) {
                                run_cmd(p, CMD_DROP);
                                break;
                        }
                        if (c != CMD_NONE) {
                                run_cmd(p, c);
                                continue; /* the pollfd array is stale now */
                        }
                }
                /* Connections, from the end so that closing one keeps indexes valid. */
                for (size_t i = p->n_conns; i-- > 0;) {
                        conn *c = p->conns[i];
                        struct pollfd *cp = &pfd[2 + 2 * i], *up = &pfd[2 + 2 * i + 1];
                        bool ok = true;
                        if (c->stalled) continue;
                        if (cp->revents & (POLLIN | POLLHUP | POLLERR))
                                ok = ok && fill(c->cfd, &c->up);
                        if (ok && (up->revents & (POLLIN | POLLHUP | POLLERR)))
                                ok = fill(c->ufd, &c->down);
                        if (ok) ok = flush_to(p, c->ufd, &c->up, true);
                        if (ok) ok = flush_to(p, c->cfd, &c->down, false);
                        if (!ok) {
                                /* Hand over what is left, then close both sides. */
                                flush_to(p, c->ufd, &c->up, true);
                                flush_to(p, c->cfd, &c->down, false);
                                close_conn(p, i, false);
                        }
                }
                if (pfd[1].revents & POLLIN) accept_one(p);
        }
        return NULL;
}

static int send_cmd(faultproxy *p, cmd c) {
        pthread_mutex_lock(&p->lock);
        p->pending = c;
        unsigned long seq = ++p->cmd_seq;
        pthread_mutex_unlock(&p->lock);
        char b = 1;
        if (write(p->wake[1], &b, 1) < 0 && errno != EAGAIN) return -errno;
        pthread_mutex_lock(&p->lock);
        while (p->cmd_done < seq) pthread_cond_wait(&p->cond, &p->lock);
        int r = p->cmd_result;
        pthread_mutex_unlock(&p->lock);
        return r;
}

int faultproxy_start(const char *upstream_host, int upstream_port, faultproxy **ret) {
        faultproxy *p = calloc(1, sizeof(*p));
        int k;
        if (!p) return -ENOMEM;
        p->lfd = -1;
        p->wake[0] = p->wake[1] = -1;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);

        p->upstream.sin_family = AF_INET;
        p->upstream.sin_port = htons((uint16_t)upstream_port);
        if (upstream_port <= 0 || upstream_port > 65535 ||
            inet_pton(AF_INET, upstream_host, &p->upstream.sin_addr) != 1) {
                k = -EINVAL;
                goto fail;
        }
        if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
                k = -errno;
                goto fail;
        }
        p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (p->lfd < 0) {
                k = -errno;
                goto fail;
        }
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        if (bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(p->lfd, 64) < 0 ||
            getsockname(p->lfd, (struct sockaddr *)&a, &alen) < 0) {
                k = -errno;
                goto fail;
        }
        p->port = ntohs(a.sin_port);
        snprintf(p->url, sizeof(p->url), "https://127.0.0.1:%d", p->port);
        k = -pthread_create(&p->thread, NULL, thread_main, p);
        if (k < 0) goto fail;
        p->thread_started = true;
        *ret = p;
        return 0;
fail:
        faultproxy_stop(p);
        return k;
}

int faultproxy_start_url(const char *url, faultproxy **ret) {
        char host[64];
        int port;
        const char *s = url ? strstr(url, "://") : NULL;
        if (!s) return -EINVAL;
        s += 3;
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host)) return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        port = atoi(colon + 1);
        return faultproxy_start(host, port, ret);
}

faultproxy *faultproxy_stop(faultproxy *p) {
        if (!p) return NULL;
        if (p->thread_started) {
                send_cmd(p, CMD_QUIT);
                pthread_join(p->thread, NULL);
        }
        while (p->n_conns > 0) close_conn(p, p->n_conns - 1, false);
        if (p->lfd >= 0) close(p->lfd);
        if (p->wake[0] >= 0) close(p->wake[0]);
        if (p->wake[1] >= 0) close(p->wake[1]);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p);
        return NULL;
}

int faultproxy_port(const faultproxy *p) {
        return p->port;
}

const char *faultproxy_url(const faultproxy *p) {
        return p->url;
}

int faultproxy_drop(faultproxy *p, bool rst) {
        return send_cmd(p, rst ? CMD_DROP_RST : CMD_DROP);
}

int faultproxy_stall(faultproxy *p, bool on) {
        return send_cmd(p, on ? CMD_STALL : CMD_UNSTALL);
}

void faultproxy_refuse(faultproxy *p, bool on) {
        pthread_mutex_lock(&p->lock);
        p->refuse = on;
        pthread_mutex_unlock(&p->lock);
}

void faultproxy_get_stats(faultproxy *p, faultproxy_stats *ret) {
        pthread_mutex_lock(&p->lock);
        *ret = p->stats;
        pthread_mutex_unlock(&p->lock);
}

int faultproxy_write_kubeconfig(const faultproxy *p, const char *src, const char *server_url,
                                const char *dst) {
        FILE *in = fopen(src, "re");
        if (!in) return -errno;
        char *text = NULL;
        size_t cap = 0, len = 0;
        FILE *mem = open_memstream(&text, &cap);
        if (!mem) {
                fclose(in);
                return -ENOMEM;
        }
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0) fwrite(buf, 1, n, mem);
        fclose(in);
        fclose(mem);
        len = strlen(text);

        FILE *out = fopen(dst, "we");
        if (!out) {
                int k = -errno;
                free(text);
                return k;
        }
        size_t ulen = strlen(server_url), hits = 0;
        const char *s = text;
        for (;;) {
                const char *hit = strstr(s, server_url);
                if (!hit) break;
                /* Only the whole URL: not a prefix of a longer port number. */
                char next = hit[ulen];
                fwrite(s, 1, (size_t)(hit - s), out);
                if (next >= '0' && next <= '9') {
                        fwrite(hit, 1, ulen, out);
                } else {
                        fputs(p->url, out);
                        hits++;
                }
                s = hit + ulen;
        }
        fwrite(s, 1, len - (size_t)(s - text), out);
        free(text);
        if (fclose(out) != 0) return -EIO;
        return hits ? 0 : -ENOENT;
}
