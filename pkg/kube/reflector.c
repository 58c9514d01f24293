/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/reflector.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "kube/errors.h"
#include "kube/ratelimit.h"
#include "kube/watch.h"
#include "util/macro.h"

#define DEFAULT_PAGE_SIZE     500u
#define DEFAULT_MAX_ITEMS     (1u << 20)
#define DEFAULT_LIST_TIMEOUT  60.0
#define DEFAULT_WATCH_TIMEOUT 300.0
#define DEFAULT_IDLE_TIMEOUT  150.0
#define DEFAULT_BACKOFF_INIT  0.8
#define DEFAULT_BACKOFF_MAX   30.0
#define DEFAULT_JITTER        0.5
#define DEFAULT_BACKOFF_RESET 120.0
#define SELECTOR_MAX          4096
#define CONTINUE_MAX          4096
#define LIST_JSON_DEPTH       64
/* A watch that ends this fast without an event is a failure, not a normal end
 * (client-go's "very short watch"); otherwise a server that closes at once
 * would be hammered. */
#define SHORT_WATCH 1.0

#define ACCEPT_META_LIST                                                                           \
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#define ACCEPT_META_WATCH                                                                          \
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

typedef enum action {
        ACT_NONE,
        ACT_LIST, /* next LIST page (the first one when no continue token is held) */
        ACT_WATCH,
} action;

/* Why we aborted a watch from inside its data callback. */
typedef enum abort_reason {
        ABORT_NONE,
        ABORT_GONE,     /* ERROR event, 410 */
        ABORT_RETRY,    /* ERROR event with a 429/5xx code: watch again */
        ABORT_RELIST,   /* other ERROR event, garbled stream, failed handler */
        ABORT_STOPPED,  /* a handler stopped or freed the reflector */
        ABORT_FALLBACK, /* a streamed LIST the server does not do: page from now on */
} abort_reason;

struct kube_reflector {
        kube_client *client;
        struct ev_loop *loop;
        kube_reflector_transport tr;
        kube_reflector_handlers h;
        kube_reflector_list_handlers lh;
        void *ud;

        char *path;      /* collection path */
        char *selectors; /* "&labelSelector=...&fieldSelector=..." or "" */
        bool metadata_only;
        unsigned page_size;
        unsigned max_items;
        size_t max_page_body;
        double list_timeout, watch_timeout, idle_timeout;
        double backoff_initial, backoff_max, backoff_jitter, backoff_reset;

        kube_watch_framer *framer;
        ev_timer timer; /* the next step (ACT_*), also for zero delays */
        ev_timer idle;
        action next;

        bool running;
        kube_request *req;
        bool req_is_watch;

        /* LIST in progress */
        json_object *items; /* the pages so far, without on_list_page */
        size_t listed;      /* items of the pages so far */
        bool list_open;     /* on_list_begin called, on_list_end or on_list_abort not yet */
        char *continue_token;
        bool full_list; /* the next LIST is one request without limit (a continue token expired) */

        /* streamed LISTs (opts.watch_list) */
        bool watch_list;
        bool watch_list_off; /* the server refused one: paged LISTs from now on */
        bool initial;        /* the watch is a streamed LIST before its initial-events-end */

        /* WATCH in progress */
        double watch_started;
        double last_data;
        unsigned long watch_events; /* events and bookmarks on this watch */
        abort_reason abort;
        double abort_retry_after;

        char rv[KUBE_REFLECTOR_RV_MAX + 1];

        unsigned failures;
        double last_failure;

        unsigned in_handler; /* nesting of handler calls (and of data callbacks) */
        bool in_data;        /* inside the watch's on_data: its handle must not be cancelled */
        bool free_pending;

        kube_reflector_stats stats;
};

static void start_list(kube_reflector *r);
static void start_watch(kube_reflector *r);

/* ---- transport ---------------------------------------------------------- */

static int client_request(void *ctx, const kube_request_opts *o, kube_request **ret) {
        return kube_client_request(ctx, o, ret);
}

static void client_cancel(void *ctx, kube_request *req) {
        kube_request_cancel(req);
}

static void cancel_req(kube_reflector *r) {
        if (!r->req) return;
        r->tr.cancel(r->tr.ctx, r->req);
        r->req = NULL;
        r->stats.watching = false;
}

/* ---- helpers ------------------------------------------------------------ */

