/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reflector against a fake transport: the test sees every request the
 * reflector makes and answers it by hand, the way kube_client would (never
 * from inside request(); after an on_data error, on_done with that error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "kube/errors.h"
#include "kube/ratelimit.h"
#include "kube/reflector.h"
#include "kube/store.h"
#include "util/macro.h"

#define MAX_REQS 256

typedef struct fake_req {
        char *path;
        char *accept;
        kube_request_opts o;
        bool cancelled;
        bool done;
        double at; /* kube_now() when made */
} fake_req;

typedef struct fixture {
        struct ev_loop *loop;
        fake_req reqs[MAX_REQS];
        size_t n;
        int fail_requests; /* request() fails this many times with -ENOMEM */

        kube_reflector *r;
        /* handler records */
        unsigned replaces;
        size_t last_items;
        char last_replace_rv[64];
        char items_names[16][32];
        unsigned synced;
        char events[64][64];
        size_t n_events;
        int event_result;   /* what on_event returns */
        int replace_result; /* what on_replace returns */
        bool free_in_event;
        bool stop_in_replace;
        bool free_in_synced;
        /* When set, the handlers feed this store as the controller's cache does. */
        kube_store *store;
        /* LISTs page by page (kube_reflector_set_list_handlers()) */
        unsigned list_begins, list_pages, list_ends, list_aborts;
        size_t page_reqs[8]; /* requests made when each page's handler ran */
        size_t page_items[8];
        unsigned skipped;      /* the store's invalid handler calls */
        char skipped_key[128]; /* the last one's "namespace/name" */
        int skipped_error;
} fixture;

static int fake_request(void *ctx, const kube_request_opts *o, kube_request **ret) {
        fixture *f = ctx;
        if (f->fail_requests > 0) {
                f->fail_requests--;
                return -ENOMEM;
        }
        assert_true(f->n < MAX_REQS);
        fake_req *q = &f->reqs[f->n++];
        memset(q, 0, sizeof(*q));
        q->o = *o;
        q->path = strdup(o->path);
        q->accept = o->accept ? strdup(o->accept) : NULL;
        q->o.path = q->path;
        q->o.accept = q->accept;
        q->at = kube_now();
        *ret = (kube_request *)q;
        ev_break(f->loop, EVBREAK_ONE);
        return 0;
}

static void fake_cancel(void *ctx, kube_request *req) {
        fake_req *q = (fake_req *)req;
        assert_false(q->done);
        assert_false(q->cancelled);
        q->cancelled = true;
}

static int h_replace(void *ud, json_object *items, const char *rv) {
        fixture *f = ud;
        f->replaces++;
        f->last_items = json_object_array_length(items);
        snprintf(f->last_replace_rv, sizeof(f->last_replace_rv), "%s", rv);
        for (size_t i = 0; i < f->last_items && i < ARRAY_SIZE(f->items_names); i++) {
                json_object *it = json_object_array_get_idx(items, i), *m, *n;
                assert_true(json_object_object_get_ex(it, "metadata", &m));
                assert_true(json_object_object_get_ex(m, "name", &n));
                snprintf(f->items_names[i], 32, "%s", json_object_get_string(n));
        }
        if (f->stop_in_replace) kube_reflector_stop(f->r);
        if (f->store) {
                int r = kube_store_replace(f->store, items);
                return r < 0 ? r : 0;
        }
        return f->replace_result;
}

static int h_event(void *ud, kube_event_type t, json_object *obj) {
        fixture *f = ud;
        json_object *m, *n;
        assert_true(f->n_events < ARRAY_SIZE(f->events));
        assert_true(json_object_object_get_ex(obj, "metadata", &m));
        assert_true(json_object_object_get_ex(m, "name", &n));
        snprintf(f->events[f->n_events++], 64, "%s %s", kube_event_type_to_string(t),
                 json_object_get_string(n));
        if (f->free_in_event) {
                assert_null(kube_reflector_free(f->r));
                f->r = NULL;
        }
        if (f->store) {
                /* What controller/cache.c's on_event does. */
                int r = kube_store_apply(f->store, t, obj);
                return r < 0 ? r : 0;
        }
        return f->event_result;
}

static void h_synced(void *ud) {
        fixture *f = ud;
        f->synced++;
        if (f->free_in_synced) {
                kube_reflector_free(f->r);
                f->r = NULL;
        }
}

static const kube_reflector_handlers handlers = {h_replace, h_event, h_synced};

static kube_reflector_opts base_opts(fixture *f, const kube_reflector_transport *tr) {
        kube_reflector_opts o = {
            .resource = &KUBE_RES_SERVICEACCOUNTS,
            .namespace = "ns1",
            .watch_timeout = 10,
            .idle_timeout = -1,
            .backoff_initial = 0.01,
            .backoff_max = 0.04,
            .backoff_jitter = -1,
            .loop = f->loop,
            .transport = tr,
        };
        return o;
}

static int setup(void **state) {
        fixture *f = calloc(1, sizeof(*f));
        f->loop = ev_loop_new(EVFLAG_AUTO);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;
        kube_reflector_free(f->r);
        kube_store_free(f->store);
        for (size_t i = 0; i < f->n; i++) {
                free(f->reqs[i].path);
                free(f->reqs[i].accept);
        }
        ev_loop_destroy(f->loop);
        free(f);
        return 0;
}

static kube_reflector_transport transport(fixture *f) {
        return (kube_reflector_transport){fake_request, fake_cancel, f};
}

static void start_with(fixture *f, const kube_reflector_opts *o) {
        assert_int_equal(kube_reflector_new(NULL, o, &handlers, f, &f->r), 0);
        assert_int_equal(kube_reflector_start(f->r), 0);
        assert_int_equal(kube_reflector_start(f->r), -EALREADY);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop for secs seconds (requests made meanwhile are recorded). */
static void run_for(fixture *f, double secs) {
        ev_timer t;
        double end = kube_now() + secs;
        for (;;) {
                double left = end - kube_now();
                if (left <= 0) break;
                ev_timer_init(&t, deadline_cb, left, 0.);
                ev_timer_start(f->loop, &t);
                ev_run(f->loop, 0);
                ev_timer_stop(f->loop, &t);
        }
}

/* Runs the loop until request number idx (0-based) is made; fails after 5 s. */
static fake_req *wait_req(fixture *f, size_t idx) {
        ev_timer t;
        double end = kube_now() + 5;
        while (f->n <= idx) {
                double left = end - kube_now();
                assert_true(left > 0);
                ev_timer_init(&t, deadline_cb, left, 0.);
                ev_timer_start(f->loop, &t);
                ev_run(f->loop, 0);
                ev_timer_stop(f->loop, &t);
        }
        return &f->reqs[idx];
}

static bool is_watch(const fake_req *q) {
        return strstr(q->path, "watch=1") != NULL;
}

static void finish(fake_req *q, const kube_response *resp) {
        assert_false(q->done);
        assert_false(q->cancelled);
        q->done = true;
        q->o.on_done(NULL, resp, q->o.userdata);
}

static void reply_body(fake_req *q, const char *body) {
        kube_response resp = {.http_status = 200, .body = body, .body_len = strlen(body)};
        finish(q, &resp);
}

static void reply_error(fake_req *q, long http, double retry_after) {
        kube_response resp = {.http_status = http, .retry_after = retry_after};
        resp.error = http ? kube_error_from_http(http, KUBE_REASON_UNKNOWN) : -ECONNREFUSED;
        finish(q, &resp);
}

/* Streams data to a watch; on an error return the "client" ends it as kube_client does. */
static int stream(fake_req *q, const char *data) {
        assert_false(q->done);
        assert_false(q->cancelled);
        int k = q->o.on_data(NULL, data, strlen(data), q->o.userdata);
        if (k < 0) {
                kube_response resp = {.http_status = 200, .error = k};
                finish(q, &resp);
        }
        return k;
}

static void end_stream(fake_req *q) {
        kube_response resp = {.http_status = 200};
        finish(q, &resp);
}

static char *list_body(const char *rv, const char *cont, const char *kind, int first, int n) {
        char *s = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&s, &len);
        fprintf(m, "{\"kind\":\"%s\",\"apiVersion\":\"v1\",\"metadata\":{", kind);
        if (rv) fprintf(m, "\"resourceVersion\":\"%s\"", rv);
        if (cont) fprintf(m, "%s\"continue\":\"%s\"", rv ? "," : "", cont);
        fprintf(m, "},\"items\":[");
        for (int i = 0; i < n; i++)
                fprintf(m, "%s{\"metadata\":{\"name\":\"sa%d\",\"resourceVersion\":\"%d\"}}",
                        i ? "," : "", first + i, first + i);
        fprintf(m, "]}");
        fclose(m);
        return s;
}

static void reply_list(fake_req *q, const char *rv, int n) {
        char *b = list_body(rv, NULL, "ServiceAccountList", 0, n);
        reply_body(q, b);
        free(b);
}

static char *event(const char *type, const char *name, const char *rv) {
        static char buf[256];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"%s\",\"object\":{\"kind\":\"ServiceAccount\",\"metadata\":{"
                 "\"name\":\"%s\",\"resourceVersion\":\"%s\"}}}\n",
                 type, name, rv);
        return buf;
}

