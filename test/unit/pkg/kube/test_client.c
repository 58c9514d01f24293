/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_client against a fake HTTP/1.1 server that runs in threads of this
 * test on loopback: one thread per connection, responses scripted by path.
 * The server records every request it parsed so that tests can check what
 * the client sent. Timeouts below only stop a broken test from hanging;
 * assertions are about outcomes and ordering, not durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <ev.h>
#include <malloc.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kube/client.h"
#include "util/macro.h"

/* ---- fake server ---- */

#define MAX_RECS  512
#define MAX_CONNS 512

typedef struct rec {
        char method[16];
        char path[512];
        char auth[256];
        char ctype[128];
        char ua[128];
        char accept[128];
        char body[4096];
        size_t body_len;
} rec;

typedef struct server {
        int lfd;
        int port;
        pthread_t thr;
        atomic_int stop;
        pthread_mutex_t mu;
        rec recs[MAX_RECS];
        int n_recs;
        int accepts;
        pthread_t conns[MAX_CONNS];
        int n_conns;
} server;

typedef struct conn {
        server *s;
        int fd;
        int served; /* requests answered on this connection before the current one */
} conn;

static void msleep(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static int send_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR) continue;
                        return -1;
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

static int sendf(int fd, const char *fmt, ...) {
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        int r = send_all(fd, m, (size_t)n);
        free(m);
        return r;
}

static int send_chunk(int fd, const char *data) {
        return sendf(fd, "%zx\r\n%s\r\n", strlen(data), data);
}

/* Waits up to ms for the peer to close; returns 1 if it did, 0 on timeout or stop. */
static int wait_closed(conn *c, int ms) {
        for (int waited = 0; waited < ms && !atomic_load(&c->s->stop); waited += 20) {
                struct pollfd p = {c->fd, POLLIN, 0};
                if (poll(&p, 1, 20) > 0) {
                        char b[256];
                        ssize_t k = recv(c->fd, b, sizeof(b), 0);
                        if (k <= 0) return 1;
                }
        }
        return 0;
}

/* Reads one request; 0 on success, -1 when the connection ended. */
static int read_request(conn *c, rec *r) {
        char buf[16384];
        size_t len = 0;
        char *end = NULL;
        while (!end) {
                if (atomic_load(&c->s->stop)) return -1;
                struct pollfd p = {c->fd, POLLIN, 0};
                int pr = poll(&p, 1, 50);
                if (pr <= 0) continue;
                ssize_t k = recv(c->fd, buf + len, sizeof(buf) - 1 - len, 0);
                if (k <= 0) return -1;
                len += (size_t)k;
                buf[len] = 0;
                end = strstr(buf, "\r\n\r\n");
                if (!end && len >= sizeof(buf) - 1) return -1;
        }
        memset(r, 0, sizeof(*r));
        *end = 0;
        size_t hdr_len = (size_t)(end - buf) + 4;
        if (sscanf(buf, "%15s %511s", r->method, r->path) != 2) return -1;
        size_t clen = 0;
        for (char *line = strstr(buf, "\r\n"); line; line = strstr(line, "\r\n")) {
                line += 2;
                char *eol = strstr(line, "\r\n");
                size_t ll = eol ? (size_t)(eol - line) : strlen(line);
                struct {
                        const char *name;
                        char *dst;
                        size_t cap;
                } hs[] = {{"authorization:", r->auth, sizeof(r->auth)},
                          {"content-type:", r->ctype, sizeof(r->ctype)},
                          {"user-agent:", r->ua, sizeof(r->ua)},
                          {"accept:", r->accept, sizeof(r->accept)}};
                for (size_t i = 0; i < ARRAY_SIZE(hs); i++) {
                        size_t nl = strlen(hs[i].name);
                        if (ll > nl && !strncasecmp(line, hs[i].name, nl)) {
                                const char *v = line + nl;
                                while (*v == ' ') v++;
                                size_t vl = ll - (size_t)(v - line);
                                if (vl >= hs[i].cap) vl = hs[i].cap - 1;
                                memcpy(hs[i].dst, v, vl);
                        }
                }
                if (ll > 15 && !strncasecmp(line, "content-length:", 15))
                        clen = strtoul(line + 15, NULL, 10);
        }
        /* The body: what came with the headers, then the rest. */
        size_t have = len - hdr_len;
        if (clen > sizeof(r->body) - 1) return -1;
        memcpy(r->body, buf + hdr_len, have < clen ? have : clen);
        while (have < clen) {
                struct pollfd p = {c->fd, POLLIN, 0};
                if (poll(&p, 1, 1000) <= 0) return -1;
                ssize_t k = recv(c->fd, r->body + have, clen - have, 0);
                if (k <= 0) return -1;
                have += (size_t)k;
        }
        r->body_len = clen;
        return 0;
}