static bool url_unreserved(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends "&key=<s percent-encoded>" to *buf (a malloc'd string). */
static int append_param(char **buf, const char *key, const char *s) {
        size_t old = strlen(*buf), klen = strlen(key), slen = strlen(s);
        char *n = realloc(*buf, old + 2 + klen + 3 * slen + 1);
        if (!n) return -ENOMEM;
        char *p = n + old;
        *p++ = '&';
        memcpy(p, key, klen);
        p += klen;
        *p++ = '=';
        for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
                if (url_unreserved(*q)) {
                        *p++ = (char)*q;
                } else {
                        static const char hex[] = "0123456789ABCDEF";
                        *p++ = '%';
                        *p++ = hex[*q >> 4];
                        *p++ = hex[*q & 15];
                }
        }
        *p = 0;
        *buf = n;
        return 0;
}

static bool rv_ok(const char *rv) {
        return rv && *rv && strlen(rv) <= KUBE_REFLECTOR_RV_MAX;
}

static void set_rv(kube_reflector *r, const char *rv) {
        snprintf(r->rv, sizeof(r->rv), "%s", rv);
}

static void reset_list_state(kube_reflector *r) {
        json_object_put(r->items);
        r->items = NULL;
        r->listed = 0;
        r->list_open = false;
        free(r->continue_token);
        r->continue_token = NULL;
}

static void really_free(kube_reflector *r) {
        ev_timer_stop(r->loop, &r->timer);
        ev_timer_stop(r->loop, &r->idle);
        cancel_req(r);
        reset_list_state(r);
        kube_watch_framer_free(r->framer);
        free(r->path);
        free(r->selectors);
        free(r);
}

/*
 * After a handler returned: true when the reflector must not go on because
 * the handler stopped it or freed it. In the latter case it is freed here
 * unless a request callback is still to come (the watch's on_done, which
 * finishes the job).
 */
static bool handler_ended_us(kube_reflector *r) {
        if (r->in_handler > 0) return !r->running || r->free_pending;
        if (r->free_pending) {
                if (!r->req) really_free(r);
                return true;
        }
        return !r->running;
}

/* ---- scheduling ---------------------------------------------------------- */

static void schedule(kube_reflector *r, action what, double delay) {
        if (delay < 0) delay = 0;
        r->next = what;
        ev_timer_stop(r->loop, &r->timer);
        /* libev counts from the loop's cached time, which is stale when we are
         * called late in an iteration (or outside the loop): a backoff or a
         * Retry-After must not come out shorter than asked. */
        if (delay > 0) ev_now_update(r->loop);
        ev_timer_set(&r->timer, delay, 0.);
        ev_timer_start(r->loop, &r->timer);
}

/* Schedules what after a backoff that grows with consecutive failures. */
static void schedule_failure(kube_reflector *r, action what, double retry_after) {
        double now = kube_now();
        if (r->last_failure > 0 && now - r->last_failure >= r->backoff_reset) r->failures = 0;
        double d = kube_backoff_jittered(r->backoff_initial, r->backoff_max, r->failures,
                                         r->backoff_jitter, kube_random());
        if (r->failures < UINT_MAX) r->failures++;
        r->last_failure = now;
        if (retry_after > d) d = retry_after;
        r->stats.failures_total++;
        r->stats.last_delay = d;
        schedule(r, what, d);
}

/* Ends a LIST that began without its last page: the consumer drops what it took. */
static void abandon_list(kube_reflector *r) {
        if (r->list_open && r->lh.on_list_abort) {
                r->in_handler++;
                r->lh.on_list_abort(r->ud);
                r->in_handler--;
        }
        r->initial = false;
        reset_list_state(r);
}

static void relist_after_failure(kube_reflector *r, double retry_after) {
        abandon_list(r);
        schedule_failure(r, ACT_LIST, retry_after);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_reflector *r = w->data;
        action what = r->next;
        r->next = ACT_NONE;
        if (!r->running) return;
        if (what == ACT_LIST)
                start_list(r);
        else if (what == ACT_WATCH)
                start_watch(r);
}

/* ---- LIST --------------------------------------------------------------- */

static int call_replace(kube_reflector *r, json_object *items, const char *rv) {
        if (!r->h.on_replace) return 0;
        r->in_handler++;
        int k = r->h.on_replace(r->ud, items, rv);
        r->in_handler--;
        return k;
}

static void call_synced(kube_reflector *r) {
        if (!r->h.on_synced) return;
        r->in_handler++;
        r->h.on_synced(r->ud);
        r->in_handler--;
}

/* Takes one page's items and continue token; returns 0 or a negative errno. */
static int absorb_page(kube_reflector *r, const char *body, size_t len, char **ret_rv) {
        json_object *root = NULL, *items, *meta, *v;
        json_tokener *tok = NULL;
        int k;

        if (!body || len > INT_MAX) return -EBADMSG;
        tok = json_tokener_new_ex(LIST_JSON_DEPTH);
        if (!tok) return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, body, (int)len);
        json_tokener_free(tok);
        if (!root) return -EBADMSG;

        k = -EBADMSG;
        if (!json_object_is_type(root, json_type_object)) goto out;
        if (r->metadata_only) {
                /* Refuse full objects rather than hand, say, Secret data to the consumer. */
                if (!json_object_object_get_ex(root, "kind", &v) ||
                    !streq_ptr(json_object_get_string(v), "PartialObjectMetadataList")) {
                        k = -EPROTONOSUPPORT;
                        goto out;
                }
        }
        if (!json_object_object_get_ex(root, "metadata", &meta) ||
            !json_object_is_type(meta, json_type_object))
                goto out;
        if (!json_object_object_get_ex(root, "items", &items) ||
            json_object_is_type(items, json_type_null)) {
                items = NULL; /* an empty list may come as "items": null */
        } else if (!json_object_is_type(items, json_type_array)) {
                goto out;
        }

        size_t n = items ? json_object_array_length(items) : 0;
        size_t have = r->listed;
        if (n > r->max_items || have + n > r->max_items) {
                k = -E2BIG;
                goto out;
        }

        const char *cont = NULL;
        if (json_object_object_get_ex(meta, "continue", &v) &&
            json_object_is_type(v, json_type_string) && *json_object_get_string(v)) {
                cont = json_object_get_string(v);
                if (strlen(cont) > CONTINUE_MAX) {
                        k = -E2BIG;
                        goto out;
                }
        }
        const char *rv = NULL;
        if (json_object_object_get_ex(meta, "resourceVersion", &v) &&
            json_object_is_type(v, json_type_string))
                rv = json_object_get_string(v);
        if (!cont && !rv_ok(rv)) goto out; /* the last page must say where to watch from */

        if (r->lh.on_list_page) {
                /* Handed over now and freed below: the list is never held whole. */
                k = 0;
                r->in_handler++;
                if (!r->list_open) {
                        r->list_open = true;
                        if (r->lh.on_list_begin) k = r->lh.on_list_begin(r->ud);
                }
                if (k >= 0 && n > 0 && r->running && !r->free_pending)
                        k = r->lh.on_list_page(r->ud, items);
                r->in_handler--;
                if (k < 0) goto out;
                r->listed += n;
        } else if (!r->items) {
                r->items = json_object_new_array_ext((int)MIN(n, (size_t)INT_MAX));
                if (!r->items) {
                        k = -ENOMEM;
                        goto out;
                }
        }
        for (size_t i = 0; !r->lh.on_list_page && i < n; i++) {
                json_object *it = json_object_array_get_idx(items, i);
                if (json_object_array_add(r->items, json_object_get(it)) < 0) {
                        json_object_put(it);
                        k = -ENOMEM;
                        goto out;
                }
        }
        char *c = NULL, *rvcopy = NULL;
        if (cont && !(c = strdup(cont))) {
                k = -ENOMEM;
                goto out;
        }
        if (!cont && !(rvcopy = strdup(rv))) {
                k = -ENOMEM;
                goto out;
        }
        free(r->continue_token);
        r->continue_token = c;
        *ret_rv = rvcopy;
        k = 0;
out:
        json_object_put(root);
        return k;
}

