/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reconciler (controller/reconciler.c) and its cache on the real local control
 * plane, in-process, for what only a running controller can show.
 *
 * Allocation failures are injected with a seam local to this binary: its strdup()
 * takes the place of libc's for the code linked in (the libraries are static) and
 * fails, once, for one exact string when armed. It is armed by the reconciler's own
 * log line that ends a reconcile ("reconciled" / "in sync"), read through a log
 * stream of ours: the next strdup() of the policy's key after that line is the one
 * that hands the key back to the workqueue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/ratelimit.h"
#include "kube/workqueue.h"
#include "kubeclient.h"
#include "kubetest.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "plan.h"
#include "reconciler.h"
#include "testenv.h"
#include "util/macro.h"

#define WAIT_S 30.0

static struct ev_loop *loop;
static kube_config *cfg;
static kube_client *client;

/* ---- the strdup seam ------------------------------------------------------------------------ */

static struct {
        char key[256];   /* the string whose copies fail */
        bool arm_on_log; /* arm at the next end-of-reconcile log line naming key */
        int count;       /* failures left */
        int injected;
        int armed; /* times armed */
} fault;

char *strdup(const char *s) {
        static char *(*real)(const char *);
        if (!real) real = (char *(*)(const char *))dlsym(RTLD_NEXT, "strdup");
        if (fault.count > 0 && fault.key[0] && strcmp(s, fault.key) == 0) {
                fault.count--;
                fault.injected++;
                errno = ENOMEM;
                return NULL;
        }
        return real(s);
}

/* The controller's log goes through here: the end of a reconcile of the key arms the fault. */
static int skipped_warnings; /* log lines saying an object was skipped */

static ssize_t log_write(void *cookie, const char *buf, size_t size) {
        fwrite(buf, 1, size, stderr);
        if (memmem(buf, size, "WARN", 4) && memmem(buf, size, "skipped:", 8)) skipped_warnings++;
        if (fault.arm_on_log && fault.key[0] && memmem(buf, size, fault.key, strlen(fault.key)) &&
            (memmem(buf, size, "reconciled", 10) || memmem(buf, size, "in sync", 7))) {
                fault.arm_on_log = false;
                fault.count = 1;
                fault.armed++;
        }
        return (ssize_t)size;
}

/* ---- helpers ------------------------------------------------------------------------------------
 */

typedef struct waiter {
        bool (*cond)(void *ud);
        void *ud;
        double deadline;
        bool met;
        ev_timer tick;
} waiter;

static void on_tick(struct ev_loop *l, ev_timer *w, int revents) {
        waiter *wt = w->data;
        /* Whatever armed the fault in the turn that just ended has had its chance. */
        fault.count = 0;
        if (wt->cond(wt->ud)) {
                wt->met = true;
                ev_break(l, EVBREAK_ALL);
        } else if (kube_now() >= wt->deadline)
                ev_break(l, EVBREAK_ALL);
}

static bool run_until(bool (*cond)(void *), void *ud, double seconds) {
        waiter wt = {.cond = cond, .ud = ud, .deadline = kube_now() + seconds};
        ev_timer_init(&wt.tick, on_tick, 0.005, 0.005);
        wt.tick.data = &wt;
        ev_timer_start(loop, &wt.tick);
        ev_run(loop, 0);
        ev_timer_stop(loop, &wt.tick);
        return wt.met || cond(ud);
}

static bool cache_synced(void *ud) {
        return pp_cache_synced(ud);
}

typedef struct reconciles_wait {
        pp_reconciler *r;
        unsigned long n;
} reconciles_wait;

static unsigned long reconciles(pp_reconciler *r) {
        pp_reconciler_stats st;
        pp_reconciler_get_stats(r, &st);
        return st.reconciles;
}

static bool reconciles_reached(void *ud) {
        reconciles_wait *w = ud;
        return reconciles(w->r) >= w->n;
}

static bool fault_armed(void *ud) {
        return fault.armed > 0;
}

