/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reflector against the real kube-apiserver of hack/testenv.sh. Each test
 * follows ConfigMaps (or Secrets) of its own namespace into a tiny map of
 * name -> resourceVersion and checks that the map ends up equal to a fresh
 * LIST, while counting LISTs and watches so that "without relisting" is
 * asserted rather than assumed. Faults come from the real server (watch
 * timeouts, a 410 for an expired resourceVersion, a restart) and from
 * test/support/faultproxy (dropped and stalled connections).
 *
 * Run: hack/testenv.sh start /tmp/te-refl
 *      TESTENV_DIR=/tmp/te-refl PULLPOLICY_ROOT=$PWD
 * ./build/test/integration/pkg/kube/test_reflector
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultproxy.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/ratelimit.h"
#include "kube/reflector.h"
#include "testenv.h"
#include "util/macro.h"

#define LABEL_KEY  "pp-test"
#define LABEL      LABEL_KEY "=refl"
#define CONVERGE_S 60.0

static const kube_resource RES_CONFIGMAPS = {"", "v1", "configmaps", true};

/* ---- a tiny map: name -> resourceVersion ---------------------------------- */

typedef struct entry {
        char name[64];
        char rv[32];
} entry;

typedef struct map {
        entry *e;
        size_t n, cap;
        unsigned replaces;
        unsigned long events;
        bool saw_data; /* an object with data/stringData (metadata-only tests) */
        bool saw_wrong_kind;
        const char *expect_kind; /* for events; NULL: any */
} map;

static entry *map_find(map *m, const char *name) {
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->e[i].name, name)) return &m->e[i];
        return NULL;
}

static void obj_name_rv(json_object *o, const char **name, const char **rv) {
        json_object *meta, *v;
        *name = *rv = NULL;
        if (!json_object_object_get_ex(o, "metadata", &meta)) return;
        if (json_object_object_get_ex(meta, "name", &v)) *name = json_object_get_string(v);
        if (json_object_object_get_ex(meta, "resourceVersion", &v)) *rv = json_object_get_string(v);
}

static void check_secret_free(map *m, json_object *o) {
        if (json_object_object_get_ex(o, "data", NULL) ||
            json_object_object_get_ex(o, "stringData", NULL))
                m->saw_data = true;
}

static int map_upsert(map *m, json_object *o) {
        const char *name, *rv;
        obj_name_rv(o, &name, &rv);
        if (!name || !rv || strlen(name) >= 64 || strlen(rv) >= 32) return -EINVAL;
        check_secret_free(m, o);
        entry *e = map_find(m, name);
        if (!e) {
                if (GROW(m->e, m->cap, m->n + 1) < 0) return -ENOMEM;
                e = &m->e[m->n++];
                snprintf(e->name, sizeof(e->name), "%s", name);
        }
        snprintf(e->rv, sizeof(e->rv), "%s", rv);
        return 0;
}

static int on_replace(void *ud, json_object *items, const char *rv) {
        map *m = ud;
        m->n = 0;
        m->replaces++;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                int k = map_upsert(m, json_object_array_get_idx(items, i));
                if (k < 0) return k;
        }
        return 0;
}

static int on_event(void *ud, kube_event_type t, json_object *obj) {
        map *m = ud;
        m->events++;
        if (m->expect_kind) {
                json_object *k;
                if (!json_object_object_get_ex(obj, "kind", &k) ||
                    !streq(json_object_get_string(k), m->expect_kind))
                        m->saw_wrong_kind = true;
        }
        if (t == KUBE_EVENT_DELETED) {
                const char *name, *rv;
                obj_name_rv(obj, &name, &rv);
                entry *e = name ? map_find(m, name) : NULL;
                if (e) *e = m->e[--m->n];
                return 0;
        }
        return map_upsert(m, obj);
}

static const kube_reflector_handlers map_handlers = {on_replace, on_event, NULL};

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* ---- the loop and synchronous requests ------------------------------------ */

typedef struct env {
        struct ev_loop *loop;
        kube_config *cfg;
        kube_client *client; /* direct to the apiserver: the test's writes */
        char *ns;
        kube_reflector *debug_reflector; /* its stats are printed when converge() fails */
} env;

static void break_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        ev_break(loop, EVBREAK_ONE);
}

