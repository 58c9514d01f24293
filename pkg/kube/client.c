/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client drives one curl multi handle from libev: curl tells us which
 * sockets to watch (socket_cb) and when to wake it (multi_timer_cb); we call
 * curl_multi_socket_action() from the watchers and collect finished
 * transfers with curl_multi_info_read().
 *
 * Re-entrancy. User code runs in two places: on_data, which is called from
 * inside curl (the write callback), and on_done, which we call after curl
 * returned. curl refuses curl_multi_add_handle/remove_handle from inside its
 * callbacks, so while c->in_curl is set, starting or cancelling only marks
 * the request and a sweep after curl_multi_socket_action() does the work.
 * kube_client_free() from inside a callback marks the client; the outermost
 * entry point (c->depth back to 0) destroys it.
 */
#include "kube/client.h"

#include <curl/curl.h>
#include <ev.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "kube/flowctl.h"
#include "kube/ratelimit.h"
#include "util/macro.h"

#ifndef PULLPOLICY_VERSION
#define PULLPOLICY_VERSION "0.1.0"
#endif

#define MAX_PATH_LEN    8192
#define MAX_RETRY_AFTER 86400.0

typedef enum rq_state {
        RQ_WAITING, /* on the rate-limit timer */
        RQ_QUEUED,  /* waiting for a slot of the flow window (flowctl.h) */
        RQ_PENDING, /* ready, to be added to the multi handle by the sweep */
        RQ_ACTIVE,  /* in the multi handle */
        RQ_DONE,    /* on_done is running */
} rq_state;

typedef struct sock {
        ev_io io;
        curl_socket_t fd;
        kube_client *c;
        struct sock *prev, *next;
        ev_tstamp last_read; /* when it last became readable: see idle_cb() */
} sock;

struct kube_request {
        kube_client *c;
        kube_request *prev, *next;
        rq_state state;
        bool cancelled;
        bool busy; /* inside on_data */
        bool in_multi;
        bool retried; /* once, after a dead pooled connection */
        /*
         * May go to the server twice: a GET, or a PUT whose resourceVersion
         * precondition makes a second copy fail with 409. See prereq_cb().
         */
        bool replayable;
        bool sent;           /* curl started sending this activation's request */
        bool replay_refused; /* curl wanted to send it again: refused */
        bool no_rate_limit;
        unsigned retries_after; /* re-sent as a 429/5xx Retry-After asked */
        ev_tstamp first_active; /* the first activation: the timeout covers the retries */
        bool has_retry_after;   /* the answer had a Retry-After header (even "0") */
        ev_tstamp nudged;       /* when a silent answer last got a nudge: see liveness_cb() */
        bool internal;          /* the client's own liveness probe: not observed */
        bool flow;              /* counted by the flow window: not a stream, watch or probe */
        bool holding;           /* holds a slot of the window */
        double flow_started;    /* kube_now() when it took the slot */
        kube_request *fq_next;  /* in the client's queue for a slot (state RQ_QUEUED) */

        kube_method method;
        kube_patch_type patch_type;
        char *url;
        char *body;
        size_t body_len;
        char *accept;
        long timeout_ms, idle_timeout_ms;
        size_t max_body;
        kube_data_cb on_data;
        kube_response_cb on_done;
        void *userdata;

        CURL *easy;
        struct curl_slist *headers;
        ev_timer delay;
        ev_timer idle;
        ev_tstamp last_activity;

        long http_status; /* from the status line, once seen */
        char *buf;
        size_t len, cap;
        int abort_error;
        double retry_after;
        char errbuf[CURL_ERROR_SIZE];
};

struct kube_client {
        struct ev_loop *loop;
        CURLM *multi;
        ev_timer timer;
        kube_config *cfg;
        char *base_url;
        bool https;
        bool h2_capped;
        bool h2_seen; /* an answer came over HTTP/2 (also a stream still running) */
        ev_timer liveness;
        kube_request *probe;
        ev_tstamp probe_started;
        struct curl_slist *connect_to;
        char *user_agent;
        kube_token_bucket bucket;
        kube_flowctl flow;
        kube_request *fq_head, *fq_tail; /* waiting for a slot, first come first served */
        ev_timer flow_timer;             /* the end of a Retry-After hold */
        size_t max_body;

        kube_request *requests;
        sock *socks;
        kube_client_stats stats;
        kube_client_observer observer;
        void *observer_ud;

        unsigned depth;
        bool in_curl;
        bool need_sweep;
        bool free_pending;
};

static void request_release(kube_request *r);
static int request_activate(kube_request *r);

static void enter(kube_client *c) {
        c->depth++;
}

static void client_destroy(kube_client *c);
static void sweep(kube_client *c);
static void flow_pump(kube_client *c);
static void flow_answered(kube_request *r, double retry_after);

/* Returns true when the client was destroyed: the caller must not touch it. */
static bool leave(kube_client *c) {
        /* slots freed by a cancel inside a callback: the outermost exit starts what waits */
        if (c->depth == 1 && c->need_sweep && !c->in_curl && !c->free_pending) sweep(c);
        if (--c->depth == 0 && c->free_pending) {
                client_destroy(c);
                return true;
        }
        return false;
}

static bool is_2xx(long code) {
        return code >= 200 && code < 300;
}

static int curl_to_errno(CURLcode cc) {
        switch (cc) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_USE_SSL_FAILED:
        case CURLE_WEIRD_SERVER_REPLY:
                return -EPROTO;
        case CURLE_FILESIZE_EXCEEDED:
                return -EMSGSIZE;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* ---- curl multi <-> libev glue ---- */

static void drive(kube_client *c, curl_socket_t fd, int action);

static void io_cb(struct ev_loop *loop, ev_io *w, int revents) {
        sock *s = w->data;
        if (revents & EV_READ) s->last_read = ev_now(loop);
        int action =
            (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
        drive(s->c, s->fd, action);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        drive(w->data, CURL_SOCKET_TIMEOUT, 0);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
        kube_client *c = userp;
        sock *s = socketp;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        ev_io_stop(c->loop, &s->io);
                        if (s->prev)
                                s->prev->next = s->next;
                        else
                                c->socks = s->next;
                        if (s->next) s->next->prev = s->prev;
                        free(s);
                        curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s) return -1;
                s->c = c;
                s->fd = fd;
                s->last_read = ev_now(c->loop);
                ev_io_init(&s->io, io_cb, fd, events);
                s->io.data = s;
                s->next = c->socks;
                if (c->socks) c->socks->prev = s;
                c->socks = s;
                curl_multi_assign(c->multi, fd, s);
        } else {
                ev_io_stop(c->loop, &s->io);
                ev_io_set(&s->io, fd, events);
        }
        ev_io_start(c->loop, &s->io);
        return 0;
}

