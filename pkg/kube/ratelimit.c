/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/ratelimit.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

void kube_token_bucket_init(kube_token_bucket *b, double qps, int burst, double now) {
        b->qps = qps;
        b->burst = burst < 1 ? 1 : burst;
        b->tokens = b->burst;
        b->last = now;
}

double kube_token_bucket_reserve(kube_token_bucket *b, double now) {
        if (b->qps <= 0) return 0;
        if (now > b->last) {
                b->tokens += (now - b->last) * b->qps;
                if (b->tokens > b->burst) b->tokens = b->burst;
                b->last = now;
        }
        b->tokens -= 1;
        if (b->tokens >= 0) return 0;
        return -b->tokens / b->qps;
}

double kube_backoff_exp(double base, double max, unsigned failures) {
        if (base <= 0) return 0;
        /* 2^64 overflows nothing in double, but stop early once past max. */
        double d = base;
        for (unsigned i = 0; i < failures && d < max; i++) d *= 2;
        return d > max ? max : d;
}

double kube_backoff_jittered(double base, double max, unsigned failures, double jitter,
                             double rnd) {
        double d = kube_backoff_exp(base, max, failures);
        if (jitter <= 0) return d;
        if (jitter > 1) jitter = 1;
        if (rnd < 0) rnd = 0;
        if (rnd >= 1) rnd = 0.999999;
        return d * (1 - jitter) + d * jitter * rnd;
}

double kube_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state;

double kube_random(void) {
        if (rng_state == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                            ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ull;
        }
        uint64_t x = rng_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng_state = x;
        return (double)(x >> 11) / 9007199254740992.0; /* 2^53 */
}