static void run_for(env *e, double secs) {
        ev_timer t;
        ev_timer_init(&t, break_cb, secs, 0.);
        ev_timer_start(e->loop, &t);
        ev_run(e->loop, 0);
        ev_timer_stop(e->loop, &t);
}

typedef struct call {
        bool done;
        long http;
        int error;
        char *body;
} call;

static void call_done(kube_client *c, const kube_response *r, void *ud) {
        call *x = ud;
        x->done = true;
        x->http = r->http_status;
        x->error = r->error;
        x->body = strndup(r->body ? r->body : "", r->body_len);
}

/* One request, run to completion on the loop (the reflectors keep working meanwhile). */
static void do_req(env *e, kube_client *c, kube_method m, const char *path, const char *body,
                   call *x) {
        memset(x, 0, sizeof(*x));
        kube_request_opts o = {
            .method = m,
            .path = path,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .patch_type = KUBE_PATCH_MERGE,
            .timeout_ms = 30000,
            .on_done = call_done,
            .userdata = x,
        };
        assert_int_equal(kube_client_request(c, &o, NULL), 0);
        double end = kube_now() + 40;
        while (!x->done) {
                assert_true(kube_now() < end);
                run_for(e, 0.02);
        }
}

/* ---- writes, many at a time ------------------------------------------------ */

typedef struct writer {
        env *e;
        int in_flight;
        unsigned long ok, failed;
} writer;

typedef struct write_op {
        writer *w;
        kube_method m;
        char path[256];
        char *body;
        int tries;
} write_op;

static void write_start(write_op *op);

static void write_done(kube_client *c, const kube_response *r, void *ud) {
        write_op *op = ud;
        writer *w = op->w;
        /* A write that met a restarting apiserver (or a slow valgrind run) is tried
         * again, a few times; the first try may have been applied after all. */
        if (r->error != 0 && kube_error_is_retryable(r->error) && ++op->tries < 5) {
                write_start(op);
                return;
        }
        bool done_before = false;
        if (op->tries > 0 && op->m == KUBE_POST)
                done_before = kube_error_is_already_exists(r->error);
        if (op->tries > 0 && op->m == KUBE_DELETE) done_before = kube_error_is_not_found(r->error);
        w->in_flight--;
        if (r->error == 0 || done_before) {
                w->ok++;
        } else {
                w->failed++;
                fprintf(stderr, "write %s failed: http %ld, %s\n", op->path, r->http_status,
                        kube_strerror(r->error));
        }
        free(op->body);
        free(op);
}

static void write_start(write_op *op) {
        kube_request_opts o = {
            .method = op->m,
            .path = op->path,
            .body = op->body,
            .body_len = op->body ? strlen(op->body) : 0,
            .patch_type = KUBE_PATCH_MERGE,
            .timeout_ms = 60000,
            .on_done = write_done,
            .userdata = op,
        };
        assert_int_equal(kube_client_request(op->w->e->client, &o, NULL), 0);
}

static void writer_submit(writer *w, kube_method m, const char *path, char *body) {
        while (w->in_flight >= 32) ev_run(w->e->loop, EVRUN_ONCE);
        write_op *op = calloc(1, sizeof(*op));
        assert_non_null(op);
        op->w = w;
        op->m = m;
        snprintf(op->path, sizeof(op->path), "%s", path);
        op->body = body;
        w->in_flight++;
        write_start(op);
}

static void writer_drain(writer *w) {
        double end = kube_now() + 120;
        while (w->in_flight > 0) {
                assert_true(kube_now() < end);
                run_for(w->e, 0.02);
        }
        assert_int_equal(w->failed, 0);
}

static void cm_create(writer *w, const char *ns, int i) {
        char path[256], *body = NULL;
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
        assert_true(asprintf(&body,
                             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                             "\"name\":\"cm-%d\",\"labels\":{\"" LABEL_KEY "\":\"refl\"}},"
                             "\"data\":{\"v\":\"0\"}}",
                             i) > 0);
        writer_submit(w, KUBE_POST, path, body);
}

static void cm_update(writer *w, const char *ns, int i) {
        char path[256], *body = strdup("{\"data\":{\"v\":\"1\"}}");
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/cm-%d", ns, i);
        writer_submit(w, KUBE_PATCH, path, body);
}