static const char *bookmark(const char *rv) {
        static char buf[256];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ServiceAccount\",\"metadata\":{"
                 "\"resourceVersion\":\"%s\"}}}\n",
                 rv);
        return buf;
}

static kube_reflector_stats stats(fixture *f) {
        kube_reflector_stats s;
        kube_reflector_get_stats(f->r, &s);
        return s;
}

/* Starts, answers the first list with n items at rv, returns the first watch request. */
static fake_req *sync_to_watch(fixture *f, const kube_reflector_opts *o, const char *rv, int n) {
        start_with(f, o);
        fake_req *q = wait_req(f, 0);
        assert_false(is_watch(q));
        reply_list(q, rv, n);
        fake_req *w = wait_req(f, 1);
        assert_true(is_watch(w));
        return w;
}

/* ---- tests -------------------------------------------------------------- */

static void test_list_then_watch(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.label_selector = "app=web,tier in (a,b)";
        o.field_selector = "metadata.name!=x";
        start_with(f, &o);

        fake_req *l = wait_req(f, 0);
        assert_string_equal(l->path, "/api/v1/namespaces/ns1/serviceaccounts?limit=500"
                                     "&labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29"
                                     "&fieldSelector=metadata.name%21%3Dx");
        assert_null(l->accept);
        assert_false(l->o.no_rate_limit);
        assert_null(l->o.on_data);
        assert_int_equal(stats(f).synced, false);
        reply_list(l, "100", 2);
        assert_int_equal(f->replaces, 1);
        assert_int_equal(f->last_items, 2);
        assert_string_equal(f->items_names[0], "sa0");
        assert_string_equal(f->items_names[1], "sa1");
        assert_string_equal(f->last_replace_rv, "100");
        assert_int_equal(f->synced, 1);
        assert_true(stats(f).synced);

        fake_req *w = wait_req(f, 1);
        assert_true(is_watch(w));
        assert_true(w->o.no_rate_limit);
        assert_non_null(w->o.on_data);
        /* timeoutSeconds drawn in [10, 20) */
        const char *ts = strstr(w->path, "timeoutSeconds=");
        assert_non_null(ts);
        long t = strtol(ts + strlen("timeoutSeconds="), NULL, 10);
        assert_true(t >= 10 && t < 20);
        assert_non_null(strstr(w->path, "/api/v1/namespaces/ns1/serviceaccounts?watch=1"
                                        "&allowWatchBookmarks=true&timeoutSeconds="));
        assert_non_null(strstr(w->path, "&labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29"
                                        "&fieldSelector=metadata.name%21%3Dx"));
        assert_non_null(strstr(w->path, "&resourceVersion=100"));
        assert_null(strstr(w->path, "limit="));

        /* Events split at odd places, a bookmark in between. */
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", event("ADDED", "sa9", "101"));
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s",
                 event("MODIFIED", "sa0", "102"));
        size_t cut = strlen(buf) - 7;
        char tail[64];
        snprintf(tail, sizeof(tail), "%s", buf + cut);
        buf[cut] = 0;
        assert_int_equal(stream(w, buf), 0);
        assert_int_equal(f->n_events, 1);
        assert_string_equal(stats(f).resource_version, "101");
        assert_int_equal(stream(w, tail), 0);
        assert_int_equal(stream(w, bookmark("150")), 0);
        assert_string_equal(stats(f).resource_version, "150");
        assert_int_equal(stream(w, event("DELETED", "sa1", "151")), 0);

        assert_int_equal(f->n_events, 3);
        assert_string_equal(f->events[0], "ADDED sa9");
        assert_string_equal(f->events[1], "MODIFIED sa0");
        assert_string_equal(f->events[2], "DELETED sa1");

        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.list_pages, 1);
        assert_int_equal(s.lists_done, 1);
        assert_int_equal(s.watches, 1);
        assert_int_equal(s.events, 3);
        assert_int_equal(s.bookmarks, 1);
        assert_true(s.watching);
        assert_string_equal(s.resource_version, "151");

        /* Stop cancels the open watch; nothing more happens. */
        kube_reflector_stop(f->r);
        assert_true(w->cancelled);
        run_for(f, 0.05);
        assert_int_equal(f->n, 2);
        assert_false(stats(f).running);
}

static void test_paginated_list(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.page_size = 2;
        o.namespace = NULL;
        start_with(f, &o);

        fake_req *p1 = wait_req(f, 0);
        assert_string_equal(p1->path, "/api/v1/serviceaccounts?limit=2");
        char *b = list_body("77", "tok/+=", "ServiceAccountList", 0, 2);
        reply_body(p1, b);
        free(b);
        assert_int_equal(f->replaces, 0);
        assert_int_equal(f->synced, 0);

        fake_req *p2 = wait_req(f, 1);
        assert_string_equal(p2->path, "/api/v1/serviceaccounts?limit=2&continue=tok%2F%2B%3D");
        b = list_body("77", "tok2", "ServiceAccountList", 2, 2);
        reply_body(p2, b);
        free(b);

        fake_req *p3 = wait_req(f, 2);
        assert_string_equal(p3->path, "/api/v1/serviceaccounts?limit=2&continue=tok2");
        b = list_body("77", NULL, "ServiceAccountList", 4, 1);
        reply_body(p3, b);
        free(b);

        assert_int_equal(f->replaces, 1);
        assert_int_equal(f->last_items, 5);
        for (int i = 0; i < 5; i++) {
                char nm[16];
                snprintf(nm, sizeof(nm), "sa%d", i);
                assert_string_equal(f->items_names[i], nm);
        }
        assert_string_equal(f->last_replace_rv, "77");
        assert_int_equal(f->synced, 1);

        fake_req *w = wait_req(f, 3);
        assert_true(is_watch(w));
        assert_non_null(strstr(w->path, "resourceVersion=77"));
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.list_pages, 3);
}