static int multi_timer_cb(CURLM *m, long timeout_ms, void *userp) {
        kube_client *c = userp;
        ev_timer_stop(c->loop, &c->timer);
        if (timeout_ms >= 0) {
                /* 0 means "as soon as possible": not from inside this callback. */
                ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
                ev_timer_start(c->loop, &c->timer);
        }
        return 0;
}

/* ---- response assembly ---- */

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
        kube_request *r = ud;
        size_t n = size * nmemb;
        if (r->cancelled) return 0;
        r->last_activity = ev_now(r->c->loop);

        if (n > 7 && !strncmp(ptr, "HTTP/2 ", 7)) r->c->h2_seen = true;
        if (n > 5 && !strncmp(ptr, "HTTP/", 5)) {
                /* A new status line (after a 1xx): forget the previous one's headers. */
                r->retry_after = 0;
                r->has_retry_after = false;
                r->http_status = 0;
                const char *sp = memchr(ptr, ' ', n);
                if (sp && (size_t)(sp - ptr) + 4 <= n) r->http_status = strtol(sp + 1, NULL, 10);
                return n;
        }
        static const char ra[] = "retry-after:";
        if (n > sizeof(ra) - 1 && !strncasecmp(ptr, ra, sizeof(ra) - 1)) {
                char v[128];
                size_t vl = n - (sizeof(ra) - 1);
                if (vl >= sizeof(v)) vl = sizeof(v) - 1;
                memcpy(v, ptr + sizeof(ra) - 1, vl);
                v[vl] = 0;
                char *p = v;
                while (*p == ' ' || *p == '\t') p++;
                size_t e = strlen(p);
                while (e > 0 && strchr(" \t\r\n", p[e - 1])) p[--e] = 0;
                double secs = -1;
                if (e > 0 && strspn(p, "0123456789") == e) {
                        secs = e > 6 ? MAX_RETRY_AFTER : (double)atol(p);
                } else if (e > 0) {
                        time_t t = curl_getdate(p, NULL);
                        if (t != (time_t)-1) secs = difftime(t, time(NULL));
                        if (secs < 0 && t != (time_t)-1) secs = 0;
                }
                if (secs >= 0) {
                        r->retry_after = secs > MAX_RETRY_AFTER ? MAX_RETRY_AFTER : secs;
                        r->has_retry_after = true;
                }
        }
        return n;
}

static int buf_append(kube_request *r, const char *p, size_t n, size_t limit) {
        if (n > limit || r->len > limit - n) return -EMSGSIZE;
        if (r->len + n + 1 > r->cap) {
                size_t ncap = r->cap ? r->cap : 16384;
                while (ncap < r->len + n + 1) ncap *= 2;
                if (ncap > limit + 1) ncap = limit + 1;
                /* Not realloc(): the old block may hold a Secret and must be wiped first. */
                char *nb = malloc(ncap);
                if (!nb) return -ENOMEM;
                if (r->buf) {
                        memcpy(nb, r->buf, r->len);
                        explicit_bzero(r->buf, r->cap);
                        free(r->buf);
                }
                r->buf = nb;
                r->cap = ncap;
        }
        memcpy(r->buf + r->len, p, n);
        r->len += n;
        r->buf[r->len] = 0;
        return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
        kube_request *r = ud;
        kube_client *c = r->c;
        size_t n = size * nmemb;
        if (r->cancelled) return CURL_WRITEFUNC_ERROR;
        r->last_activity = ev_now(c->loop);
        if (n == 0) return 0;

        if (r->on_data && is_2xx(r->http_status)) {
                r->busy = true;
                int k = r->on_data(c, ptr, n, r->userdata);
                r->busy = false;
                if (r->cancelled) return CURL_WRITEFUNC_ERROR;
                if (k < 0) {
                        r->abort_error = k;
                        return CURL_WRITEFUNC_ERROR;
                }
                return n;
        }
        size_t limit = r->max_body;
        if (r->on_data && limit > KUBE_CLIENT_MAX_ERROR_BODY) limit = KUBE_CLIENT_MAX_ERROR_BODY;
        int k = buf_append(r, ptr, n, limit);
        if (k < 0) {
                r->abort_error = k;
                return CURL_WRITEFUNC_ERROR;
        }
        return n;
}

/*
 * curl calls this each time it is about to send the request on a connection,
 * including when it re-sends it on its own: a reused connection that died
 * before any answer (the server or a middlebox dropped it, possibly after
 * reading the request), an HTTP/2 stream refused or sent back to HTTP/1.1.
 * curl has no option to turn that off, so a second call for a request that is
 * not safe to repeat aborts it: the caller gets a transport error and decides.
 */
static int prereq_cb(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
        kube_request *r = ud;
        if (r->sent && !r->replayable) {
                r->replay_refused = true;
                return CURL_PREREQFUNC_ABORT;
        }
        r->sent = true;
        return CURL_PREREQFUNC_OK;
}

/*
 * What curl cannot set itself (it has no TCP_KEEPCNT option before 8.9):
 * KUBE_CLIENT_KEEPALIVE_PROBES unanswered probes end the connection, and so
 * does data left unacknowledged for KUBE_CLIENT_TCP_USER_TIMEOUT_MS (with
 * keepalive on, Linux also uses the latter to end a connection whose probes
 * go unanswered). A failure here is not fatal: the idle timers remain.
 */
static int sockopt_cb(void *ud, curl_socket_t fd, curlsocktype purpose) {
        if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKOPT_OK;
        int cnt = KUBE_CLIENT_KEEPALIVE_PROBES;
        unsigned int uto = KUBE_CLIENT_TCP_USER_TIMEOUT_MS;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
        return CURL_SOCKOPT_OK;
}