static void cm_delete(writer *w, const char *ns, int i) {
        char path[256];
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/cm-%d", ns, i);
        writer_submit(w, KUBE_DELETE, path, NULL);
}

/* Creates cm-<from>..cm-<to-1>, spacing them by gap seconds of loop time. */
static void create_paced(writer *w, const char *ns, int from, int to, double gap) {
        for (int i = from; i < to; i++) {
                cm_create(w, ns, i);
                if (gap > 0) run_for(w->e, gap);
        }
        writer_drain(w);
}

static kube_reflector_stats get_stats(kube_reflector *r) {
        kube_reflector_stats s;
        kube_reflector_get_stats(r, &s);
        return s;
}

static void print_stats(const char *what, kube_reflector *r) {
        kube_reflector_stats s = get_stats(r);
        fprintf(stderr,
                "# %s: lists=%lu pages=%lu watches=%lu relists_gone=%lu events=%lu "
                "bookmarks=%lu idle_timeouts=%lu failures_total=%lu rv=%s\n",
                what, s.lists, s.list_pages, s.watches, s.relists_gone, s.events, s.bookmarks,
                s.idle_timeouts, s.failures_total, s.resource_version);
}

/* ---- comparing with a fresh LIST ------------------------------------------ */

/* Fresh LIST (labelled objects of the namespace) as a sorted entry array. */
static size_t fresh_list(env *e, const char *plural, entry **ret) {
        char path[256];
        call x;
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/%s?labelSelector=" LABEL_KEY "%%3Drefl",
                 e->ns, plural);
        do_req(e, e->client, KUBE_GET, path, NULL, &x);
        assert_int_equal(x.error, 0);
        json_object *root = json_tokener_parse(x.body), *items;
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "items", &items));
        size_t n = json_object_array_length(items);
        entry *out = calloc(n + 1, sizeof(*out));
        assert_non_null(out);
        for (size_t i = 0; i < n; i++) {
                const char *name, *rv;
                obj_name_rv(json_object_array_get_idx(items, i), &name, &rv);
                assert_non_null(name);
                assert_non_null(rv);
                snprintf(out[i].name, sizeof(out[i].name), "%s", name);
                snprintf(out[i].rv, sizeof(out[i].rv), "%s", rv);
        }
        qsort(out, n, sizeof(*out), entry_cmp);
        json_object_put(root);
        free(x.body);
        *ret = out;
        return n;
}

static bool map_equals(map *m, const entry *want, size_t n) {
        if (m->n != n) return false;
        qsort(m->e, m->n, sizeof(*m->e), entry_cmp);
        for (size_t i = 0; i < n; i++)
                if (!streq(m->e[i].name, want[i].name) || !streq(m->e[i].rv, want[i].rv))
                        return false;
        return true;
}

/* Waits until the map equals a fresh LIST; returns how many objects that is. */
static size_t converge(env *e, map *m, const char *plural) {
        double end = kube_now() + CONVERGE_S;
        for (;;) {
                entry *want;
                size_t n = fresh_list(e, plural, &want);
                bool eq = map_equals(m, want, n);
                free(want);
                if (eq) return n;
                if (kube_now() > end) {
                        fprintf(stderr, "map (%zu objects) never matched a fresh LIST (%zu)\n",
                                m->n, n);
                        if (e->debug_reflector) print_stats("not converged", e->debug_reflector);
                        fail();
                }
                run_for(e, 0.2);
        }
}

/* ---- fixtures -------------------------------------------------------------- */

static kube_client *new_client(env *e, const char *kubeconfig) {
        kube_config *cfg = NULL;
        kube_client *c = NULL;
        char *err = NULL;
        int k = kube_config_load_kubeconfig(kubeconfig, NULL, &cfg, &err);
        if (k < 0) fprintf(stderr, "kubeconfig: %s\n", err);
        free(err);
        assert_int_equal(k, 0);
        kube_client_opts o = {.qps = 0};
        assert_int_equal(kube_client_new(e->loop, cfg, &o, &c), 0);
        kube_config_free(cfg);
        return c;
}