/*
 * A continue token that expired (410 mid-list): like client-go's pager, one
 * unpaginated LIST (no limit, no continue) after the reflector's backoff;
 * then pages again for the lists that follow.
 */
static void test_continue_expired_full_list_after_backoff(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.page_size = 1;
        o.label_selector = "a=b";
        o.backoff_initial = 0.2;
        o.backoff_max = 0.4;
        start_with(f, &o);

        char *b = list_body("10", "c1", "ServiceAccountList", 0, 1);
        reply_body(wait_req(f, 0), b);
        free(b);
        fake_req *p2 = wait_req(f, 1);
        assert_non_null(strstr(p2->path, "continue=c1"));
        double t410 = kube_now();
        reply_error(p2, 410, 0);

        /* From the top, unpaginated, after a backoff; nothing replaced yet. */
        fake_req *p3 = wait_req(f, 2);
        assert_true(p3->at - t410 >= 0.19);
        assert_string_equal(p3->path, "/api/v1/namespaces/ns1/serviceaccounts?labelSelector=a%3Db");
        assert_int_equal(f->replaces, 0);
        reply_list(p3, "20", 3);
        assert_int_equal(f->replaces, 1);
        assert_int_equal(f->last_items, 3); /* the first attempt's page is not kept */
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 2);
        assert_int_equal(s.list_pages, 3);
        assert_int_equal(s.relists_gone, 0);
        assert_int_equal(s.full_lists, 1);
        assert_int_equal(s.failures, 1);
        assert_true(s.last_delay >= 0.19);

        /* The next list (after a 410 on the watch) pages again. */
        fake_req *w = wait_req(f, 3);
        assert_true(is_watch(w));
        reply_error(w, 410, 0);
        fake_req *l = wait_req(f, 4);
        assert_string_equal(l->path,
                            "/api/v1/namespaces/ns1/serviceaccounts?limit=1&labelSelector=a%3Db");
        assert_int_equal(stats(f).full_lists, 1);
}

static void test_watch_gone_event_relists(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);

        assert_int_equal(stream(w, event("ADDED", "x", "101")), 0);
        const char gone[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
                            "\"v1\",\"status\":\"Failure\",\"message\":\"too old resource "
                            "version: 100 (200)\",\"reason\":\"Expired\",\"code\":410}}\n";
        /* An event after the ERROR in the same chunk is not delivered. */
        char buf[512];
        snprintf(buf, sizeof(buf), "%s%s", gone, event("ADDED", "late", "300"));
        assert_true(stream(w, buf) < 0);
        assert_int_equal(f->n_events, 1);

        fake_req *l = wait_req(f, 2);
        assert_false(is_watch(l));
        assert_null(strstr(l->path, "resourceVersion")); /* a fresh, consistent list */
        reply_list(l, "300", 3);
        assert_int_equal(f->replaces, 2);
        assert_int_equal(f->synced, 1); /* once per start */
        fake_req *w2 = wait_req(f, 3);
        assert_non_null(strstr(w2->path, "resourceVersion=300"));

        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 2);
        assert_int_equal(s.relists_gone, 1);
        assert_int_equal(s.watches, 2);
}

static void test_watch_http_410_relists(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);
        /* Lived long enough not to be a "very short watch": relist at once. */
        run_for(f, 1.05);
        reply_error(w, 410, 0);
        fake_req *l = wait_req(f, 2);
        assert_false(is_watch(l));
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 2);
        assert_int_equal(s.relists_gone, 1);
        assert_int_equal(s.failures, 0); /* no backoff was scheduled */
        assert_int_equal(s.failures_total, 0);
}

static void test_server_end_rewatches_without_relist(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);

        assert_int_equal(stream(w, event("ADDED", "a", "105")), 0);
        end_stream(w); /* timeoutSeconds reached */
        fake_req *w2 = wait_req(f, 2);
        assert_true(is_watch(w2));
        assert_non_null(strstr(w2->path, "resourceVersion=105"));
        assert_int_equal(stats(f).failures, 0);

        /* A bookmark moves the resume point too. */
        assert_int_equal(stream(w2, bookmark("180")), 0);
        end_stream(w2);
        fake_req *w3 = wait_req(f, 3);
        assert_non_null(strstr(w3->path, "resourceVersion=180"));

        /* A watch that ends at once with nothing is a failure: backoff, still no relist. */
        end_stream(w3);
        fake_req *w4 = wait_req(f, 4);
        assert_true(is_watch(w4));
        assert_non_null(strstr(w4->path, "resourceVersion=180"));

        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.watches, 4);
        assert_int_equal(s.relists_gone, 0);
        assert_int_equal(s.failures, 1);
        assert_true(s.last_delay >= 0.01);
        assert_int_equal(f->replaces, 1);
}

static void test_transport_errors_rewatch(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);
        size_t i = 1;

        assert_int_equal(stream(w, event("ADDED", "a", "110")), 0);
        /* Connection reset mid-stream. */
        kube_response reset = {.http_status = 200, .error = -ECONNRESET};
        finish(w, &reset);
        w = wait_req(f, ++i);
        assert_non_null(strstr(w->path, "resourceVersion=110"));
        /* 500 and 503 at watch start, connection refused. */
        reply_error(w, 500, 0);
        w = wait_req(f, ++i);
        reply_error(w, 503, 0);
        w = wait_req(f, ++i);
        reply_error(w, 0, 0);
        w = wait_req(f, ++i);
        /* A non-410 ERROR event with a 5xx code. */
        assert_true(stream(w, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,"
                              "\"reason\":\"InternalError\"}}\n") < 0);
        w = wait_req(f, ++i);
        assert_true(is_watch(w));
        assert_non_null(strstr(w->path, "resourceVersion=110"));
        /* The request cannot even be made: retried too. */
        f->fail_requests = 1;
        reply_error(w, 502, 0);
        w = wait_req(f, ++i);
        assert_true(is_watch(w));

        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.relists_gone, 0);
        assert_int_equal(f->replaces, 1);
        assert_int_equal(s.failures_total, 7);
}

static void test_429_retry_after(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);

        double t0 = kube_now();
        reply_error(w, 429, 0.3);
        assert_true(stats(f).last_delay >= 0.3);
        fake_req *w2 = wait_req(f, 2);
        assert_true(is_watch(w2));
        assert_true(w2->at - t0 >= 0.29);
        assert_non_null(strstr(w2->path, "resourceVersion=100"));

        /* Without Retry-After the plain backoff applies (0.02 s: the second failure). */
        t0 = kube_now();
        reply_error(w2, 429, 0);
        fake_req *w3 = wait_req(f, 3);
        assert_true(is_watch(w3));
        assert_true(stats(f).last_delay < 0.1);
        assert_non_null(strstr(w3->path, "resourceVersion=100"));

        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.relists_gone, 0);
}