static void list_done(kube_client *c, const kube_response *resp, void *ud) {
        kube_reflector *r = ud;
        _cleanup_free_ char *rv = NULL;
        int k;

        r->req = NULL;
        if (r->free_pending) {
                really_free(r);
                return;
        }
        if (!r->running) return;

        if (resp->error != 0 || resp->http_status < 200 || resp->http_status >= 300) {
                bool gone = resp->http_status == 410 || kube_error_is_gone(resp->error);
                if (gone && r->continue_token) {
                        /* The snapshot behind the continue token was compacted away
                         * (the list took longer than etcd keeps history): paging again
                         * could expire again, for ever and at once. Like client-go's
                         * pager, fall back to one unpaginated list; after a backoff,
                         * as the apiserver may be under pressure. */
                        relist_after_failure(r, resp->retry_after);
                        r->full_list = true;
                        return;
                }
                relist_after_failure(r, resp->retry_after);
                return;
        }

        k = absorb_page(r, resp->body, resp->body_len, &rv);
        if (handler_ended_us(r)) return;
        if (k < 0) {
                relist_after_failure(r, 0);
                return;
        }
        if (r->continue_token) {
                schedule(r, ACT_LIST, 0);
                return;
        }

        /* Complete. */
        set_rv(r, rv);
        r->stats.lists_done++;
        if (r->lh.on_list_page) {
                r->list_open = false;
                k = 0;
                if (r->lh.on_list_end) {
                        r->in_handler++;
                        k = r->lh.on_list_end(r->ud, r->rv);
                        r->in_handler--;
                }
        } else {
                json_object *items = r->items ? r->items : json_object_new_array();
                r->items = NULL;
                if (!items) {
                        relist_after_failure(r, 0);
                        return;
                }
                k = call_replace(r, items, r->rv);
                json_object_put(items);
        }
        if (handler_ended_us(r)) return;
        if (k < 0) {
                relist_after_failure(r, 0);
                return;
        }
        if (!r->stats.synced) {
                r->stats.synced = true;
                call_synced(r);
                if (handler_ended_us(r)) return;
        }
        schedule(r, ACT_WATCH, 0);
}