static int setup(void **state) {
        env *e = calloc(1, sizeof(*e));
        e->loop = ev_loop_new(EVFLAG_AUTO);
        e->client = new_client(e, testenv_kubeconfig());
        e->ns = testenv_unique_name("refl");
        if (testenv_kubectl(NULL, "create namespace %s >/dev/null", e->ns) != 0) return -1;
        *state = e;
        return 0;
}

static int teardown(void **state) {
        env *e = *state;
        testenv_kubectl(NULL, "delete namespace %s --wait=false >/dev/null", e->ns);
        kube_client_free(e->client);
        ev_loop_destroy(e->loop);
        free(e->ns);
        free(e);
        return 0;
}

static kube_reflector_opts cm_opts(env *e) {
        kube_reflector_opts o = {
            .resource = &RES_CONFIGMAPS,
            .namespace = e->ns,
            .label_selector = LABEL,
            .backoff_initial = 0.2,
            .backoff_max = 2,
        };
        return o;
}

static kube_reflector *start_reflector(env *e, kube_client *c, const kube_reflector_opts *o,
                                       map *m) {
        kube_reflector *r = NULL;
        assert_int_equal(kube_reflector_new(c, o, &map_handlers, m, &r), 0);
        assert_int_equal(kube_reflector_start(r), 0);
        double end = kube_now() + 30;
        kube_reflector_stats s;
        for (;;) {
                kube_reflector_get_stats(r, &s);
                if (s.synced && s.watching) break;
                assert_true(kube_now() < end);
                run_for(e, 0.02);
        }
        e->debug_reflector = r;
        return r;
}

/* A kubeconfig that goes through proxy p; the caller unlinks path. */
static void proxy_kubeconfig(faultproxy *p, char *path, size_t size) {
        snprintf(path, size, "%s/kubeconfig-refl-proxy-%d", testenv_dir(), (int)getpid());
        assert_int_equal(
            faultproxy_write_kubeconfig(p, testenv_kubeconfig(), testenv_server(), path), 0);
}

/* ---- tests ----------------------------------------------------------------- */

/* 1,000 creates/updates/deletes are followed exactly, on one LIST and one watch. */
static void test_follows_1000_changes(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};

        /* 120 objects before the start, listed in pages of 50. */
        for (int i = 0; i < 120; i++) cm_create(&w, e->ns, i);
        writer_drain(&w);
        kube_reflector_opts o = cm_opts(e);
        o.page_size = 50;
        kube_reflector *r = start_reflector(e, e->client, &o, &m);
        assert_int_equal(m.n, 120);

        /* 380 creates + 320 updates + 300 deletes. */
        for (int i = 120; i < 500; i++) cm_create(&w, e->ns, i);
        writer_drain(&w);
        for (int i = 0; i < 320; i++) cm_update(&w, e->ns, i);
        writer_drain(&w);
        for (int i = 200; i < 500; i++) cm_delete(&w, e->ns, i);
        writer_drain(&w);
        assert_int_equal(w.ok, 120 + 1000);

        assert_int_equal(converge(e, &m, "configmaps"), 200);
        print_stats("1000 changes", r);
        kube_reflector_stats s = get_stats(r);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.list_pages, 3);
        assert_int_equal(s.relists_gone, 0);
        /* Under this burst the apiserver may close a watch whose buffer filled ("Forcing
         * watcher close due to unresponsiveness"): a re-watch, never a LIST. */
        assert_true(s.watches >= 1);
        assert_int_equal(s.events, 1000);
        assert_int_equal(m.replaces, 1);
        kube_reflector_free(r);
        free(m.e);
}

/* The server ends each watch after timeoutSeconds: re-watch from the last RV, no LIST. */
static void test_server_ends_watch(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};
        kube_reflector_opts o = cm_opts(e);
        o.watch_timeout = 2; /* timeoutSeconds 2 or 3 */
        kube_reflector *r = start_reflector(e, e->client, &o, &m);

        /* ~9 s of changes, spanning at least three watches. */
        create_paced(&w, e->ns, 0, 30, 0.3);
        run_for(e, 0.5);
        assert_int_equal(converge(e, &m, "configmaps"), 30);
        print_stats("server ends watch", r);
        kube_reflector_stats s = get_stats(r);
        assert_true(s.watches >= 3);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.relists_gone, 0);
        assert_int_equal(s.failures_total, 0); /* a timeoutSeconds end is no failure */
        assert_int_equal(s.events, 30);
        kube_reflector_free(r);
        free(m.e);
}