/* A PUT carrying metadata.resourceVersion: a replay after the first applied is refused (409). */
static bool has_resource_version(const char *body, size_t len) {
        if (!body || len == 0 || len > INT32_MAX) return false;
        struct json_tokener *tok = json_tokener_new_ex(8);
        if (!tok) return false;
        struct json_object *o = json_tokener_parse_ex(tok, body, (int)len), *meta, *rv;
        bool ok = json_tokener_get_error(tok) == json_tokener_success &&
                  json_object_object_get_ex(o, "metadata", &meta) &&
                  json_object_object_get_ex(meta, "resourceVersion", &rv) &&
                  json_object_is_type(rv, json_type_string) && json_object_get_string_len(rv) > 0;
        json_object_put(o);
        json_tokener_free(tok);
        return ok;
}

/* Detaches r from curl and its timers; it stays in the client's list. */
static void request_stop(kube_request *r) {
        kube_client *c = r->c;
        ev_timer_stop(c->loop, &r->delay);
        ev_timer_stop(c->loop, &r->idle);
        if (r->in_multi) {
                curl_multi_remove_handle(c->multi, r->easy);
                r->in_multi = false;
                if (c->stats.active > 0) c->stats.active--;
        }
}

/*
 * The server refused the request without acting on it and said when to come
 * back (429, or a 5xx with Retry-After): send it again after that delay, on a
 * timer, as client-go does (at most KUBE_CLIENT_MAX_RETRIES times, each wait
 * capped at KUBE_CLIENT_MAX_RETRY_WAIT_S, and never past the request's own
 * timeout: then the caller gets the answer and decides). A 429 means the
 * request was not processed, so this holds for every method. Returns true
 * when r was re-armed.
 */
static bool retry_as_asked(kube_request *r, int err, double after, bool asked) {
        kube_client *c = r->c;
        if (r->cancelled || r->abort_error || !kube_error_is_api(err)) return false;
        long code = r->http_status;
        if (!(code == 429 || (code >= 500 && code < 600 && asked))) return false;
        if (r->retries_after >= KUBE_CLIENT_MAX_RETRIES) return false;
        double wait = asked ? after : 1.0;
        if (wait < 0) wait = 0;
        if (wait > KUBE_CLIENT_MAX_RETRY_WAIT_S) wait = KUBE_CLIENT_MAX_RETRY_WAIT_S;
        long timeout = r->timeout_ms > 0 ? r->timeout_ms
                       : r->on_data      ? 0
                                         : KUBE_CLIENT_DEFAULT_TIMEOUT_MS;
        ev_now_update(c->loop);
        if (timeout > 0 && (ev_now(c->loop) + wait - r->first_active) * 1000.0 >= (double)timeout)
                return false;
        if (!r->no_rate_limit) {
                double t = kube_token_bucket_reserve(&c->bucket, kube_now());
                if (t > wait) wait = t;
        }
        r->retries_after++;
        c->stats.retried_after++;
        r->len = 0;
        r->http_status = 0;
        r->retry_after = 0;
        r->has_retry_after = false;
        r->state = RQ_WAITING;
        ev_timer_set(&r->delay, wait, 0.);
        ev_timer_start(c->loop, &r->delay);
        return true;
}

/*
 * Reports the outcome through on_done and releases r. Not called while
 * c->in_curl.
 */
static void request_finish(kube_request *r, int transport_error) {
        kube_client *c = r->c;
        bool reused = false;
        if (r->in_multi) {
                long n = 0, v = 0;
                if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK) {
                        if (n > 0) c->stats.connections += (unsigned long)n;
                        reused = n == 0;
                }
                if (curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v) == CURLE_OK &&
                    v == CURL_HTTP_VERSION_2_0) {
                        c->stats.http2++;
                        if (!c->h2_capped) {
                                curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                                                  (long)KUBE_CLIENT_MAX_H2_CONNECTIONS);
                                c->h2_capped = true;
                        }
                }
        }
        request_stop(r);
        if (r->cancelled) {
                request_release(r);
                return;
        }

        /*
         * A pooled connection that the server closed while idle (an HTTP/2
         * GOAWAY after an apiserver restart, a keep-alive race) fails the
         * request before any answer. Try once more on a new connection;
         * only when that is safe (see prereq_cb()): the server might have
         * acted on it.
         */
        if (r->replay_refused && !r->abort_error) transport_error = -ECONNRESET;
        if (transport_error == -ECONNRESET && !r->abort_error && r->http_status == 0 && reused &&
            !r->retried && r->replayable) {
                r->retried = true;
                r->len = 0;
                r->retry_after = 0;
                c->stats.retries++;
                if (curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L) == CURLE_OK &&
                    request_activate(r) == 0)
                        return;
        }

        kube_response resp = {.http_status = r->http_status};
        kube_status *st = NULL;
        int err;
        if (r->abort_error)
                err = r->abort_error;
        else if (transport_error)
                err = transport_error;
        else if (!is_2xx(r->http_status)) {
                err = kube_status_parse(r->buf, r->len, r->http_status, &st);
                if (err == 0) err = kube_status_to_error(st);
                if (err == 0) err = -EREMCHG; /* no status line at all */
        } else
                err = 0;
        resp.error = err;
        resp.status = st;
        if (!r->on_data || !is_2xx(r->http_status)) {
                resp.body = r->buf ? r->buf : "";
                resp.body_len = r->len;
        }
        resp.retry_after = r->retry_after;
        if (resp.retry_after == 0 && st && st->details.retry_after_seconds > 0)
                resp.retry_after = st->details.retry_after_seconds;
        flow_answered(r, resp.retry_after);
        if (retry_as_asked(r, err, resp.retry_after,
                           r->has_retry_after || (st && st->details.retry_after_seconds > 0))) {
                kube_status_free(st);
                return;
        }

        c->stats.completed++;
        if (err) c->stats.failed++;
        r->state = RQ_DONE;
        if (c->observer && !r->internal)
                c->observer(c->observer_ud, r->method, r->url + strlen(c->base_url), r->http_status,
                            err);
        if (r->on_done) r->on_done(c, &resp, r->userdata);
        kube_status_free(st);
        request_release(r);
}