static void start_stream_list(kube_reflector *r);

static void start_list(kube_reflector *r) {
        _cleanup_free_ char *path = NULL;
        int k;

        if (r->watch_list && !r->watch_list_off && r->lh.on_list_page && !r->continue_token &&
            !r->full_list) {
                start_stream_list(r);
                return;
        }

        bool full = false;
        if (!r->continue_token) {
                reset_list_state(r);
                r->stats.lists++;
                /* One attempt only: a failed or later list pages again. */
                full = r->full_list;
                r->full_list = false;
        }
        if (full) {
                r->stats.full_lists++;
                k = asprintf(&path, "%s%s%s", r->path, *r->selectors ? "?" : "",
                             *r->selectors ? r->selectors + 1 : "") < 0
                        ? -ENOMEM
                        : 0;
        } else
                k = asprintf(&path, "%s?limit=%u%s", r->path, r->page_size, r->selectors) < 0
                        ? -ENOMEM
                        : 0;
        if (k == 0 && r->continue_token) k = append_param(&path, "continue", r->continue_token);
        if (k == 0) {
                kube_request_opts o = {
                    .method = KUBE_GET,
                    .path = path,
                    .accept = r->metadata_only ? ACCEPT_META_LIST : NULL,
                    .timeout_ms = (long)(r->list_timeout * 1000),
                    .max_body = r->max_page_body,
                    .on_done = list_done,
                    .userdata = r,
                };
                r->stats.list_pages++;
                k = r->tr.request(r->tr.ctx, &o, &r->req);
                r->req_is_watch = false;
        }
        if (k < 0) {
                r->req = NULL;
                relist_after_failure(r, 0);
        }
}

/* ---- WATCH -------------------------------------------------------------- */

static int on_initial_event(kube_reflector *r, const kube_watch_event *ev);

/*
 * After a handler the stream called: -ECANCELED when the handler stopped or freed the
 * reflector, the handler's own error (the list starts over), else 0.
 */
static int after_handler(kube_reflector *r, int k) {
        if (!r->running || r->free_pending) {
                r->abort = ABORT_STOPPED;
                return -ECANCELED;
        }
        if (k < 0) {
                r->abort = ABORT_RELIST;
                return k;
        }
        return 0;
}

/*
 * An ERROR event ends the stream, on a watch and during a streamed list's initial events
 * alike: 410 means our resourceVersion is compacted away (list again); 429 or 5xx is the
 * server asking for patience (try again no sooner than the Status's Retry-After); anything
 * else starts over with a list after a backoff.
 */
static int abort_for_error_event(kube_reflector *r, const kube_watch_event *ev) {
        if (kube_watch_event_is_gone(ev)) {
                r->abort = ABORT_GONE;
                return -EIDRM;
        }
        if (ev->status_code == 429 || ev->status_code >= 500) {
                kube_status *st = NULL;
                r->abort = ABORT_RETRY;
                r->abort_retry_after = 0;
                if (kube_status_from_json(ev->object, 0, &st) >= 0) {
                        r->abort_retry_after = st->details.retry_after_seconds;
                        kube_status_free(st);
                }
                return -EREMOTEIO;
        }
        r->abort = ABORT_RELIST;
        return -EPROTO;
}

static int on_watch_event(const kube_watch_event *ev, void *ud) {
        kube_reflector *r = ud;
        const char *rv;
        int k = 0;

        if (r->initial) return on_initial_event(r, ev);

        switch (ev->type) {
        case KUBE_EVENT_ADDED:
        case KUBE_EVENT_MODIFIED:
        case KUBE_EVENT_DELETED:
                rv = kube_watch_object_resource_version(ev->object);
                if (rv && strlen(rv) > KUBE_REFLECTOR_RV_MAX) {
                        r->abort = ABORT_RELIST;
                        return -E2BIG;
                }
                if (r->metadata_only) {
                        json_object *kind;
                        if (!json_object_object_get_ex(ev->object, "kind", &kind) ||
                            !streq_ptr(json_object_get_string(kind), "PartialObjectMetadata")) {
                                r->abort = ABORT_RELIST;
                                return -EPROTONOSUPPORT;
                        }
                }
                r->stats.events++;
                r->watch_events++;
                if (r->h.on_event) {
                        r->in_handler++;
                        k = r->h.on_event(r->ud, ev->type, ev->object);
                        r->in_handler--;
                }
                if ((k = after_handler(r, k)) < 0) return k;
                /* client-go moves its resourceVersion on only once the event is stored. */
                if (rv && *rv) set_rv(r, rv);
                return 0;

        case KUBE_EVENT_BOOKMARK:
                rv = kube_watch_object_resource_version(ev->object);
                if (rv && strlen(rv) > KUBE_REFLECTOR_RV_MAX) {
                        r->abort = ABORT_RELIST;
                        return -E2BIG;
                }
                r->stats.bookmarks++;
                r->watch_events++;
                if (rv && *rv) set_rv(r, rv);
                return 0;

        case KUBE_EVENT_ERROR:
                return abort_for_error_event(r, ev);

        default:
                r->abort = ABORT_RELIST;
                return -EBADMSG;
        }
}