/* Connections dropped by the network (FIN and RST) while the server stays up. */
static void test_connection_drop(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};
        faultproxy *p = NULL;
        char kc[512];

        assert_int_equal(faultproxy_start_url(testenv_server(), &p), 0);
        proxy_kubeconfig(p, kc, sizeof(kc));
        kube_client *pc = new_client(e, kc);
        kube_reflector_opts o = cm_opts(e);
        kube_reflector *r = start_reflector(e, pc, &o, &m);

        create_paced(&w, e->ns, 0, 10, 0);
        assert_int_equal(converge(e, &m, "configmaps"), 10);

        for (int round = 0; round < 2; round++) {
                assert_true(faultproxy_drop(p, round == 0) >= 1);
                /* Changes made while the reflector is disconnected are not lost. */
                create_paced(&w, e->ns, 10 + 10 * round, 20 + 10 * round, 0);
                assert_int_equal(converge(e, &m, "configmaps"), (size_t)(20 + 10 * round));
        }
        print_stats("connection drop", r);
        kube_reflector_stats s = get_stats(r);
        faultproxy_stats ps;
        faultproxy_get_stats(p, &ps);
        assert_true(ps.dropped >= 2);
        assert_true(ps.accepted >= 3); /* it really reconnected */
        assert_true(s.watches >= 3);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.relists_gone, 0);
        assert_int_equal(s.events, 30);
        kube_reflector_free(r);
        kube_client_free(pc);
        faultproxy_stop(p);
        unlink(kc);
        free(m.e);
}

/*
 * An expired resourceVersion: the watch is restarted from RV "1". etcd is
 * compacted first (in a young environment the apiserver may still serve old
 * revisions from etcd), so the real apiserver answers 410 ("too old resource
 * version"); nothing is injected. The reflector relists.
 */
static void test_expired_resource_version(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};
        kube_reflector_opts o = cm_opts(e);
        kube_reflector *r = start_reflector(e, e->client, &o, &m);

        create_paced(&w, e->ns, 0, 5, 0);
        assert_int_equal(converge(e, &m, "configmaps"), 5);
        assert_int_equal(get_stats(r).lists, 1);

        assert_int_equal(testenv_compact_etcd(), 0);
        assert_int_equal(kube_reflector_rewatch(r, "1"), 0);
        double end = kube_now() + 30;
        while (get_stats(r).lists_done < 2) {
                if (kube_now() > end) {
                        print_stats("expired rv (no relist)", r);
                        fail();
                }
                run_for(e, 0.05);
        }
        create_paced(&w, e->ns, 5, 8, 0);
        assert_int_equal(converge(e, &m, "configmaps"), 8);
        print_stats("expired rv", r);
        kube_reflector_stats s = get_stats(r);
        assert_int_equal(s.relists_gone, 1);
        assert_int_equal(s.lists, 2);
        assert_int_equal(m.replaces, 2);
        kube_reflector_free(r);
        free(m.e);
}

/* Across an apiserver restart: resume from the last RV, relist only on 410. */
static void test_apiserver_restart(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};
        kube_reflector_opts o = cm_opts(e);
        kube_reflector *r = start_reflector(e, e->client, &o, &m);

        create_paced(&w, e->ns, 0, 5, 0);
        assert_int_equal(converge(e, &m, "configmaps"), 5);
        unsigned long watches_before = get_stats(r).watches;

        assert_int_equal(testenv_restart_apiserver(), 0);
        create_paced(&w, e->ns, 5, 10, 0);
        assert_int_equal(converge(e, &m, "configmaps"), 10);
        print_stats("apiserver restart", r);
        kube_reflector_stats s = get_stats(r);
        assert_true(s.watches > watches_before);
        assert_int_equal(s.lists, 1 + s.relists_gone);
        assert_true(s.relists_gone <= 1);
        kube_reflector_free(r);
        free(m.e);
}

