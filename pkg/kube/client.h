/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_client: non-blocking HTTP to kube-apiserver on one libev loop with
 * one curl multi handle. Every request completes through a callback on the
 * loop; nothing here blocks. Connections are reused; HTTP/2 where offered.
 *
 * Ownership: the client borrows the ev_loop and copies what it needs from
 * the config. A request handle belongs to the client; it is valid until its
 * on_done callback has returned or it was cancelled.
 *
 * Example (a GET):
 *
 *     static void done(kube_client *c, const kube_response *r, void *ud) {
 *             if (r->error == 0) printf("%.*s\n", (int)r->body_len, r->body);
 *     }
 *     kube_request_opts o = { .method = KUBE_GET, .path = "/api/v1/namespaces",
 *                             .on_done = done };
 *     kube_client_request(client, &o, NULL);
 */
#ifndef PP_KUBE_CLIENT_H
#define PP_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/config.h"
#include "kube/errors.h"

struct ev_loop;

typedef struct kube_client kube_client;
typedef struct kube_request kube_request;

typedef enum kube_method {
        KUBE_GET,
        KUBE_POST,
        KUBE_PUT,
        KUBE_PATCH,
        KUBE_DELETE,
} kube_method;

typedef enum kube_patch_type {
        KUBE_PATCH_MERGE,     /* application/merge-patch+json */
        KUBE_PATCH_JSON,      /* application/json-patch+json */
        KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
        KUBE_PATCH_APPLY,     /* application/apply-patch+yaml (server-side apply) */
} kube_patch_type;

typedef struct kube_response {
        long http_status; /* 0 when no HTTP response arrived */
        /*
         * 0 for 2xx; otherwise a negative errno: the mapping of http_status
         * (see errors.h) or of the transport failure (-ETIMEDOUT, -ECONNREFUSED,
         * -ECONNRESET, -EPROTO for TLS, -EMSGSIZE for an over-limit body).
         */
        int error;
        /* The decoded metav1.Status of a non-2xx answer (NULL if none parsed). */
        const kube_status *status;
        /* The body of a non-streaming request; valid only during the callback. */
        const char *body;
        size_t body_len;
        /*
         * Seconds from a Retry-After header (429/503), 0 when absent. When
         * on_done sees a 429 the client already retried as far as it would.
         */
        double retry_after;
} kube_response;

/* Called once when a request ends, whatever the outcome (unless cancelled). */
typedef void (*kube_response_cb)(kube_client *c, const kube_response *r, void *userdata);

/*
 * Streaming body (watches): called for each chunk as it arrives, with no
 * framing. Return 0 to go on, negative to abort the request (on_done then
 * reports that error).
 */
typedef int (*kube_data_cb)(kube_client *c, const char *data, size_t len, void *userdata);

typedef struct kube_request_opts {
        kube_method method;
        const char *path; /* path and query, e.g. "/api/v1/secrets?limit=500" */
        const char *body; /* copied; may be NULL */
        size_t body_len;
        kube_patch_type patch_type; /* for KUBE_PATCH */
        const char *accept;         /* NULL: application/json */
        /* Whole-request limit for normal requests; for streams, 0 = none. */
        long timeout_ms;
        /* A stream is aborted with -ETIMEDOUT when no byte arrives this long (0 = off). */
        long idle_timeout_ms;
        size_t max_body;    /* 0: the client's default limit (see kube_client_opts) */
        bool no_rate_limit; /* watches and lease renewals skip the QPS bucket and the flow window */
        kube_data_cb on_data; /* non-NULL makes this a streaming request */
        kube_response_cb on_done;
        void *userdata;
} kube_request_opts;

typedef struct kube_client_opts {
        /*
         * A hard cap for admins: a token bucket of qps a second, burst at once
         * (<= 0: none, the default: the flow window alone paces the client).
         */
        double qps;
        int burst;
        /*
         * Flow control (flowctl.h): requests other than streams and no_rate_limit
         * ones start while fewer than the window are in flight; the window starts
         * at requests_in_flight (0: KUBE_FLOWCTL_DEFAULT_INITIAL), grows while the
         * server answers promptly, up to max_requests_in_flight (0: 16 x the start),
         * and halves on 429/503 or rising latency; a Retry-After holds every start.
         */
        unsigned requests_in_flight;
        unsigned max_requests_in_flight;
        size_t max_body;        /* default limit for a non-streaming body; 0 = 64 MiB */
        const char *user_agent; /* NULL: "pullpolicy/<version>" */
} kube_client_opts;

int kube_client_new(struct ev_loop *loop, const kube_config *cfg, const kube_client_opts *opts,
                    kube_client **ret);
/* Cancels every outstanding request (no callbacks) and frees the client. */
kube_client *kube_client_free(kube_client *c);