static void check_multi_info(kube_client *c) {
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(c->multi, &left))) {
                if (msg->msg != CURLMSG_DONE) continue;
                CURL *e = msg->easy_handle;
                CURLcode cc = msg->data.result;
                kube_request *r = NULL;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
                if (!r) continue;
                request_finish(r, curl_to_errno(cc));
        }
}

static void sweep(kube_client *c) {
        while (c->need_sweep) {
                c->need_sweep = false;
                if (!c->in_curl) flow_pump(c);
                for (kube_request *r = c->requests; r; r = r->next) {
                        if (r->cancelled && !r->busy && r->state != RQ_DONE) {
                                request_release(r);
                                c->need_sweep = true;
                                break;
                        }
                        if (r->state == RQ_PENDING && !r->cancelled) {
                                int k = request_activate(r);
                                if (k < 0) {
                                        r->abort_error = k;
                                        request_finish(r, k);
                                }
                                c->need_sweep = true;
                                break;
                        }
                }
        }
}

static void drive(kube_client *c, curl_socket_t fd, int action) {
        int running;
        enter(c);
        c->in_curl = true;
        curl_multi_socket_action(c->multi, fd, action, &running);
        c->in_curl = false;
        sweep(c);
        check_multi_info(c);
        sweep(c);
        leave(c);
}

/* ---- requests ---- */

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_request *r = w->data;
        kube_client *c = r->c;
        ev_tstamp left = r->last_activity + (double)r->idle_timeout_ms / 1000.0 - ev_now(loop);
        if (left > 0.001) {
                w->repeat = left;
                ev_timer_again(loop, w);
                return;
        }
        enter(c);
        /*
         * Silence past the idle timeout means the connection is dead (the apiserver
         * sends watch bookmarks well within it), not just this stream. With HTTP/2
         * the replacement request would be multiplexed onto the same stalled
         * connection, and so would every later one. So every socket that has been
         * as silent is shut down: curl sees it fail, the streams on it (all equally
         * stuck) end, and their retries get a new connection. curl still owns and
         * closes the descriptors. (CURLINFO_ACTIVESOCKET cannot name the socket of
         * a transfer that is still running.)
         */
        ev_tstamp silent = (double)r->idle_timeout_ms / 1000.0 - 0.001;
        for (sock *s = c->socks; s; s = s->next)
                if (ev_now(loop) - s->last_read >= silent) (void)shutdown(s->fd, SHUT_RDWR);
        r->abort_error = -ETIMEDOUT;
        request_finish(r, -ETIMEDOUT);
        sweep(c);
        leave(c);
}

/*
 * The flow window (flowctl.h): a request that counts starts when the window has
 * room and nothing queued before it, else waits in the client's queue; answers
 * free slots and flow_pump() starts the next ones.
 */
static int flow_admit(kube_request *r) {
        kube_client *c = r->c;
        if (!r->flow || r->holding) return request_activate(r);
        double now = kube_now();
        if (!c->fq_head && kube_flowctl_may_start(&c->flow, now, NULL)) {
                kube_flowctl_started(&c->flow);
                r->holding = true;
                r->flow_started = now;
                return request_activate(r);
        }
        r->state = RQ_QUEUED;
        r->fq_next = NULL;
        if (c->fq_tail)
                c->fq_tail->fq_next = r;
        else
                c->fq_head = r;
        c->fq_tail = r;
        c->stats.flow_queued++;
        double wait = 0;
        if (!kube_flowctl_may_start(&c->flow, now, &wait) && wait > 0 &&
            !ev_is_active(&c->flow_timer)) {
                ev_timer_set(&c->flow_timer, wait, 0.);
                ev_timer_start(c->loop, &c->flow_timer);
        }
        return 0;
}

/* Starts queued requests while the window allows; arms the timer for a hold. */
static void flow_pump(kube_client *c) {
        double wait = 0;
        while (c->fq_head && !c->free_pending) {
                if (!kube_flowctl_may_start(&c->flow, kube_now(), &wait)) {
                        if (wait > 0 && !ev_is_active(&c->flow_timer)) {
                                ev_timer_set(&c->flow_timer, wait, 0.);
                                ev_timer_start(c->loop, &c->flow_timer);
                        }
                        return;
                }
                kube_request *r = c->fq_head;
                c->fq_head = r->fq_next;
                if (!c->fq_head) c->fq_tail = NULL;
                r->fq_next = NULL;
                if (r->cancelled) {
                        /* cancelled inside curl: the sweep releases it; it takes no slot */
                        r->state = RQ_PENDING;
                        c->need_sweep = true;
                        continue;
                }
                kube_flowctl_started(&c->flow);
                r->holding = true;
                r->flow_started = kube_now();
                r->state = RQ_PENDING;
                int k = request_activate(r);
                if (k < 0) {
                        /* the sweep tries once more and reports the failure */
                        r->state = RQ_PENDING;
                        c->need_sweep = true;
                        return;
                }
        }
}

/* An answer (or a transport failure) to r: its slot goes back, the window learns. */
static void flow_answered(kube_request *r, double retry_after) {
        kube_client *c = r->c;
        if (r->http_status == 429) c->stats.throttled_429++;
        if (!r->holding) return;
        r->holding = false;
        /* a GET may be a large LIST page: its time says little about the server's load */
        kube_flowctl_done(&c->flow, kube_now(), r->flow_started, r->http_status, retry_after,
                          r->method != KUBE_GET);
        c->need_sweep = true; /* pump */
}

static void flow_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_client *c = w->data;
        enter(c);
        c->need_sweep = true;
        sweep(c);
        leave(c);
}

static void delay_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_request *r = w->data;
        kube_client *c = r->c;
        enter(c);
        r->state = RQ_PENDING;
        int k = flow_admit(r);
        if (k < 0) request_finish(r, k);
        sweep(c);
        leave(c);
}