static bool initial_events_end(json_object *obj) {
        json_object *meta, *ann, *v;
        return json_object_object_get_ex(obj, "metadata", &meta) &&
               json_object_object_get_ex(meta, "annotations", &ann) &&
               json_object_object_get_ex(ann, "k8s.io/initial-events-end", &v) &&
               json_object_is_type(v, json_type_string) && streq(json_object_get_string(v), "true");
}

/*
 * A streamed LIST (watch with sendInitialEvents=true): ADDED events are the
 * items, each handed over as a page of one as it arrives, until the bookmark
 * annotated k8s.io/initial-events-end, which carries the list's
 * resourceVersion; the same stream then goes on as the watch.
 */
static int on_initial_event(kube_reflector *r, const kube_watch_event *ev) {
        const char *rv;
        int k = 0;

        switch (ev->type) {
        case KUBE_EVENT_ADDED: {
                if (r->metadata_only) {
                        json_object *kind;
                        if (!json_object_object_get_ex(ev->object, "kind", &kind) ||
                            !streq_ptr(json_object_get_string(kind), "PartialObjectMetadata")) {
                                r->abort = ABORT_RELIST;
                                return -EPROTONOSUPPORT;
                        }
                }
                if (r->listed >= r->max_items) {
                        r->abort = ABORT_RELIST;
                        return -E2BIG;
                }
                json_object *one = json_object_new_array_ext(1);
                if (!one || json_object_array_add(one, json_object_get(ev->object)) < 0) {
                        json_object_put(one);
                        r->abort = ABORT_RELIST;
                        return -ENOMEM;
                }
                r->watch_events++;
                r->in_handler++;
                k = r->lh.on_list_page(r->ud, one);
                r->in_handler--;
                json_object_put(one);
                if ((k = after_handler(r, k)) < 0) return k;
                r->listed++;
                return 0;
        }
        case KUBE_EVENT_BOOKMARK:
                if (!initial_events_end(ev->object)) {
                        /* A server that ignores sendInitialEvents (before the WatchList
                         * feature) sends plain bookmarks and never the end. */
                        r->abort = ABORT_FALLBACK;
                        return -EPROTONOSUPPORT;
                }
                rv = kube_watch_object_resource_version(ev->object);
                if (!rv_ok(rv)) {
                        r->abort = ABORT_RELIST;
                        return -EBADMSG;
                }
                r->watch_events++;
                r->initial = false;
                r->list_open = false;
                set_rv(r, rv);
                r->stats.lists_done++;
                if (r->lh.on_list_end) {
                        r->in_handler++;
                        k = r->lh.on_list_end(r->ud, r->rv);
                        r->in_handler--;
                }
                if ((k = after_handler(r, k)) < 0) return k;
                reset_list_state(r);
                if (!r->stats.synced) {
                        r->stats.synced = true;
                        call_synced(r);
                        if (!r->running || r->free_pending) {
                                r->abort = ABORT_STOPPED;
                                return -ECANCELED;
                        }
                }
                return 0;
        case KUBE_EVENT_ERROR:
                return abort_for_error_event(r, ev);
        default:
                /* MODIFIED or DELETED before the initial events ended: not a list. */
                r->abort = ABORT_RELIST;
                return -EBADMSG;
        }
}

static void watch_data_begin(kube_reflector *r) {
        r->in_handler++;
        r->in_data = true;
}

static void watch_data_end(kube_reflector *r) {
        r->in_data = false;
        r->in_handler--;
}

static int watch_data(kube_client *c, const char *data, size_t len, void *ud) {
        kube_reflector *r = ud;

        if (!r->running || r->free_pending) return -ECANCELED;
        if (r->abort != ABORT_NONE) return -ECANCELED; /* the client keeps feeding: refuse */
        r->last_data = kube_now();
        watch_data_begin(r);
        int k = kube_watch_framer_feed(r->framer, data, len);
        watch_data_end(r);
        if (!r->running || r->free_pending) {
                /* The watch's on_done comes next and finishes the job. */
                r->abort = ABORT_STOPPED;
                return -ECANCELED;
        }
        if (k < 0) {
                if (r->abort == ABORT_NONE) r->abort = ABORT_RELIST; /* garbled, too big */
                return k;
        }
        return 0;
}

