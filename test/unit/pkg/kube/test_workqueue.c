/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/workqueue.h"
#include "util/macro.h"

/* cmocka of this distribution has no assert_double_equal */
#define assert_near(a, b, eps)                                                                     \
        do {                                                                                       \
                double _a = (a), _b = (b);                                                         \
                if (!(_a - _b <= (eps) && _b - _a <= (eps))) fail_msg("%.12g != %.12g", _a, _b);   \
        } while (0)

/* What process saw, and how it should answer. */
typedef struct rec {
        char seen[64][16];
        size_t n;
        char in_flight[8][16]; /* keys started and not yet done */
        size_t n_in_flight;
        bool sync_done; /* call done(key, sync_result) from inside process */
        int sync_result;
        int ret;           /* process's return value */
        int self_requeue;  /* re-add the key from inside process this many times */
        size_t stop_after; /* ev_break after this many process calls (0: never) */
        struct ev_loop *loop;
        size_t latency_obs, duration_obs;
        double latency_sum, duration_sum;
} rec;

static void in_flight_remove(rec *r, const char *key) {
        for (size_t i = 0; i < r->n_in_flight; i++)
                if (streq(r->in_flight[i], key)) {
                        r->in_flight[i][0] = 0;
                        memmove(r->in_flight[i], r->in_flight[r->n_in_flight - 1],
                                sizeof r->in_flight[0]);
                        r->n_in_flight--;
                        return;
                }
        fail_msg("%s was not in flight", key);
}

static int process(kube_workqueue *q, const char *key, void *ud) {
        rec *r = ud;
        /* never the same key twice at once */
        for (size_t i = 0; i < r->n_in_flight; i++) assert_string_not_equal(r->in_flight[i], key);
        assert_true(r->n < ARRAY_SIZE(r->seen));
        snprintf(r->seen[r->n++], sizeof r->seen[0], "%s", key);
        if (r->stop_after && r->n >= r->stop_after) ev_break(r->loop, EVBREAK_ALL);
        if (r->ret < 0) return r->ret;
        if (r->self_requeue > 0) {
                r->self_requeue--;
                assert_int_equal(kube_workqueue_add(q, key), 0);
        }
        if (r->sync_done) {
                assert_int_equal(kube_workqueue_done(q, key, r->sync_result), 0);
                return 0;
        }
        assert_true(r->n_in_flight < ARRAY_SIZE(r->in_flight));
        snprintf(r->in_flight[r->n_in_flight++], sizeof r->in_flight[0], "%s", key);
        return 0;
}

static void finish(kube_workqueue *q, rec *r, const char *key, int result) {
        in_flight_remove(r, key);
        assert_int_equal(kube_workqueue_done(q, key, result), 0);
}

static void observe_latency(void *ud, double s) {
        rec *r = ud;
        assert_true(s >= 0);
        r->latency_obs++;
        r->latency_sum += s;
}

static void observe_duration(void *ud, double s) {
        rec *r = ud;
        assert_true(s >= 0);
        r->duration_obs++;
        r->duration_sum += s;
}

/* Joins the keys process saw, e.g. "a b a". */
static const char *seen(rec *r) {
        static char buf[1024];
        buf[0] = 0;
        for (size_t i = 0; i < r->n; i++) {
                if (i) strcat(buf, " ");
                strcat(buf, r->seen[i]);
        }
        return buf;
}

typedef struct fixture {
        struct ev_loop *loop;
        kube_workqueue *q;
        rec r;
        ev_timer guard; /* fails a test that would otherwise hang */
        bool guard_fired;
} fixture;

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        fixture *f = w->data;
        f->guard_fired = true;
        ev_break(loop, EVBREAK_ALL);
}

static fixture *setup(const kube_workqueue_opts *extra) {
        fixture *f = calloc(1, sizeof(fixture));
        assert_non_null(f);
        f->loop = ev_loop_new(EVFLAG_AUTO);
        assert_non_null(f->loop);
        f->r.loop = f->loop;
        kube_workqueue_opts o = extra ? *extra : (kube_workqueue_opts){};
        o.process = process;
        o.userdata = &f->r;
        o.observe_queue_latency = observe_latency;
        o.observe_work_duration = observe_duration;
        o.metrics_ud = &f->r;
        assert_int_equal(kube_workqueue_new(f->loop, &o, &f->q), 0);
        return f;
}

