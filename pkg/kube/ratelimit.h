/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rate limiting primitives used by the client (QPS/burst), the workqueue
 * (per-item backoff plus an overall bucket) and the reflector (re-watch
 * backoff). Pure arithmetic on caller-supplied clocks so that tests can
 * drive time by hand.
 */
#ifndef PP_KUBE_RATELIMIT_H
#define PP_KUBE_RATELIMIT_H

#include <stdint.h>

/* A token bucket refilled at qps tokens a second, holding at most burst. */
typedef struct kube_token_bucket {
        double qps;
        double burst;
        double tokens;
        double last; /* seconds, caller's monotonic clock */
} kube_token_bucket;

/* qps <= 0 disables limiting: every reservation is granted at once. */
void kube_token_bucket_init(kube_token_bucket *b, double qps, int burst, double now);

/*
 * Takes one token, possibly from the future, and returns how many seconds the
 * caller must wait before acting on it (0 when a token was available). Taking
 * on credit keeps the order of callers fair without a wait list.
 */
double kube_token_bucket_reserve(kube_token_bucket *b, double now);

/* Exponential backoff: base * 2^failures, capped at max. */
double kube_backoff_exp(double base, double max, unsigned failures);

/*
 * The same with full jitter in [d*(1-jitter), d]; rnd is a uniform draw in
 * [0,1) supplied by the caller (tests pass fixed values).
 */
double kube_backoff_jittered(double base, double max, unsigned failures, double jitter, double rnd);

/* Seconds on CLOCK_MONOTONIC. */
double kube_now(void);

/* A uniform draw in [0,1) from a per-process xorshift generator seeded at start. */
double kube_random(void);

#endif