/*
 * HTTP/2 liveness, as client-go's ReadIdleTimeout/PingTimeout: curl's multi
 * interface cannot send HTTP/2 PINGs (see setup_easy()), so a small request
 * stands in for one. When a stream has heard nothing for KUBE_CLIENT_READ_IDLE_S
 * and a connection has been as silent, GET /version goes out; curl multiplexes
 * it onto the open connection. Any answer (even 401/403) shows it alive.
 * No answer within KUBE_CLIENT_PING_TIMEOUT_S: the connections silent since
 * before the probe are shut down, as idle_cb() does, so the streams on them
 * end with a transport error and their owners reconnect. A quiet but healthy
 * connection is not cut: the probe comes back on it. Over HTTP/1.1 a probe
 * would take another connection and prove nothing: not done there.
 */
static void probe_done(kube_client *c, const kube_response *resp, void *ud) {
        c->probe = NULL;
        if (!kube_error_is_transport(resp->error)) return;
        ev_tstamp now = ev_now(c->loop);
        ev_tstamp silent = now - c->probe_started + KUBE_CLIENT_READ_IDLE_S - 0.001;
        for (sock *s = c->socks; s; s = s->next)
                if (now - s->last_read >= silent) {
                        (void)shutdown(s->fd, SHUT_RDWR);
                        c->stats.dead_connections++;
                }
}

/*
 * A request (not a stream) that has heard nothing for KUBE_CLIENT_STALL_S may
 * be finished inside curl with nothing left to wake it: libcurl 7.88's HTTP/2
 * layer can pause on a stream whose DATA did not fit its receive buffer while
 * another transfer read the connection, and then waits for a socket event that
 * never comes, since the bytes are already read (issue 9: a LIST page waited
 * ~30 s for an unrelated request). KUBE_CLIENT_RECV_BUFFER makes that rare; a
 * probe on the connection (once per silent spell of each request) ends what is
 * left: its answer makes the socket readable and every transfer on it reads.
 */
static bool stalled_answers(kube_client *c, ev_tstamp now) {
        bool any = false;
        for (kube_request *r = c->requests; r; r = r->next) {
                if (r->on_data || r->internal || r->state != RQ_ACTIVE || r->cancelled) continue;
                if (now - r->last_activity < KUBE_CLIENT_STALL_S || r->nudged > r->last_activity)
                        continue;
                r->nudged = now;
                any = true;
        }
        return any;
}

static void liveness_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_client *c = w->data;
        if (!c->h2_seen || c->probe || c->free_pending) return;
        ev_tstamp now = ev_now(loop);
        bool nudge = stalled_answers(c, now);
        /* Only for a stream that has heard nothing for as long: not for idle pooled connections. */
        bool waiting = false;
        for (kube_request *r = c->requests; r && !waiting; r = r->next)
                waiting = r->on_data && r->state == RQ_ACTIVE && !r->cancelled &&
                          now - r->last_activity >= KUBE_CLIENT_READ_IDLE_S;
        bool silent = false;
        for (sock *s = c->socks; s && !silent; s = s->next)
                silent = now - s->last_read >= KUBE_CLIENT_READ_IDLE_S;
        if (!nudge && !(waiting && silent)) return;
        kube_request_opts o = {.method = KUBE_GET,
                               .path = "/version",
                               .timeout_ms = (long)(KUBE_CLIENT_PING_TIMEOUT_S * 1000),
                               .no_rate_limit = true,
                               .on_done = probe_done,
                               .userdata = c};
        enter(c);
        kube_request *p = NULL;
        if (kube_client_request(c, &o, &p) == 0) {
                p->internal = true;
                c->probe = p;
                c->probe_started = now;
                c->stats.probes++;
                if (nudge) c->stats.nudges++;
        }
        leave(c);
}

static const char *patch_content_type(kube_patch_type t) {
        switch (t) {
        case KUBE_PATCH_JSON:
                return "application/json-patch+json";
        case KUBE_PATCH_STRATEGIC:
                return "application/strategic-merge-patch+json";
        case KUBE_PATCH_APPLY:
                return "application/apply-patch+yaml";
        case KUBE_PATCH_MERGE:
        default:
                return "application/merge-patch+json";
        }
}

static int add_header(struct curl_slist **l, const char *fmt, const char *v) {
        _cleanup_free_ char *h = NULL;
        if (asprintf(&h, fmt, v) < 0) return -ENOMEM;
        struct curl_slist *n = curl_slist_append(*l, h);
        if (!n) return -ENOMEM;
        *l = n;
        return 0;
}

#define SETOPT(e, opt, val)                                                                        \
        do {                                                                                       \
                if (curl_easy_setopt(e, opt, val) != CURLE_OK) return -EIO;                        \
        } while (0)