static void test_list_failures_backoff(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        start_with(f, &o);

        double t0 = kube_now();
        reply_error(wait_req(f, 0), 429, 0.2);
        fake_req *l2 = wait_req(f, 1);
        assert_false(is_watch(l2));
        assert_true(l2->at - t0 >= 0.19);
        reply_error(l2, 500, 0);
        fake_req *l3 = wait_req(f, 2);
        assert_false(is_watch(l3));
        /* Garbage, a list without resourceVersion, and a wrong shape are failures too. */
        reply_body(l3, "{\"kind\":\"ServiceAccountList\",\"items\":[");
        fake_req *l4 = wait_req(f, 3);
        reply_body(l4, "{\"kind\":\"ServiceAccountList\",\"metadata\":{},\"items\":[]}");
        fake_req *l5 = wait_req(f, 4);
        reply_body(l5, "{\"kind\":\"ServiceAccountList\",\"metadata\":{\"resourceVersion\":\"1\"},"
                       "\"items\":{}}");
        fake_req *l6 = wait_req(f, 5);
        assert_int_equal(f->replaces, 0);
        assert_int_equal(f->synced, 0);
        /* An empty list may have "items": null. */
        reply_body(l6, "{\"kind\":\"ServiceAccountList\",\"metadata\":{\"resourceVersion\":\"9\"},"
                       "\"items\":null}");
        assert_int_equal(f->replaces, 1);
        assert_int_equal(f->last_items, 0);
        assert_int_equal(f->synced, 1);
        assert_true(is_watch(wait_req(f, 6)));
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 6);
        assert_int_equal(s.lists_done, 1);
        assert_int_equal(s.failures, 5);
        assert_int_equal(s.failures_total, 5);
}

static void test_backoff_grows_and_resets(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.backoff_reset = 0.5;
        fake_req *w = sync_to_watch(f, &o, "100", 1);
        const double expect[] = {0.01, 0.02, 0.04, 0.04, 0.04};
        size_t i = 1;

        for (size_t k = 0; k < ARRAY_SIZE(expect); k++) {
                double t0 = kube_now();
                reply_error(w, 0, 0); /* connection refused */
                kube_reflector_stats s = stats(f);
                assert_float_equal(s.last_delay, expect[k], 1e-9);
                assert_int_equal(s.failures, k + 1);
                w = wait_req(f, ++i);
                assert_true(is_watch(w));
                assert_true(w->at - t0 >= expect[k] - 0.001);
        }
        /* A watch that lives longer than backoff_reset: the count starts afresh. */
        assert_int_equal(stream(w, event("ADDED", "a", "120")), 0);
        run_for(f, 0.6);
        reply_error(w, 0, 0);
        assert_float_equal(stats(f).last_delay, 0.01, 1e-9);
        assert_int_equal(stats(f).failures, 1);
        w = wait_req(f, ++i);
        assert_non_null(strstr(w->path, "resourceVersion=120"));
        assert_int_equal(stats(f).lists, 1);
}

static void test_jitter_bounds(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.backoff_jitter = 0.5;
        o.backoff_initial = 0.02;
        o.backoff_max = 0.02;
        fake_req *w = sync_to_watch(f, &o, "100", 1);
        size_t i = 1;
        double lo = 1, hi = 0;
        for (int k = 0; k < 20; k++) {
                reply_error(w, 0, 0);
                double d = stats(f).last_delay;
                assert_true(d >= 0.01 - 1e-9 && d <= 0.02 + 1e-9);
                lo = MIN(lo, d);
                hi = MAX(hi, d);
                w = wait_req(f, ++i);
        }
        /* Jittered: 20 draws are not all the same. */
        assert_true(hi > lo);
}

static void test_idle_timeout(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.idle_timeout = 0.5; /* backstop at 0.75 s; gaps below leave room for a loaded machine */
        fake_req *w = sync_to_watch(f, &o, "100", 1);
        /* The client is asked to enforce it too (it can then drop the dead connection). */
        assert_int_equal(w->o.idle_timeout_ms, 500);
        assert_int_equal(w->o.timeout_ms, 0);

        /* Bytes keep it alive past the first deadline... */
        run_for(f, 0.3);
        assert_int_equal(stream(w, bookmark("140")), 0);
        run_for(f, 0.3);
        assert_false(w->cancelled);
        assert_int_equal(f->n, 2);
        /* ...half an event is bytes too... */
        assert_int_equal(stream(w, "{\"type\":\"ADD"), 0);
        run_for(f, 0.3);
        assert_false(w->cancelled);
        /* ...silence is not: this fake does not enforce idle_timeout_ms, so the
         * reflector's backstop (0.25 s later) does. */
        fake_req *w2 = wait_req(f, 2);
        assert_true(w->cancelled);
        assert_true(is_watch(w2));
        assert_true(w2->at - w->at >= 0.6 + 0.5 + 0.25 - 0.01);
        assert_non_null(strstr(w2->path, "resourceVersion=140"));
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.idle_timeouts, 1);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.watches, 2);
        /* The new watch starts with a clean framer (the half event is gone). */
        assert_int_equal(stream(w2, event("ADDED", "n", "141")), 0);
        assert_int_equal(f->n_events, 1);

        /* A client that enforces the idle timeout ends the watch with -ETIMEDOUT. */
        run_for(f, 0.5);
        kube_response timed_out = {.http_status = 200, .error = -ETIMEDOUT};
        finish(w2, &timed_out);
        fake_req *w3 = wait_req(f, 3);
        assert_true(is_watch(w3));
        assert_non_null(strstr(w3->path, "resourceVersion=141"));
        s = stats(f);
        assert_int_equal(s.idle_timeouts, 2);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.watches, 3);
}

static void test_other_errors_relist(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);

        /* 403 at watch start: relist after backoff. */
        reply_error(w, 403, 0);
        fake_req *l = wait_req(f, 2);
        assert_false(is_watch(l));
        reply_list(l, "200", 1);
        w = wait_req(f, 3);
        /* Garbage in the stream: relist. */
        assert_int_equal(stream(w, event("ADDED", "g", "201")), 0);
        assert_true(stream(w, "{oops}\n") < 0);
        l = wait_req(f, 4);
        assert_false(is_watch(l));
        reply_list(l, "300", 1);
        w = wait_req(f, 5);
        /* An ERROR event that is neither 410 nor 429/5xx: relist. */
        assert_true(stream(w, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":403,"
                              "\"reason\":\"Forbidden\"}}\n") < 0);
        l = wait_req(f, 6);
        assert_false(is_watch(l));
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 4);
        assert_int_equal(s.relists_gone, 0);
}