static void teardown(fixture *f) {
        kube_workqueue_free(f->q);
        ev_loop_destroy(f->loop);
        free(f);
}

/* Runs the loop until nothing is left to do (no active watcher), or 5 s pass. */
static void run(fixture *f) {
        ev_init(&f->guard, guard_cb);
        f->guard.data = f;
        ev_timer_set(&f->guard, 5., 0.);
        ev_timer_start(f->loop, &f->guard);
        ev_unref(f->loop); /* the guard alone does not keep the loop running */
        ev_run(f->loop, 0);
        ev_ref(f->loop);
        ev_timer_stop(f->loop, &f->guard);
        assert_false(f->guard_fired);
}

static void test_duplicates_collapse(void **state) {
        fixture *f = setup(NULL);
        kube_workqueue_stats st;
        f->r.sync_done = true;

        assert_int_equal(kube_workqueue_add(f->q, "ns/a"), 0);
        assert_int_equal(kube_workqueue_add(f->q, "ns/b"), 0);
        assert_int_equal(kube_workqueue_add(f->q, "ns/a"), 0);
        assert_int_equal(kube_workqueue_add(f->q, "ns/a"), 0);
        assert_int_equal(kube_workqueue_len(f->q), 2);
        /* nothing is processed from inside add() */
        assert_int_equal(f->r.n, 0);
        run(f);
        assert_string_equal(seen(&f->r), "ns/a ns/b");
        assert_int_equal(kube_workqueue_len(f->q), 0);
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.adds, 2);
        assert_int_equal(st.started, 2);
        assert_int_equal(st.done_ok, 2);
        assert_int_equal(st.keys, 0);
        assert_int_equal(f->r.latency_obs, 2);
        assert_int_equal(f->r.duration_obs, 2);
        teardown(f);
}

static void test_readd_while_processing(void **state) {
        fixture *f = setup(NULL);

        assert_int_equal(kube_workqueue_add(f->q, "a"), 0);
        run(f);
        assert_string_equal(seen(&f->r), "a");
        assert_true(kube_workqueue_has(f->q, "a"));

        /* re-added while processing: not queued, not processed again yet */
        assert_int_equal(kube_workqueue_add(f->q, "a"), 0);
        assert_int_equal(kube_workqueue_add(f->q, "a"), 0);
        assert_int_equal(kube_workqueue_len(f->q), 0);
        run(f);
        assert_string_equal(seen(&f->r), "a");

        /* done() queues it again, once */
        finish(f->q, &f->r, "a", 0);
        assert_int_equal(kube_workqueue_len(f->q), 1);
        run(f);
        assert_string_equal(seen(&f->r), "a a");
        finish(f->q, &f->r, "a", 0);
        run(f);
        assert_string_equal(seen(&f->r), "a a");
        assert_false(kube_workqueue_has(f->q, "a"));
        assert_int_equal(kube_workqueue_done(f->q, "a", 0), -ENOENT);
        assert_int_equal(kube_workqueue_done(f->q, "never", 0), -ENOENT);
        teardown(f);
}

static void test_max_in_flight_fifo(void **state) {
        fixture *f = setup(&(kube_workqueue_opts){.max_in_flight = 2});
        kube_workqueue_stats st;

        static const char *const keys[] = {"a", "b", "c", "d", "e"};
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                assert_int_equal(kube_workqueue_add(f->q, keys[i]), 0);
        run(f);
        assert_string_equal(seen(&f->r), "a b");
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.in_flight, 2);
        assert_int_equal(st.depth, 3);

        finish(f->q, &f->r, "b", 0);
        run(f);
        assert_string_equal(seen(&f->r), "a b c");
        finish(f->q, &f->r, "a", 0);
        finish(f->q, &f->r, "c", 0);
        run(f);
        assert_string_equal(seen(&f->r), "a b c d e");
        finish(f->q, &f->r, "d", 0);
        finish(f->q, &f->r, "e", 0);
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.in_flight, 0);
        assert_int_equal(st.keys, 0);
        teardown(f);
}