/* A stalled connection (no bytes, socket open) is found by the idle timer and replaced. */
static void test_stalled_connection(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};
        faultproxy *p = NULL;
        char kc[512];

        assert_int_equal(faultproxy_start_url(testenv_server(), &p), 0);
        proxy_kubeconfig(p, kc, sizeof(kc));
        kube_client *pc = new_client(e, kc);
        kube_reflector_opts o = cm_opts(e);
        o.idle_timeout = 2; /* changes every 0.25 s keep a healthy watch busy */
        kube_reflector *r = start_reflector(e, pc, &o, &m);

        create_paced(&w, e->ns, 0, 6, 0.25);
        assert_int_equal(converge(e, &m, "configmaps"), 6);
        /* Normally 0; a very slow run (valgrind) may have had a quiet spell already. */
        unsigned long idle_before = get_stats(r).idle_timeouts;
        faultproxy_stats ps_before;
        faultproxy_get_stats(p, &ps_before);

        assert_true(faultproxy_stall(p, true) >= 1);
        /* Changes go on during the stall and after it was detected. */
        create_paced(&w, e->ns, 6, 30, 0.25);
        {
                kube_reflector_stats s0 = get_stats(r);
                faultproxy_stats ps0;
                faultproxy_get_stats(p, &ps0);
                if (s0.idle_timeouts > idle_before + 1 && ps0.accepted == ps_before.accepted)
                        fprintf(stderr,
                                "# every replacement watch went onto the stalled connection "
                                "(HTTP/2 reuse): kube_client must discard a connection "
                                "that stayed silent when a stream's idle timeout fires\n");
        }
        assert_int_equal(converge(e, &m, "configmaps"), 30);
        print_stats("stall", r);
        kube_reflector_stats s = get_stats(r);
        faultproxy_stats ps;
        faultproxy_get_stats(p, &ps);
        assert_true(s.idle_timeouts > idle_before);
        assert_true(s.watches >= 2);
        assert_true(ps.accepted > ps_before.accepted); /* the replacement: a new connection */
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.relists_gone, 0);
        kube_reflector_free(r);
        kube_client_free(pc);
        faultproxy_stop(p);
        unlink(kc);
        free(m.e);
}

/* Secrets followed as metadata only: no data is ever received. */
static void test_metadata_only_secrets(void **state) {
        env *e = *state;
        map m = {.expect_kind = "PartialObjectMetadata"};
        call x;
        char path[256];
        const char body[] = "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
                            "\"%s\",\"labels\":{\"" LABEL_KEY "\":\"refl\"}},\"type\":"
                            "\"Opaque\",\"data\":{\"k\":\"c2VjcmV0\"}}";
        char b[512];

        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", e->ns);
        snprintf(b, sizeof(b), body, "before");
        do_req(e, e->client, KUBE_POST, path, b, &x);
        assert_int_equal(x.error, 0);
        free(x.body);

        kube_reflector_opts o = cm_opts(e);
        o.resource = &KUBE_RES_SECRETS;
        o.metadata_only = true;
        kube_reflector *r = start_reflector(e, e->client, &o, &m);
        snprintf(b, sizeof(b), body, "after");
        do_req(e, e->client, KUBE_POST, path, b, &x);
        assert_int_equal(x.error, 0);
        free(x.body);

        assert_int_equal(converge(e, &m, "secrets"), 2);
        assert_false(m.saw_data);
        assert_false(m.saw_wrong_kind);
        assert_int_equal(m.events, 1);
        kube_reflector_free(r);
        free(m.e);
}

/*
 * Issue 9: a paged LIST sharing its HTTP/2 connection with watches stalled now
 * and then between two pages until something unrelated woke curl up (~30 s).
 * The page's last bytes were already inside curl (libcurl 7.88's HTTP/2 layer
 * paused on its stream: DATA larger than the transfer's 16 KiB receive buffer,
 * read while another transfer was reading the connection), and no timer or
 * socket event was left to finish it. Here a fresh client lists ~5,000 objects
 * as metadata in pages of ~260 KB (gzip'd by the apiserver) next to four
 * cluster-wide reflectors, 30 times; a LIST timeout of 8 s turns a stalled
 * page into a failure. Before the fix 4 of 30 LISTs had one (client.h,
 * KUBE_CLIENT_RECV_BUFFER).
 */
#define STALL_OBJECTS 5000
#define STALL_ROUNDS  30