static void test_handler_failure_relists(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);

        f->event_result = -ENOMEM;
        assert_int_equal(stream(w, event("ADDED", "a", "101")), -ENOMEM);
        /* The event was not taken: the resume point did not move. */
        assert_string_equal(stats(f).resource_version, "100");
        f->event_result = 0;
        fake_req *l = wait_req(f, 2);
        assert_false(is_watch(l));
        f->replace_result = -ENOMEM;
        reply_list(l, "200", 1);
        l = wait_req(f, 3);
        assert_false(is_watch(l));
        f->replace_result = 0;
        reply_list(l, "210", 1);
        assert_true(is_watch(wait_req(f, 4)));
        assert_int_equal(f->replaces, 3);
        assert_int_equal(stats(f).lists, 3);
}

static void test_metadata_only(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.resource = &KUBE_RES_SECRETS;
        o.metadata_only = true;
        start_with(f, &o);

        fake_req *l = wait_req(f, 0);
        assert_string_equal(l->accept, "application/json;as=PartialObjectMetadataList;"
                                       "g=meta.k8s.io;v=v1,application/json");
        /* A server that ignored the Accept header sent whole Secrets: refused. */
        char *b = list_body("5", NULL, "SecretList", 0, 1);
        reply_body(l, b);
        free(b);
        assert_int_equal(f->replaces, 0);
        l = wait_req(f, 1);
        b = list_body("5", NULL, "PartialObjectMetadataList", 0, 2);
        reply_body(l, b);
        free(b);
        assert_int_equal(f->replaces, 1);

        fake_req *w = wait_req(f, 2);
        assert_true(is_watch(w));
        assert_string_equal(w->accept, "application/json;as=PartialObjectMetadata;"
                                       "g=meta.k8s.io;v=v1,application/json");
        assert_int_equal(stream(w, "{\"type\":\"ADDED\",\"object\":{\"kind\":"
                                   "\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\","
                                   "\"metadata\":{\"name\":\"s\",\"resourceVersion\":\"6\"}}}\n"),
                         0);
        assert_int_equal(f->n_events, 1);
        assert_true(stream(w, event("MODIFIED", "s", "7")) < 0); /* kind Secret(Account) */
        assert_int_equal(f->n_events, 1);
        assert_false(is_watch(wait_req(f, 3)));
}

static void test_event_too_big(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.max_event = 64;
        fake_req *w = sync_to_watch(f, &o, "100", 1);
        char big[200];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(stream(w, big), -EMSGSIZE);
        /* Skipping the event would lose it: relist. */
        assert_false(is_watch(wait_req(f, 2)));
}

/* A slim object of metadata only: the model refuses what kube_meta refuses. */
typedef struct meta_obj {
        kube_meta meta;
} meta_obj;

static int meta_obj_decode(json_object *obj, void **ret) {
        meta_obj *m = calloc(1, sizeof(*m));
        if (!m) return -ENOMEM;
        int r = kube_meta_decode(obj, &m->meta);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

static void meta_obj_free(void *p) {
        meta_obj *m = p;
        if (!m) return;
        kube_meta_done(&m->meta);
        free(m);
}

static const kube_meta_core *meta_obj_meta(const void *p) {
        return &((const meta_obj *)p)->meta.core;
}

static const kube_store_kind meta_obj_kind = {
    .name = "serviceaccounts",
    .decode = meta_obj_decode,
    .free = meta_obj_free,
    .meta = meta_obj_meta,
};

static void on_skipped(void *ud, const char *ns, const char *name, int error, json_object *obj) {
        fixture *f = ud;
        f->skipped++;
        snprintf(f->skipped_key, sizeof(f->skipped_key), "%s/%s", ns ? ns : "-", name ? name : "-");
        f->skipped_error = error;
}

/* An event whose object carries n finalizers (the model takes at most 64). */
static char *event_finalizers(const char *type, const char *name, const char *rv, int n) {
        char *s = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&s, &len);
        fprintf(m,
                "{\"type\":\"%s\",\"object\":{\"kind\":\"ServiceAccount\",\"metadata\":{"
                "\"name\":\"%s\",\"resourceVersion\":\"%s\","
                "\"finalizers\":[",
                type, name, rv);
        for (int i = 0; i < n; i++) fprintf(m, "%s\"example.com/f%d\"", i ? "," : "", i);
        fprintf(m, "]}}}\n");
        fclose(m);
        return s;
}

/*
 * One tenant's object that the store's model refuses (here: 65 finalizers)
 * must not make the reflector relist the whole resource: the store skips it
 * (counted, reported) as a relist does, a cached older version of it is
 * dropped, and the events around it are applied. No LIST follows.
 */
static void test_refused_object_skipped_without_relist(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        assert_int_equal(kube_store_new(&meta_obj_kind, &f->store), 0);
        kube_store_set_invalid_handler(f->store, on_skipped, f);
        fake_req *w = sync_to_watch(f, &o, "100", 2); /* sa0, sa1 */
        assert_int_equal(kube_store_count(f->store), 2);
        assert_int_equal(f->n, 2);

        _cleanup_free_ char *mod = event_finalizers("MODIFIED", "sa0", "102", 65);
        _cleanup_free_ char *add = event_finalizers("ADDED", "big", "104", 65);
        _cleanup_free_ char *del = event_finalizers("DELETED", "big", "105", 65);
        _cleanup_free_ char *ok64 = event_finalizers("ADDED", "ok64", "106", 64);
        assert_int_equal(stream(w, event("ADDED", "a", "101")), 0);
        int k = stream(w, mod);
        /* Give a relist (backoff 10 ms) every chance to happen: no LIST may follow. */
        run_for(f, 0.1);
        assert_int_equal(f->n, 2);
        assert_int_equal(stats(f).lists, 1);
        assert_int_equal(k, 0);
        assert_int_equal(stream(w, event("ADDED", "b", "103")), 0);
        assert_int_equal(stream(w, add), 0);
        assert_int_equal(stream(w, del), 0);
        assert_int_equal(stream(w, ok64), 0);
        assert_false(w->done);
        run_for(f, 0.1);
        assert_int_equal(f->n, 2);
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.list_pages, 1);
        assert_int_equal(s.watches, 1);
        assert_int_equal(s.failures_total, 0);
        assert_string_equal(s.resource_version, "106");

        /* The others applied; sa0's refused version replaced its cached one by nothing. */
        assert_non_null(kube_store_get(f->store, NULL, "a"));
        assert_non_null(kube_store_get(f->store, NULL, "b"));
        assert_non_null(kube_store_get(f->store, NULL, "sa1"));
        assert_non_null(kube_store_get(f->store, NULL, "ok64"));
        assert_null(kube_store_get(f->store, NULL, "sa0"));
        assert_null(kube_store_get(f->store, NULL, "big"));
        assert_int_equal(kube_store_count(f->store), 4);

        kube_store_stats st;
        kube_store_get_stats(f->store, &st);
        assert_int_equal(st.invalid, 2);
        assert_int_equal(f->skipped, 2);
        assert_string_equal(f->skipped_key, "-/big");
        assert_int_equal(f->skipped_error, -E2BIG);
}

/* ---- LISTs taken page by page (issue 9) ------------------------------------ */

static int h_list_begin(void *ud) {
        fixture *f = ud;
        f->list_begins++;
        return f->store ? kube_store_replace_begin(f->store) : 0;
}