static void test_add_after_order(void **state) {
        fixture *f = setup(NULL);
        kube_workqueue_stats st;
        f->r.sync_done = true;

        assert_int_equal(kube_workqueue_add_after(f->q, "c", 0.030), 0);
        assert_int_equal(kube_workqueue_add_after(f->q, "a", 0.010), 0);
        assert_int_equal(kube_workqueue_add_after(f->q, "b", 0.020), 0);
        assert_int_equal(kube_workqueue_add_after(f->q, "now", 0), 0);
        /* the earlier deadline wins, whichever comes first */
        assert_int_equal(kube_workqueue_add_after(f->q, "x", 100), 0);
        assert_int_equal(kube_workqueue_add_after(f->q, "x", 0.015), 0);
        assert_int_equal(kube_workqueue_add_after(f->q, "y", 0.025), 0);
        assert_int_equal(kube_workqueue_add_after(f->q, "y", 100), 0);
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.waiting, 5);
        assert_int_equal(st.depth, 1);
        assert_int_equal(kube_workqueue_len(f->q), 1);
        assert_true(kube_workqueue_has(f->q, "c"));

        /* run() returns only once no timer is left: a 100 s one would trip the guard */
        run(f);
        assert_string_equal(seen(&f->r), "now a x b y c");
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.waiting, 0);
        assert_int_equal(st.keys, 0);
        teardown(f);
}

static void test_backoff_bounds(void **state) {
        /* overall bucket disabled: the per-item backoff alone */
        fixture *f = setup(&(kube_workqueue_opts){.qps = -1});
        double want = 0.005;
        for (unsigned n = 0; n < 40; n++) {
                assert_int_equal(kube_workqueue_num_requeues(f->q, "k"), n);
                double d = kube_workqueue_when(f->q, "k");
                assert_near(d, MIN(want, 1000.0), want * 1e-9);
                want *= 2;
        }
        assert_int_equal(kube_workqueue_num_requeues(f->q, "k"), 40);
        assert_near(kube_workqueue_when(f->q, "k"), 1000.0, 1e-9);
        /* other keys have their own history */
        assert_near(kube_workqueue_when(f->q, "other"), 0.005, 1e-12);

        kube_workqueue_forget(f->q, "k");
        assert_int_equal(kube_workqueue_num_requeues(f->q, "k"), 0);
        assert_near(kube_workqueue_when(f->q, "k"), 0.005, 1e-12);
        assert_near(kube_workqueue_when(f->q, "k"), 0.010, 1e-12);
        kube_workqueue_forget(f->q, "k");
        kube_workqueue_forget(f->q, "other");
        kube_workqueue_stats st;
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.keys, 0);

        assert_true(kube_workqueue_when(f->q, NULL) < 0);
        teardown(f);

        /* custom bounds */
        f = setup(&(kube_workqueue_opts){.qps = -1, .base_delay = 1, .max_delay = 4});
        static const double want2[] = {1, 2, 4, 4, 4};
        for (size_t i = 0; i < ARRAY_SIZE(want2); i++)
                assert_near(kube_workqueue_when(f->q, "k"), want2[i], 1e-12);
        teardown(f);
}

static void test_overall_bucket(void **state) {
        /* defaults: 10 qps, burst 100 — the 101st retry within a moment waits ~0.1 s */
        fixture *f = setup(NULL);
        char key[16];
        for (int i = 0; i < 100; i++) {
                snprintf(key, sizeof key, "k%d", i);
                assert_near(kube_workqueue_when(f->q, key), 0.005, 1e-12);
        }
        double d = kube_workqueue_when(f->q, "k100");
        assert_true(d > 0.05);
        assert_true(d <= 0.1 + 1e-9);
        teardown(f);
}