/*
 * Starts a request. On success returns 0 and, if ret is non-NULL, a handle
 * for kube_request_cancel(). Failures to start (bad options, ENOMEM) return
 * a negative errno and no callback is made.
 */
int kube_client_request(kube_client *c, const kube_request_opts *o, kube_request **ret);

/* Stops a request; its callbacks are never called afterwards. NULL is fine. */
void kube_request_cancel(kube_request *r);

/* Counters for tests and metrics: requests started, by method. */
typedef struct kube_client_stats {
        unsigned long requests[KUBE_DELETE + 1];
        unsigned long throttled; /* requests delayed by the token bucket */
        /* Added by the client's owner; the fields above are the original contract. */
        unsigned long completed;        /* on_done called */
        unsigned long failed;           /* ... with a non-zero error */
        unsigned long cancelled;        /* kube_request_cancel() before completion */
        unsigned long active;           /* started and not yet completed or cancelled, now */
        unsigned long connections;      /* new connections opened by completed requests */
        unsigned long http2;            /* completed requests answered over HTTP/2 */
        unsigned long retries;          /* re-sent after a pooled connection turned out dead */
        unsigned long retried_after;    /* re-sent after a 429/5xx, as Retry-After asked */
        unsigned long probes;           /* liveness probes of silent HTTP/2 connections */
        unsigned long dead_connections; /* shut down: silent, and a probe got no answer */
        unsigned long nudges; /* probes sent for an answer silent KUBE_CLIENT_STALL_S (client.c) */
        /* Flow control (flowctl.h): */
        unsigned long flow_queued;    /* requests that waited for a slot of the window */
        unsigned long throttled_429;  /* answers 429 (each retry counts) */
        unsigned long flow_limit;     /* the window now: requests allowed in flight */
        unsigned long flow_in_flight; /* requests holding a slot now */
        unsigned long flow_waiting;   /* requests waiting for a slot now */
} kube_client_stats;
void kube_client_get_stats(const kube_client *c, kube_client_stats *ret);

struct ev_loop *kube_client_loop(const kube_client *c);

/*
 * Called once for every request that completes (not for cancelled ones),
 * before its on_done: the method, the request's path (as given, with its query), the HTTP
 * status (0 when none arrived) and the error. For metrics; must not start or cancel
 * requests. NULL removes it.
 */
typedef void (*kube_client_observer)(void *userdata, kube_method method, const char *path,
                                     long http_status, int error);
void kube_client_set_observer(kube_client *c, kube_client_observer fn, void *userdata);

/* "GET", "POST", ... */
const char *kube_method_to_string(kube_method m);

/*
 * Percent-encodes s for use in a query value (label/field selectors,
 * continue tokens): everything but ALPHA / DIGIT / "-._~" is escaped.
 * Returns 0 and a new string, or -ENOMEM.
 */
int kube_url_escape(const char *s, char **ret);

/*
 * Notes on behaviour (client.c):
 * - timeout_ms 0 on a non-streaming request means KUBE_CLIENT_DEFAULT_TIMEOUT_MS.
 * - Connecting (TCP + TLS) is bounded by KUBE_CLIENT_CONNECT_TIMEOUT_MS.
 * - A streaming request whose answer is not 2xx does not see on_data: the
 *   body (at most KUBE_CLIENT_MAX_ERROR_BODY bytes) is decoded as a Status
 *   and reported through on_done like any other error.
 * - Redirects are not followed (see -EREMCHG in errors.h).
 * - Only a request that is safe to repeat (a GET, or a PUT whose body has a
 *   metadata.resourceVersion precondition) is ever sent twice after a
 *   connection failure. Such a request that fails with -ECONNRESET before any
 *   answer on a reused connection is sent once more on a new connection: the
 *   server closed that idle connection (e.g. HTTP/2 GOAWAY when it
 *   restarted); counted in kube_client_stats.retries. curl's own re-sending
 *   on a fresh connection is allowed for these only. Any other request (POST,
 *   PATCH, DELETE, PUT without precondition) that fails so is reported as
 *   -ECONNRESET: the server may have acted on it.
 * - Requests may be started and cancelled, and kube_client_free() called,
 *   from inside on_data/on_done; nothing is called back afterwards.
 * - kube_response.retry_after falls back to the Status'
 *   details.retryAfterSeconds when the answer had no Retry-After header.
 * - A 429, or a 5xx with Retry-After (header or details.retryAfterSeconds),
 *   is sent again by the client after the delay asked (1 s for a 429 that
 *   names none), on a timer of the loop, like client-go's Request: at most
 *   KUBE_CLIENT_MAX_RETRIES times, each wait capped at
 *   KUBE_CLIENT_MAX_RETRY_WAIT_S, and only while the request's timeout
 *   (timeout_ms, covering all tries) leaves room for the wait; every method,
 *   as the server did not act on it. The retry takes a token of the rate
 *   limiter like any request. Counted in kube_client_stats.retried_after;
 *   on_done and the observer see only the final answer.
 * - The bearer token is taken per request from kube_config_token() on the
 *   client's own copy of the config, so a rotated token file is picked up.
 *
 * Example (a watch; the reflector does this with framing and resumption):
 *
 *     static int chunk(kube_client *c, const char *d, size_t n, void *ud) {
 *             return kube_watch_framer_feed(ud, d, n);  // see watch.h
 *     }
 *     kube_request_opts o = {
 *             .method = KUBE_GET,
 *             .path = "/api/v1/secrets?watch=1&allowWatchBookmarks=true&resourceVersion=42",
 *             .on_data = chunk, .on_done = done, .userdata = w,
 *             .idle_timeout_ms = 5 * 60 * 1000, .no_rate_limit = true,
 *     };
 *     kube_request *req;
 *     kube_client_request(client, &o, &req);
 *     ...
 *     kube_request_cancel(req);  // no callback after this
 *
 * Example (server-side apply; the field manager goes in the query):
 *
 *     kube_request_opts o = {
 *             .method = KUBE_PATCH, .patch_type = KUBE_PATCH_APPLY,
 *             .path = "/api/v1/namespaces/ns/serviceaccounts/sa?fieldManager=pullpolicy",
 *             .body = json, .body_len = strlen(json), .on_done = done,
 *     };
 *     // in done(): kube_error_is_conflict(r->error) -> re-read and retry
 */