static int h_list_page(void *ud, json_object *items) {
        fixture *f = ud;
        if (f->list_pages < ARRAY_SIZE(f->page_reqs)) {
                f->page_reqs[f->list_pages] = f->n;
                f->page_items[f->list_pages] = json_object_array_length(items);
        }
        f->list_pages++;
        return f->store ? kube_store_replace_add(f->store, items) : 0;
}

static int h_list_end(void *ud, const char *rv) {
        fixture *f = ud;
        f->list_ends++;
        snprintf(f->last_replace_rv, sizeof(f->last_replace_rv), "%s", rv);
        if (!f->store) return 0;
        int r = kube_store_replace_commit(f->store);
        return r < 0 ? r : 0;
}

static void h_list_abort(void *ud) {
        fixture *f = ud;
        f->list_aborts++;
        kube_store_replace_abort(f->store);
}

static const kube_reflector_list_handlers list_handlers = {h_list_begin, h_list_page, h_list_end,
                                                           h_list_abort};

static size_t staged(fixture *f) {
        kube_store_stats st;
        kube_store_get_stats(f->store, &st);
        return st.staged;
}

static void start_paged(fixture *f, kube_reflector_opts *o) {
        assert_int_equal(kube_store_new(&meta_obj_kind, &f->store), 0);
        assert_int_equal(kube_reflector_new(NULL, o, &handlers, f, &f->r), 0);
        assert_int_equal(kube_reflector_set_list_handlers(f->r, &list_handlers), 0);
        assert_int_equal(kube_reflector_start(f->r), 0);
}

static void reply_page(fake_req *q, const char *rv, const char *cont, int first, int n) {
        char *b = list_body(rv, cont, "ServiceAccountList", first, n);
        reply_body(q, b);
        free(b);
}

/*
 * Each page goes to the consumer as it arrives, before the next page is asked
 * for, and is not kept: on_replace never sees the list. A relist that changes
 * nothing holds nothing beyond the store.
 */
static void test_paged_list_hands_over_each_page(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.page_size = 2;
        start_paged(f, &o);

        reply_page(wait_req(f, 0), "77", "c1", 0, 2);
        assert_int_equal(f->list_begins, 1);
        assert_int_equal(f->list_pages, 1);
        assert_int_equal(f->page_reqs[0], 1); /* before the second page was asked for */
        assert_int_equal(staged(f), 2);
        assert_int_equal(kube_store_count(f->store), 0); /* nothing committed yet */
        reply_page(wait_req(f, 1), "77", "c2", 2, 2);
        assert_int_equal(f->page_reqs[1], 2);
        reply_page(wait_req(f, 2), "77", NULL, 4, 1);
        assert_int_equal(f->list_pages, 3);
        assert_int_equal(f->page_items[2], 1);
        assert_int_equal(f->list_ends, 1);
        assert_string_equal(f->last_replace_rv, "77");
        assert_int_equal(f->replaces, 0);
        assert_int_equal(kube_store_count(f->store), 5);
        assert_int_equal(staged(f), 0);
        assert_int_equal(f->synced, 1);
        fake_req *w = wait_req(f, 3);
        assert_true(is_watch(w));
        assert_non_null(strstr(w->path, "resourceVersion=77"));

        /* 410 on the watch: the relist is unchanged but for sa4, gone. */
        reply_error(w, 410, 0);
        reply_page(wait_req(f, 4), "90", "c1", 0, 2);
        assert_int_equal(f->list_begins, 2);
        assert_int_equal(staged(f), 0); /* same resourceVersions: nothing held */
        reply_page(wait_req(f, 5), "90", NULL, 2, 2);
        assert_int_equal(f->list_ends, 2);
        assert_int_equal(kube_store_count(f->store), 4);
        assert_non_null(kube_store_get(f->store, NULL, "sa3"));
        assert_null(kube_store_get(f->store, NULL, "sa4"));
        kube_store_stats st;
        kube_store_get_stats(f->store, &st);
        assert_int_equal(st.added, 5);
        assert_int_equal(st.deleted, 1);
        assert_int_equal(st.modified, 0);
        assert_int_equal(f->list_aborts, 0);
        assert_int_equal(f->replaces, 0);
        assert_true(is_watch(wait_req(f, 6)));
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.lists, 2);
        assert_int_equal(s.lists_done, 2);
        assert_int_equal(s.relists_gone, 1);
        assert_string_equal(s.resource_version, "90");
}

/*
 * A continue token that expires mid-list (410): the pages taken are dropped
 * (on_list_abort), the store is untouched, and the unpaginated LIST that
 * follows is handed over the same way.
 */
static void test_paged_list_gone_mid_list(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.page_size = 2;
        start_paged(f, &o);

        reply_page(wait_req(f, 0), "10", "c1", 0, 2);
        assert_int_equal(staged(f), 2);
        fake_req *p2 = wait_req(f, 1);
        assert_int_equal(kube_reflector_set_list_handlers(f->r, NULL), -EBUSY);
        reply_error(p2, 410, 0);
        assert_int_equal(f->list_aborts, 1);
        assert_int_equal(staged(f), 0);
        assert_int_equal(kube_store_count(f->store), 0);
        assert_int_equal(f->synced, 0);

        fake_req *p3 = wait_req(f, 2);
        assert_null(strstr(p3->path, "limit="));
        reply_page(p3, "20", NULL, 0, 3);
        assert_int_equal(f->list_begins, 2);
        assert_int_equal(f->list_ends, 1);
        assert_int_equal(kube_store_count(f->store), 3);
        assert_int_equal(f->synced, 1);
        assert_int_equal(f->replaces, 0);
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.full_lists, 1);
        assert_int_equal(s.lists_done, 1);
}

/* A page the consumer cannot take ends the LIST (aborted) and relists after a backoff. */
static void test_paged_list_handler_error(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.page_size = 2;
        o.max_items = 3;
        start_paged(f, &o);

        reply_page(wait_req(f, 0), "10", "c1", 0, 2);
        reply_page(wait_req(f, 1), "10", NULL, 2, 2); /* 4 items > max_items */
        assert_int_equal(f->list_aborts, 1);
        assert_int_equal(f->list_ends, 0);
        assert_int_equal(kube_store_count(f->store), 0);
        fake_req *p3 = wait_req(f, 2);
        assert_false(is_watch(p3));
        reply_page(p3, "11", NULL, 0, 3);
        assert_int_equal(f->list_ends, 1);
        assert_int_equal(kube_store_count(f->store), 3);
        assert_int_equal(stats(f).failures_total, 1);
}

/* ---- LISTs streamed as a watch with initial events (issue 9) ---------------- */

static const char *end_bookmark(const char *rv) {
        static char buf[256];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ServiceAccount\",\"metadata\":{"
                 "\"resourceVersion\":\"%s\",\"annotations\":{"
                 "\"k8s.io/initial-events-end\":\"true\"}}}}\n",
                 rv);
        return buf;
}

static bool is_stream_list(const fake_req *q) {
        return is_watch(q) && strstr(q->path, "&sendInitialEvents=true") &&
               strstr(q->path, "&resourceVersionMatch=NotOlderThan") &&
               !strstr(q->path, "resourceVersion=");
}

/*
 * The initial events are the list: each handed over as it arrives (split
 * across chunks too), nothing committed before the end bookmark, whose
 * resourceVersion is the list's; the same stream then goes on as the watch.
 */