static const char STATUS_404[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"namespaces \\\"nope\\\" not found\",\"reason\":\"NotFound\","
    "\"details\":{\"name\":\"nope\",\"kind\":\"namespaces\"},\"code\":404}";

static int respond(conn *c, int status, const char *extra_headers, const char *body) {
        return sendf(c->fd,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "%s\r\n%s",
                     status, strlen(body), extra_headers ? extra_headers : "", body);
}

static int server_count(server *s, const char *path);

/* Returns 0 to keep the connection, -1 to close it. */
static int handle(conn *c, const rec *r) {
        const char *p = r->path;
        if (!strncmp(p, "/ok", 3)) {
                char body[700];
                snprintf(body, sizeof(body), "{\"kind\":\"Ok\",\"path\":\"%s\"}", p);
                return respond(c, 200, NULL, body);
        }
        if (!strcmp(p, "/echo")) {
                char body[4200];
                memcpy(body, r->body, r->body_len);
                body[r->body_len] = 0;
                return respond(c, 200, NULL, body);
        }
        if (!strcmp(p, "/status/404")) return respond(c, 404, NULL, STATUS_404);
        if (!strcmp(p, "/retry-after"))
                return respond(c, 429, "Retry-After: 7\r\n",
                               "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"details\":"
                               "{\"retryAfterSeconds\":3},\"code\":429}");
        if (!strcmp(p, "/retry-details"))
                return respond(c, 429, NULL,
                               "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"details\":"
                               "{\"retryAfterSeconds\":5},\"code\":429}");
        if (!strcmp(p, "/retry-date")) {
                char h[128];
                time_t t = time(NULL) + 120;
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(h, sizeof(h), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
                return respond(c, 503, h, "");
        }
        if (!strcmp(p, "/html-error"))
                return sendf(c->fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                                    "Content-Length: 20\r\n\r\n<html>bad gw</html>\n");
        if (!strcmp(p, "/big-cl")) {
                size_t n = 2u << 20;
                char *b = malloc(n + 1);
                memset(b, 'x', n);
                b[n] = 0;
                int k = respond(c, 200, NULL, b);
                free(b);
                return k;
        }
        if (!strcmp(p, "/big-chunked")) {
                if (sendf(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") < 0)
                        return -1;
                char chunk[65537];
                memset(chunk, 'y', sizeof(chunk) - 1);
                chunk[sizeof(chunk) - 1] = 0;
                for (int i = 0; i < 64; i++)
                        if (send_chunk(c->fd, chunk) < 0) return -1;
                sendf(c->fd, "0\r\n\r\n");
                return -1;
        }
        if (!strcmp(p, "/stream-gone"))
                return respond(c, 410, NULL,
                               "{\"kind\":\"Status\",\"reason\":\"Expired\",\"message\":\"too "
                               "old resource version\",\"code\":410}");
        if (!strncmp(p, "/stream", 7)) {
                /* /stream?n=N&gap=MS */
                int n = 3, gap = 10;
                const char *q = strchr(p, '?');
                if (q) sscanf(q, "?n=%d&gap=%d", &n, &gap);
                if (sendf(c->fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n") < 0)
                        return -1;
                for (int i = 0; i < n; i++) {
                        char ev[64];
                        snprintf(ev, sizeof(ev), "{\"n\":%d}\n", i);
                        if (send_chunk(c->fd, ev) < 0) return -1;
                        msleep(gap);
                }
                return sendf(c->fd, "0\r\n\r\n");
        }
        if (!strcmp(p, "/stall")) {
                if (sendf(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") < 0)
                        return -1;
                send_chunk(c->fd, "{\"first\":true}\n");
                wait_closed(c, 10000);
                return -1;
        }
        if (!strcmp(p, "/slow")) {
                if (wait_closed(c, 3000)) return -1;
                return respond(c, 200, NULL, "{\"slow\":true}");
        }
        if (!strcmp(p, "/close")) return -1;
        if (!strncmp(p, "/throttled", 10)) {
                /* 429 with Retry-After: 1 twice, then the answer. */
                if (server_count(c->s, p) <= 2)
                        return respond(c, 429, "Retry-After: 1\r\n",
                                       "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\","
                                       "\"code\":429}");
                return respond(c, 200, NULL, "{\"kind\":\"Ok\",\"after\":\"throttling\"}");
        }
        if (!strncmp(p, "/unavailable", 12)) {
                if (server_count(c->s, p) <= 1) return respond(c, 503, "Retry-After: 0\r\n", "");
                return respond(c, 200, NULL, "{\"kind\":\"Ok\"}");
        }
        if (!strncmp(p, "/always-429", 11))
                return respond(c, 429, "Retry-After: 0\r\n",
                               "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"code\":429}");
        if (!strncmp(p, "/reset-reused", 13)) {
                /*
                 * A request that arrives on a connection that already served one is read
                 * and answered with a reset, as when a server or a middlebox drops a
                 * pooled connection just as it is reused.
                 */
                if (c->served > 0) {
                        struct linger lg = {1, 0};
                        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                        return -1;
                }
                return respond(c, 200, NULL, "{\"kind\":\"Ok\"}");
        }
        if (!strcmp(p, "/secret")) {
                /* A Secret larger than the client's first buffer, so that it grows. */
                size_t n = 40000;
                char *b = malloc(n + 1);
                for (size_t i = 0; i < n; i++) b[i] = "S3CR3T-PAYLOAD-"[i % 15];
                b[n] = 0;
                int k = respond(c, 200, NULL, b);
                free(b);
                return k;
        }
        return respond(c, 404, NULL, STATUS_404);
}

static void *conn_main(void *ud) {
        conn *c = ud;
        rec r;
        while (read_request(c, &r) == 0) {
                pthread_mutex_lock(&c->s->mu);
                if (c->s->n_recs < MAX_RECS) c->s->recs[c->s->n_recs++] = r;
                pthread_mutex_unlock(&c->s->mu);
                if (handle(c, &r) < 0) break;
                c->served++;
        }
        close(c->fd);
        free(c);
        return NULL;
}

static void *server_main(void *ud) {
        server *s = ud;
        while (!atomic_load(&s->stop)) {
                struct pollfd p = {s->lfd, POLLIN, 0};
                if (poll(&p, 1, 50) <= 0) continue;
                int fd = accept(s->lfd, NULL, NULL);
                if (fd < 0) continue;
                conn *c = calloc(1, sizeof(*c));
                c->s = s;
                c->fd = fd;
                pthread_mutex_lock(&s->mu);
                s->accepts++;
                if (s->n_conns < MAX_CONNS &&
                    pthread_create(&s->conns[s->n_conns], NULL, conn_main, c) == 0) {
                        s->n_conns++;
                } else {
                        close(fd);
                        free(c);
                }
                pthread_mutex_unlock(&s->mu);
        }
        return NULL;
}

static server *server_start(void) {
        server *s = calloc(1, sizeof(*s));
        assert_non_null(s);
        pthread_mutex_init(&s->mu, NULL);
        s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->lfd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(s->lfd, 128), 0);
        socklen_t al = sizeof(a);
        assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
        s->port = ntohs(a.sin_port);
        assert_int_equal(pthread_create(&s->thr, NULL, server_main, s), 0);
        return s;
}

static void server_stop(server *s) {
        atomic_store(&s->stop, 1);
        pthread_join(s->thr, NULL);
        for (int i = 0; i < s->n_conns; i++) pthread_join(s->conns[i], NULL);
        close(s->lfd);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

static int server_count(server *s, const char *path) {
        int n = 0;
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->n_recs; i++)
                if (!path || !strcmp(s->recs[i].path, path)) n++;
        pthread_mutex_unlock(&s->mu);
        return n;
}

/* The last request the server saw for path (copied). */
static rec server_last(server *s, const char *path) {
        rec r = {0};
        bool found = false;
        pthread_mutex_lock(&s->mu);
        for (int i = s->n_recs - 1; i >= 0 && !found; i--)
                if (!strcmp(s->recs[i].path, path)) {
                        r = s->recs[i];
                        found = true;
                }
        pthread_mutex_unlock(&s->mu);
        assert_true(found);
        return r;
}

/* ---- fixture ---- */

typedef struct fx {
        server *srv;
        struct ev_loop *loop;
        char dir[64];
        char kubeconfig[128];
        kube_config *cfg;
        kube_client *client;
} fx;

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
}

static void write_kubeconfig(fx *f, const char *user_block) {
        char *kc = NULL;
        assert_true(asprintf(&kc,
                             "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                             "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:%d\n"
                             "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
                             "users:\n- name: u\n  user:\n%s",
                             f->srv->port, user_block) > 0);
        write_file(f->kubeconfig, kc);
        free(kc);
}

static void new_client(fx *f, const kube_client_opts *o) {
        char *err = NULL;
        kube_config_free(f->cfg);
        f->cfg = NULL;
        int r = kube_config_load_kubeconfig(f->kubeconfig, NULL, &f->cfg, &err);
        if (r < 0) fail_msg("kubeconfig: %s", err);
        /* The fake server speaks plain http: tests that want the refusal load their own. */
        kube_config_set_allow_insecure_http_token(f->cfg, true);
        kube_client_free(f->client);
        assert_int_equal(kube_client_new(f->loop, f->cfg, o, &f->client), 0);
}

static int setup(void **state) {
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->srv = server_start();
        f->loop = ev_loop_new(EVFLAG_AUTO);
        strcpy(f->dir, "/tmp/kube-client-test-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->kubeconfig, sizeof(f->kubeconfig), "%s/kubeconfig", f->dir);
        write_kubeconfig(f, "    token: abc\n");
        new_client(f, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fx *f = *state;
        kube_client_free(f->client);
        kube_config_free(f->cfg);
        ev_loop_destroy(f->loop);
        server_stop(f->srv);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* A finished request as seen by on_done. */
typedef struct result {
        int done;
        int order; /* completion order, from 1 */
        long http_status;
        int error;
        double retry_after;
        char body[512];
        size_t body_len;
        kube_status_reason reason;
        char message[256];
        int chunks;
        char data[4096];
        size_t data_len;
        /* behaviours */
        int abort_after_chunks;   /* on_data returns -ECANCELED at this chunk (0: never) */
        bool cancel_self_in_data; /* on_data cancels its own request */
        kube_request *to_cancel;  /* on_data/on_done cancels this other request */
        kube_request *self;
        bool free_client_in_done; /* on_done calls kube_client_free */
        fx *f;
} result;

static int completions;
static int g_stop_when;

static void on_done(kube_client *c, const kube_response *r, void *ud) {
        result *res = ud;
        assert_int_equal(res->done, 0);
        res->done++;
        if (getenv("TEST_DEBUG"))
                fprintf(stderr, "done %p err %d status %ld body %.60s\n", (void *)res, r->error,
                        r->http_status, r->body ? r->body : "");
        res->order = ++completions;
        res->http_status = r->http_status;
        res->error = r->error;
        res->retry_after = r->retry_after;
        if (r->body) {
                size_t n =
                    r->body_len < sizeof(res->body) - 1 ? r->body_len : sizeof(res->body) - 1;
                memcpy(res->body, r->body, n);
                res->body[n] = 0;
                res->body_len = r->body_len;
        }
        if (r->status) {
                res->reason = r->status->reason;
                snprintf(res->message, sizeof(res->message), "%s", r->status->message);
        }
        if (res->to_cancel) kube_request_cancel(res->to_cancel);
        /* Cancelling oneself from on_done is harmless. */
        if (res->self) kube_request_cancel(res->self);
        if (res->free_client_in_done) {
                kube_client_free(res->f->client);
                res->f->client = NULL;
        }
        if (g_stop_when && completions >= g_stop_when) ev_break(kube_client_loop(c), EVBREAK_ONE);
}

static int on_data(kube_client *c, const char *data, size_t len, void *ud) {
        result *res = ud;
        res->chunks++;
        if (res->data_len + len < sizeof(res->data)) {
                memcpy(res->data + res->data_len, data, len);
                res->data_len += len;
                res->data[res->data_len] = 0;
        }
        if (res->to_cancel) {
                kube_request_cancel(res->to_cancel);
                res->to_cancel = NULL;
        }
        if (res->cancel_self_in_data) {
                kube_request_cancel(res->self);
                return 0;
        }
        if (res->abort_after_chunks && res->chunks >= res->abort_after_chunks) return -ECANCELED;
        return 0;
}

static void failsafe_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        *(bool *)w->data = true;
        ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until n more completions happened (or fails after 20 s). */
static void run_for_completions(fx *f, int n) {
        bool expired = false;
        ev_timer t;
        ev_timer_init(&t, failsafe_cb, 20., 0.);
        t.data = &expired;
        ev_timer_start(f->loop, &t);
        g_stop_when = completions + n;
        while (completions < g_stop_when && !expired) ev_run(f->loop, EVRUN_ONCE);
        ev_timer_stop(f->loop, &t);
        g_stop_when = 0;
        assert_false(expired);
}

/* Runs the loop for a while with nothing expected (for "no callback" checks). */
static void run_for(fx *f, double seconds) {
        bool expired = false;
        ev_timer t;
        ev_timer_init(&t, failsafe_cb, seconds, 0.);
        t.data = &expired;
        ev_timer_start(f->loop, &t);
        while (!expired) ev_run(f->loop, EVRUN_ONCE);
        ev_timer_stop(f->loop, &t);
}

static kube_request *start(fx *f, kube_method m, const char *path, result *res,
                           kube_request_opts *extra) {
        kube_request_opts o = {0};
        if (extra) o = *extra;
        o.method = m;
        o.path = path;
        o.on_done = on_done;
        o.userdata = res;
        kube_request *req = NULL;
        assert_int_equal(kube_client_request(f->client, &o, &req), 0);
        assert_non_null(req);
        return req;
}

/* ---- tests ---- */

static void test_get(void **state) {
        fx *f = *state;
        result r = {0};
        start(f, KUBE_GET, "/ok/one?limit=5", &r, NULL);
        run_for_completions(f, 1);
        assert_int_equal(r.done, 1);
        assert_int_equal(r.error, 0);
        assert_int_equal(r.http_status, 200);
        assert_string_equal(r.body, "{\"kind\":\"Ok\",\"path\":\"/ok/one?limit=5\"}");
        rec s = server_last(f->srv, "/ok/one?limit=5");
        assert_string_equal(s.method, "GET");
        assert_string_equal(s.auth, "Bearer abc");
        assert_string_equal(s.accept, "application/json");
        assert_true(!strncmp(s.ua, "pullpolicy/", 11));

        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.requests[KUBE_GET], 1);
        assert_int_equal(st.completed, 1);
        assert_int_equal(st.failed, 0);
        assert_int_equal(st.active, 0);
        assert_int_equal(st.connections, 1);
        assert_int_equal(st.http2, 0); /* plain http: HTTP/1.1 */
}

static void test_methods_and_headers(void **state) {
        fx *f = *state;
        kube_client_opts co = {.user_agent = "my-agent/1.0"};
        new_client(f, &co);

        static const struct {
                kube_method m;
                kube_patch_type pt;
                const char *method, *ctype;
        } cases[] = {
            {KUBE_POST, 0, "POST", "application/json"},
            {KUBE_PUT, 0, "PUT", "application/json"},
            {KUBE_PATCH, KUBE_PATCH_MERGE, "PATCH", "application/merge-patch+json"},
            {KUBE_PATCH, KUBE_PATCH_JSON, "PATCH", "application/json-patch+json"},
            {KUBE_PATCH, KUBE_PATCH_STRATEGIC, "PATCH", "application/strategic-merge-patch+json"},
            {KUBE_PATCH, KUBE_PATCH_APPLY, "PATCH", "application/apply-patch+yaml"},
            {KUBE_DELETE, 0, "DELETE", "application/json"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                result r = {0};
                char body[64];
                snprintf(body, sizeof(body), "{\"case\":%zu}", i);
                kube_request_opts o = {.body = body,
                                       .body_len = strlen(body),
                                       .patch_type = cases[i].pt,
                                       .accept = "application/yaml"};
                start(f, cases[i].m, "/echo", &r, &o);
                run_for_completions(f, 1);
                assert_int_equal(r.error, 0);
                assert_string_equal(r.body, body);
                rec s = server_last(f->srv, "/echo");
                assert_string_equal(s.method, cases[i].method);
                assert_string_equal(s.ctype, cases[i].ctype);
                assert_string_equal(s.body, body);
                assert_string_equal(s.ua, "my-agent/1.0");
                assert_string_equal(s.accept, "application/yaml");
                assert_string_equal(s.auth, "Bearer abc");
        }
        /* DELETE without a body sends no Content-Type. */
        result r = {0};
        start(f, KUBE_DELETE, "/ok/del", &r, NULL);
        run_for_completions(f, 1);
        assert_int_equal(r.error, 0);
        rec s = server_last(f->srv, "/ok/del");
        assert_string_equal(s.method, "DELETE");
        assert_string_equal(s.ctype, "");

        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.requests[KUBE_POST], 1);
        assert_int_equal(st.requests[KUBE_PUT], 1);
        assert_int_equal(st.requests[KUBE_PATCH], 4);
        assert_int_equal(st.requests[KUBE_DELETE], 2);
        assert_int_equal(st.requests[KUBE_GET], 0);
}

static void test_bad_options(void **state) {
        fx *f = *state;
        result r = {0};
        kube_request *req = (kube_request *)0x1;
        kube_request_opts o = {
            .method = KUBE_GET, .path = "no-slash", .on_done = on_done, .userdata = &r};
        assert_int_equal(kube_client_request(f->client, &o, &req), -EINVAL);
        assert_ptr_equal(req, (kube_request *)0x1); /* untouched on failure */
        o.path = "/with space";
        assert_int_equal(kube_client_request(f->client, &o, NULL), -EINVAL);
        o.path = "/ok\r\nX-Injected: 1";
        assert_int_equal(kube_client_request(f->client, &o, NULL), -EINVAL);
        o.path = "/ok";
        o.on_done = NULL;
        assert_int_equal(kube_client_request(f->client, &o, NULL), -EINVAL);
        o.on_done = on_done;
        o.body = "{}";
        o.body_len = 2;
        assert_int_equal(kube_client_request(f->client, &o, NULL), -EINVAL); /* GET with body */
        o.body = NULL;
        o.method = (kube_method)42;
        assert_int_equal(kube_client_request(f->client, &o, NULL), -EINVAL);
        run_for(f, 0.05);
        assert_int_equal(r.done, 0);
        kube_request_cancel(NULL);
}

static void test_status_errors(void **state) {
        fx *f = *state;
        result r404 = {0}, r429 = {0}, r429d = {0}, r503 = {0}, r502 = {0}, rclose = {0};
        /* A timeout shorter than the waits asked: the client reports instead of retrying. */
        kube_request_opts short_timeout = {.timeout_ms = 3000};
        start(f, KUBE_GET, "/status/404", &r404, NULL);
        start(f, KUBE_GET, "/retry-after", &r429, &short_timeout);
        start(f, KUBE_GET, "/retry-details", &r429d, &short_timeout);
        start(f, KUBE_GET, "/retry-date", &r503, &short_timeout);
        start(f, KUBE_GET, "/html-error", &r502, NULL);
        start(f, KUBE_GET, "/close", &rclose, NULL);
        run_for_completions(f, 6);

        assert_int_equal(r404.http_status, 404);
        assert_true(kube_error_is_not_found(r404.error));
        assert_int_equal(kube_error_http_code(r404.error), 404);
        assert_int_equal(r404.reason, KUBE_REASON_NOT_FOUND);
        assert_string_equal(r404.message, "namespaces \"nope\" not found");
        assert_string_equal(r404.body, STATUS_404); /* the raw body is there too */
        assert_true(r404.retry_after == 0);

        /* The header wins over details.retryAfterSeconds. */
        assert_int_equal(kube_error_http_code(r429.error), 429);
        assert_true(kube_error_is_too_many_requests(r429.error));
        assert_true(r429.retry_after == 7);
        /* Without the header, details.retryAfterSeconds. */
        assert_true(r429d.retry_after == 5);
        /* An HTTP-date two minutes ahead. */
        assert_int_equal(kube_error_http_code(r503.error), 503);
        assert_true(r503.retry_after > 60 && r503.retry_after <= 120);

        assert_int_equal(r502.http_status, 502);
        assert_true(kube_error_is_server_error(r502.error));
        assert_string_equal(r502.message, "<html>bad gw</html>");

        assert_int_equal(rclose.http_status, 0);
        assert_int_equal(rclose.error, -ECONNRESET);

        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.failed, 6);
}

static void test_body_limit(void **state) {
        fx *f = *state;
        kube_client_opts co = {.max_body = 1u << 20};
        new_client(f, &co);
        result cl = {0}, ch = {0}, big_ok = {0}, small = {0};
        start(f, KUBE_GET, "/big-cl", &cl, NULL);
        start(f, KUBE_GET, "/big-chunked", &ch, NULL);
        /* A per-request limit above the body size lets it through. */
        kube_request_opts o = {.max_body = 4u << 20};
        start(f, KUBE_GET, "/big-chunked", &big_ok, &o);
        start(f, KUBE_GET, "/ok/after", &small, NULL);
        run_for_completions(f, 4);
        assert_int_equal(cl.error, -EMSGSIZE);
        assert_int_equal(ch.error, -EMSGSIZE);
        assert_int_equal(big_ok.error, 0);
        assert_int_equal(big_ok.body_len, 64u * 65536);
        assert_int_equal(small.error, 0);
}

static void test_streaming(void **state) {
        fx *f = *state;
        result r = {0};
        kube_request_opts o = {.on_data = on_data};
        start(f, KUBE_GET, "/stream?n=5&gap=5", &r, &o);
        run_for_completions(f, 1);
        assert_int_equal(r.error, 0);
        assert_int_equal(r.http_status, 200);
        assert_string_equal(r.data, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
        assert_true(r.chunks >= 1 && r.chunks <= 5);
        assert_int_equal(r.body_len, 0); /* streamed, not buffered */

        /* A non-2xx answer to a streaming request goes to on_done, not on_data. */
        result g = {0};
        start(f, KUBE_GET, "/stream-gone", &g, &o);
        run_for_completions(f, 1);
        assert_int_equal(g.chunks, 0);
        assert_int_equal(kube_error_http_code(g.error), 410);
        assert_true(kube_error_is_gone(g.error));
        assert_int_equal(g.reason, KUBE_REASON_EXPIRED);

        /* on_data's negative return aborts with that error. */
        result a = {0};
        a.abort_after_chunks = 1;
        start(f, KUBE_GET, "/stall", &a, &o);
        run_for_completions(f, 1);
        assert_int_equal(a.chunks, 1);
        assert_int_equal(a.error, -ECANCELED);
}

static void test_idle_timeout(void **state) {
        fx *f = *state;
        /* Stalls after one chunk: aborted by the idle timer. */
        result st = {0};
        kube_request_opts o = {.on_data = on_data, .idle_timeout_ms = 300};
        start(f, KUBE_GET, "/stall", &st, &o);
        /*
         * Chunks every 100 ms for longer than the idle timeout in total: the
         * timer is re-armed by each chunk, so this one completes.
         */
        result alive = {0};
        kube_request_opts o2 = {.on_data = on_data, .idle_timeout_ms = 600};
        start(f, KUBE_GET, "/stream?n=10&gap=100", &alive, &o2);
        run_for_completions(f, 2);
        assert_int_equal(st.chunks, 1);
        assert_int_equal(st.error, -ETIMEDOUT);
        assert_int_equal(alive.error, 0);
        assert_int_equal(alive.data_len, 10 * strlen("{\"n\":0}\n"));

        /* The whole-request timeout of a normal request. */
        result slow = {0};
        kube_request_opts o3 = {.timeout_ms = 200};
        start(f, KUBE_GET, "/slow", &slow, &o3);
        run_for_completions(f, 1);
        assert_int_equal(slow.error, -ETIMEDOUT);
}

static void test_cancel(void **state) {
        fx *f = *state;
        result slow = {0}, stall = {0}, ok = {0};
        kube_request *a = start(f, KUBE_GET, "/slow", &slow, NULL);
        kube_request_opts o = {.on_data = on_data};
        kube_request *b = start(f, KUBE_GET, "/stall", &stall, &o);
        /* Let both reach the server, then cancel from outside any callback. */
        for (int i = 0;
             i < 200 && server_count(f->srv, "/stall") + server_count(f->srv, "/slow") < 2; i++)
                run_for(f, 0.01);
        kube_request_cancel(a);
        kube_request_cancel(b);
        start(f, KUBE_GET, "/ok/after-cancel", &ok, NULL);
        run_for_completions(f, 1);
        run_for(f, 0.1);
        assert_int_equal(ok.done, 1);
        assert_int_equal(slow.done, 0);
        assert_int_equal(stall.done, 0);

        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.cancelled, 2);
        assert_int_equal(st.active, 0);

        /* A request still waiting for the token bucket can be cancelled too. */
        kube_client_opts co = {.qps = 1, .burst = 1};
        new_client(f, &co);
        result first = {0}, waiting = {0};
        start(f, KUBE_GET, "/ok/first", &first, NULL);
        kube_request *w = start(f, KUBE_GET, "/ok/waiting", &waiting, NULL);
        kube_request_cancel(w);
        run_for_completions(f, 1);
        run_for(f, 0.05);
        assert_int_equal(first.done, 1);
        assert_int_equal(waiting.done, 0);
        assert_int_equal(server_count(f->srv, "/ok/waiting"), 0);
}

static void test_cancel_from_callbacks(void **state) {
        fx *f = *state;
        kube_request_opts so = {.on_data = on_data};

        /* on_data cancels its own stream: no on_done, the client goes on working. */
        result self = {0};
        self.cancel_self_in_data = true;
        self.self = start(f, KUBE_GET, "/stall", &self, &so);
        for (int i = 0; i < 500 && self.chunks == 0; i++) run_for(f, 0.01);
        assert_int_equal(self.chunks, 1);

        /* on_data of one stream cancels another request in flight. */
        result victim = {0}, killer = {0};
        kube_request *v = start(f, KUBE_GET, "/slow", &victim, NULL);
        for (int i = 0; i < 200 && server_count(f->srv, "/slow") < 1; i++) run_for(f, 0.01);
        killer.to_cancel = v;
        start(f, KUBE_GET, "/stream?n=2&gap=1", &killer, &so);
        run_for_completions(f, 1);
        assert_int_equal(killer.done, 1);
        assert_int_equal(killer.error, 0);

        /* on_done cancels another request, and cancels itself (a no-op). */
        result victim2 = {0}, killer2 = {0};
        kube_request *v2 = start(f, KUBE_GET, "/slow", &victim2, NULL);
        killer2.to_cancel = v2;
        killer2.self = start(f, KUBE_GET, "/ok/killer2", &killer2, NULL);
        run_for_completions(f, 1);
        run_for(f, 0.1);
        assert_int_equal(killer2.done, 1);
        assert_int_equal(self.done, 0);
        assert_int_equal(victim.done, 0);
        assert_int_equal(victim2.done, 0);

        result ok = {0};
        start(f, KUBE_GET, "/ok/still-works", &ok, NULL);
        run_for_completions(f, 1);
        assert_int_equal(ok.error, 0);
}

/* Starts a new request from on_data (the reflector re-lists from inside a watch). */
typedef struct chain {
        fx *f;
        result *next;
        bool started;
} chain;

static int on_data_start(kube_client *c, const char *data, size_t len, void *ud) {
        chain *ch = ud;
        if (!ch->started) {
                ch->started = true;
                kube_request_opts o = {.method = KUBE_GET,
                                       .path = "/ok/from-data",
                                       .on_done = on_done,
                                       .userdata = ch->next};
                assert_int_equal(kube_client_request(c, &o, NULL), 0);
        }
        return 0;
}

static void on_done_chain(kube_client *c, const kube_response *r, void *ud) {
        chain *ch = ud;
        assert_int_equal(r->error, 0);
        ch->next->order = -1; /* marks that the stream ended */
}

static void test_start_from_callbacks(void **state) {
        fx *f = *state;
        result next = {0};
        chain ch = {f, &next, false};
        kube_request_opts o = {.method = KUBE_GET,
                               .path = "/stall",
                               .on_data = on_data_start,
                               .on_done = on_done_chain,
                               .userdata = &ch};
        kube_request *s = NULL;
        assert_int_equal(kube_client_request(f->client, &o, &s), 0);
        run_for_completions(f, 1);
        assert_int_equal(next.done, 1);
        assert_int_equal(next.error, 0);
        assert_string_equal(next.body, "{\"kind\":\"Ok\",\"path\":\"/ok/from-data\"}");
        kube_request_cancel(s);

        /* Sequential requests, each started from the previous on_done, share one connection. */
        pthread_mutex_lock(&f->srv->mu);
        int before = f->srv->accepts;
        pthread_mutex_unlock(&f->srv->mu);
        result r[4] = {{0}};
        start(f, KUBE_GET, "/ok/seq0", &r[0], NULL);
        run_for_completions(f, 1);
        for (int i = 1; i < 4; i++) {
                start(f, KUBE_GET, "/ok/seq", &r[i], NULL);
                run_for_completions(f, 1);
                assert_int_equal(r[i].error, 0);
        }
        pthread_mutex_lock(&f->srv->mu);
        int accepts = f->srv->accepts - before;
        pthread_mutex_unlock(&f->srv->mu);
        assert_true(accepts <= 1); /* the first may reuse the previous test's connection */
        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_true(st.connections <= 2); /* the stream's own, and at most one for the rest */
}

static void test_free_in_callback(void **state) {
        fx *f = *state;
        result slow = {0}, stall = {0}, trigger = {0};
        start(f, KUBE_GET, "/slow", &slow, NULL);
        kube_request_opts so = {.on_data = on_data};
        start(f, KUBE_GET, "/stall", &stall, &so);
        trigger.free_client_in_done = true;
        trigger.f = f;
        start(f, KUBE_GET, "/ok/trigger", &trigger, NULL);
        run_for_completions(f, 1);
        assert_null(f->client);
        run_for(f, 0.1);
        assert_int_equal(trigger.done, 1);
        assert_int_equal(slow.done, 0);
        assert_int_equal(stall.done, 0);

        /* Freeing with requests in flight from outside: no callbacks either. */
        new_client(f, NULL);
        result a = {0};
        start(f, KUBE_GET, "/slow", &a, NULL);
        run_for(f, 0.02);
        f->client = kube_client_free(f->client);
        run_for(f, 0.05);
        assert_int_equal(a.done, 0);

        /* And with requests still waiting for the token bucket: their timers die too. */
        kube_client_opts co = {.qps = 10, .burst = 1};
        new_client(f, &co);
        result w[3] = {{0}};
        for (int i = 0; i < 3; i++) start(f, KUBE_GET, "/ok/never", &w[i], NULL);
        f->client = kube_client_free(f->client);
        run_for(f, 0.3);
        for (int i = 0; i < 3; i++) assert_int_equal(w[i].done, 0);
        new_client(f, NULL);
}

static void test_rate_limit(void **state) {
        fx *f = *state;
        kube_client_opts co = {.qps = 2, .burst = 2};
        new_client(f, &co);
        completions = 0;
        result r[6] = {{0}}, fast = {0};
        char paths[6][32];
        for (int i = 0; i < 6; i++) {
                snprintf(paths[i], sizeof(paths[i]), "/ok/rl%d", i);
                start(f, KUBE_GET, paths[i], &r[i], NULL);
        }
        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.requests[KUBE_GET], 6);
        assert_int_equal(st.throttled, 4);
        /* Not throttled, and so done before the requests still waiting for tokens. */
        kube_request_opts nrl = {.no_rate_limit = true};
        start(f, KUBE_GET, "/ok/fast", &fast, &nrl);
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.throttled, 4);
        run_for_completions(f, 7);

        for (int i = 0; i < 6; i++) assert_int_equal(r[i].error, 0);
        /* The burst goes first (in either order), then the rest in submission order. */
        assert_true(r[0].order <= 3 && r[1].order <= 3);
        assert_true(fast.order <= 3);
        for (int i = 2; i < 5; i++) assert_true(r[i].order < r[i + 1].order);
        assert_true(r[2].order > fast.order);
}

static void test_concurrency(void **state) {
        fx *f = *state;
        enum { N = 60, S = 8 };
        result *r = calloc(N + S, sizeof(result));
        assert_non_null(r);
        char(*paths)[32] = calloc(N, 32);
        kube_request_opts so = {.on_data = on_data};
        for (int i = 0; i < S; i++) start(f, KUBE_GET, "/stream?n=20&gap=5", &r[N + i], &so);
        for (int i = 0; i < N; i++) {
                snprintf(paths[i], 32, "/ok/c%d", i);
                start(f, KUBE_GET, paths[i], &r[i], NULL);
        }
        run_for_completions(f, N + S);
        for (int i = 0; i < N; i++) {
                char expect[64];
                snprintf(expect, sizeof(expect), "{\"kind\":\"Ok\",\"path\":\"%s\"}", paths[i]);
                assert_int_equal(r[i].error, 0);
                assert_string_equal(r[i].body, expect);
        }
        for (int i = N; i < N + S; i++) {
                assert_int_equal(r[i].error, 0);
                /* 10 one-digit and 10 two-digit events */
                assert_int_equal(r[i].data_len,
                                 10 * strlen("{\"n\":0}\n") + 10 * strlen("{\"n\":10}\n"));
        }
        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.completed, N + S);
        assert_int_equal(st.active, 0);
        free(paths);
        free(r);
}

static void test_token_rotation(void **state) {
        fx *f = *state;
        char tf[160], tmp[170];
        snprintf(tf, sizeof(tf), "%s/token", f->dir);
        snprintf(tmp, sizeof(tmp), "%s/token.new", f->dir);
        write_file(tf, "first-token\n");
        write_kubeconfig(f, "    tokenFile: token\n"); /* relative to the kubeconfig */
        new_client(f, NULL);

        result a = {0}, b = {0};
        start(f, KUBE_GET, "/ok/tok1", &a, NULL);
        run_for_completions(f, 1);
        assert_string_equal(server_last(f->srv, "/ok/tok1").auth, "Bearer first-token");

        /* Rotate the way kubelet does: a new file renamed over the old one. */
        write_file(tmp, "second-token");
        assert_int_equal(rename(tmp, tf), 0);
        start(f, KUBE_GET, "/ok/tok2", &b, NULL);
        run_for_completions(f, 1);
        assert_string_equal(server_last(f->srv, "/ok/tok2").auth, "Bearer second-token");

        /* A config without credentials sends no Authorization header. */
        write_kubeconfig(f, "    {}\n");
        new_client(f, NULL);
        result c = {0};
        start(f, KUBE_GET, "/ok/anon", &c, NULL);
        run_for_completions(f, 1);
        assert_string_equal(server_last(f->srv, "/ok/anon").auth, "");
}

static void test_connection_refused(void **state) {
        fx *f = *state;
        /* A port that nobody listens on: bind one, then close it. */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        socklen_t al = sizeof(a);
        getsockname(s, (struct sockaddr *)&a, &al);
        close(s);
        char kc[512];
        snprintf(kc, sizeof(kc),
                 "clusters:\n- name: c\n  cluster: {server: \"http://127.0.0.1:%d/\"}\n"
                 "contexts:\n- name: t\n  context: {cluster: c}\ncurrent-context: t\n",
                 ntohs(a.sin_port));
        write_file(f->kubeconfig, kc);
        new_client(f, NULL);
        result r = {0};
        start(f, KUBE_GET, "/ok", &r, NULL);
        run_for_completions(f, 1);
        assert_int_equal(r.http_status, 0);
        assert_int_equal(r.error, -ECONNREFUSED);
        assert_true(kube_error_is_retryable(r.error));
}

/* ---- issue 7: the API server's refusals, replays, clear-text tokens, wiping ---- */

/*
 * 429 (and 5xx with Retry-After) is re-sent by the client after the delay the
 * server asked for, on the loop's timers, for every method: a 429 means the
 * server did not act on the request. The caller sees the final answer.
 */
static void test_retry_after(void **state) {
        fx *f = *state;
        result g = {0}, post = {0}, u = {0};
        ev_tstamp t0 = ev_time();
        start(f, KUBE_GET, "/throttled-get", &g, NULL);
        kube_request_opts o = {.body = "{}", .body_len = 2};
        start(f, KUBE_POST, "/throttled-post", &post, &o);
        start(f, KUBE_GET, "/unavailable", &u, NULL);
        run_for_completions(f, 3);
        double took = ev_time() - t0;
        assert_int_equal(g.error, 0);
        assert_int_equal(g.http_status, 200);
        assert_string_equal(g.body, "{\"kind\":\"Ok\",\"after\":\"throttling\"}");
        assert_int_equal(post.error, 0);
        assert_int_equal(u.error, 0);
        assert_int_equal(server_count(f->srv, "/throttled-get"), 3);
        assert_int_equal(server_count(f->srv, "/throttled-post"), 3);
        assert_int_equal(server_count(f->srv, "/unavailable"), 2);
        /* Two waits of Retry-After: 1 s each before the third try. */
        assert_true(took >= 1.9);
        kube_client_stats st;
        kube_client_get_stats(f->client, &st);
        assert_int_equal(st.retried_after, 5);
        assert_int_equal(st.completed, 3);
        assert_int_equal(st.failed, 0);
}

/* The retries are bounded: after the last one the caller sees the 429. */
static void test_retry_after_bounded(void **state) {
        fx *f = *state;
        result r = {0};
        start(f, KUBE_GET, "/always-429", &r, NULL);
        run_for_completions(f, 1);
        assert_int_equal(r.http_status, 429);
        assert_true(kube_error_is_too_many_requests(r.error));
        assert_int_equal(server_count(f->srv, "/always-429"), 1 + KUBE_CLIENT_MAX_RETRIES);
}

/*
 * A request sent on a pooled connection that the server resets after reading
 * it may have been acted on: only safe requests are sent again. Unsafe ones
 * fail with a transport error for the caller to decide.
 */
static void test_no_replay_of_unsafe(void **state) {
        fx *f = *state;
        static const struct {
                kube_method m;
                const char *path;
                const char *body;
                bool replayed;
        } cases[] = {
            {KUBE_GET, "/reset-reused-get", NULL, true},
            {KUBE_PUT, "/reset-reused-put-rv",
             "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}", true},
            {KUBE_POST, "/reset-reused-post", "{}", false},
            {KUBE_PATCH, "/reset-reused-patch", "{}", false},
            {KUBE_PUT, "/reset-reused-put", "{\"metadata\":{\"name\":\"a\"}}", false},
            {KUBE_DELETE, "/reset-reused-delete", NULL, false},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                /* A request that leaves a pooled connection behind. */
                result warm = {0};
                start(f, KUBE_GET, "/ok/warm", &warm, NULL);
                run_for_completions(f, 1);
                assert_int_equal(warm.error, 0);

                result r = {0};
                kube_request_opts o = {.body = cases[i].body,
                                       .body_len = cases[i].body ? strlen(cases[i].body) : 0};
                start(f, cases[i].m, cases[i].path, &r, &o);
                run_for_completions(f, 1);
                int sent = server_count(f->srv, cases[i].path);
                if (cases[i].replayed) {
                        if (r.error != 0 || sent != 2)
                                fail_msg("%s: error %d, sent %d times", cases[i].path, r.error,
                                         sent);
                } else {
                        if (sent != 1 || r.error != -ECONNRESET)
                                fail_msg("%s: sent %d times (error %d): replayed", cases[i].path,
                                         sent, r.error);
                        assert_true(kube_error_is_transport(r.error));
                }
        }
}

/* A bearer token never goes over http:// unless the config allows it. */
static void test_no_token_over_http(void **state) {
        fx *f = *state;
        result r = {0};
        kube_request_opts o = {
            .method = KUBE_GET, .path = "/ok/clear", .on_done = on_done, .userdata = &r};
        /* The fixture's kubeconfig: server http://127.0.0.1:port, token abc. */
        kube_config_free(f->cfg);
        f->cfg = NULL;
        char *err = NULL;
        assert_int_equal(kube_config_load_kubeconfig(f->kubeconfig, NULL, &f->cfg, &err), 0);
        kube_client_free(f->client);
        assert_int_equal(kube_client_new(f->loop, f->cfg, NULL, &f->client), 0);
        assert_int_equal(kube_client_request(f->client, &o, NULL), -EACCES);
        run_for(f, 0.2);
        assert_int_equal(server_count(f->srv, "/ok/clear"), 0);
        assert_int_equal(r.done, 0);

        /* Allowed: sent (and what the fixture does for every other test). */
        kube_config_set_allow_insecure_http_token(f->cfg, true);
        kube_client_free(f->client);
        assert_int_equal(kube_client_new(f->loop, f->cfg, NULL, &f->client), 0);
        assert_int_equal(kube_client_request(f->client, &o, NULL), 0);
        run_for_completions(f, 1);
        assert_int_equal(r.error, 0);
        assert_string_equal(server_last(f->srv, "/ok/clear").auth, "Bearer abc");

        /* Without a token there is nothing to protect: http:// works. */
        write_kubeconfig(f, "    {}\n");
        kube_config_free(f->cfg);
        f->cfg = NULL;
        assert_int_equal(kube_config_load_kubeconfig(f->kubeconfig, NULL, &f->cfg, &err), 0);
        kube_client_free(f->client);
        assert_int_equal(kube_client_new(f->loop, f->cfg, NULL, &f->client), 0);
        result r2 = {0};
        o.path = "/ok/anon";
        o.userdata = &r2;
        assert_int_equal(kube_client_request(f->client, &o, NULL), 0);
        run_for_completions(f, 1);
        assert_int_equal(r2.error, 0);
        assert_string_equal(server_last(f->srv, "/ok/anon").auth, "");
}

#ifndef __SANITIZE_ADDRESS__
/*
 * free() of this program, to look into the client's response buffer as it is
 * freed: the Secret read must be gone from it. (Not under ASan, which owns
 * free.)
 */
extern void __libc_free(void *p);
static void *volatile g_watched;
static volatile int g_watched_held_secret = -1;

void free(void *p) {
        if (p && p == g_watched) {
                g_watched = NULL;
                g_watched_held_secret =
                    memmem(p, malloc_usable_size(p), "S3CR3T-PAYLOAD", 14) != NULL;
        }
        __libc_free(p);
}

static void on_done_watch_body(kube_client *c, const kube_response *r, void *ud) {
        g_watched = (void *)r->body;
        on_done(c, r, ud);
}
#endif

static void test_secret_body_wiped(void **state) {
#ifdef __SANITIZE_ADDRESS__
        print_message("skipped: ASan owns free(), so this test cannot see the freed buffer\n");
        skip();
#else
        /* Valgrind replaces free() of the program too: then there is nothing to see. */
        g_watched = malloc(16);
        free(g_watched);
        if (g_watched) {
                g_watched = NULL;
                print_message("skipped: free() is not this program's (valgrind replaces it)\n");
                skip();
        }
        fx *f = *state;
        result r = {0};
        kube_request_opts o = {
            .method = KUBE_GET, .path = "/secret", .on_done = on_done_watch_body, .userdata = &r};
        assert_int_equal(kube_client_request(f->client, &o, NULL), 0);
        run_for_completions(f, 1);
        assert_int_equal(r.error, 0);
        assert_int_equal(r.body_len, 40000);
        assert_non_null(strstr(r.body, "S3CR3T-PAYLOAD"));
        /* The buffer was freed after on_done, without the payload in it. */
        assert_null(g_watched);
        assert_int_equal(g_watched_held_secret, 0);
#endif
}

/* The client's own end of a TCP connection to the fake server, or -1. */
static int client_socket(fx *f) {
        DIR *d = opendir("/proc/self/fd");
        assert_non_null(d);
        int found = -1;
        struct dirent *e;
        while ((e = readdir(d)) && found < 0) {
                int fd = atoi(e->d_name);
                struct sockaddr_in peer, self;
                socklen_t pl = sizeof(peer), sl = sizeof(self);
                if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 ||
                    getsockname(fd, (struct sockaddr *)&self, &sl) < 0 ||
                    peer.sin_family != AF_INET)
                        continue;
                if (ntohs(peer.sin_port) == f->srv->port && ntohs(self.sin_port) != f->srv->port)
                        found = fd;
        }
        closedir(d);
        return found;
}

/*
 * A dead peer is found within ~30 s (client-go: HTTP/2 ReadIdleTimeout 30 s +
 * PingTimeout 15 s): TCP keepalive probes after 15 s idle, 3 probes 5 s apart,
 * and unacknowledged data gives up after 30 s (TCP_USER_TIMEOUT).
 */
static void test_dead_connection_options(void **state) {
        fx *f = *state;
        result r = {0};
        start(f, KUBE_GET, "/ok/pooled", &r, NULL);
        run_for_completions(f, 1);
        assert_int_equal(r.error, 0);
        int fd = client_socket(f);
        assert_true(fd >= 0);
        int v = 0;
        socklen_t l = sizeof(v);
        assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &l), 0);
        assert_int_equal(v, 1);
        int idle = 0, intvl = 0, cnt = 0;
        unsigned int uto = 0;
        l = sizeof(int);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l), 0);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, &l), 0);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, &l), 0);
        l = sizeof(uto);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, &l), 0);
        if (idle + intvl * cnt > 30 || uto == 0 || uto > 30000)
                fail_msg("dead peer found after keepidle %d + %d x %d s, user timeout %u ms", idle,
                         cnt, intvl, uto);
}

static void test_url_escape(void **state) {
        char *e = NULL;
        assert_int_equal(kube_url_escape("app in (a,b),tier!=x y/z~_.-", &e), 0);
        assert_string_equal(e, "app%20in%20%28a%2Cb%29%2Ctier%21%3Dx%20y%2Fz~_.-");
        free(e);
        assert_int_equal(kube_url_escape("", &e), 0);
        assert_string_equal(e, "");
        free(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_get, setup, teardown),
            cmocka_unit_test_setup_teardown(test_methods_and_headers, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
            cmocka_unit_test_setup_teardown(test_status_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_streaming, setup, teardown),
            cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel_from_callbacks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_start_from_callbacks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
            cmocka_unit_test_setup_teardown(test_token_rotation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
            cmocka_unit_test_setup_teardown(test_retry_after_bounded, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_replay_of_unsafe, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_token_over_http, setup, teardown),
            cmocka_unit_test_setup_teardown(test_secret_body_wiped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_dead_connection_options, setup, teardown),
            cmocka_unit_test(test_url_escape),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
