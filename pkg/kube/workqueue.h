/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A rate-limited work queue with client-go's semantics, single-threaded on a
 * libev loop, for reconcilers that do their work asynchronously.
 *
 * Keys (e.g. "namespace/name") are added; the queue hands each ready key to
 * the process callback from the loop (never from inside kube_workqueue_add*),
 * in FIFO order, with at most max_in_flight keys being processed at once and
 * never the same key twice at once. process starts the work; the owner
 * reports the outcome with kube_workqueue_done(), from inside process or any
 * time later.
 *
 *   add(k)          k queued (dirty): nothing more. k being processed: it is
 *                   queued again when done() is called. Otherwise appended.
 *   add_after(k,s)  add(k) in s seconds (an ev_timer); added twice, the earlier
 *                   deadline wins.
 *   add_rate_limited(k)
 *                   add_after(k, when(k)): the larger of k's exponential
 *                   backoff, base_delay * 2^failures capped at max_delay, and
 *                   the wait for a token of the overall bucket (qps, burst).
 *   forget(k)       clears k's failure count.
 *   done(k, result) result 0: success, forget(k); > 0: forget(k) and
 *                   add_after(k, result ms); < 0: add_rate_limited(k).
 *
 * This is client-go's DefaultControllerRateLimiter (5 ms .. 1000 s per item,
 * 10 qps / burst 100 overall) and controller-runtime's handling of a
 * reconcile's result.
 *
 * Ownership: the queue copies keys. The key passed to process is owned by the
 * queue and valid until done() is called for it. kube_workqueue_free() stops
 * every watcher it started; keys still in flight are forgotten (don't call
 * done() after free).
 *
 * Limits: keys of at most KUBE_WORKQUEUE_KEY_MAX bytes (-EINVAL) and at most
 * KUBE_WORKQUEUE_MAX_KEYS distinct keys tracked at once (-E2BIG).
 */
#ifndef PP_KUBE_WORKQUEUE_H
#define PP_KUBE_WORKQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#define KUBE_WORKQUEUE_KEY_MAX  512
#define KUBE_WORKQUEUE_MAX_KEYS (1u << 20)

#define KUBE_WORKQUEUE_DEFAULT_BASE_DELAY    0.005
#define KUBE_WORKQUEUE_DEFAULT_MAX_DELAY     1000.0
#define KUBE_WORKQUEUE_DEFAULT_QPS           10.0
#define KUBE_WORKQUEUE_DEFAULT_BURST         100
#define KUBE_WORKQUEUE_DEFAULT_MAX_IN_FLIGHT 4

typedef struct kube_workqueue kube_workqueue;

typedef struct kube_workqueue_opts {
        /* Zero fields take the defaults above. */
        double base_delay; /* seconds */
        double max_delay;  /* seconds */
        double qps;        /* overall bucket; < 0 disables it */
        int burst;
        unsigned max_in_flight;

        /*
         * Starts work on key. It must lead to exactly one kube_workqueue_done()
         * for key, now or later, unless it returns a negative errno: then it
         * could not start and the queue calls done(key, that error) itself
         * (if done() was not called already). May call any kube_workqueue_*
         * function except kube_workqueue_free().
         */
        int (*process)(kube_workqueue *q, const char *key, void *userdata);
        void *userdata;

        /*
         * Optional observations for metrics (controller-runtime's
         * workqueue_queue_duration_seconds and workqueue_work_duration_seconds):
         * time from add to process start, and from process start to done.
         */
        void (*observe_queue_latency)(void *metrics_ud, double seconds);
        void (*observe_work_duration)(void *metrics_ud, double seconds);
        void *metrics_ud;
} kube_workqueue_opts;

typedef struct kube_workqueue_stats {
        uint64_t adds;    /* adds that queued a key (collapsed duplicates not counted) */
        uint64_t retries; /* add_rate_limited() calls, including done() with an error */
        uint64_t started; /* process calls */
        uint64_t done_ok, done_requeue_after, done_error;
        size_t depth;           /* keys ready in the FIFO: kube_workqueue_len() */
        size_t in_flight;       /* keys being processed */
        size_t waiting;         /* keys with a pending add_after timer */
        size_t keys;            /* keys tracked (queued, processing, waiting or with failures) */
        double longest_running; /* seconds the oldest in-flight key has been processing */
        double unfinished_work; /* sum over in-flight keys of seconds processing */
} kube_workqueue_stats;

/*
 * A new queue on loop (which must outlive it); opts is copied, opts->process
 * is required. 0, -EINVAL or -ENOMEM.
 */
int kube_workqueue_new(struct ev_loop *loop, const kube_workqueue_opts *opts, kube_workqueue **ret);

/* Stops the queue's watchers and frees everything. Accepts NULL; returns NULL. */
kube_workqueue *kube_workqueue_free(kube_workqueue *q);

/* 0, -EINVAL (bad key), -E2BIG, -ESHUTDOWN or -ENOMEM. */
int kube_workqueue_add(kube_workqueue *q, const char *key);
/* seconds <= 0 is add(). Same returns. */
int kube_workqueue_add_after(kube_workqueue *q, const char *key, double seconds);
int kube_workqueue_add_rate_limited(kube_workqueue *q, const char *key);

/*
 * The delay the next add_rate_limited(key) would use, and records it as that
 * retry: counts a failure for key and takes a token from the overall bucket
 * (client-go's RateLimiter.When). Exposed so tests can check the backoff
 * without waiting. Negative errno on a bad key or ENOMEM.
 */
double kube_workqueue_when(kube_workqueue *q, const char *key);

void kube_workqueue_forget(kube_workqueue *q, const char *key);
unsigned kube_workqueue_num_requeues(const kube_workqueue *q, const char *key);

/*
 * Reports the end of processing key with result (see above). 0, or -ENOENT
 * when key is not being processed (then nothing happens). After shutdown the
 * key is just released.
 */
int kube_workqueue_done(kube_workqueue *q, const char *key, int result);

/* Keys ready to be processed (the FIFO's length). */
size_t kube_workqueue_len(const kube_workqueue *q);

/* Whether key is queued, being processed or waiting for a timer. */
bool kube_workqueue_has(const kube_workqueue *q, const char *key);

/*
 * Stops dispatching and accepting keys: the FIFO is emptied and the pending
 * add_after timers are stopped and freed. Keys in flight may still be
 * reported done(). Idempotent.
 */
void kube_workqueue_shutdown(kube_workqueue *q);
bool kube_workqueue_is_shutdown(const kube_workqueue *q);

void kube_workqueue_get_stats(const kube_workqueue *q, kube_workqueue_stats *ret);

#endif