static void test_streamed_list(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.watch_list = true;
        start_paged(f, &o);

        fake_req *w = wait_req(f, 0);
        assert_true(is_stream_list(w));
        assert_non_null(strstr(w->path, "allowWatchBookmarks=true"));
        assert_int_equal(stream(w, event("ADDED", "a", "5")), 0);
        const char *e = event("ADDED", "b", "6");
        char half[128];
        snprintf(half, sizeof(half), "%.*s", 20, e);
        assert_int_equal(stream(w, half), 0);
        assert_int_equal(f->list_pages, 1);
        assert_int_equal(stream(w, e + 20), 0);
        assert_int_equal(stream(w, event("ADDED", "c", "7")), 0);
        assert_int_equal(f->list_pages, 3);
        assert_int_equal(staged(f), 3);
        assert_int_equal(kube_store_count(f->store), 0);
        assert_int_equal(f->synced, 0);
        assert_int_equal(stream(w, end_bookmark("50")), 0);
        assert_int_equal(f->list_ends, 1);
        assert_string_equal(f->last_replace_rv, "50");
        assert_int_equal(kube_store_count(f->store), 3);
        assert_int_equal(f->synced, 1);
        assert_int_equal(f->replaces, 0);
        assert_int_equal(f->n_events, 0); /* the initial events are not watch events */

        /* The same stream goes on as the watch. */
        assert_int_equal(stream(w, event("MODIFIED", "a", "51")), 0);
        assert_int_equal(stream(w, event("DELETED", "c", "52")), 0);
        assert_int_equal(f->n_events, 2);
        assert_int_equal(kube_store_count(f->store), 2);
        kube_reflector_stats s = stats(f);
        assert_string_equal(s.resource_version, "52");
        assert_int_equal(s.lists, 1);
        assert_int_equal(s.streamed_lists, 1);
        assert_int_equal(s.lists_done, 1);
        assert_int_equal(s.list_pages, 0);
        assert_int_equal(f->n, 1);

        /* Its end re-watches from the last resourceVersion, as any watch. */
        run_for(f, 1.1); /* not a "very short" watch */
        end_stream(w);
        fake_req *w2 = wait_req(f, 1);
        assert_true(is_watch(w2));
        assert_null(strstr(w2->path, "sendInitialEvents"));
        assert_non_null(strstr(w2->path, "resourceVersion=52"));
}

/* A 410 during the initial events drops what was taken and streams the list again at once. */
static void test_streamed_list_gone(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.watch_list = true;
        o.backoff_initial = 5; /* a backoff would fail wait_req() */
        o.backoff_max = 5;
        start_paged(f, &o);

        fake_req *w = wait_req(f, 0);
        assert_int_equal(stream(w, event("ADDED", "a", "5")), 0);
        assert_int_equal(staged(f), 1);
        assert_true(stream(w, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                              "\"reason\":\"Expired\"}}\n") < 0);
        assert_int_equal(f->list_aborts, 1);
        assert_int_equal(staged(f), 0);
        fake_req *w2 = wait_req(f, 1);
        assert_true(is_stream_list(w2));
        assert_int_equal(stream(w2, event("ADDED", "b", "8")), 0);
        assert_int_equal(stream(w2, end_bookmark("60")), 0);
        assert_int_equal(kube_store_count(f->store), 1);
        assert_non_null(kube_store_get(f->store, NULL, "b"));
        assert_int_equal(f->synced, 1);
        assert_int_equal(stats(f).lists, 2);
        assert_int_equal(stats(f).failures_total, 0);
}

/*
 * A 429 (or 5xx) ERROR event during the initial events is the server asking
 * for patience, as it is on a plain watch (test_429_retry_after): the list
 * starts over no sooner than the Status's retryAfterSeconds; without one the
 * plain backoff applies. A 403 ERROR event lists again after a backoff.
 */
static void test_streamed_list_error_event_retry_after(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.watch_list = true;
        start_paged(f, &o);

        fake_req *w = wait_req(f, 0);
        assert_int_equal(stream(w, event("ADDED", "a", "5")), 0);
        double t0 = kube_now();
        assert_true(
            stream(w,
                   "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":429,"
                   "\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":1}}}\n") < 0);
        assert_int_equal(f->list_aborts, 1);
        assert_true(stats(f).last_delay >= 1.0);
        fake_req *w2 = wait_req(f, 1);
        assert_true(is_stream_list(w2));
        assert_true(w2->at - t0 >= 0.99);

        /* 503 without Retry-After: the plain backoff (0.02 s: the second failure). */
        t0 = kube_now();
        assert_true(stream(w2, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":503,"
                               "\"reason\":\"ServiceUnavailable\"}}\n") < 0);
        fake_req *w3 = wait_req(f, 2);
        assert_true(is_stream_list(w3));
        assert_true(w3->at - t0 < 0.5);

        /* 403: not a retry, a relist after the backoff all the same. */
        assert_true(stream(w3, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":403,"
                               "\"reason\":\"Forbidden\"}}\n") < 0);
        fake_req *w4 = wait_req(f, 3);
        assert_true(is_stream_list(w4));
        assert_int_equal(stream(w4, end_bookmark("60")), 0);
        assert_int_equal(f->synced, 1);
        kube_reflector_stats s = stats(f);
        assert_int_equal(s.relists_gone, 0);
        assert_int_equal(s.failures_total, 3);
}

/*
 * A server without streamed lists: 422 for sendInitialEvents (the WatchList
 * feature off), or plain bookmarks and no end (one that ignores the
 * parameter). Paged LISTs from then on, at once, without a failure.
 */
static void test_streamed_list_fallback(void **state) {
        for (int way = 0; way < 2; way++) {
                fixture *f = *state;
                kube_reflector_transport tr = transport(f);
                kube_reflector_opts o = base_opts(f, &tr);
                o.watch_list = true;
                o.page_size = 2;
                start_paged(f, &o);
                fake_req *w = wait_req(f, 0);
                assert_true(is_stream_list(w));
                if (way == 0) {
                        const char *st = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
                                         "\"Failure\",\"reason\":\"Invalid\",\"code\":422}";
                        kube_response resp = {.http_status = 422,
                                              .error =
                                                  kube_error_from_http(422, KUBE_REASON_INVALID),
                                              .body = st,
                                              .body_len = strlen(st)};
                        finish(w, &resp);
                } else {
                        assert_int_equal(stream(w, event("ADDED", "a", "5")), 0);
                        assert_true(stream(w, bookmark("9")) < 0);
                }
                fake_req *l = wait_req(f, 1);
                assert_false(is_watch(l));
                assert_non_null(strstr(l->path, "limit=2"));
                assert_int_equal(f->list_aborts, 1);
                reply_page(l, "70", NULL, 0, 2);
                assert_int_equal(kube_store_count(f->store), 2);
                assert_int_equal(f->synced, 1);
                kube_reflector_stats s = stats(f);
                assert_int_equal(s.watch_list_fallbacks, 1);
                assert_int_equal(s.failures_total, 0);
                /* The relist after a 410 pages too. */
                fake_req *w2 = wait_req(f, 2);
                assert_true(is_watch(w2));
                reply_error(w2, 410, 0);
                assert_false(is_watch(wait_req(f, 3)));
                teardown(state);
                setup(state);
        }
}

