/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/flowctl.h"

void kube_flowctl_init(kube_flowctl *f, unsigned initial, unsigned max, double now) {
        if (max < 1) max = 1;
        if (max > KUBE_FLOWCTL_MAX) max = KUBE_FLOWCTL_MAX;
        if (initial < 1) initial = 1;
        if (initial > max) initial = max;
        *f = (kube_flowctl){
            .limit = initial,
            .min = 1,
            .max = max,
            .base = -1,
            .base_prev = -1,
            .base_since = now,
            .last_decrease = -1,
            .hold_until = now,
        };
}

unsigned kube_flowctl_limit(const kube_flowctl *f) {
        unsigned l = (unsigned)f->limit;
        return l < f->min ? f->min : l;
}

bool kube_flowctl_may_start(const kube_flowctl *f, double now, double *wait) {
        if (now < f->hold_until) {
                if (wait) *wait = f->hold_until - now;
                return false;
        }
        if (f->in_flight >= kube_flowctl_limit(f)) {
                if (wait) *wait = 0;
                return false;
        }
        return true;
}

void kube_flowctl_started(kube_flowctl *f) {
        f->in_flight++;
        if (f->in_flight > f->peak) f->peak = f->in_flight;
}

void kube_flowctl_abandon(kube_flowctl *f) {
        if (f->in_flight > 0) f->in_flight--;
        if (f->in_flight == 0) f->peak = 0;
}

/* The quickest latency of the current and the previous period (-1: none seen yet). */
static double base_latency(kube_flowctl *f, double now, double lat) {
        if (now - f->base_since >= KUBE_FLOWCTL_BASE_PERIOD_S) {
                /* a server that got slower for good becomes the new normal after two periods */
                f->base_prev = f->base;
                f->base = -1;
                f->base_since = now;
        }
        if (f->base < 0 || lat < f->base) f->base = lat;
        double b = f->base;
        if (f->base_prev >= 0 && f->base_prev < b) b = f->base_prev;
        return b;
}

static void decrease(kube_flowctl *f, double now, double started) {
        /* one halving per round trip: those answers were sent under the old window */
        if (f->last_decrease >= 0 && started < f->last_decrease) return;
        f->limit /= 2;
        if (f->limit < f->min) f->limit = f->min;
        f->last_decrease = now;
        f->decreases++;
}

void kube_flowctl_done(kube_flowctl *f, double now, double started, long http_status,
                       double retry_after, bool measure) {
        unsigned peak = f->peak;
        kube_flowctl_abandon(f);
        if (retry_after > 0 && (http_status == 429 || http_status >= 500)) {
                if (retry_after > KUBE_FLOWCTL_MAX_HOLD_S) retry_after = KUBE_FLOWCTL_MAX_HOLD_S;
                if (now + retry_after > f->hold_until) f->hold_until = now + retry_after;
        }
        if (http_status == 429) f->throttled++;
        if (http_status == 429 || http_status == 503) {
                decrease(f, now, started);
                return;
        }
        if (http_status == 0 || !measure) return; /* no answer, or its latency says nothing */
        double lat = now - started;
        if (lat < 0) lat = 0;
        double base = base_latency(f, now, lat);
        if (lat > base * KUBE_FLOWCTL_SLOW_FACTOR + KUBE_FLOWCTL_SLOW_MARGIN_S) {
                decrease(f, now, started);
                return;
        }
        /*
         * Additive increase: one more for a whole window of prompt answers, and only
         * when the window was full since the client was last idle (a client that never
         * fills it learns nothing about the server).
         */
        if (peak >= kube_flowctl_limit(f)) {
                f->limit += 1.0 / f->limit;
                if (f->limit > f->max) f->limit = f->max;
        }
}
