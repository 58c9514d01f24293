/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/workqueue.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kube/ratelimit.h"
#include "util/hashmap.h"
#include "util/macro.h"

typedef struct wq_item {
        char *key;
        kube_workqueue *q;
        struct wq_item *next; /* FIFO link, while queued */
        ev_timer timer;       /* active while waiting for add_after */
        double deadline;      /* ev_now() based, while waiting */
        double added_at;      /* kube_now() when it became dirty */
        double started_at;    /* kube_now() when process was called */
        unsigned failures;
        bool dirty;      /* to be processed: queued, or requeued at done() */
        bool processing; /* handed to process, done() not yet called */
        bool waiting;    /* timer active */
} wq_item;

struct kube_workqueue {
        struct ev_loop *loop;
        kube_workqueue_opts opts;
        hashmap *items; /* key → wq_item */
        wq_item *head, *tail;
        size_t depth;
        size_t in_flight;
        size_t waiting;
        ev_timer kick; /* a zero timer: dispatches from the loop, never from add() */
        kube_token_bucket bucket;
        bool shutdown;
        bool dispatching;
        kube_workqueue_stats stats;
};

static bool key_ok(const char *key) {
        return key && *key && strnlen(key, KUBE_WORKQUEUE_KEY_MAX + 1) <= KUBE_WORKQUEUE_KEY_MAX;
}

static void item_free(wq_item *it) {
        if (!it) return;
        if (it->waiting) ev_timer_stop(it->q->loop, &it->timer);
        free(it->key);
        free(it);
}