/* Decides what follows the end of a streamed LIST before its initial events ended. */
static void stream_list_ended(kube_reflector *r, const kube_response *resp) {
        long http = resp->http_status;
        if (r->abort == ABORT_STOPPED) return;
        if (r->abort == ABORT_FALLBACK ||
            (r->abort == ABORT_NONE && (http == 400 || http == 422))) {
                /* The server does not stream lists (WatchList off, or before Kubernetes
                 * 1.27: 422 "sendInitialEvents is forbidden ..."): page from now on. */
                abandon_list(r);
                r->watch_list_off = true;
                r->stats.watch_list_fallbacks++;
                schedule(r, ACT_LIST, 0);
                return;
        }
        bool gone = r->abort == ABORT_GONE ||
                    (r->abort == ABORT_NONE && (http == 410 || kube_error_is_gone(resp->error)));
        if (gone && !(kube_now() - r->watch_started < SHORT_WATCH && r->watch_events == 0)) {
                abandon_list(r);
                schedule(r, ACT_LIST, 0);
                return;
        }
        /* Anything else, a clean end included, leaves the list unfinished. A 429/5xx ERROR
         * event's Retry-After counts as the answer's own would. */
        double retry_after = resp->retry_after;
        if (r->abort == ABORT_RETRY && r->abort_retry_after > retry_after)
                retry_after = r->abort_retry_after;
        relist_after_failure(r, retry_after);
}

/* Decides what follows the end of a watch. */
static void watch_ended(kube_reflector *r, const kube_response *resp) {
        bool very_short = kube_now() - r->watch_started < SHORT_WATCH && r->watch_events == 0;

        if (r->initial) {
                stream_list_ended(r, resp);
                return;
        }

        switch (r->abort) {
        case ABORT_GONE:
                r->stats.relists_gone++;
                reset_list_state(r);
                if (very_short)
                        schedule_failure(r, ACT_LIST, 0);
                else
                        schedule(r, ACT_LIST, 0);
                return;
        case ABORT_RETRY:
                schedule_failure(r, ACT_WATCH, r->abort_retry_after);
                return;
        case ABORT_RELIST:
                relist_after_failure(r, 0);
                return;
        case ABORT_STOPPED:
                return;
        case ABORT_FALLBACK: /* only during the initial events */
        case ABORT_NONE:
                break;
        }

        long http = resp->http_status;
        if (http >= 300 || (http > 0 && http < 200)) {
                if (http == 410 || kube_error_is_gone(resp->error)) {
                        r->stats.relists_gone++;
                        reset_list_state(r);
                        if (very_short)
                                schedule_failure(r, ACT_LIST, 0);
                        else
                                schedule(r, ACT_LIST, 0);
                } else if (http == 429 || http >= 500) {
                        schedule_failure(r, ACT_WATCH, resp->retry_after);
                } else {
                        /* 403, 404, ...: the collection or our rights changed; start over. */
                        relist_after_failure(r, resp->retry_after);
                }
                return;
        }
        if (resp->error != 0) {
                /* Connection refused or dropped, TLS failure, the client's idle timeout. */
                if (resp->error == -ETIMEDOUT && r->idle_timeout > 0 &&
                    kube_now() - r->last_data >= r->idle_timeout * 0.9)
                        r->stats.idle_timeouts++;
                schedule_failure(r, ACT_WATCH, 0);
                return;
        }
        if (very_short)
                schedule_failure(r, ACT_WATCH, 0);
        else
                schedule(r, ACT_WATCH, 0);
}

static void watch_done(kube_client *c, const kube_response *resp, void *ud) {
        kube_reflector *r = ud;

        r->req = NULL;
        r->stats.watching = false;
        ev_timer_stop(r->loop, &r->idle);
        if (r->free_pending) {
                really_free(r);
                return;
        }
        if (!r->running) return;

        if (r->abort == ABORT_NONE && resp->error == 0) {
                /* A last event without its newline still counts. */
                watch_data_begin(r);
                int k = kube_watch_framer_finish(r->framer);
                watch_data_end(r);
                if (handler_ended_us(r)) return;
                if (k < 0 && r->abort == ABORT_NONE) r->abort = ABORT_RELIST;
        }
        watch_ended(r, resp);
}

/*
 * The client enforces idle_timeout_ms itself (and can then throw the dead
 * connection away, which matters with HTTP/2: a replacement watch would
 * otherwise be multiplexed onto the same dead connection). This timer is the
 * backstop for transports that do not, a little later so that the client's
 * goes first.
 */
static double idle_backstop(const kube_reflector *r) {
        return r->idle_timeout + MIN(1.0, r->idle_timeout / 2);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        kube_reflector *r = w->data;
        double quiet = kube_now() - r->last_data;

        if (!r->running || !r->req || !r->req_is_watch) return;
        if (quiet < idle_backstop(r)) {
                ev_timer_set(&r->idle, idle_backstop(r) - quiet, 0.);
                ev_timer_start(loop, &r->idle);
                return;
        }
        r->stats.idle_timeouts++;
        cancel_req(r);
        if (r->initial)
                relist_after_failure(r, 0);
        else
                schedule_failure(r, ACT_WATCH, 0);
}

