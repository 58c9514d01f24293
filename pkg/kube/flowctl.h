/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flow control of the client: how many requests may be in flight at once,
 * found from the server's answers instead of a fixed rate (AIMD, as TCP's
 * congestion window). The window starts at `initial`, grows by one for every
 * window's worth of prompt answers (additive increase, at most `max`), and is
 * halved (never below 1) on a 429, on a 503, or when an answer took much
 * longer than the quickest ones seen lately (rising latency: the server queues).
 * A Retry-After holds every new start until it has passed. At most one halving
 * per round trip: answers to requests started before the last halving do not
 * halve again.
 *
 * Pure arithmetic on caller-supplied clocks (seconds), so tests drive time by
 * hand; the client (client.c) keeps the queue of waiting requests.
 */
#ifndef PP_KUBE_FLOWCTL_H
#define PP_KUBE_FLOWCTL_H

#include <stdbool.h>

/* An answer is "slow" past KUBE_FLOWCTL_SLOW_FACTOR x the base latency +
 * KUBE_FLOWCTL_SLOW_MARGIN_S. */
#define KUBE_FLOWCTL_SLOW_FACTOR   4.0
#define KUBE_FLOWCTL_SLOW_MARGIN_S 0.1
/* The base latency is the quickest answer of the current and the previous period of this length. */
#define KUBE_FLOWCTL_BASE_PERIOD_S 10.0
/* A Retry-After beyond this is taken as this (the server's word, within reason). */
#define KUBE_FLOWCTL_MAX_HOLD_S 60.0
/* Default window: start and ceiling (the ceiling: 16 x the start, as --requests-in-flight scales).
 */
#define KUBE_FLOWCTL_DEFAULT_INITIAL 8
#define KUBE_FLOWCTL_CEILING_FACTOR  16
#define KUBE_FLOWCTL_MAX             4096

typedef struct kube_flowctl {
        double limit; /* the window; requests may start while in_flight < (unsigned)limit */
        unsigned min, max;
        unsigned in_flight;
        unsigned peak;                      /* the most in flight since the client was last idle */
        double base, base_prev, base_since; /* quickest latency, this and the last period */
        double last_decrease;               /* when the window was last halved (-1: never) */
        double hold_until;                  /* Retry-After: no start before this */
        unsigned long throttled;            /* answers 429 seen (each retry counts) */
        unsigned long decreases;            /* halvings */
} kube_flowctl;

/* initial is clamped to [1, max]; max to [1, KUBE_FLOWCTL_MAX]. */
void kube_flowctl_init(kube_flowctl *f, unsigned initial, unsigned max, double now);

/*
 * Whether a request may start now. When not, *wait is the seconds until a
 * Retry-After hold ends, or 0 when it must wait for an answer to free a slot.
 */
bool kube_flowctl_may_start(const kube_flowctl *f, double now, double *wait);

/* A request started (counted in flight until kube_flowctl_done/_abandon). */
void kube_flowctl_started(kube_flowctl *f);

/*
 * An answer (or a transport failure, http_status 0) to a request started at
 * `started`: updates the window. retry_after (seconds, 0 = none) holds new
 * starts. measure: whether its latency says anything about the server's load
 * (false for requests that may legitimately be slow: a large LIST page).
 */
void kube_flowctl_done(kube_flowctl *f, double now, double started, long http_status,
                       double retry_after, bool measure);

/* A request given up without an answer (cancelled): frees its slot only. */
void kube_flowctl_abandon(kube_flowctl *f);

/* The current window, whole requests. */
unsigned kube_flowctl_limit(const kube_flowctl *f);

#endif