static void test_done_results(void **state) {
        fixture *f = setup(&(kube_workqueue_opts){.base_delay = 0.001, .qps = -1});
        kube_workqueue_stats st;

        /* error: requeued rate-limited, failures counted */
        assert_int_equal(kube_workqueue_add(f->q, "e"), 0);
        run(f);
        finish(f->q, &f->r, "e", -EIO);
        assert_int_equal(kube_workqueue_num_requeues(f->q, "e"), 1);
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.waiting, 1);
        assert_int_equal(st.retries, 1);
        run(f);
        assert_string_equal(seen(&f->r), "e e");
        finish(f->q, &f->r, "e", -EIO);
        assert_int_equal(kube_workqueue_num_requeues(f->q, "e"), 2);
        run(f);
        assert_string_equal(seen(&f->r), "e e e");

        /* requeue after N ms: history forgotten, processed again later */
        finish(f->q, &f->r, "e", 5);
        assert_int_equal(kube_workqueue_num_requeues(f->q, "e"), 0);
        assert_true(kube_workqueue_has(f->q, "e"));
        run(f);
        assert_string_equal(seen(&f->r), "e e e e");

        /* success: forgotten and gone */
        finish(f->q, &f->r, "e", 0);
        assert_false(kube_workqueue_has(f->q, "e"));
        run(f);
        assert_string_equal(seen(&f->r), "e e e e");
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.done_error, 2);
        assert_int_equal(st.done_requeue_after, 1);
        assert_int_equal(st.done_ok, 1);
        assert_int_equal(st.keys, 0);
        assert_int_equal(f->r.latency_obs, 4);
        assert_int_equal(f->r.duration_obs, 4);

        /* an error while re-added meanwhile: queued at once for the add, and the
         * retry timer, firing while that pass is in flight, asks for one more */
        assert_int_equal(kube_workqueue_add(f->q, "z"), 0);
        run(f);
        assert_int_equal(kube_workqueue_add(f->q, "z"), 0);
        finish(f->q, &f->r, "z", -EIO);
        run(f);
        assert_string_equal(seen(&f->r), "e e e e z z");
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.waiting, 0);
        finish(f->q, &f->r, "z", 0);
        run(f);
        assert_string_equal(seen(&f->r), "e e e e z z z");
        finish(f->q, &f->r, "z", 0);
        run(f);
        assert_string_equal(seen(&f->r), "e e e e z z z");
        assert_false(kube_workqueue_has(f->q, "z"));
        teardown(f);
}

static void test_process_refuses(void **state) {
        fixture *f = setup(&(kube_workqueue_opts){.base_delay = 0.001, .qps = -1});
        f->r.ret = -EAGAIN;
        f->r.stop_after = 3;
        assert_int_equal(kube_workqueue_add(f->q, "k"), 0);
        run(f);
        /* each refusal counts as a failed attempt and retries with backoff */
        assert_string_equal(seen(&f->r), "k k k");
        assert_int_equal(kube_workqueue_num_requeues(f->q, "k"), 3);
        kube_workqueue_stats st;
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.done_error, 3);
        assert_int_equal(st.in_flight, 0);
        teardown(f); /* with a retry timer pending */
}

static void test_sync_self_requeue(void **state) {
        fixture *f = setup(NULL);
        f->r.sync_done = true;
        f->r.self_requeue = 5;
        assert_int_equal(kube_workqueue_add(f->q, "a"), 0);
        assert_int_equal(kube_workqueue_add(f->q, "b"), 0);
        run(f);
        /* five re-adds from inside process, shared by a and b: each re-added key goes
         * behind the other, and the dispatch ends when the re-adds do */
        assert_string_equal(seen(&f->r), "a b a b a b a");
        teardown(f);
}