static void start_watch_ex(kube_reflector *r, bool initial);

static void start_watch(kube_reflector *r) {
        start_watch_ex(r, false);
}

/* A LIST as a watch that sends the current objects first (sendInitialEvents). */
static void start_stream_list(kube_reflector *r) {
        reset_list_state(r);
        r->stats.lists++;
        r->stats.streamed_lists++;
        r->list_open = true;
        int k = 0;
        if (r->lh.on_list_begin) {
                r->in_handler++;
                k = r->lh.on_list_begin(r->ud);
                r->in_handler--;
                if (handler_ended_us(r)) return;
        }
        if (k < 0) {
                relist_after_failure(r, 0);
                return;
        }
        start_watch_ex(r, true);
}

static void start_watch_ex(kube_reflector *r, bool initial) {
        _cleanup_free_ char *path = NULL;
        long timeout_s = (long)(r->watch_timeout * (1.0 + kube_random()));
        int k;

        if (timeout_s < 1) timeout_s = 1;
        k = asprintf(&path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld%s%s", r->path,
                     timeout_s,
                     initial ? "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan" : "",
                     r->selectors) < 0
                ? -ENOMEM
                : 0;
        if (k == 0 && !initial) k = append_param(&path, "resourceVersion", r->rv);
        if (k == 0) {
                kube_request_opts o = {
                    .method = KUBE_GET,
                    .path = path,
                    .accept = r->metadata_only ? ACCEPT_META_WATCH : NULL,
                    .no_rate_limit = true,
                    .idle_timeout_ms = r->idle_timeout > 0 ? (long)(r->idle_timeout * 1000) : 0,
                    .on_data = watch_data,
                    .on_done = watch_done,
                    .userdata = r,
                };
                kube_watch_framer_reset(r->framer);
                r->initial = initial;
                r->abort = ABORT_NONE;
                r->abort_retry_after = 0;
                r->watch_events = 0;
                r->watch_started = r->last_data = kube_now();
                r->stats.watches++;
                k = r->tr.request(r->tr.ctx, &o, &r->req);
                r->req_is_watch = true;
        }
        if (k < 0) {
                r->req = NULL;
                if (initial)
                        relist_after_failure(r, 0);
                else
                        schedule_failure(r, ACT_WATCH, 0);
                return;
        }
        r->stats.watching = true;
        if (r->idle_timeout > 0) {
                ev_now_update(r->loop);
                ev_timer_set(&r->idle, idle_backstop(r), 0.);
                ev_timer_start(r->loop, &r->idle);
        }
}

/* ---- public ------------------------------------------------------------- */

static double opt_or(double v, double def) {
        return v == 0 ? def : v;
}

