/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_reflector: keeps a consumer (usually a kube_store) in step with one
 * collection on the apiserver, like client-go's Reflector.
 *
 *   1. LIST, paginated (limit + continue), read from etcd (no resourceVersion),
 *      every page accumulated; then on_replace(items, rv) with the whole list;
 *      or, with on_list_page, each page handed over and freed as it arrives
 *      (on_list_begin, on_list_page..., on_list_end(rv)).
 *   2. WATCH from the list's resourceVersion with allowWatchBookmarks=true and
 *      timeoutSeconds drawn from [watch_timeout, 2*watch_timeout).
 *      ADDED/MODIFIED/DELETED go to on_event; every event's (and bookmark's)
 *      metadata.resourceVersion becomes the last resourceVersion.
 *   3. When a watch ends, how the next step is chosen:
 *        clean end of stream (timeoutSeconds) ... watch again from the last RV at once
 *                                                 (with backoff if it was a "very short
 *                                                 watch": < 1 s and no event)
 *        transport failure, dropped connection,
 *        idle timeout, 429, 5xx, a non-410
 *        ERROR event with a 429/5xx code ......... watch again from the last RV after a
 *                                                 backoff (429: at least Retry-After)
 *        410 Gone (HTTP status, or an ERROR
 *        event with code 410 / reason Expired) .. LIST again at once (counted in
 *                                                 relists_gone)
 *        any other HTTP error (403, 404, ...),
 *        any other ERROR event, a garbled stream,
 *        an event over the size limit, a handler
 *        that failed ............................ LIST again after a backoff
 *      No relist ever happens for the first group: a restart of the apiserver,
 *      a proxy that drops connections, or a stall costs one watch request, not
 *      a full list.
 *   4. A failed LIST is retried (from its first page) after a backoff. A
 *      continue token that expired (410 mid-list) is a failure too: after the
 *      backoff comes one unpaginated LIST (no limit), as client-go's pager
 *      falls back to a full list, since paging again could expire again; the
 *      lists after it page again (so does its retry if it fails, e.g. over
 *      max_page_body).
 *
 * Backoff: initial * 2^(failures-1) capped at max, with jitter (a delay is
 * drawn in [d*(1-jitter), d]); the failure count is forgotten when
 * backoff_reset seconds passed since the previous failure (so a watch that
 * lived that long starts the count afresh), like client-go's backoff manager.
 *
 * Idle timer: a watch on which no byte arrived for idle_timeout seconds is
 * dead (the apiserver sends a bookmark about every minute even when nothing
 * changes); it is dropped and replaced, from the last RV, after a backoff.
 * The watch request carries idle_timeout_ms so that the client ends it (and
 * can discard the dead connection, which a replacement watch multiplexed over
 * HTTP/2 would otherwise reuse); the reflector's own timer, a little later
 * (min(1 s, idle/2)), is the backstop for transports that do not.
 *
 * Metadata-only mode asks for PartialObjectMetadata(List), so that e.g.
 * Secrets are followed without their data ever being sent.
 *
 * Ownership and reentrancy: the reflector borrows the client (which must
 * outlive it: free reflectors first) and copies its options and handlers.
 * JSON handed to handlers is borrowed for the duration of the call
 * (json_object_get() to keep it). Handlers may call kube_reflector_stop() and
 * kube_reflector_free() on their own reflector (the free is deferred until
 * the handler's caller has unwound); they must not call kube_reflector_start()
 * on it.
 *
 * Limits: an event line at most max_event bytes (16 MiB), a list page at most
 * the client's max_body (the default client limit unless max_page_body is set),
 * a whole list at most max_items items (1,048,576), a resourceVersion at most
 * KUBE_REFLECTOR_RV_MAX bytes, a continue token at most 4 KiB, a selector at
 * most 4 KiB. Over a limit the list or watch fails and is retried with backoff.
 */
#ifndef PP_KUBE_REFLECTOR_H
#define PP_KUBE_REFLECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "kube/client.h"
#include "kube/types.h"

#define KUBE_REFLECTOR_RV_MAX 128

struct ev_loop;

typedef struct kube_reflector kube_reflector;

/*
 * Handlers. Return 0, or a negative errno to say that the consumer could not
 * follow (e.g. -ENOMEM in its store): the reflector then relists after a
 * backoff, so that the consumer gets a complete picture again. Any handler may
 * be NULL.
 */
typedef struct kube_reflector_handlers {
        /* After every complete LIST: items is the whole "items" array (of all pages). */
        int (*on_replace)(void *ud, json_object *items, const char *resource_version);
        /* Each ADDED, MODIFIED or DELETED event of the watch. */
        int (*on_event)(void *ud, kube_event_type type, json_object *obj);
        /* Once per kube_reflector_start(), after the first complete LIST and its on_replace. */
        void (*on_synced)(void *ud);
} kube_reflector_handlers;

/*
 * A LIST taken page by page (kube_reflector_set_list_handlers()): on_replace
 * is then not called and no page is kept once its handler returned.
 * on_list_begin before the first page of each LIST; on_list_page with each
 * page's "items" (not called for an empty page); on_list_end with the list's
 * resourceVersion after the last page: what no page held is gone (e.g.
 * kube_store_replace_begin/add/commit). Errors as for the other handlers (the
 * reflector relists after a backoff). on_list_abort when a LIST that began
 * ends without its last page (a failed page, a continue token that expired, a
 * handler's error); it must not call the reflector. A stopped or freed
 * reflector does not call it: the next on_list_begin starts afresh.
 * on_list_begin, on_list_end and on_list_abort may be NULL.
 */
typedef struct kube_reflector_list_handlers {
        int (*on_list_begin)(void *ud);
        int (*on_list_page)(void *ud, json_object *items);
        int (*on_list_end)(void *ud, const char *resource_version);
        void (*on_list_abort)(void *ud);
} kube_reflector_list_handlers;

/*
 * The transport, injectable for tests: functions with the meaning of
 * kube_client_request() and kube_request_cancel(). Callbacks are made with
 * the client argument set to whatever the transport likes (the reflector
 * ignores it). A transport must never call back from inside request().
 */
typedef struct kube_reflector_transport {
        int (*request)(void *ctx, const kube_request_opts *o, kube_request **ret);
        void (*cancel)(void *ctx, kube_request *r);
        void *ctx;
} kube_reflector_transport;

typedef struct kube_reflector_opts {
        const kube_resource *resource; /* required; copied */
        const char *namespace;         /* NULL: all namespaces (or cluster-scoped) */
        const char *label_selector;    /* NULL or "": none */
        const char *field_selector;    /* NULL or "": none */
        bool metadata_only;            /* PartialObjectMetadata(List) */
        /*
         * With kube_reflector_set_list_handlers(): each LIST is a watch with
         * sendInitialEvents=true and resourceVersionMatch=NotOlderThan whose
         * ADDED events are handed over one at a time until the bookmark annotated
         * k8s.io/initial-events-end (its resourceVersion is the list's); the same
         * stream then goes on as the watch. A server that refuses it (HTTP 400 or
         * 422: the WatchList feature off, Kubernetes < 1.34 by default) or ignores
         * it (a bookmark without that annotation) makes the reflector page its
         * LISTs from then on (stats.watch_list_fallbacks). A 410 during the
         * initial events lists again at once; any other end before them, after a
         * backoff.
         */
        bool watch_list;

        unsigned page_size;     /* LIST limit; 0: 500 */
        unsigned max_items;     /* 0: 1,048,576 */
        size_t max_page_body;   /* bytes of one LIST page; 0: the client's default */
        size_t max_event;       /* bytes of one watch event; 0: 16 MiB */
        double list_timeout;    /* seconds per LIST page; 0: 60 */
        double watch_timeout;   /* timeoutSeconds drawn from [t, 2t); 0: 300 */
        double idle_timeout;    /* seconds; 0: 150; < 0: no idle timer */
        double backoff_initial; /* seconds; 0: 0.8 */
        double backoff_max;     /* seconds; 0: 30 */
        double backoff_jitter;  /* in [0,1]; 0: 0.5; < 0: none */
        double backoff_reset;   /* seconds without failure that reset it; 0: 120 */

        /* NULL: the client's loop. Required when client is NULL. */
        struct ev_loop *loop;
        /* NULL: kube_client_request()/kube_request_cancel() on the client. */
        const kube_reflector_transport *transport;
} kube_reflector_opts;

typedef struct kube_reflector_stats {
        unsigned long lists;                /* LISTs started (a paginated list counts once) */
        unsigned long list_pages;           /* LIST requests made, all pages */
        unsigned long lists_done;           /* LISTs completed (on_replace called) */
        unsigned long watches;              /* WATCH requests started */
        unsigned long relists_gone;         /* LISTs caused by a 410 on a watch */
        unsigned long full_lists;           /* unpaginated LISTs after a continue token expired */
        unsigned long streamed_lists;       /* LISTs made as watches with initial events */
        unsigned long watch_list_fallbacks; /* the server refused them: paged from then on */
        unsigned long events;               /* ADDED/MODIFIED/DELETED received */
        unsigned long bookmarks;
        unsigned long idle_timeouts;  /* watches given up for silence (ours or the client's) */
        unsigned long failures_total; /* failed LISTs and watches (each backoff) */
        unsigned failures;            /* current consecutive failures */
        double last_delay;            /* the last delay scheduled before a retry, seconds */
        bool synced;                  /* a LIST completed since kube_reflector_start() */
        bool running;                 /* started and not stopped */
        bool watching;                /* a watch request is open */
        char resource_version[KUBE_REFLECTOR_RV_MAX + 1]; /* last RV, "" before the list */
} kube_reflector_stats;

/*
 * Creates a stopped reflector. client may be NULL only with opts->transport
 * and opts->loop. Returns 0 and *ret, or -EINVAL (no resource, a namespace
 * for a cluster-scoped resource, an invalid namespace name, an option out of
 * range), -E2BIG (a selector over 4 KiB) or -ENOMEM.
 */
int kube_reflector_new(kube_client *client, const kube_reflector_opts *opts,
                       const kube_reflector_handlers *handlers, void *ud, kube_reflector **ret);

/*
 * Takes LISTs page by page with h (copied; NULL or no on_list_page: back to
 * on_replace) from the next LIST on. Usually called before the start; -EBUSY
 * from inside a handler or while a LIST is under way.
 */
int kube_reflector_set_list_handlers(kube_reflector *r, const kube_reflector_list_handlers *h);

/*
 * Starts listing (returns at once; everything happens on the loop).
 * -EALREADY when running, -EBUSY when called from inside one of its handlers.
 * A request that cannot even be started is retried after a backoff, so
 * start itself fails only for those reasons.
 */
int kube_reflector_start(kube_reflector *r);

/* Cancels the request or timer in flight; no handler is called afterwards. Idempotent. */
void kube_reflector_stop(kube_reflector *r);

/* Stops and frees; NULL is fine. From inside a handler the free is deferred (see above). */
kube_reflector *kube_reflector_free(kube_reflector *r);

/*
 * Drops the current watch (or the pending retry) and watches again at once
 * from rv, or from the last resourceVersion when rv is NULL; the failure count
 * is untouched. For tests (forcing an expired resourceVersion) and for callers
 * that want a fresh connection. -EAGAIN when not synced yet (nothing to watch
 * from), -EINVAL for an rv over the limit, -ENOTCONN when stopped, -EBUSY from
 * inside a handler.
 */
int kube_reflector_rewatch(kube_reflector *r, const char *rv);

void kube_reflector_get_stats(const kube_reflector *r, kube_reflector_stats *ret);

#endif