/* Drops an item that carries no state any more. */
static void maybe_release(kube_workqueue *q, wq_item *it) {
        if (it->dirty || it->processing || it->waiting || it->failures > 0) return;
        hashmap_remove(q->items, it->key);
        item_free(it);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static int get_item(kube_workqueue *q, const char *key, bool create, wq_item **ret) {
        if (!key_ok(key)) return -EINVAL;
        wq_item *it = hashmap_get(q->items, key);
        if (it || !create) {
                *ret = it;
                return 0;
        }
        if (hashmap_size(q->items) >= KUBE_WORKQUEUE_MAX_KEYS) return -E2BIG;
        it = calloc(1, sizeof(wq_item));
        if (!it) return -ENOMEM;
        it->key = strdup(key);
        it->q = q;
        if (!it->key || hashmap_put(q->items, it->key, it, NULL) < 0) {
                free(it->key);
                free(it);
                return -ENOMEM;
        }
        ev_init(&it->timer, timer_cb);
        it->timer.data = it;
        *ret = it;
        return 0;
}

static void kick(kube_workqueue *q) {
        if (q->shutdown || q->dispatching || !q->head) return;
        if (q->in_flight >= q->opts.max_in_flight) return;
        if (!ev_is_active(&q->kick)) {
                ev_timer_set(&q->kick, 0., 0.);
                ev_timer_start(q->loop, &q->kick);
        }
}

static void push(kube_workqueue *q, wq_item *it) {
        it->next = NULL;
        if (q->tail)
                q->tail->next = it;
        else
                q->head = it;
        q->tail = it;
        q->depth++;
}

static wq_item *pop(kube_workqueue *q) {
        wq_item *it = q->head;
        if (!it) return NULL;
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        it->next = NULL;
        q->depth--;
        return it;
}

static int add_item(kube_workqueue *q, wq_item *it) {
        if (it->dirty) return 0;
        it->dirty = true;
        it->added_at = kube_now();
        q->stats.adds++;
        if (it->processing) return 0; /* done() queues it */
        push(q, it);
        kick(q);
        return 0;
}

/* The item of key for the add functions, created when new; none after shutdown. */
static int item_for_add(kube_workqueue *q, const char *key, wq_item **ret) {
        if (!q) return -EINVAL;
        if (q->shutdown) return -ESHUTDOWN;
        return get_item(q, key, true, ret);
}

int kube_workqueue_add(kube_workqueue *q, const char *key) {
        wq_item *it;
        int r = item_for_add(q, key, &it);
        return r < 0 ? r : add_item(q, it);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        wq_item *it = w->data;
        kube_workqueue *q = it->q;
        it->waiting = false;
        q->waiting--;
        add_item(q, it);
}

static int add_after_item(kube_workqueue *q, wq_item *it, double seconds) {
        if (seconds <= 0) return add_item(q, it);
        double deadline = ev_now(q->loop) + seconds;
        if (it->waiting) {
                if (it->deadline <= deadline) return 0;
                ev_timer_stop(q->loop, &it->timer);
        } else {
                it->waiting = true;
                q->waiting++;
        }
        it->deadline = deadline;
        ev_timer_set(&it->timer, seconds, 0.);
        ev_timer_start(q->loop, &it->timer);
        return 0;
}

int kube_workqueue_add_after(kube_workqueue *q, const char *key, double seconds) {
        wq_item *it;
        int r = item_for_add(q, key, &it);
        return r < 0 ? r : add_after_item(q, it, seconds);
}

static double when_item(kube_workqueue *q, wq_item *it) {
        double d = kube_backoff_exp(q->opts.base_delay, q->opts.max_delay, it->failures);
        if (it->failures < UINT_MAX) it->failures++;
        double b = kube_token_bucket_reserve(&q->bucket, kube_now());
        return MAX(d, b);
}

double kube_workqueue_when(kube_workqueue *q, const char *key) {
        if (!q) return -EINVAL;
        wq_item *it;
        int r = get_item(q, key, true, &it);
        if (r < 0) return r;
        return when_item(q, it);
}

static int add_rate_limited_item(kube_workqueue *q, wq_item *it) {
        q->stats.retries++;
        return add_after_item(q, it, when_item(q, it));
}

int kube_workqueue_add_rate_limited(kube_workqueue *q, const char *key) {
        wq_item *it;
        int r = item_for_add(q, key, &it);
        return r < 0 ? r : add_rate_limited_item(q, it);
}

void kube_workqueue_forget(kube_workqueue *q, const char *key) {
        if (!q) return;
        wq_item *it;
        if (get_item(q, key, false, &it) < 0 || !it) return;
        it->failures = 0;
        maybe_release(q, it);
}

unsigned kube_workqueue_num_requeues(const kube_workqueue *q, const char *key) {
        if (!q || !key_ok(key)) return 0;
        const wq_item *it = hashmap_get(q->items, key);
        return it ? it->failures : 0;
}

size_t kube_workqueue_len(const kube_workqueue *q) {
        return q ? q->depth : 0;
}

bool kube_workqueue_has(const kube_workqueue *q, const char *key) {
        if (!q || !key_ok(key)) return false;
        const wq_item *it = hashmap_get(q->items, key);
        return it && (it->dirty || it->processing || it->waiting);
}

int kube_workqueue_done(kube_workqueue *q, const char *key, int result) {
        if (!q) return -EINVAL;
        wq_item *it;
        if (get_item(q, key, false, &it) < 0 || !it || !it->processing) return -ENOENT;
        /* key may be it->key: don't use it once it may be freed */

        it->processing = false;
        q->in_flight--;
        double took = kube_now() - it->started_at;
        if (q->opts.observe_work_duration)
                q->opts.observe_work_duration(q->opts.metrics_ud, took < 0 ? 0 : took);

        if (result == 0)
                q->stats.done_ok++;
        else if (result > 0)
                q->stats.done_requeue_after++;
        else
                q->stats.done_error++;

        if (q->shutdown) {
                it->dirty = false;
                maybe_release(q, it);
                return 0;
        }
        if (it->dirty) push(q, it);
        if (result == 0) {
                it->failures = 0;
        } else if (result > 0) {
                it->failures = 0;
                (void)add_after_item(q, it, result / 1000.0);
        } else {
                (void)add_rate_limited_item(q, it);
        }
        maybe_release(q, it);
        kick(q);
        return 0;
}

static void dispatch(kube_workqueue *q) {
        char key[KUBE_WORKQUEUE_KEY_MAX + 1];
        /* Bounded by the FIFO's length at the start, so a key that requeues
         * itself synchronously cannot keep the loop here forever. */
        size_t budget = q->depth;

        q->dispatching = true;
        while (budget-- > 0 && !q->shutdown && q->in_flight < q->opts.max_in_flight) {
                wq_item *it = pop(q);
                if (!it) break;
                double now = kube_now();
                it->dirty = false;
                it->processing = true;
                it->started_at = now;
                q->in_flight++;
                q->stats.started++;
                if (q->opts.observe_queue_latency)
                        q->opts.observe_queue_latency(q->opts.metrics_ud,
                                                      now > it->added_at ? now - it->added_at : 0);
                /* The item may be gone when process returns (a synchronous done()). */
                strcpy(key, it->key);
                int r = q->opts.process(q, it->key, q->opts.userdata);
                if (r < 0) (void)kube_workqueue_done(q, key, r);
        }
        q->dispatching = false;
        kick(q);
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        dispatch(w->data);
}

int kube_workqueue_new(struct ev_loop *loop, const kube_workqueue_opts *opts,
                       kube_workqueue **ret) {
        if (!loop || !opts || !opts->process || !ret) return -EINVAL;
        kube_workqueue *q = calloc(1, sizeof(kube_workqueue));
        if (!q) return -ENOMEM;
        q->loop = loop;
        q->opts = *opts;
        if (q->opts.base_delay <= 0) q->opts.base_delay = KUBE_WORKQUEUE_DEFAULT_BASE_DELAY;
        if (q->opts.max_delay <= 0) q->opts.max_delay = KUBE_WORKQUEUE_DEFAULT_MAX_DELAY;
        if (q->opts.qps == 0) q->opts.qps = KUBE_WORKQUEUE_DEFAULT_QPS;
        if (q->opts.burst <= 0) q->opts.burst = KUBE_WORKQUEUE_DEFAULT_BURST;
        if (q->opts.max_in_flight == 0)
                q->opts.max_in_flight = KUBE_WORKQUEUE_DEFAULT_MAX_IN_FLIGHT;
        kube_token_bucket_init(&q->bucket, q->opts.qps, q->opts.burst, kube_now());
        if (hashmap_new(&q->items) < 0) {
                free(q);
                return -ENOMEM;
        }
        ev_init(&q->kick, kick_cb);
        q->kick.data = q;
        *ret = q;
        return 0;
}

void kube_workqueue_shutdown(kube_workqueue *q) {
        if (!q || q->shutdown) return;
        q->shutdown = true;
        ev_timer_stop(q->loop, &q->kick);
        while (pop(q)) {
        }

        /* Collect first: releasing items changes the table being walked. */
        size_t n = hashmap_size(q->items), st = 0, k = 0;
        wq_item **all = n ? malloc(n * sizeof(wq_item *)) : NULL;
        void *v;
        if (n && !all) {
                /* No memory for the list: stop timers in place, release later. */
                while (hashmap_iterate(q->items, &st, NULL, &v)) {
                        wq_item *it = v;
                        if (it->waiting) ev_timer_stop(q->loop, &it->timer);
                        it->waiting = false;
                        if (!it->processing) it->dirty = false;
                }
                q->waiting = 0;
                return;
        }
        while (hashmap_iterate(q->items, &st, NULL, &v)) all[k++] = v;
        for (size_t i = 0; i < k; i++) {
                wq_item *it = all[i];
                if (it->waiting) {
                        ev_timer_stop(q->loop, &it->timer);
                        it->waiting = false;
                        q->waiting--;
                }
                if (!it->processing) it->dirty = false;
                maybe_release(q, it);
        }
        free(all);
}

bool kube_workqueue_is_shutdown(const kube_workqueue *q) {
        return q && q->shutdown;
}

kube_workqueue *kube_workqueue_free(kube_workqueue *q) {
        if (!q) return NULL;
        ev_timer_stop(q->loop, &q->kick);
        size_t st = 0;
        void *v;
        while (hashmap_iterate(q->items, &st, NULL, &v)) item_free(v);
        hashmap_free(q->items);
        free(q);
        return NULL;
}

void kube_workqueue_get_stats(const kube_workqueue *q, kube_workqueue_stats *ret) {
        if (!q || !ret) return;
        *ret = q->stats;
        ret->depth = q->depth;
        ret->in_flight = q->in_flight;
        ret->waiting = q->waiting;
        ret->keys = hashmap_size(q->items);
        ret->longest_running = 0;
        ret->unfinished_work = 0;
        if (q->in_flight == 0) return;
        double now = kube_now();
        size_t st = 0;
        void *v;
        while (hashmap_iterate(q->items, &st, NULL, &v)) {
                const wq_item *it = v;
                if (!it->processing) continue;
                double d = now - it->started_at;
                if (d < 0) d = 0;
                ret->unfinished_work += d;
                ret->longest_running = MAX(ret->longest_running, d);
        }
}
