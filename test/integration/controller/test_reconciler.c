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

static void cache_enqueue_namespace(void *ud, const char *key, const char *namespace) {
        if (the_reconciler) pp_reconciler_enqueue_namespace(the_reconciler, key, namespace);
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

/* ---- issue 10: a new service account costs its own writes ------------------------------------ */

/*
 * Writes the API server answered in the test's namespaces (those whose name starts with
 * writes_prefix), by their outcome (the client's observer). The reconciler also plans the
 * policies other tests left on the shared control plane: their writes are not counted.
 */
static unsigned long writes_done, status_writes_done, writes_refused;
static char writes_prefix[256];

static void observe_write(void *ud, kube_method m, const char *path, long http_status, int error) {
        if (m == KUBE_GET || !strstr(path, writes_prefix)) return;
        size_t n = strcspn(path, "?");
        bool status = n >= 7 && strncmp(path + n - 7, "/status", 7) == 0;
        if (http_status >= 200 && http_status < 300)
                ++*(status ? &status_writes_done : &writes_done);
        else
                writes_refused++;
}

/*
 * Writes done, the policy's status writes (client_status_writes()) apart: a recount may come
 * before the test has looked at the links on a loaded machine. A refused one (a 409: a plan made
 * while the watch of one object had not yet caught up with our own write of it, then re-read and
 * found done) changed nothing; it is printed, not counted.
 */
static unsigned long client_writes(void) {
        return writes_done;
}

static unsigned long client_status_writes(void) {
        return status_writes_done;
}

typedef struct linked_wait {
        pp_cache *cache;
        pp_reconciler *rec;
        const char *key;
        int linked;        /* the policy's status says so, Ready=True Applied */
        const char *ns[8]; /* and these accounts show the pull secret (NULL: none) */
        const char *name[8];
} linked_wait;

static bool sa_has_pull(pp_cache *c, const char *ns, const char *name, const char *secret) {
        plan_snapshot snap = pp_cache_snapshot(c);
        const model_sa **sas = NULL;
        size_t n = 0;
        bool found = false;
        if (snap.ops->sa_list(snap.ud, ns, &sas, &n) < 0) return false;
        for (size_t i = 0; i < n; i++)
                if (streq(sas[i]->meta.name, name))
                        found = model_sa_has_pull_secret(sas[i], secret);
        free(sas);
        return found;
}

static bool accounts_linked(void *ud) {
        linked_wait *w = ud;
        for (size_t i = 0; i < ARRAY_SIZE(w->ns) && w->ns[i]; i++)
                if (!sa_has_pull(w->cache, w->ns[i], w->name[i], "creds")) return false;
        kube_workqueue_stats qs;
        kube_workqueue_get_stats(pp_reconciler_queue(w->rec), &qs);
        return qs.in_flight == 0 && qs.depth == 0;
}

static bool status_linked(void *ud) {
        linked_wait *w = ud;
        const model_policy *p = pp_cache_policy(w->cache, w->key);
        return p && p->status.linked == w->linked && p->status.has_ready &&
               streq_ptr(p->status.ready_reason, "Applied") && accounts_linked(ud);
}

static void count_deleting(const model_policy *p, void *ud) {
        if (p->meta.deleting) (*(int *)ud)++;
}

/* No policy is being deleted (earlier tests' namespaces go) and the queue is idle: from now on
 * the reconciler writes for this test's policy only (the others are converged, R10). */
static bool others_settled(void *ud) {
        linked_wait *w = ud;
        int deleting = 0;
        pp_cache_visit_policies(w->cache, count_deleting, &deleting);
        return deleting == 0 && accounts_linked(ud);
}

typedef struct policy_ref {
        pp_cache *cache;
        const char *key;
} policy_ref;

static bool policy_gone(void *ud) {
        const policy_ref *p = ud;
        return !pp_cache_policy(p->cache, p->key);
}

static int cached_linked(pp_cache *c, const char *key) {
        const model_policy *p = pp_cache_policy(c, key);
        return p ? p->status.linked : -1;
}

/*
 * Issue 10: every new service account of a policy cost a plan of all the policy's accounts
 * and a status write (p99 274 ms at 4,000 accounts). Now a new account costs the writes of
 * its own namespace — its link, and its binding's subjects when accounts are selected by
 * label — and the status is recounted once the accounts are quiet: once for a burst.
 */
static void test_new_sa_costs_its_own_writes(void **state) {
        enum { NS = 12 };
        char *home = make_namespace("rc-sa-home");
        char *sel = testenv_unique_name("sel");
        char *nss[NS];
        FILE *logf = log_capture(LOG_LEVEL_INFO);
        /* the subject namespaces, two selected accounts each, and the pull secret */
        size_t cap = 64 * 1024, len = 0;
        char *doc = malloc(cap);
        assert_non_null(doc);
        for (int i = 0; i < NS; i++) {
                assert_int_equal(asprintf(&nss[i], "%s-%d", home, i),
                                 (int)strlen(home) + 2 + (i > 9));
                len += (size_t)snprintf(doc + len, cap - len,
                                        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n"
                                        "  labels: {rc-sa: %s}\n---\n",
                                        nss[i], sel);
                for (int k = 1; k <= 2; k++)
                        len += (size_t)snprintf(doc + len, cap - len,
                                                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n"
                                                "  name: sa-%d\n  namespace: %s\n"
                                                "  labels: {pulls: \"yes\"}\n---\n",
                                                k, nss[i]);
        }
        len += (size_t)snprintf(doc + len, cap - len,
                                "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: "
                                "%s}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n"
                                "  .dockerconfigjson: '{\"auths\":{\"quay.io\":{\"auth\":"
                                "\"cXVheTpvbmU=\"}}}'\n",
                                home);
        assert_true(len < cap);
        char *out = NULL;
        assert_int_equal(testenv_kubectl_input(doc, &out, "apply -f - >/dev/null"), 0);
        free(out);

        const char *dist[] = {home};
        pp_cache *cache = NULL;
        pp_reconciler *rec = NULL;
        pp_cache_opts co = {
            .client = client,
            .global_ns = home,
            .global_name = "global-pull-secret",
            .enqueue = cache_enqueue,
            .enqueue_namespace = cache_enqueue_namespace,
        };
        assert_int_equal(pp_cache_new(&co, &cache), 0);
        pp_reconciler_opts ro = {
            .loop = loop,
            .client = client,
            .cache = cache,
            .settings = {.global_pull_secret_namespace = home,
                         .global_pull_secret_name = "global-pull-secret",
                         .distribution_namespaces = dist,
                         .n_distribution_namespaces = 1},
            /* a recount that cannot come while a check below looks */
            .status_quiet = 2.0,
            .status_max_delay = 4.0,
        };
        assert_int_equal(pp_reconciler_new(&ro, &rec), 0);
        the_reconciler = rec;
        snprintf(writes_prefix, sizeof(writes_prefix), "/namespaces/%s", home);
        kube_client_set_observer(client, observe_write, NULL);
        assert_int_equal(pp_cache_start(cache), 0);
        assert_true(run_until(cache_synced, cache, WAIT_S));
        pp_reconciler_set_image_api(rec, false);
        pp_reconciler_set_active(rec, true);
        linked_wait lw = {.cache = cache, .rec = rec};
        assert_true(run_until(others_settled, &lw, 2 * WAIT_S));

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: p, namespace: %s}\n"
                 "spec:\n  subjects:\n    namespaceSelector: {matchLabels: {rc-sa: %s}}\n"
                 "    serviceAccountSelector: {matchLabels: {pulls: \"yes\"}}\n"
                 "  imagePuller: {}\n  pullSecrets: [{name: creds}]\n"
                 "  dockercfg: {wait: Never}\n",
                 home, sel);
        char *key = NULL;
        assert_true(asprintf(&key, "%s/p", home) > 0);
        lw.key = key;
        lw.linked = 2 * NS;
        assert_true(run_until(status_linked, &lw, 2 * WAIT_S));

        /* one new account */
        unsigned long w0 = client_writes(), s0 = client_status_writes();
        kt_apply("apiVersion: v1\nkind: ServiceAccount\n"
                 "metadata: {name: new, namespace: %s, labels: {pulls: \"yes\"}}\n",
                 nss[5]);
        lw.ns[0] = nss[5];
        lw.name[0] = "new";
        assert_true(run_until(accounts_linked, &lw, WAIT_S));
        unsigned long w1 = client_writes();
        fprintf(stderr, "one new account: %lu writes when it is linked, status linked %d\n",
                w1 - w0, cached_linked(cache, key));
        /* its binding's subjects and its link */
        assert_int_equal(w1 - w0, 2);
        lw.linked = 2 * NS + 1;
        assert_true(run_until(status_linked, &lw, WAIT_S));
        unsigned long w2 = client_writes(), s2 = client_status_writes();
        fprintf(stderr, "then the recount: %lu status write(s), %lu other\n", s2 - s0, w2 - w1);
        assert_int_equal(s2 - s0, 1);
        assert_int_equal(w2, w1);

        /* a burst in five namespaces: their own writes, one recount */
        doc[0] = 0;
        len = 0;
        for (int i = 0; i < 5; i++) {
                lw.ns[i] = nss[i];
                lw.name[i] = "burst";
                len += (size_t)snprintf(doc + len, cap - len,
                                        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n"
                                        "  name: burst\n  namespace: %s\n"
                                        "  labels: {pulls: \"yes\"}\n---\n",
                                        nss[i]);
        }
        assert_int_equal(testenv_kubectl_input(doc, &out, "apply -f - >/dev/null"), 0);
        free(out);
        assert_true(run_until(accounts_linked, &lw, WAIT_S));
        unsigned long w3 = client_writes();
        fprintf(stderr, "five new accounts: %lu writes when they are linked, status linked %d\n",
                w3 - w2, cached_linked(cache, key));
        assert_int_equal(w3 - w2, 10);
        lw.linked = 2 * NS + 6;
        assert_true(run_until(status_linked, &lw, WAIT_S));
        unsigned long w4 = client_writes(), s4 = client_status_writes();
        fprintf(stderr, "then the recount: %lu status write(s), %lu other\n", s4 - s2, w4 - w3);
        assert_int_equal(w4, w3);
        /* one recount for the burst; a second only if the machine is so loaded that its
         * accounts' events came more than status_quiet (0.5 s) apart */
        assert_in_range(s4 - s2, 1, 2);
        pp_reconciler_stats st;
        pp_reconciler_get_stats(rec, &st);
        fprintf(stderr, "reconciles %lu, of namespaces alone %lu\n", st.reconciles, st.scoped);
        assert_true(st.scoped >= 2);

        /* the whole plan agrees: nothing left to write (R10) */
        reconciles_wait rw = {rec, reconciles(rec) + 1};
        pp_reconciler_enqueue(rec, key);
        assert_true(run_until(reconciles_reached, &rw, WAIT_S));
        assert_true(run_until(queue_idle, rec, WAIT_S));
        assert_int_equal(client_writes(), w4);
        assert_int_equal(client_status_writes(), s4);

        fprintf(stderr, "writes refused meanwhile: %lu\n", writes_refused);
        kube_client_set_observer(client, NULL, NULL);
        /* deleted while the reconciler runs, which takes its finalizer off: a policy left
         * behind would hold its namespace and count in later suites' gauges */
        kt_kubectl("delete pullpolicy p -n %s --wait=false", home);
        policy_ref gone = {cache, key};
        assert_true(run_until(policy_gone, &gone, WAIT_S));
        the_reconciler = NULL;
        pp_reconciler_free(rec);
        pp_cache_free(cache);
        log_capture_end(logf);
        for (int i = 0; i < NS; i++) {
                kt_kubectl("delete namespace %s --wait=false", nss[i]);
                free(nss[i]);
        }
        kt_kubectl("delete namespace %s --wait=false", home);
        free(key);
        free(doc);
        free(sel);
        free(home);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            /* first: the namespaces the others delete when they end would add their
             * policies' writes to the counts it makes */
            cmocka_unit_test(test_new_sa_costs_its_own_writes),
            cmocka_unit_test(test_key_done_despite_allocation_failure),
            cmocka_unit_test(test_refused_object_no_relist),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