static int setup_easy(kube_request *r) {
        kube_client *c = r->c;
        CURL *e = r->easy;
        const kube_config *cfg = c->cfg;
        const char *token = NULL;
        int k;

        k = kube_config_token(c->cfg, &token);
        if (k < 0) return -EACCES;
        /* Never a token in clear text unless the owner said so (config.h). */
        if (token && !c->https && !kube_config_allow_insecure_http_token(cfg)) return -EACCES;

        curl_slist_free_all(r->headers);
        r->headers = NULL;
        if (add_header(&r->headers, "Accept: %s", r->accept ? r->accept : "application/json") < 0)
                return -ENOMEM;
        if (token && add_header(&r->headers, "Authorization: Bearer %s", token) < 0) return -ENOMEM;
        if (r->method == KUBE_PATCH) {
                if (add_header(&r->headers, "Content-Type: %s", patch_content_type(r->patch_type)) <
                    0)
                        return -ENOMEM;
        } else if (r->body) {
                if (add_header(&r->headers, "Content-Type: %s", "application/json") < 0)
                        return -ENOMEM;
        }
        /* No "Expect: 100-continue" round trip for large bodies. */
        if (add_header(&r->headers, "%s", "Expect:") < 0) return -ENOMEM;

        SETOPT(e, CURLOPT_URL, r->url);
        SETOPT(e, CURLOPT_PRIVATE, r);
        SETOPT(e, CURLOPT_ERRORBUFFER, r->errbuf);
        SETOPT(e, CURLOPT_NOSIGNAL, 1L);
        SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        /*
         * Over TLS, wait for ALPN to tell whether the first connection does
         * HTTP/2 rather than opening one connection per concurrent request.
         * Not for http://: curl would then wait for the first response's
         * headers, queueing everything behind a slow request.
         */
        if (c->https) SETOPT(e, CURLOPT_PIPEWAIT, 1L);
        /*
         * A dead peer (host gone, network cut, NAT entry dropped) is found within
         * ~30 s, as client-go finds a dead HTTP/2 connection with its 30 s
         * ReadIdleTimeout + 15 s PingTimeout. HTTP/2 PINGs are not an option with
         * curl's multi interface: curl_easy_upkeep() only serves connections of
         * curl_easy_perform() (checked in curl 7.88's easy.c), and curl would not
         * wait for the PING's ACK anyway. A peer that keeps TCP alive but stops
         * answering (a hung proxy) is found by liveness_cb()'s probe instead.
         */
        SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(e, CURLOPT_TCP_KEEPIDLE, (long)KUBE_CLIENT_KEEPALIVE_IDLE_S);
        SETOPT(e, CURLOPT_TCP_KEEPINTVL, (long)KUBE_CLIENT_KEEPALIVE_INTERVAL_S);
        SETOPT(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
        SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, KUBE_CLIENT_CONNECT_TIMEOUT_MS);
        SETOPT(e, CURLOPT_BUFFERSIZE, (long)KUBE_CLIENT_RECV_BUFFER);
        SETOPT(e, CURLOPT_USERAGENT, c->user_agent);
        SETOPT(e, CURLOPT_HTTPHEADER, r->headers);
        SETOPT(e, CURLOPT_WRITEFUNCTION, write_cb);
        SETOPT(e, CURLOPT_WRITEDATA, r);
        SETOPT(e, CURLOPT_HEADERFUNCTION, header_cb);
        SETOPT(e, CURLOPT_HEADERDATA, r);
        SETOPT(e, CURLOPT_PREREQFUNCTION, prereq_cb);
        SETOPT(e, CURLOPT_PREREQDATA, r);
        if (c->connect_to) SETOPT(e, CURLOPT_CONNECT_TO, c->connect_to);
        if (kube_config_proxy_url(cfg)) SETOPT(e, CURLOPT_PROXY, kube_config_proxy_url(cfg));

        if (r->on_data) {
                if (r->timeout_ms > 0) SETOPT(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
        } else {
                long t = r->timeout_ms > 0 ? r->timeout_ms : KUBE_CLIENT_DEFAULT_TIMEOUT_MS;
                if (r->retries_after > 0) {
                        /* A retry gets what is left of the request's time (retry_as_asked()). */
                        double left = (double)t - (ev_now(c->loop) - r->first_active) * 1000.0;
                        t = left < 1 ? 1 : (long)left;
                }
                SETOPT(e, CURLOPT_TIMEOUT_MS, t);
                SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
                SETOPT(e, CURLOPT_ACCEPT_ENCODING, "gzip");
        }

        if (kube_config_insecure(cfg)) {
                SETOPT(e, CURLOPT_SSL_VERIFYPEER, 0L);
                SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L);
        } else {
                SETOPT(e, CURLOPT_SSL_VERIFYPEER, 1L);
                SETOPT(e, CURLOPT_SSL_VERIFYHOST, 2L);
        }
        size_t len;
        const void *p = kube_config_ca(cfg, &len);
        if (p) {
                struct curl_blob b = {(void *)p, len, CURL_BLOB_NOCOPY};
                SETOPT(e, CURLOPT_CAINFO_BLOB, &b);
                /* Only the configured CA: not the system bundle as well. */
                SETOPT(e, CURLOPT_CAINFO, (char *)NULL);
                SETOPT(e, CURLOPT_CAPATH, (char *)NULL);
        }
        p = kube_config_client_cert(cfg, &len);
        if (p) {
                struct curl_blob b = {(void *)p, len, CURL_BLOB_NOCOPY};
                SETOPT(e, CURLOPT_SSLCERT_BLOB, &b);
                SETOPT(e, CURLOPT_SSLCERTTYPE, "PEM");
        }
        p = kube_config_client_key(cfg, &len);
        if (p) {
                struct curl_blob b = {(void *)p, len, CURL_BLOB_NOCOPY};
                SETOPT(e, CURLOPT_SSLKEY_BLOB, &b);
                SETOPT(e, CURLOPT_SSLKEYTYPE, "PEM");
        }

        switch (r->method) {
        case KUBE_GET:
                SETOPT(e, CURLOPT_HTTPGET, 1L);
                break;
        case KUBE_POST:
        case KUBE_PUT:
        case KUBE_PATCH:
                if (r->method != KUBE_POST)
                        SETOPT(e, CURLOPT_CUSTOMREQUEST, r->method == KUBE_PUT ? "PUT" : "PATCH");
                SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
                SETOPT(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
                break;
        case KUBE_DELETE:
                SETOPT(e, CURLOPT_CUSTOMREQUEST, "DELETE");
                if (r->body) {
                        SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
                        SETOPT(e, CURLOPT_POSTFIELDS, r->body);
                }
                break;
        }
        return 0;
}

/* Adds r to the multi handle, or marks it for the sweep when inside curl. */
static int request_activate(kube_request *r) {
        kube_client *c = r->c;
        if (c->in_curl) {
                r->state = RQ_PENDING;
                c->need_sweep = true;
                return 0;
        }
        if (!r->easy) {
                r->easy = curl_easy_init();
                if (!r->easy) return -ENOMEM;
        }
        int k = setup_easy(r);
        if (k < 0) return k;
        r->sent = false;
        r->replay_refused = false;
        if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) return -ENOMEM;
        r->in_multi = true;
        r->state = RQ_ACTIVE;
        c->stats.active++;
        /*
         * The loop's cached time is stale if the caller blocked before
         * starting us (start-up code often does): the idle timer must not
         * count that time.
         */
        ev_now_update(c->loop);
        r->last_activity = ev_now(c->loop);
        if (r->first_active == 0) r->first_active = r->last_activity;
        if (r->idle_timeout_ms > 0) {
                r->idle.repeat = (double)r->idle_timeout_ms / 1000.0;
                ev_timer_again(c->loop, &r->idle);
        }
        return 0;
}