#define KUBE_CLIENT_DEFAULT_TIMEOUT_MS 60000L
/*
 * TCP keepalive: probes after 15 s without traffic, 5 s apart, 3 unanswered end
 * the connection; unacknowledged data ends it after 30 s. So a dead peer is
 * noticed within ~30 s (client.c setup_easy()).
 */
#define KUBE_CLIENT_KEEPALIVE_IDLE_S     15
#define KUBE_CLIENT_KEEPALIVE_INTERVAL_S 5
#define KUBE_CLIENT_KEEPALIVE_PROBES     3
#define KUBE_CLIENT_TCP_USER_TIMEOUT_MS  30000
/*
 * A peer that keeps TCP up but sends nothing (a hung proxy) is found on HTTP/2
 * the way client-go finds it (ReadIdleTimeout, then a PING with PingTimeout;
 * its defaults 30 s + 15 s), a little sooner: while a stream runs, a
 * connection silent for KUBE_CLIENT_READ_IDLE_S gets a probe request, and
 * without an answer in KUBE_CLIENT_PING_TIMEOUT_S the silent connections are
 * shut down (their streams end with -ECONNRESET or -ETIMEDOUT): ~30 s in all.
 * Checked every KUBE_CLIENT_LIVENESS_TICK_S.
 */
#define KUBE_CLIENT_READ_IDLE_S     20.0
#define KUBE_CLIENT_PING_TIMEOUT_S  10.0
#define KUBE_CLIENT_LIVENESS_TICK_S 1.0
/*
 * Receive buffer of each transfer (curl's default is 16 KiB). libcurl 7.88's
 * HTTP/2 layer stalls a stream whose DATA does not fit it while another
 * transfer reads the shared connection (32 KiB at a time): issue 9's LIST
 * pages that waited ~30 s. A request (not a stream) silent for
 * KUBE_CLIENT_STALL_S on HTTP/2 gets one liveness probe per silent spell,
 * which wakes what is left of that (counted in kube_client_stats.nudges).
 */
#define KUBE_CLIENT_RECV_BUFFER (64 * 1024)
#define KUBE_CLIENT_STALL_S     2.0
/* client-go: Request.maxRetries defaults to 10; it does not cap the wait, we do. */
#define KUBE_CLIENT_MAX_RETRIES        10
#define KUBE_CLIENT_MAX_RETRY_WAIT_S   60.0
#define KUBE_CLIENT_CONNECT_TIMEOUT_MS 30000L
#define KUBE_CLIENT_DEFAULT_MAX_BODY   (64u * 1024 * 1024)
#define KUBE_CLIENT_MAX_ERROR_BODY     (1u * 1024 * 1024)
/*
 * Once the server answered over HTTP/2, at most this many connections are
 * opened to it: kube-apiserver allows 100 streams per connection, and
 * without a cap curl opens one connection per request beyond that.
 * Requests beyond connections x streams wait in curl for a free stream.
 * (Over HTTP/1.1 there is no cap: a watch holds its connection.)
 */
#define KUBE_CLIENT_MAX_H2_CONNECTIONS 8

#endif