static void test_shutdown(void **state) {
        fixture *f = setup(&(kube_workqueue_opts){.max_in_flight = 1});
        kube_workqueue_stats st;

        assert_int_equal(kube_workqueue_add(f->q, "busy"), 0);
        run(f);
        assert_string_equal(seen(&f->r), "busy");
        char key[16];
        for (int i = 0; i < 50; i++) {
                snprintf(key, sizeof key, "later-%d", i);
                assert_int_equal(kube_workqueue_add_after(f->q, key, 100 + i), 0);
        }
        assert_int_equal(kube_workqueue_add(f->q, "queued"), 0);
        assert_int_equal(kube_workqueue_add_rate_limited(f->q, "failing"), 0);
        assert_int_equal(kube_workqueue_add(f->q, "busy"), 0);
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.waiting, 51);

        kube_workqueue_shutdown(f->q);
        kube_workqueue_shutdown(f->q);
        assert_true(kube_workqueue_is_shutdown(f->q));
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.waiting, 0);
        assert_int_equal(st.depth, 0);
        assert_int_equal(st.in_flight, 1);
        /* left: busy (in flight) and failing (its failure count) */
        assert_int_equal(st.keys, 2);
        assert_int_equal(kube_workqueue_add(f->q, "x"), -ESHUTDOWN);
        assert_int_equal(kube_workqueue_add_after(f->q, "x", 1), -ESHUTDOWN);
        assert_int_equal(kube_workqueue_add_rate_limited(f->q, "x"), -ESHUTDOWN);

        /* nothing keeps the loop running any more, nothing is dispatched */
        run(f);
        assert_string_equal(seen(&f->r), "busy");
        /* in-flight work may still finish; it is not requeued */
        finish(f->q, &f->r, "busy", -EIO);
        run(f);
        assert_string_equal(seen(&f->r), "busy");
        kube_workqueue_get_stats(f->q, &st);
        assert_int_equal(st.keys, 1);
        teardown(f);
}

static void test_free_with_pending(void **state) {
        /* free without shutdown: timers stopped, nothing fires into freed memory */
        fixture *f = setup(NULL);
        assert_int_equal(kube_workqueue_add_after(f->q, "t", 0.001), 0);
        assert_int_equal(kube_workqueue_add(f->q, "q"), 0);
        f->q = kube_workqueue_free(f->q);
        assert_null(f->q);
        assert_int_equal(ev_run(f->loop, EVRUN_NOWAIT), 0); /* no active watcher left */
        assert_int_equal(f->r.n, 0);
        teardown(f);
}

static void test_invalid(void **state) {
        fixture *f = setup(NULL);
        char *long_key = malloc(KUBE_WORKQUEUE_KEY_MAX + 2);
        memset(long_key, 'k', KUBE_WORKQUEUE_KEY_MAX + 1);
        long_key[KUBE_WORKQUEUE_KEY_MAX + 1] = 0;

        assert_int_equal(kube_workqueue_add(f->q, NULL), -EINVAL);
        assert_int_equal(kube_workqueue_add(f->q, ""), -EINVAL);
        assert_int_equal(kube_workqueue_add(f->q, long_key), -EINVAL);
        long_key[KUBE_WORKQUEUE_KEY_MAX] = 0;
        assert_int_equal(kube_workqueue_add(f->q, long_key), 0);
        f->r.sync_done = true;
        run(f);
        assert_int_equal(f->r.n, 1);
        free(long_key);

        kube_workqueue *q = NULL;
        assert_int_equal(kube_workqueue_new(f->loop, &(kube_workqueue_opts){}, &q), -EINVAL);
        assert_null(q);
        assert_null(kube_workqueue_free(NULL));
        assert_int_equal(kube_workqueue_len(NULL), 0);
        teardown(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_duplicates_collapse),
            cmocka_unit_test(test_readd_while_processing),
            cmocka_unit_test(test_max_in_flight_fifo),
            cmocka_unit_test(test_add_after_order),
            cmocka_unit_test(test_backoff_bounds),
            cmocka_unit_test(test_overall_bucket),
            cmocka_unit_test(test_done_results),
            cmocka_unit_test(test_process_refuses),
            cmocka_unit_test(test_sync_self_requeue),
            cmocka_unit_test(test_shutdown),
            cmocka_unit_test(test_free_with_pending),
            cmocka_unit_test(test_invalid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