static size_t in_flight(pp_reconciler *r) {
        kube_workqueue_stats st;
        kube_workqueue_get_stats(pp_reconciler_queue(r), &st);
        return st.in_flight;
}

static bool queue_idle(void *ud) {
        return in_flight(ud) == 0;
}

/* A namespace of the test's own, named after prefix (the caller frees the name). */
static char *make_namespace(const char *prefix) {
        char *ns = testenv_unique_name(prefix);
        assert_non_null(ns);
        assert_int_equal(kt_kubectl("create namespace %s", ns), 0);
        return ns;
}

/* The controller's log, at level, through log_write() until log_capture_end(). */
static FILE *log_capture(log_level level) {
        cookie_io_functions_t io = {.write = log_write};
        FILE *f = fopencookie(NULL, "w", io);
        assert_non_null(f);
        setvbuf(f, NULL, _IONBF, 0);
        log_configure(&(log_config){.out = f, .level = level});
        return f;
}

static void log_capture_end(FILE *f) {
        log_configure(NULL);
        fclose(f);
}

/* ---- fixtures -----------------------------------------------------------------------------------
 */

static int setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        if (kt_install_crds() < 0) return -1;
        if (kubeclient_open(&loop, &cfg, &client) < 0) return -1;
        return 0;
}

static int teardown(void **state) {
        kubeclient_close(&loop, &cfg, &client);
        return 0;
}

/* ---- tests --------------------------------------------------------------------------------------
 */

/*
 * Issue 7: when copying the key to hand it back to the workqueue failed, the
 * reconciler never called done() for it: the key stayed "processing" for ever and
 * the policy was never reconciled again. The key must go back whatever happens.
 */
static pp_reconciler *the_reconciler;

/* As main.c: the cache exists before the reconciler it feeds. */
static void cache_enqueue(void *ud, const char *key) {
        if (the_reconciler) pp_reconciler_enqueue(the_reconciler, key);
}

static void test_key_done_despite_allocation_failure(void **state) {
        char *home = make_namespace("rc-oom");
        FILE *logf = log_capture(LOG_LEVEL_DEBUG);

        pp_cache *cache = NULL;
        pp_reconciler *rec = NULL;
        pp_cache_opts co = {
            .client = client,
            .namespace = home,
            .global_ns = home,
            .global_name = "global-pull-secret",
            .enqueue = cache_enqueue,
        };
        assert_int_equal(pp_cache_new(&co, &cache), 0);
        pp_reconciler_opts ro = {
            .loop = loop,
            .client = client,
            .cache = cache,
            .settings = {.global_pull_secret_namespace = home,
                         .global_pull_secret_name = "global-pull-secret"},
        };
        assert_int_equal(pp_reconciler_new(&ro, &rec), 0);
        the_reconciler = rec;
        assert_int_equal(pp_cache_start(cache), 0);
        assert_true(run_until(cache_synced, cache, WAIT_S));
        pp_reconciler_set_image_api(rec, false);
        pp_reconciler_set_active(rec, true);

        /* Armed by the end of the first reconcile of the policy. */
        snprintf(fault.key, sizeof(fault.key), "%s/p", home);
        fault.arm_on_log = true;
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: p\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [default]\n"
                 "  pullSecrets:\n  - name: creds\n",
                 home);
        assert_true(run_until(fault_armed, NULL, WAIT_S));
        fprintf(stderr, "armed after a reconcile; strdup(\"%s\") failures injected: %d\n",
                fault.key, fault.injected);

        /* The key was handed back: nothing stays in flight... */
        bool idle = run_until(queue_idle, rec, 5.0);
        fprintf(stderr, "workqueue in flight: %zu\n", in_flight(rec));
        assert_true(idle);
        /* ...and the policy is reconciled again when asked. */
        reconciles_wait w = {rec, reconciles(rec) + 1};
        pp_reconciler_enqueue(rec, fault.key);
        assert_true(run_until(reconciles_reached, &w, WAIT_S));
        assert_true(run_until(queue_idle, rec, WAIT_S));

        fault = (typeof(fault)){};
        the_reconciler = NULL;
        pp_reconciler_free(rec);
        pp_cache_free(cache);
        log_capture_end(logf);
        kt_kubectl("delete namespace %s --wait=false", home);
        free(home);
}