static void test_paged_list_never_waits_for_a_wakeup(void **state) {
        env *e = *state;
        writer w = {.e = e};
        char path[256];

        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", e->ns);
        for (int i = 0; i < STALL_OBJECTS; i++) {
                char *body = NULL;
                /* Names and labels make each item's metadata ~400 bytes: pages of ~200 KB. */
                assert_true(asprintf(&body,
                                     "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{"
                                     "\"name\":\"stall-%d-padding-padding-padding-padding\","
                                     "\"labels\":{\"" LABEL_KEY "\":\"refl\","
                                     "\"pad\":\"padding-padding-padding-padding-%d\"}},"
                                     "\"type\":\"Opaque\",\"data\":{\"k\":\"dg==\"}}",
                                     i, i) > 0);
                writer_submit(&w, KUBE_POST, path, body);
        }
        writer_drain(&w);

        unsigned long pages = 0, failures = 0, http2 = 0, nudges = 0;
        for (int round = 0; round < STALL_ROUNDS; round++) {
                /* A new client each round, as at the controller's start: its first connection. */
                kube_client *c = new_client(e, testenv_kubeconfig());
                map watched[4] = {{0}}, m = {0};
                kube_reflector *bg[4];
                /* What the controller starts with it: cluster-wide lists and watches. */
                const kube_resource *res[4] = {&KUBE_RES_NAMESPACES, &KUBE_RES_SERVICEACCOUNTS,
                                               &KUBE_RES_SECRETS, &RES_CONFIGMAPS};
                for (int i = 0; i < 4; i++) {
                        kube_reflector_opts o = cm_opts(e);
                        o.resource = res[i];
                        o.namespace = NULL;
                        o.label_selector = i >= 2 ? LABEL_KEY "=none" : NULL;
                        assert_int_equal(
                            kube_reflector_new(c, &o, &map_handlers, &watched[i], &bg[i]), 0);
                        assert_int_equal(kube_reflector_start(bg[i]), 0);
                }
                kube_reflector_opts o = cm_opts(e);
                o.resource = &KUBE_RES_SECRETS;
                o.metadata_only = true;
                o.label_selector = NULL; /* no filtering: the apiserver sends each page at once */
                o.page_size = 500;
                o.list_timeout = 8;
                o.backoff_initial = 0.1;
                o.backoff_max = 0.1;
                kube_reflector *r = NULL;
                assert_int_equal(kube_reflector_new(c, &o, &map_handlers, &m, &r), 0);
                assert_int_equal(kube_reflector_start(r), 0);
                double end = kube_now() + 60;
                for (int i = 0; i < 5; i++)
                        while (!get_stats(i < 4 ? bg[i] : r).synced) {
                                assert_true(kube_now() < end);
                                run_for(e, 0.01);
                        }
                kube_reflector_stats s = get_stats(r);
                pages += s.list_pages;
                failures += s.failures_total;
                if (s.failures_total > 0) print_stats("a page waited past the LIST timeout", r);
                assert_int_equal(m.n, STALL_OBJECTS);
                kube_client_stats cs;
                kube_client_get_stats(c, &cs);
                http2 += cs.http2;
                nudges += cs.nudges;
                kube_reflector_free(r);
                for (int i = 0; i < 4; i++) {
                        kube_reflector_free(bg[i]);
                        free(watched[i].e);
                }
                free(m.e);
                kube_client_free(c);
        }
        fprintf(stderr, "# %d LISTs, %lu pages, %lu failed; http2 answers %lu, nudges %lu\n",
                STALL_ROUNDS, pages, failures, http2, nudges);
        assert_true(http2 >= pages); /* the pages shared the watches' HTTP/2 connection */
        assert_true(pages >= (unsigned long)STALL_ROUNDS * 10);
        assert_int_equal(failures, 0);
}

/* ---- LISTs streamed as a watch (issue 9) ------------------------------------ */

static int sl_begin(void *ud) {
        map *m = ud;
        m->n = 0;
        m->replaces++;
        return 0;
}

static int sl_page(void *ud, json_object *items) {
        map *m = ud;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                int k = map_upsert(m, json_object_array_get_idx(items, i));
                if (k < 0) return k;
        }
        return 0;
}

static const kube_reflector_list_handlers stream_handlers = {sl_begin, sl_page, NULL, NULL};