/*
 * Hostile streams during the initial events: an event over max_event or
 * nested deeper than the framer's limit drops what was taken and lists again
 * after a backoff; duplicate keys are json-c's (the last one wins).
 */
static void test_streamed_list_hostile(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        o.watch_list = true;
        o.max_event = 1024;
        start_paged(f, &o);

        fake_req *w = wait_req(f, 0);
        assert_int_equal(stream(w, event("ADDED", "a", "5")), 0);
        char big[2048];
        snprintf(big, sizeof(big),
                 "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"big\","
                 "\"annotations\":{\"x\":\"%01500d\"}}}}\n",
                 0);
        assert_int_equal(stream(w, big), -EMSGSIZE);
        assert_int_equal(f->list_aborts, 1);
        assert_int_equal(staged(f), 0);

        w = wait_req(f, 1);
        assert_true(is_stream_list(w));
        char deep[1024] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"d\",\"x\":";
        for (int i = 0; i < 80; i++) strcat(deep, "[");
        for (int i = 0; i < 80; i++) strcat(deep, "]");
        strcat(deep, "}}}\n");
        assert_true(stream(w, deep) < 0);
        assert_int_equal(f->list_aborts, 2);

        w = wait_req(f, 2);
        assert_true(is_stream_list(w));
        assert_int_equal(
            stream(w, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\","
                      "\"resourceVersion\":\"1\"}},\"object\":{\"metadata\":{\"name\":\"y\","
                      "\"name\":\"z\",\"resourceVersion\":\"2\"}}}\n"),
            0);
        assert_int_equal(stream(w, end_bookmark("20")), 0);
        assert_int_equal(kube_store_count(f->store), 1);
        assert_non_null(kube_store_get(f->store, NULL, "z"));
        assert_int_equal(f->synced, 1);
        assert_int_equal(stats(f).failures_total, 2);
}

static void test_free_inside_event_handler(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        fake_req *w = sync_to_watch(f, &o, "100", 1);
        f->free_in_event = true;
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", event("ADDED", "a", "101"));
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s", event("ADDED", "b", "102"));
        /* The data callback reports the stop; on_done (made by stream()) frees. */
        assert_int_equal(stream(w, buf), -ECANCELED);
        assert_null(f->r);
        assert_int_equal(f->n_events, 1);
        assert_false(w->cancelled);
        run_for(f, 0.05);
        assert_int_equal(f->n, 2);
}

static void test_stop_inside_replace(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        f->stop_in_replace = true;
        start_with(f, &o);
        reply_list(wait_req(f, 0), "1", 1);
        assert_int_equal(f->replaces, 1);
        assert_int_equal(f->synced, 0);
        run_for(f, 0.05);
        assert_int_equal(f->n, 1); /* no watch */
        assert_false(stats(f).running);
        /* A restart lists again. */
        f->stop_in_replace = false;
        assert_int_equal(kube_reflector_start(f->r), 0);
        reply_list(wait_req(f, 1), "2", 1);
        assert_int_equal(f->synced, 1);
        assert_true(is_watch(wait_req(f, 2)));
}

static void test_free_inside_synced(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        f->free_in_synced = true;
        start_with(f, &o);
        reply_list(wait_req(f, 0), "1", 1);
        assert_null(f->r);
        run_for(f, 0.05);
        assert_int_equal(f->n, 1);
}

static void test_rewatch_hook(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        assert_int_equal(kube_reflector_new(NULL, &o, &handlers, f, &f->r), 0);
        assert_int_equal(kube_reflector_rewatch(f->r, NULL), -ENOTCONN);
        assert_int_equal(kube_reflector_start(f->r), 0);
        assert_int_equal(kube_reflector_rewatch(f->r, NULL), -EAGAIN); /* listing */
        reply_list(wait_req(f, 0), "100", 1);
        fake_req *w = wait_req(f, 1);
        char long_rv[KUBE_REFLECTOR_RV_MAX + 2];
        memset(long_rv, '7', sizeof(long_rv) - 1);
        long_rv[sizeof(long_rv) - 1] = 0;
        assert_int_equal(kube_reflector_rewatch(f->r, long_rv), -EINVAL);
        assert_int_equal(kube_reflector_rewatch(f->r, "1"), 0);
        assert_true(w->cancelled);
        fake_req *w2 = wait_req(f, 2);
        const char *rvp = strstr(w2->path, "&resourceVersion=");
        assert_non_null(rvp);
        assert_string_equal(rvp, "&resourceVersion=1");
        assert_int_equal(stats(f).lists, 1);
}

static void test_new_invalid(void **state) {
        fixture *f = *state;
        kube_reflector_transport tr = transport(f);
        kube_reflector_opts o = base_opts(f, &tr);
        kube_reflector *r = NULL;

        o.resource = NULL;
        assert_int_equal(kube_reflector_new(NULL, &o, &handlers, f, &r), -EINVAL);
        o = base_opts(f, &tr);
        o.resource = &KUBE_RES_NAMESPACES; /* cluster-scoped with a namespace */
        assert_int_equal(kube_reflector_new(NULL, &o, &handlers, f, &r), -EINVAL);
        o = base_opts(f, &tr);
        o.namespace = "a/b";
        assert_int_equal(kube_reflector_new(NULL, &o, &handlers, f, &r), -EINVAL);
        o = base_opts(f, &tr);
        o.transport = NULL; /* and no client */
        assert_int_equal(kube_reflector_new(NULL, &o, &handlers, f, &r), -EINVAL);
        o = base_opts(f, &tr);
        char *sel = malloc(5000);
        memset(sel, 'a', 4999);
        sel[4999] = 0;
        o.label_selector = sel;
        assert_int_equal(kube_reflector_new(NULL, &o, &handlers, f, &r), -E2BIG);
        free(sel);
        assert_null(r);
        assert_null(kube_reflector_free(NULL));
        kube_reflector_stop(NULL);
}

int main(void) {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
        const struct CMUnitTest tests[] = {
            T(test_list_then_watch),
            T(test_paginated_list),
            T(test_continue_expired_full_list_after_backoff),
            T(test_watch_gone_event_relists),
            T(test_watch_http_410_relists),
            T(test_server_end_rewatches_without_relist),
            T(test_transport_errors_rewatch),
            T(test_429_retry_after),
            T(test_list_failures_backoff),
            T(test_backoff_grows_and_resets),
            T(test_jitter_bounds),
            T(test_idle_timeout),
            T(test_other_errors_relist),
            T(test_handler_failure_relists),
            T(test_refused_object_skipped_without_relist),
            T(test_metadata_only),
            T(test_event_too_big),
            T(test_free_inside_event_handler),
            T(test_stop_inside_replace),
            T(test_free_inside_synced),
            T(test_rewatch_hook),
            T(test_new_invalid),
            T(test_paged_list_hands_over_each_page),
            T(test_paged_list_gone_mid_list),
            T(test_paged_list_handler_error),
            T(test_streamed_list),
            T(test_streamed_list_gone),
            T(test_streamed_list_error_event_retry_after),
            T(test_streamed_list_fallback),
            T(test_streamed_list_hostile),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