static void request_release(kube_request *r) {
        kube_client *c = r->c;
        request_stop(r);
        if (r->state == RQ_QUEUED) {
                kube_request **p = &c->fq_head, *prev = NULL;
                while (*p && *p != r) {
                        prev = *p;
                        p = &(*p)->fq_next;
                }
                if (*p) {
                        *p = r->fq_next;
                        if (c->fq_tail == r) c->fq_tail = prev;
                }
        }
        if (r->holding) {
                r->holding = false;
                kube_flowctl_abandon(&c->flow);
        }
        if (r->prev)
                r->prev->next = r->next;
        else
                c->requests = r->next;
        if (r->next) r->next->prev = r->prev;
        if (r->easy) curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->url);
        if (r->body) explicit_bzero(r->body, r->body_len);
        free(r->body);
        free(r->accept);
        /* A response body may be a Secret (a GET of one, a list of them). */
        if (r->buf) explicit_bzero(r->buf, r->cap);
        free(r->buf);
        free(r);
}

static bool path_ok(const char *p) {
        if (!p || p[0] != '/') return false;
        size_t n = strlen(p);
        if (n > MAX_PATH_LEN) return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)p[i];
                if (ch <= 0x20 || ch >= 0x7f || ch == '#') return false;
        }
        return true;
}

int kube_client_request(kube_client *c, const kube_request_opts *o, kube_request **ret) {
        if (!c || !o || !o->on_done) return -EINVAL;
        if (c->free_pending) return -ESHUTDOWN;
        if ((unsigned)o->method > KUBE_DELETE || !path_ok(o->path)) return -EINVAL;
        if ((unsigned)o->patch_type > KUBE_PATCH_APPLY) return -EINVAL;
        if (o->timeout_ms < 0 || o->idle_timeout_ms < 0) return -EINVAL;
        if (o->body && o->method == KUBE_GET) return -EINVAL;
        if (o->accept && (strchr(o->accept, '\r') || strchr(o->accept, '\n'))) return -EINVAL;

        kube_request *r = calloc(1, sizeof(*r));
        if (!r) return -ENOMEM;
        r->c = c;
        r->method = o->method;
        r->patch_type = o->patch_type;
        r->timeout_ms = o->timeout_ms;
        r->idle_timeout_ms = o->idle_timeout_ms;
        r->max_body = o->max_body ? o->max_body : c->max_body;
        r->on_data = o->on_data;
        r->on_done = o->on_done;
        r->userdata = o->userdata;
        ev_init(&r->delay, delay_cb);
        r->delay.data = r;
        ev_init(&r->idle, idle_cb);
        r->idle.data = r;
        r->next = c->requests;
        if (c->requests) c->requests->prev = r;
        c->requests = r;

        int k = -ENOMEM;
        if (asprintf(&r->url, "%s%s", c->base_url, o->path) < 0) {
                r->url = NULL;
                goto fail;
        }
        if (o->accept && !(r->accept = strdup(o->accept))) goto fail;
        if (o->body) {
                r->body = malloc(o->body_len + 1);
                if (!r->body) goto fail;
                memcpy(r->body, o->body, o->body_len);
                r->body[o->body_len] = 0;
                r->body_len = o->body_len;
        }
        r->no_rate_limit = o->no_rate_limit;
        r->flow = !o->no_rate_limit && !o->on_data;
        r->replayable = o->method == KUBE_GET ||
                        (o->method == KUBE_PUT && has_resource_version(r->body, r->body_len));

        double wait = o->no_rate_limit ? 0 : kube_token_bucket_reserve(&c->bucket, kube_now());
        if (wait > 0) {
                r->state = RQ_WAITING;
                ev_timer_set(&r->delay, wait, 0.);
                ev_timer_start(c->loop, &r->delay);
                c->stats.throttled++;
        } else {
                k = flow_admit(r);
                if (k < 0) goto fail;
        }
        c->stats.requests[o->method]++;
        if (ret) *ret = r;
        return 0;
fail:
        request_release(r);
        return k;
}

void kube_request_cancel(kube_request *r) {
        if (!r || r->cancelled) return;
        kube_client *c = r->c;
        r->cancelled = true;
        if (r->state == RQ_DONE) return; /* in its own on_done; released after it */
        c->stats.cancelled++;
        ev_timer_stop(c->loop, &r->delay);
        ev_timer_stop(c->loop, &r->idle);
        if (r->busy || c->in_curl) {
                c->need_sweep = true;
                return;
        }
        bool held = r->holding;
        request_release(r);
        /* its slot may let a queued request start (at once, or when the callback returns) */
        if (held && c->fq_head) {
                c->need_sweep = true;
                if (c->depth == 0) {
                        enter(c);
                        sweep(c);
                        leave(c);
                }
        }
}

/* ---- the client ---- */

static int split_server(kube_client *c) {
        const char *server = kube_config_server(c->cfg);
        const char *tsn = kube_config_tls_server_name(c->cfg);
        if (!tsn) {
                c->base_url = strdup(server);
                return c->base_url ? 0 : -ENOMEM;
        }
        /*
         * curl has no "verify against this name" option: address the URL to
         * tls-server-name (SNI and verification use it) and connect to the
         * real host with CONNECT_TO.
         */
        CURLU *u = curl_url();
        char *host = NULL, *port = NULL, *path = NULL, *scheme = NULL;
        _cleanup_free_ char *ct = NULL; /* before the first goto: its cleanup runs at out */
        int r = -EINVAL;
        if (!u) return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, server, 0) != CURLUE_OK) goto out;
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
                goto out;
        bool v6 = strchr(tsn, ':') && tsn[0] != '[';
        r = -ENOMEM;
        if (asprintf(&c->base_url, "%s://%s%s%s:%s%s", scheme, v6 ? "[" : "", tsn, v6 ? "]" : "",
                     port, streq(path, "/") ? "" : path) < 0) {
                c->base_url = NULL;
                goto out;
        }
        size_t bl = strlen(c->base_url);
        while (bl > 0 && c->base_url[bl - 1] == '/') c->base_url[--bl] = 0;
        if (asprintf(&ct, "%s%s%s:%s:%s:%s", v6 ? "[" : "", tsn, v6 ? "]" : "", port, host, port) <
            0) {
                ct = NULL;
                goto out;
        }
        c->connect_to = curl_slist_append(NULL, ct);
        if (!c->connect_to) goto out;
        r = 0;