static kube_reflector *start_streamed(env *e, kube_reflector_opts *o, map *m) {
        kube_reflector *r = NULL;
        o->watch_list = true;
        assert_int_equal(kube_reflector_new(e->client, o, &map_handlers, m, &r), 0);
        assert_int_equal(kube_reflector_set_list_handlers(r, &stream_handlers), 0);
        assert_int_equal(kube_reflector_start(r), 0);
        double end = kube_now() + 30;
        while (!get_stats(r).synced) {
                assert_true(kube_now() < end);
                run_for(e, 0.02);
        }
        e->debug_reflector = r;
        return r;
}

/*
 * The apiserver (WatchList on by default since Kubernetes 1.34) streams the
 * list: no LIST request at all, the initial events end at the annotated
 * bookmark, and the same watch goes on with the changes.
 */
static void test_streamed_list(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};
        create_paced(&w, e->ns, 0, 120, 0);
        kube_reflector_opts o = cm_opts(e);
        kube_reflector *r = start_streamed(e, &o, &m);
        assert_int_equal(m.n, 120);
        create_paced(&w, e->ns, 120, 150, 0);
        for (int i = 0; i < 20; i++) cm_delete(&w, e->ns, i);
        writer_drain(&w);
        assert_int_equal(converge(e, &m, "configmaps"), 130);
        print_stats("streamed list", r);
        kube_reflector_stats s = get_stats(r);
        assert_int_equal(s.streamed_lists, 1);
        assert_int_equal(s.list_pages, 0);
        assert_int_equal(s.watch_list_fallbacks, 0);
        assert_int_equal(s.lists_done, 1);
        assert_int_equal(s.events, 50);
        assert_int_equal(m.replaces, 1);
        kube_reflector_free(r);
        free(m.e);
}

/*
 * With the WatchList feature gate off, what the apiserver answers to
 * sendInitialEvents (422 Invalid, the cause naming the field), and the
 * reflector's fall-back to paged LISTs. Restarts the apiserver twice.
 */
static void test_streamed_list_refused(void **state) {
        env *e = *state;
        writer w = {.e = e};
        map m = {0};
        call x;
        char path[512];

        create_paced(&w, e->ns, 0, 5, 0);
        setenv("TESTENV_APISERVER_FLAGS", "--feature-gates=WatchList=false", 1);
        int k = testenv_restart_apiserver();
        unsetenv("TESTENV_APISERVER_FLAGS");
        assert_int_equal(k, 0);

        snprintf(path, sizeof(path),
                 "/api/v1/namespaces/%s/configmaps?watch=1&sendInitialEvents=true"
                 "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
                 e->ns);
        do_req(e, e->client, KUBE_GET, path, NULL, &x);
        fprintf(stderr, "# WatchList=false: http %ld, %s\n", x.http, x.body);
        bool as_expected = x.http == 422 && strstr(x.body, "\"field\":\"sendInitialEvents\"");
        free(x.body);

        kube_reflector_opts o = cm_opts(e);
        o.page_size = 2;
        kube_reflector *r = start_streamed(e, &o, &m);
        assert_int_equal(converge(e, &m, "configmaps"), 5);
        print_stats("streamed list refused", r);
        kube_reflector_stats s = get_stats(r);
        kube_reflector_free(r);
        free(m.e);
        assert_int_equal(testenv_restart_apiserver(), 0); /* back to the default flags */
        assert_true(as_expected);
        assert_int_equal(s.watch_list_fallbacks, 1);
        assert_int_equal(s.failures_total, 0);
        assert_int_equal(s.list_pages, 3);
        assert_int_equal(s.lists_done, 1);
}

int main(void) {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
        const struct CMUnitTest tests[] = {
            T(test_follows_1000_changes),
            T(test_server_ends_watch),
            T(test_connection_drop),
            T(test_expired_resource_version),
            T(test_stalled_connection),
            T(test_metadata_only_secrets),
            T(test_paged_list_never_waits_for_a_wakeup),
            T(test_streamed_list),
            /* Last: they restart the apiserver. */
            T(test_streamed_list_refused),
            T(test_apiserver_restart),
        };
        /* REFLECTOR_TEST=<glob> runs only the matching tests (when debugging one). */
        if (getenv("REFLECTOR_TEST")) cmocka_set_test_filter(getenv("REFLECTOR_TEST"));
        return cmocka_run_group_tests_name("reflector", tests, testenv_group_setup, NULL);
}
