/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pp_events: Kubernetes Events for the objects the controller acts on,
 * written asynchronously and rate-limited so that a flapping object cannot
 * flood the API, with client-go's event correlator as the model:
 * - per object and type a token bucket (burst 25, one token per five
 *   minutes): Warnings have their own budget and are never dropped because
 *   Normal events used it up;
 * - an identical (object, type, reason, message) inside the dedupe window
 *   is dropped and only counted;
 * - after similar_max distinct messages of one (object, type, reason) within
 *   the similar window, the others are combined: flush_seconds later one
 *   event "(combined from N similar events): <latest message>" with count N
 *   is posted, and PATCHed (count, lastTimestamp, message) as more come.
 *   What the budget holds back waits for the next token.
 * Both caches hold at most max_objects entries (least recently used go).
 *
 * Messages carry names and reasons only; callers never pass secret data
 * (see R11). Messages are cut at PP_EVENTS_MESSAGE_MAX bytes.
 */
#ifndef PP_CONTROLLER_EVENTS_H
#define PP_CONTROLLER_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/client.h"
#include "metrics.h"

#define PP_EVENTS_MESSAGE_MAX 1024

typedef struct pp_events pp_events;

/* The object an event is about (core/v1 ObjectReference). */
typedef struct pp_object_ref {
        const char *api_version; /* "v1", "pullpolicy.io/v1alpha1", ... */
        const char *kind;
        const char *namespace; /* NULL for cluster-scoped objects */
        const char *name;
        const char *uid; /* may be NULL */
} pp_object_ref;

typedef struct pp_events_opts {
        const char *component; /* "pullpolicy-controller" when NULL */
        const char *instance;  /* reportingInstance, e.g. the pod name; may be NULL */
        double burst;          /* per object; 25 when 0 */
        double refill_seconds; /* one token per this many seconds; 300 when 0 */
        double dedupe_seconds; /* 600 when 0 */
        size_t max_objects;    /* memory bound of the filters; 4096 when 0 */
        /* Distinct messages of one (object, type, reason) sent one by one; 10 when 0. */
        size_t similar_max;
        double similar_seconds;      /* ... inside this window since the last one; 600 when 0 */
        double flush_seconds;        /* combined occurrences go out this long after; 1 when 0 */
        controller_metrics *metrics; /* pullpolicy_events_total; may be NULL */
        /* Tests: sees every request the recorder starts (or would start without a client). */
        void (*observe)(void *userdata, kube_method method, const char *path, const char *body);
        void *observe_userdata;
} pp_events_opts;

typedef struct pp_events_stats {
        unsigned long sent;       /* POSTs started */
        unsigned long failed;     /* POSTs that the server refused */
        unsigned long suppressed; /* dropped by the spam filter or dedupe */
        unsigned long patched;    /* PATCHes of an aggregated event started */
        unsigned long combined;   /* occurrences folded into an aggregated event */
        size_t objects, series;   /* entries in the filter caches now */
} pp_events_stats;

int pp_events_new(kube_client *c, const pp_events_opts *o, pp_events **ret);
pp_events *pp_events_free(pp_events *e);

/*
 * Records an event; returns 1 when it was sent, 0 when suppressed by the
 * filters or combined into an aggregated event (sent by the next flush),
 * negative errno when it could not be started. now is the caller's
 * monotonic clock (kube_now()), passed in so that tests control time.
 */
int pp_events_record(pp_events *e, const pp_object_ref *obj, bool warning, const char *reason,
                     const char *message, double now);

/*
 * Posts what was combined since the last flush. The recorder runs it from a
 * timer on the client's loop; tests without a client call it themselves.
 * Returns the number of requests started.
 */
int pp_events_flush(pp_events *e, double now);

void pp_events_get_stats(const pp_events *e, pp_events_stats *ret);

#endif