typedef struct sa_wait {
        pp_cache *cache;
        const char *ns, *name;
} sa_wait;

static bool sa_cached(void *ud) {
        sa_wait *w = ud;
        plan_snapshot snap = pp_cache_snapshot(w->cache);
        const model_sa **sas = NULL;
        size_t n = 0;
        bool found = false;
        if (snap.ops->sa_list(snap.ud, w->ns, &sas, &n) < 0) return false;
        for (size_t i = 0; i < n; i++)
                if (streq(sas[i]->meta.name, w->name)) found = true;
        free(sas);
        return found;
}

static unsigned long cache_lists(pp_cache *c) {
        pp_cache_stats st;
        pp_cache_get_stats(c, &st);
        return st.lists;
}

/*
 * Issue 7: a ServiceAccount with more than 1024 secret references (the model's
 * limit), made by a tenant, made the cache relist every service account of the
 * cluster, with backoff, for ever. On the real apiserver: it is skipped with a
 * warning and a metric, the events after it are followed, and no LIST is made.
 */
static void test_refused_object_no_relist(void **state) {
        char *ns = make_namespace("rc-big");
        FILE *logf = log_capture(LOG_LEVEL_INFO);
        skipped_warnings = 0;

        controller_metrics *metrics = NULL;
        assert_int_equal(controller_metrics_new(&metrics), 0);
        pp_cache *cache = NULL;
        pp_cache_opts co = {
            .client = client,
            .namespace = ns,
            .global_ns = ns,
            .global_name = "global-pull-secret",
            .metrics = metrics,
        };
        assert_int_equal(pp_cache_new(&co, &cache), 0);
        assert_int_equal(pp_cache_start(cache), 0);
        assert_true(run_until(cache_synced, cache, WAIT_S));
        unsigned long lists = cache_lists(cache);

        /* 1025 entries in .imagePullSecrets: one over MODEL_SA_LIST_MAX. */
        size_t cap = 64 + 40 * (MODEL_SA_LIST_MAX + 1);
        char *doc = malloc(cap);
        assert_non_null(doc);
        int len = snprintf(doc, cap,
                           "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
                           "\"metadata\":{\"name\":\"big\"},\"imagePullSecrets\":[");
        for (int i = 0; i <= MODEL_SA_LIST_MAX; i++)
                len +=
                    snprintf(doc + len, cap - (size_t)len, "%s{\"name\":\"s%d\"}", i ? "," : "", i);
        len += snprintf(doc + len, cap - (size_t)len, "]}");
        assert_true((size_t)len < cap);
        char *out = NULL;
        assert_int_equal(testenv_kubectl_input(doc, &out, "apply -n %s -f - >/dev/null", ns), 0);
        free(out);
        free(doc);
        /* An object after it: seen only if the watch went on past the refused one. */
        assert_int_equal(kt_kubectl("create serviceaccount after -n %s", ns), 0);
        sa_wait w = {cache, ns, "after"};
        assert_true(run_until(sa_cached, &w, WAIT_S));
        sa_wait wb = {cache, ns, "big"};
        assert_false(sa_cached(&wb));

        fprintf(stderr, "cache LISTs: %lu at sync, %lu now; skip warnings: %d\n", lists,
                cache_lists(cache), skipped_warnings);
        assert_int_equal(cache_lists(cache), lists);
        assert_true(skipped_warnings >= 1);
        double v = 0;
        assert_int_equal(
            metrics_get(metrics->objects_skipped_total,
                        METRICS_LABELS("serviceaccounts", "too_many_secret_references"), &v, NULL),
            0);
        assert_true(v >= 1);

        pp_cache_free(cache);
        controller_metrics_free(metrics);
        log_capture_end(logf);
        kt_kubectl("delete namespace %s --wait=false", ns);
        free(ns);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_key_done_despite_allocation_failure),
            cmocka_unit_test(test_refused_object_no_relist),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