int kube_reflector_new(kube_client *client, const kube_reflector_opts *opts,
                       const kube_reflector_handlers *handlers, void *ud, kube_reflector **ret) {
        kube_reflector *r;
        int k;

        if (!opts || !opts->resource || !ret) return -EINVAL;
        if (!client && (!opts->transport || !opts->loop)) return -EINVAL;
        if (opts->transport && (!opts->transport->request || !opts->transport->cancel))
                return -EINVAL;
        if (opts->namespace && !opts->resource->namespaced) return -EINVAL;
        if (opts->watch_timeout < 0 || opts->list_timeout < 0 || opts->backoff_initial < 0 ||
            opts->backoff_max < 0 || opts->backoff_jitter > 1 || opts->backoff_reset < 0)
                return -EINVAL;
        if (opts->max_event > KUBE_WATCH_MAX_EVENT_LIMIT) return -EINVAL;
        if ((opts->label_selector && strlen(opts->label_selector) > SELECTOR_MAX) ||
            (opts->field_selector && strlen(opts->field_selector) > SELECTOR_MAX))
                return -E2BIG;

        r = calloc(1, sizeof(*r));
        if (!r) return -ENOMEM;
        r->client = client;
        r->loop = opts->loop ? opts->loop : kube_client_loop(client);
        if (!r->loop) {
                free(r);
                return -EINVAL;
        }
        if (opts->transport)
                r->tr = *opts->transport;
        else
                r->tr = (kube_reflector_transport){client_request, client_cancel, client};
        if (handlers) r->h = *handlers;
        r->ud = ud;
        r->metadata_only = opts->metadata_only;
        r->watch_list = opts->watch_list;
        r->page_size = opts->page_size ? opts->page_size : DEFAULT_PAGE_SIZE;
        r->max_items = opts->max_items ? opts->max_items : DEFAULT_MAX_ITEMS;
        r->max_page_body = opts->max_page_body;
        r->list_timeout = opt_or(opts->list_timeout, DEFAULT_LIST_TIMEOUT);
        r->watch_timeout = opt_or(opts->watch_timeout, DEFAULT_WATCH_TIMEOUT);
        r->idle_timeout = opt_or(opts->idle_timeout, DEFAULT_IDLE_TIMEOUT);
        r->backoff_initial = opt_or(opts->backoff_initial, DEFAULT_BACKOFF_INIT);
        r->backoff_max = opt_or(opts->backoff_max, DEFAULT_BACKOFF_MAX);
        if (r->backoff_max < r->backoff_initial) r->backoff_max = r->backoff_initial;
        r->backoff_jitter =
            opts->backoff_jitter < 0 ? 0 : opt_or(opts->backoff_jitter, DEFAULT_JITTER);
        r->backoff_reset = opt_or(opts->backoff_reset, DEFAULT_BACKOFF_RESET);
        ev_timer_init(&r->timer, timer_cb, 0., 0.);
        r->timer.data = r;
        ev_timer_init(&r->idle, idle_cb, 0., 0.);
        r->idle.data = r;

        kube_watch_framer_opts fo = {.max_event = opts->max_event};
        k = kube_watch_framer_new(&fo, on_watch_event, r, &r->framer);
        if (k < 0) goto fail;
        k = kube_resource_path(opts->resource, opts->namespace, NULL, NULL, &r->path);
        if (k < 0) goto fail;
        r->selectors = strdup("");
        if (!r->selectors) {
                k = -ENOMEM;
                goto fail;
        }
        if (opts->label_selector && *opts->label_selector) {
                k = append_param(&r->selectors, "labelSelector", opts->label_selector);
                if (k < 0) goto fail;
        }
        if (opts->field_selector && *opts->field_selector) {
                k = append_param(&r->selectors, "fieldSelector", opts->field_selector);
                if (k < 0) goto fail;
        }
        *ret = r;
        return 0;
fail:
        really_free(r);
        return k;
}

int kube_reflector_set_list_handlers(kube_reflector *r, const kube_reflector_list_handlers *h) {
        if (!r) return -EINVAL;
        /* Not while a LIST is under way: its pages would be taken two ways. */
        if (r->in_handler > 0 || r->items || r->list_open || r->continue_token ||
            (r->req && !r->req_is_watch))
                return -EBUSY;
        r->lh = h && h->on_list_page ? *h : (kube_reflector_list_handlers){};
        return 0;
}

int kube_reflector_start(kube_reflector *r) {
        if (!r) return -EINVAL;
        if (r->in_handler > 0 || r->free_pending) return -EBUSY;
        if (r->running) return -EALREADY;
        cancel_req(r); /* a watch left over by a stop from inside a handler */
        r->running = true;
        r->stats.running = true;
        r->stats.synced = false;
        r->failures = 0;
        r->last_failure = 0;
        reset_list_state(r);
        r->full_list = false;
        schedule(r, ACT_LIST, 0);
        return 0;
}

void kube_reflector_stop(kube_reflector *r) {
        if (!r) return;
        r->running = false;
        r->stats.running = false;
        r->next = ACT_NONE;
        ev_timer_stop(r->loop, &r->timer);
        ev_timer_stop(r->loop, &r->idle);
        /* Inside the watch's own data callback the handle must stay: the
         * callback returns an error and the client then ends the request. */
        if (!r->in_data) cancel_req(r);
        r->stats.watching = false;
        if (r->in_handler == 0) {
                r->initial = false;
                reset_list_state(r);
        }
}

kube_reflector *kube_reflector_free(kube_reflector *r) {
        if (!r) return NULL;
        if (r->in_handler > 0) {
                r->free_pending = true;
                kube_reflector_stop(r);
                return NULL;
        }
        kube_reflector_stop(r);
        really_free(r);
        return NULL;
}

int kube_reflector_rewatch(kube_reflector *r, const char *rv) {
        if (!r) return -EINVAL;
        if (r->in_handler > 0) return -EBUSY;
        if (!r->running) return -ENOTCONN;
        if (rv && !rv_ok(rv)) return -EINVAL;
        if (!r->stats.synced || r->initial || (r->req && !r->req_is_watch) ||
            (!r->req && r->next != ACT_WATCH))
                return -EAGAIN;
        if (r->req) {
                cancel_req(r);
                ev_timer_stop(r->loop, &r->idle);
        }
        if (rv) set_rv(r, rv);
        schedule(r, ACT_WATCH, 0);
        return 0;
}

void kube_reflector_get_stats(const kube_reflector *r, kube_reflector_stats *ret) {
        if (!r || !ret) return;
        *ret = r->stats;
        ret->failures = r->failures;
        memcpy(ret->resource_version, r->rv, sizeof(ret->resource_version));
}