out:
        curl_free(host);
        curl_free(port);
        curl_free(path);
        curl_free(scheme);
        curl_url_cleanup(u);
        return r;
}

int kube_client_new(struct ev_loop *loop, const kube_config *cfg, const kube_client_opts *opts,
                    kube_client **ret) {
        static bool global_done;
        if (!loop || !cfg || !ret) return -EINVAL;
        if (!global_done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return -ENOMEM;
                global_done = true;
        }

        kube_client *c = calloc(1, sizeof(*c));
        if (!c) return -ENOMEM;
        c->loop = loop;
        ev_init(&c->timer, timer_cb);
        c->timer.data = c;
        ev_timer_init(&c->liveness, liveness_cb, KUBE_CLIENT_LIVENESS_TICK_S,
                      KUBE_CLIENT_LIVENESS_TICK_S);
        c->liveness.data = c;
        int k = kube_config_copy(cfg, &c->cfg);
        if (k < 0) goto fail;
        k = split_server(c);
        if (k < 0) goto fail;
        c->https = !strncasecmp(c->base_url, "https://", 8);
        k = -ENOMEM;
        if (opts && opts->user_agent) {
                if (strpbrk(opts->user_agent, "\r\n")) {
                        k = -EINVAL;
                        goto fail;
                }
                c->user_agent = strdup(opts->user_agent);
        } else {
                c->user_agent = strdup("pullpolicy/" PULLPOLICY_VERSION);
        }
        if (!c->user_agent) goto fail;
        c->max_body = opts && opts->max_body ? opts->max_body : KUBE_CLIENT_DEFAULT_MAX_BODY;
        kube_token_bucket_init(&c->bucket, opts ? opts->qps : 0, opts ? opts->burst : 1,
                               kube_now());
        {
                unsigned initial = opts && opts->requests_in_flight ? opts->requests_in_flight
                                                                    : KUBE_FLOWCTL_DEFAULT_INITIAL;
                unsigned max = opts && opts->max_requests_in_flight
                                   ? opts->max_requests_in_flight
                                   : initial * KUBE_FLOWCTL_CEILING_FACTOR;
                kube_flowctl_init(&c->flow, initial, max, kube_now());
        }
        ev_init(&c->flow_timer, flow_timer_cb);
        c->flow_timer.data = c;

        c->multi = curl_multi_init();
        if (!c->multi) goto fail;
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        /*
         * curl's own cap (100) is below what kube-apiserver allows per HTTP/2
         * connection; past it curl opens a connection per waiting request.
         * The server's SETTINGS_MAX_CONCURRENT_STREAMS still applies.
         */
        curl_multi_setopt(c->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
        /* Does not keep the loop alive by itself (ev_unref). */
        ev_timer_start(loop, &c->liveness);
        ev_unref(loop);
        *ret = c;
        return 0;
fail:
        client_destroy(c);
        return k;
}

static void client_destroy(kube_client *c) {
        while (c->requests) {
                c->requests->cancelled = true;
                request_release(c->requests);
        }
        if (c->multi) curl_multi_cleanup(c->multi);
        /* curl may not report REMOVE for every socket during clean-up. */
        while (c->socks) {
                sock *s = c->socks;
                c->socks = s->next;
                ev_io_stop(c->loop, &s->io);
                free(s);
        }
        ev_timer_stop(c->loop, &c->timer);
        ev_timer_stop(c->loop, &c->flow_timer);
        if (ev_is_active(&c->liveness)) {
                ev_ref(c->loop);
                ev_timer_stop(c->loop, &c->liveness);
        }
        curl_slist_free_all(c->connect_to);
        kube_config_free(c->cfg);
        free(c->base_url);
        free(c->user_agent);
        free(c);
}

kube_client *kube_client_free(kube_client *c) {
        if (!c || c->free_pending) return NULL;
        if (c->depth > 0) {
                /* Inside one of our callbacks: silence everything, destroy on the way out. */
                for (kube_request *r = c->requests; r; r = r->next) {
                        r->cancelled = true;
                        ev_timer_stop(c->loop, &r->delay);
                        ev_timer_stop(c->loop, &r->idle);
                }
                c->free_pending = true;
                return NULL;
        }
        client_destroy(c);
        return NULL;
}

void kube_client_get_stats(const kube_client *c, kube_client_stats *ret) {
        *ret = c->stats;
        ret->flow_limit = kube_flowctl_limit(&c->flow);
        ret->flow_in_flight = c->flow.in_flight;
        unsigned long q = 0;
        for (const kube_request *r = c->fq_head; r; r = r->fq_next) q++;
        ret->flow_waiting = q;
}

struct ev_loop *kube_client_loop(const kube_client *c) {
        return c->loop;
}

int kube_url_escape(const char *s, char **ret) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        if (n > (SIZE_MAX - 1) / 3) return -ENOMEM;
        char *out = malloc(n * 3 + 1), *p = out;
        if (!out) return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
                        *p++ = (char)ch;
                } else {
                        *p++ = '%';
                        *p++ = hex[ch >> 4];
                        *p++ = hex[ch & 15];
                }
        }
        *p = 0;
        *ret = out;
        return 0;
}

void kube_client_set_observer(kube_client *c, kube_client_observer fn, void *userdata) {
        c->observer = fn;
        c->observer_ud = userdata;
}

const char *kube_method_to_string(kube_method m) {
        static const char *const names[] = {
            [KUBE_GET] = "GET",     [KUBE_POST] = "POST",     [KUBE_PUT] = "PUT",
            [KUBE_PATCH] = "PATCH", [KUBE_DELETE] = "DELETE",
        };
        if ((unsigned)m >= ARRAY_SIZE(names)) return "UNKNOWN";
        return names[m];
}
