/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_client against the real kube-apiserver of hack/testenv.sh: CRUD on
 * namespaces and service accounts, paginated lists, optimistic concurrency,
 * the three patch types and server-side apply, typed API errors (404, 409,
 * 422 with causes, 401, 403), a watch stream, many concurrent requests, and
 * TLS verification with the kubeconfig's CA (and failures with a wrong one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultproxy.h"
#include "kube/client.h"
#include "testenv.h"
#include "util/macro.h"

typedef struct resp {
        bool done;
        long http;
        int err;
        struct json_object *json; /* the body of a 2xx answer */
        kube_status_reason reason;
        char message[512];
        char status_name[128];
        size_t n_causes;
        char cause_field[128];
        char cause_type[64];
} resp;

static struct ev_loop *loop;
static kube_config *cfg;
static kube_client *client;
static char tmpdir[64];

static void on_done(kube_client *c, const kube_response *r, void *ud) {
        resp *x = ud;
        x->done = true;
        x->http = r->http_status;
        x->err = r->error;
        if (r->error == 0 && r->body && r->body_len) x->json = json_tokener_parse(r->body);
        if (r->status) {
                x->reason = r->status->reason;
                snprintf(x->message, sizeof(x->message), "%s", r->status->message);
                snprintf(x->status_name, sizeof(x->status_name), "%s", r->status->details.name);
                x->n_causes = r->status->details.n_causes;
                if (x->n_causes) {
                        snprintf(x->cause_field, sizeof(x->cause_field), "%s",
                                 r->status->details.causes[0].field);
                        snprintf(x->cause_type, sizeof(x->cause_type), "%s",
                                 r->status->details.causes[0].type);
                }
        }
}

static void failsafe_cb(struct ev_loop *l, ev_timer *w, int revents) {
        *(bool *)w->data = true;
}

/* Runs the loop until *flag is set; fails the test after 30 s. */
static void run_until(bool *flag) {
        bool expired = false;
        ev_timer t;
        ev_now_update(loop); /* after blocking calls (kubectl, testenv restarts) */
        ev_timer_init(&t, failsafe_cb, 30., 0.);
        t.data = &expired;
        ev_timer_start(loop, &t);
        while (!*flag && !expired) ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &t);
        assert_false(expired);
}

static void resp_clear(resp *r) {
        json_object_put(r->json);
        memset(r, 0, sizeof(*r));
}

static void call_with(kube_client *c, kube_method m, const char *path, const char *body,
                      kube_patch_type pt, resp *out) {
        memset(out, 0, sizeof(*out));
        kube_request_opts o = {.method = m,
                               .path = path,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .patch_type = pt,
                               .on_done = on_done,
                               .userdata = out};
        assert_int_equal(kube_client_request(c, &o, NULL), 0);
        run_until(&out->done);
}

static void call(kube_method m, const char *path, const char *body, kube_patch_type pt, resp *out) {
        call_with(client, m, path, body, pt, out);
}

static const char *jstr(struct json_object *o, const char *dotted) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", dotted);
        char *save = NULL;
        for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(o, k, &o)) o = NULL;
        return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static char *path_fmt(const char *fmt, ...) _printf_(1, 2);
static char *path_fmt(const char *fmt, ...) {
        char *p = NULL;
        va_list ap;
        va_start(ap, fmt);
        assert_true(vasprintf(&p, fmt, ap) > 0);
        va_end(ap);
        return p;
}

static char *create_namespace(void) {
        char *ns = testenv_unique_name("client");
        assert_non_null(ns);
        _cleanup_free_ char *body =
            path_fmt("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
                     "\"%s\"}}",
                     ns);
        resp r;
        call(KUBE_POST, "/api/v1/namespaces", body, 0, &r);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.http, 201);
        resp_clear(&r);
        return ns;
}

static void delete_namespace(const char *ns) {
        _cleanup_free_ char *p = path_fmt("/api/v1/namespaces/%s", ns);
        resp r;
        call(KUBE_DELETE, p, NULL, 0, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);
}

static int group_setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        loop = ev_loop_new(EVFLAG_AUTO);
        char *err = NULL;
        if (kube_config_load_kubeconfig(testenv_kubeconfig(), NULL, &cfg, &err) < 0) {
                fprintf(stderr, "kubeconfig: %s\n", err);
                free(err);
                return -1;
        }
        kube_client_opts o = {.qps = 100, .burst = 200, .user_agent = "pullpolicy-client-test"};
        if (kube_client_new(loop, cfg, &o, &client) < 0) return -1;
        strcpy(tmpdir, "/tmp/kube-client-crud-XXXXXX");
        if (!mkdtemp(tmpdir)) return -1;
        return 0;
}

static int group_teardown(void **state) {
        kube_client_free(client);
        kube_config_free(cfg);
        ev_loop_destroy(loop);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) return -1;
        return 0;
}

static void test_namespace_crud(void **state) {
        char *ns = create_namespace();
        _cleanup_free_ char *p = path_fmt("/api/v1/namespaces/%s", ns);
        resp r;
        call(KUBE_GET, p, NULL, 0, &r);
        assert_int_equal(r.err, 0);
        assert_string_equal(jstr(r.json, "metadata.name"), ns);
        assert_string_equal(jstr(r.json, "status.phase"), "Active");
        resp_clear(&r);

        /* Again: 409 AlreadyExists, distinct from a Conflict. */
        _cleanup_free_ char *body = path_fmt("{\"metadata\":{\"name\":\"%s\"}}", ns);
        call(KUBE_POST, "/api/v1/namespaces", body, 0, &r);
        assert_int_equal(r.http, 409);
        assert_int_equal(r.reason, KUBE_REASON_ALREADY_EXISTS);
        assert_true(kube_error_is_already_exists(r.err));
        assert_false(kube_error_is_conflict(r.err));
        assert_string_equal(r.status_name, ns);
        resp_clear(&r);

        call(KUBE_DELETE, p, NULL, 0, &r);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.http, 200);
        /* The namespace object comes back, now terminating. */
        assert_string_equal(jstr(r.json, "status.phase"), "Terminating");
        resp_clear(&r);
        free(ns);
}

static void test_not_found(void **state) {
        resp r;
        call(KUBE_GET, "/api/v1/namespaces/no-such-namespace-for-client-test", NULL, 0, &r);
        assert_int_equal(r.http, 404);
        assert_true(kube_error_is_not_found(r.err));
        assert_int_equal(r.reason, KUBE_REASON_NOT_FOUND);
        assert_string_equal(r.status_name, "no-such-namespace-for-client-test");
        assert_non_null(strstr(r.message, "not found"));
        assert_null(r.json);
}

static void test_serviceaccount_crud(void **state) {
        char *ns = create_namespace();
        _cleanup_free_ char *coll = path_fmt("/api/v1/namespaces/%s/serviceaccounts", ns),
                            *obj = path_fmt("%s/builder", coll);
        resp r;
        call(KUBE_POST, coll,
             "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
             "\"builder\"}}",
             0, &r);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.http, 201);
        resp_clear(&r);

        call(KUBE_GET, obj, NULL, 0, &r);
        assert_int_equal(r.err, 0);
        _cleanup_free_ char *rv1 = strdup(jstr(r.json, "metadata.resourceVersion"));
        resp_clear(&r);

        /* PUT with the current resourceVersion succeeds... */
        _cleanup_free_ char *put1 =
            path_fmt("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
                     "\"builder\",\"namespace\":\"%s\",\"resourceVersion\":\"%s\",\"labels\":{"
                     "\"v\":\"1\"}}}",
                     ns, rv1);
        call(KUBE_PUT, obj, put1, 0, &r);
        assert_int_equal(r.err, 0);
        assert_string_equal(jstr(r.json, "metadata.labels.v"), "1");
        assert_string_not_equal(jstr(r.json, "metadata.resourceVersion"), rv1);
        resp_clear(&r);

        /* ...and the same stale one again is a Conflict. */
        call(KUBE_PUT, obj, put1, 0, &r);
        assert_int_equal(r.http, 409);
        assert_int_equal(r.reason, KUBE_REASON_CONFLICT);
        assert_true(kube_error_is_conflict(r.err));
        assert_false(kube_error_is_already_exists(r.err));
        resp_clear(&r);

        /* Merge patch. */
        call(KUBE_PATCH, obj, "{\"metadata\":{\"labels\":{\"merge\":\"yes\"}}}", KUBE_PATCH_MERGE,
             &r);
        assert_int_equal(r.err, 0);
        assert_string_equal(jstr(r.json, "metadata.labels.merge"), "yes");
        assert_string_equal(jstr(r.json, "metadata.labels.v"), "1");
        resp_clear(&r);

        /* JSON patch, including a test op that fails -> 422. */
        call(KUBE_PATCH, obj,
             "[{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"a\":\"b\"}},"
             "{\"op\":\"remove\",\"path\":\"/metadata/labels/v\"}]",
             KUBE_PATCH_JSON, &r);
        assert_int_equal(r.err, 0);
        assert_string_equal(jstr(r.json, "metadata.annotations.a"), "b");
        assert_null(jstr(r.json, "metadata.labels.v"));
        resp_clear(&r);
        call(KUBE_PATCH, obj, "[{\"op\":\"test\",\"path\":\"/metadata/name\",\"value\":\"x\"}]",
             KUBE_PATCH_JSON, &r);
        assert_int_equal(r.http, 422);
        assert_true(kube_error_is_invalid(r.err));
        resp_clear(&r);

        /*
         * Strategic merge patch: "secrets" carries patchMergeKey=name, so two
         * patches add up; "imagePullSecrets" has no merge key and is replaced
         * as a whole (why the controller edits it read-modify-write).
         */
        call(KUBE_PATCH, obj,
             "{\"secrets\":[{\"name\":\"one\"}],\"imagePullSecrets\":[{\"name\":\"one\"}]}",
             KUBE_PATCH_STRATEGIC, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);
        call(KUBE_PATCH, obj,
             "{\"secrets\":[{\"name\":\"two\"}],\"imagePullSecrets\":[{\"name\":\"two\"}]}",
             KUBE_PATCH_STRATEGIC, &r);
        assert_int_equal(r.err, 0);
        struct json_object *list;
        assert_true(json_object_object_get_ex(r.json, "secrets", &list));
        assert_int_equal(json_object_array_length(list), 2);
        assert_true(json_object_object_get_ex(r.json, "imagePullSecrets", &list));
        assert_int_equal(json_object_array_length(list), 1);
        assert_string_equal(jstr(json_object_array_get_idx(list, 0), "name"), "two");
        resp_clear(&r);

        /* Server-side apply with a field manager given in the query. */
        _cleanup_free_ char *apply_path = path_fmt("%s?fieldManager=pullpolicy-test", obj);
        _cleanup_free_ char *apply =
            path_fmt("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
                     "\"builder\",\"namespace\":\"%s\",\"labels\":{\"applied\":\"true\"}}}",
                     ns);
        call(KUBE_PATCH, apply_path, apply, KUBE_PATCH_APPLY, &r);
        assert_int_equal(r.err, 0);
        assert_string_equal(jstr(r.json, "metadata.labels.applied"), "true");
        struct json_object *mf;
        assert_true(json_object_object_get_ex(json_object_object_get(r.json, "metadata"),
                                              "managedFields", &mf));
        bool found = false;
        for (size_t i = 0; i < json_object_array_length(mf); i++) {
                struct json_object *e = json_object_array_get_idx(mf, i);
                const char *mgr = jstr(e, "manager"), *op = jstr(e, "operation");
                if (mgr && op && !strcmp(mgr, "pullpolicy-test") && !strcmp(op, "Apply"))
                        found = true;
        }
        assert_true(found);
        resp_clear(&r);
        /* Apply without a field manager is refused by the server (400/422). */
        call(KUBE_PATCH, obj, apply, KUBE_PATCH_APPLY, &r);
        assert_true(kube_error_http_code(r.err) == 400 || kube_error_is_invalid(r.err));
        resp_clear(&r);

        /* Delete, then it is gone. */
        call(KUBE_DELETE, obj, NULL, 0, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);
        call(KUBE_GET, obj, NULL, 0, &r);
        assert_true(kube_error_is_not_found(r.err));
        assert_string_equal(r.status_name, "builder");
        resp_clear(&r);
        /* Deleting again: 404 too. */
        call(KUBE_DELETE, obj, NULL, 0, &r);
        assert_true(kube_error_is_not_found(r.err));
        resp_clear(&r);

        delete_namespace(ns);
        free(ns);
}

static void test_invalid_with_causes(void **state) {
        char *ns = create_namespace();
        _cleanup_free_ char *coll = path_fmt("/api/v1/namespaces/%s/serviceaccounts", ns);
        resp r;
        call(KUBE_POST, coll,
             "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{"
             "\"name\":\"Bad_Name\"}}",
             0, &r);
        assert_int_equal(r.http, 422);
        assert_int_equal(r.reason, KUBE_REASON_INVALID);
        assert_true(kube_error_is_invalid(r.err));
        assert_true(r.n_causes >= 1);
        assert_string_equal(r.cause_field, "metadata.name");
        assert_string_equal(r.cause_type, "FieldValueInvalid");
        resp_clear(&r);

        /* Malformed JSON: 400. */
        call(KUBE_POST, coll, "{not json", 0, &r);
        assert_int_equal(r.http, 400);
        assert_int_equal(kube_error_http_code(r.err), 400);
        resp_clear(&r);
        delete_namespace(ns);
        free(ns);
}

static void test_list_paginated(void **state) {
        char *ns = create_namespace();
        _cleanup_free_ char *coll = path_fmt("/api/v1/namespaces/%s/serviceaccounts", ns);
        enum { N = 7 };
        resp r;
        for (int i = 0; i < N; i++) {
                _cleanup_free_ char *b = path_fmt("{\"metadata\":{\"name\":\"sa-%d\","
                                                  "\"labels\":{\"set\":\"paged\"}}}",
                                                  i);
                call(KUBE_POST, coll, b, 0, &r);
                assert_int_equal(r.err, 0);
                resp_clear(&r);
        }
        _cleanup_free_ char *sel = NULL;
        assert_int_equal(kube_url_escape("set=paged", &sel), 0);

        int seen[N] = {0}, pages = 0, total = 0;
        char *cont = NULL;
        do {
                _cleanup_free_ char *p = NULL;
                if (cont) {
                        _cleanup_free_ char *esc = NULL;
                        assert_int_equal(kube_url_escape(cont, &esc), 0);
                        p = path_fmt("%s?limit=3&labelSelector=%s&continue=%s", coll, sel, esc);
                } else {
                        p = path_fmt("%s?limit=3&labelSelector=%s", coll, sel);
                }
                free(cont);
                cont = NULL;
                call(KUBE_GET, p, NULL, 0, &r);
                assert_int_equal(r.err, 0);
                pages++;
                struct json_object *items;
                assert_true(json_object_object_get_ex(r.json, "items", &items));
                assert_true(json_object_array_length(items) <= 3);
                for (size_t i = 0; i < json_object_array_length(items); i++) {
                        const char *name =
                            jstr(json_object_array_get_idx(items, i), "metadata.name");
                        int k;
                        assert_int_equal(sscanf(name, "sa-%d", &k), 1);
                        assert_true(k >= 0 && k < N);
                        seen[k]++;
                        total++;
                }
                const char *c = jstr(r.json, "metadata.continue");
                if (c && *c) cont = strdup(c);
                resp_clear(&r);
        } while (cont && pages < 10);
        assert_null(cont);
        assert_int_equal(pages, 3);
        assert_int_equal(total, N);
        for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);

        /* A bogus continue token: 400 or 410, never a silent restart. */
        _cleanup_free_ char *bad = path_fmt("%s?limit=3&continue=bm90LWEtdG9rZW4", coll);
        call(KUBE_GET, bad, NULL, 0, &r);
        assert_true(kube_error_http_code(r.err) == 400 || kube_error_is_gone(r.err));
        resp_clear(&r);

        delete_namespace(ns);
        free(ns);
}

/* ---- watch ---- */

typedef struct watch_state {
        char buf[65536];
        size_t len;
        bool saw_added;
        const char *want_name;
        resp done;
} watch_state;

static int watch_data(kube_client *c, const char *data, size_t len, void *ud) {
        watch_state *w = ud;
        if (w->len + len < sizeof(w->buf)) {
                memcpy(w->buf + w->len, data, len);
                w->len += len;
                w->buf[w->len] = 0;
        }
        char needle[160];
        snprintf(needle, sizeof(needle), "\"name\":\"%s\"", w->want_name);
        if (strstr(w->buf, "\"type\":\"ADDED\"") && strstr(w->buf, needle)) w->saw_added = true;
        return 0;
}

static void watch_done(kube_client *c, const kube_response *r, void *ud) {
        watch_state *w = ud;
        w->done.done = true;
        w->done.err = r->error;
        w->done.http = r->http_status;
}

/*
 * Starts, on c, a watch of the collection coll from its current resourceVersion (so that
 * only what happens from now on is reported), with bookmarks, into w.
 */
static kube_request *watch_from_now(kube_client *c, const char *coll, watch_state *w,
                                    long idle_timeout_ms) {
        resp r;
        call_with(c, KUBE_GET, coll, NULL, 0, &r);
        assert_int_equal(r.err, 0);
        _cleanup_free_ char *rv = strdup(jstr(r.json, "metadata.resourceVersion"));
        resp_clear(&r);

        _cleanup_free_ char *wp =
            path_fmt("%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s", coll, rv);
        kube_request_opts o = {.method = KUBE_GET,
                               .path = wp,
                               .on_data = watch_data,
                               .on_done = watch_done,
                               .userdata = w,
                               .no_rate_limit = true,
                               .idle_timeout_ms = idle_timeout_ms};
        kube_request *req = NULL;
        assert_int_equal(kube_client_request(c, &o, &req), 0);
        return req;
}

static void test_watch_stream(void **state) {
        char *ns = create_namespace();
        _cleanup_free_ char *coll = path_fmt("/api/v1/namespaces/%s/serviceaccounts", ns);
        resp r;
        watch_state w = {.want_name = "watched"};
        kube_request *req = watch_from_now(client, coll, &w, 120000);

        /* Create the object the watch should report. */
        call(KUBE_POST, coll, "{\"metadata\":{\"name\":\"watched\"}}", 0, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);
        run_until(&w.saw_added);
        assert_false(w.done.done);
        kube_request_cancel(req);

        delete_namespace(ns);
        free(ns);
}

/* ---- concurrency over one HTTP/2 connection ---- */

static void test_concurrent_watches_and_requests(void **state) {
        char *ns = create_namespace();
        _cleanup_free_ char *coll = path_fmt("/api/v1/namespaces/%s/serviceaccounts", ns);
        /* More watches than the apiserver's 100 streams per HTTP/2 connection. */
        enum { W = 120, N = 60 };
        watch_state *ws = calloc(W, sizeof(*ws));
        kube_request *wreq[W];
        resp *rs = calloc(N, sizeof(*rs));
        assert_non_null(ws);
        assert_non_null(rs);
        _cleanup_free_ char *wp = path_fmt("%s?watch=1", coll);
        kube_client_stats before;
        kube_client_get_stats(client, &before);
        for (int i = 0; i < W; i++) {
                ws[i].want_name = "concurrent-0";
                kube_request_opts o = {.method = KUBE_GET,
                                       .path = wp,
                                       .on_data = watch_data,
                                       .on_done = watch_done,
                                       .userdata = &ws[i],
                                       .no_rate_limit = true};
                assert_int_equal(kube_client_request(client, &o, &wreq[i]), 0);
        }
        char paths[N][160];
        for (int i = 0; i < N; i++) {
                snprintf(paths[i], sizeof(paths[i]), "/api/v1/namespaces/%s", ns);
                kube_request_opts o = {
                    .method = KUBE_GET, .path = paths[i], .on_done = on_done, .userdata = &rs[i]};
                assert_int_equal(kube_client_request(client, &o, NULL), 0);
        }
        for (int i = 0; i < N; i++) {
                run_until(&rs[i].done);
                assert_int_equal(rs[i].err, 0);
                assert_string_equal(jstr(rs[i].json, "metadata.name"), ns);
                resp_clear(&rs[i]);
        }
        /* All over HTTP/2, sharing a bounded number of connections. */
        kube_client_stats mid;
        kube_client_get_stats(client, &mid);
        assert_int_equal(mid.http2 - before.http2, N);
        assert_true(mid.connections - before.connections <= KUBE_CLIENT_MAX_H2_CONNECTIONS);
        resp r;
        call(KUBE_POST, coll, "{\"metadata\":{\"name\":\"concurrent-0\"}}", 0, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);
        for (int i = 0; i < W; i++) {
                run_until(&ws[i].saw_added);
                /* Each watch saw the event and is still open. */
                assert_false(ws[i].done.done);
        }
        for (int i = 0; i < W; i++) kube_request_cancel(wreq[i]);
        kube_client_stats st;
        kube_client_get_stats(client, &st);
        assert_int_equal(st.active, 0);
        free(ws);
        free(rs);
        delete_namespace(ns);
        free(ns);
}

/* ---- authentication and TLS ---- */

static char *write_tmp(const char *name, const char *content) {
        char *p = path_fmt("%s/%s", tmpdir, name);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
        return p;
}

/* A kubeconfig for the test server with the given cluster and user lines. */
static char *kubeconfig_with(const char *name, const char *cluster_extra, const char *user) {
        _cleanup_free_ char *kc =
            path_fmt("current-context: t\nclusters:\n- name: c\n  cluster:\n    server: %s\n%s"
                     "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
                     "users:\n- name: u\n  user:\n%s",
                     testenv_server(), cluster_extra, user);
        return write_tmp(name, kc);
}

/* One GET of /api with a client built from the kubeconfig at path. */
static int get_with(const char *kc_path, long *http) {
        kube_config *c = NULL;
        char *err = NULL;
        if (kube_config_load_kubeconfig(kc_path, NULL, &c, &err) < 0) fail_msg("%s", err);
        kube_client *cl = NULL;
        assert_int_equal(kube_client_new(loop, c, NULL, &cl), 0);
        resp r;
        call_with(cl, KUBE_GET, "/api/v1/namespaces/default", NULL, 0, &r);
        *http = r.http;
        int e = r.err;
        resp_clear(&r);
        kube_client_free(cl);
        kube_config_free(c);
        return e;
}

static void test_tls(void **state) {
        _cleanup_free_ char *ca = path_fmt("%s/pki/ca.crt", testenv_dir()),
                            *crt = path_fmt("%s/pki/admin.crt", testenv_dir()),
                            *key = path_fmt("%s/pki/admin.key", testenv_dir());
        _cleanup_free_ char *user =
            path_fmt("    client-certificate: %s\n    client-key: %s\n", crt, key);
        long http;

        /* The testenv's own file-based kubeconfig (PKCS#1 key from a file). */
        kube_config *c = NULL;
        char *err = NULL;
        assert_int_equal(kube_config_load_kubeconfig(testenv_kubeconfig_files(), NULL, &c, &err),
                         0);
        kube_client *cl = NULL;
        assert_int_equal(kube_client_new(loop, c, NULL, &cl), 0);
        resp r;
        call_with(cl, KUBE_GET, "/api/v1/namespaces/default", NULL, 0, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);
        kube_client_free(cl);
        kube_config_free(c);

        /* The right CA verifies, including through tls-server-name. */
        _cleanup_free_ char *cl1 = path_fmt("    certificate-authority: %s\n", ca);
        _cleanup_free_ char *good = kubeconfig_with("good", cl1, user);
        assert_int_equal(get_with(good, &http), 0);
        assert_int_equal(http, 200);
        _cleanup_free_ char *cl2 = path_fmt("    certificate-authority: %s\n"
                                            "    tls-server-name: kubernetes.default\n",
                                            ca);
        _cleanup_free_ char *sni = kubeconfig_with("sni", cl2, user);
        assert_int_equal(get_with(sni, &http), 0);

        /* A name the certificate does not carry fails. */
        _cleanup_free_ char *cl3 = path_fmt("    certificate-authority: %s\n"
                                            "    tls-server-name: wrong.example\n",
                                            ca);
        _cleanup_free_ char *badname = kubeconfig_with("badname", cl3, user);
        assert_int_equal(get_with(badname, &http), -EPROTO);
        assert_int_equal(http, 0);

        /* A different, valid CA fails verification. */
        _cleanup_free_ char *cmd =
            path_fmt("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=wrong-ca "
                     "-keyout '%s/wrong.key' -out '%s/wrong.crt' >/dev/null 2>&1",
                     tmpdir, tmpdir);
        assert_int_equal(system(cmd), 0);
        _cleanup_free_ char *cl4 = path_fmt("    certificate-authority: %s/wrong.crt\n", tmpdir);
        _cleanup_free_ char *wrong = kubeconfig_with("wrong", cl4, user);
        assert_int_equal(get_with(wrong, &http), -EPROTO);
        assert_int_equal(http, 0);

        /* No CA at all: the system store does not know the test CA. */
        _cleanup_free_ char *noca = kubeconfig_with("noca", "", user);
        assert_int_equal(get_with(noca, &http), -EPROTO);

        /* Only an explicit insecure-skip-tls-verify turns verification off. */
        _cleanup_free_ char *insecure =
            kubeconfig_with("insecure", "    insecure-skip-tls-verify: true\n", user);
        assert_int_equal(get_with(insecure, &http), 0);
}

static void test_auth_errors(void **state) {
        _cleanup_free_ char *ca = path_fmt("%s/pki/ca.crt", testenv_dir());
        _cleanup_free_ char *cl = path_fmt("    certificate-authority: %s\n", ca);
        long http;

        /* A token the apiserver does not know: 401. */
        _cleanup_free_ char *bogus = kubeconfig_with("bogus", cl, "    token: not-a-real-token\n");
        int e = get_with(bogus, &http);
        assert_int_equal(http, 401);
        assert_true(kube_error_is_unauthorized(e));

        /* A real service-account token without RBAC: 403. */
        char *ns = create_namespace();
        resp r;
        _cleanup_free_ char *coll = path_fmt("/api/v1/namespaces/%s/serviceaccounts", ns);
        call(KUBE_POST, coll, "{\"metadata\":{\"name\":\"nobody\"}}", 0, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);
        _cleanup_free_ char *tr = path_fmt("%s/nobody/token", coll);
        call(KUBE_POST, tr,
             "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
             "\"spec\":{\"expirationSeconds\":600}}",
             0, &r);
        assert_int_equal(r.err, 0);
        const char *token = jstr(r.json, "status.token");
        assert_non_null(token);
        _cleanup_free_ char *tokfile = write_tmp("sa-token", token);
        resp_clear(&r);
        _cleanup_free_ char *u = path_fmt("    tokenFile: %s\n", tokfile);
        _cleanup_free_ char *sa = kubeconfig_with("sa", cl, u);
        e = get_with(sa, &http);
        assert_int_equal(http, 403);
        assert_true(kube_error_is_forbidden(e));
        delete_namespace(ns);
        free(ns);
}

/* ---- the apiserver goes away and comes back ---- */

static void test_apiserver_restart(void **state) {
        watch_state w = {.want_name = "never"};
        kube_request_opts o = {.method = KUBE_GET,
                               .path = "/api/v1/namespaces?watch=1",
                               .on_data = watch_data,
                               .on_done = watch_done,
                               .userdata = &w,
                               .no_rate_limit = true};
        kube_request *req = NULL;
        assert_int_equal(kube_client_request(client, &o, &req), 0);
        /* The watch is established once the initial ADDED events arrive. */
        while (w.len == 0) {
                bool tick = false;
                ev_timer t;
                ev_timer_init(&t, failsafe_cb, 0.05, 0.);
                t.data = &tick;
                ev_timer_start(loop, &t);
                run_until(&tick);
        }

        assert_int_equal(testenv_stop_apiserver(), 0);
        /* The open watch ends: cleanly (the server's shutdown) or with a transport error. */
        run_until(&w.done.done);
        assert_true(w.done.err == 0 || kube_error_is_retryable(w.done.err));

        resp r;
        call(KUBE_GET, "/api/v1/namespaces/default", NULL, 0, &r);
        assert_int_equal(r.http, 0);
        /* Refused, or reset when curl first tried a pooled connection the server closed. */
        assert_true(r.err == -ECONNREFUSED || r.err == -ECONNRESET);
        assert_true(kube_error_is_retryable(r.err));
        resp_clear(&r);

        assert_int_equal(testenv_start_apiserver(), 0);
        call(KUBE_GET, "/api/v1/namespaces/default", NULL, 0, &r);
        assert_int_equal(r.err, 0);
        assert_string_equal(jstr(r.json, "metadata.name"), "default");
        resp_clear(&r);
}

/*
 * Issue 7 item 9: an HTTP/2 connection that goes silent (a peer that keeps TCP
 * up but forwards nothing: the fault proxy's stall) is found within ~30 s, as
 * client-go finds it with ReadIdleTimeout + PingTimeout (30 + 15 s), not by
 * the stream's own idle timeout (the reflector's is 150 s).
 */
static void test_stalled_connection_found(void **state) {
        faultproxy *p = NULL;
        assert_int_equal(faultproxy_start_url(testenv_server(), &p), 0);
        char kc[512];
        snprintf(kc, sizeof(kc), "%s/kubeconfig-stall", tmpdir);
        assert_int_equal(faultproxy_write_kubeconfig(p, testenv_kubeconfig(), testenv_server(), kc),
                         0);
        kube_config *pcfg = NULL;
        char *err = NULL;
        assert_int_equal(kube_config_load_kubeconfig(kc, NULL, &pcfg, &err), 0);
        kube_client *pc = NULL;
        assert_int_equal(kube_client_new(loop, pcfg, NULL, &pc), 0);

        resp r;
        watch_state w = {.want_name = "-"};
        watch_from_now(pc, "/api/v1/namespaces/default/configmaps", &w, 150000);
        /* Let the watch reach the server, then stall every open connection. */
        bool settled = false;
        ev_timer t;
        ev_timer_init(&t, failsafe_cb, 1., 0.);
        t.data = &settled;
        ev_timer_start(loop, &t);
        run_until(&settled);
        assert_true(faultproxy_stall(p, true) >= 1);

        ev_now_update(loop);
        ev_tstamp t0 = ev_now(loop);
        bool expired = false;
        ev_timer_init(&t, failsafe_cb, 100., 0.);
        t.data = &expired;
        ev_timer_start(loop, &t);
        while (!w.done.done && !expired) ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &t);
        ev_now_update(loop);
        double took = ev_now(loop) - t0;
        fprintf(stderr, "# stalled watch ended after %.1f s (error %d)\n", took, w.done.err);
        assert_true(w.done.done);
        assert_true(kube_error_is_transport(w.done.err));
        /* KUBE_CLIENT_READ_IDLE_S + KUBE_CLIENT_PING_TIMEOUT_S, with room for a slow machine. */
        assert_true(took < KUBE_CLIENT_READ_IDLE_S + KUBE_CLIENT_PING_TIMEOUT_S + 10);
        kube_client_stats st;
        kube_client_get_stats(pc, &st);
        assert_true(st.probes >= 1);
        assert_true(st.dead_connections >= 1);

        /* A new connection gets through (the proxy stalls only those open before). */
        call_with(pc, KUBE_GET, "/api/v1/namespaces/default", NULL, 0, &r);
        assert_int_equal(r.err, 0);
        resp_clear(&r);

        kube_client_free(pc);
        kube_config_free(pcfg);
        faultproxy_stop(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_namespace_crud),
            cmocka_unit_test(test_not_found),
            cmocka_unit_test(test_serviceaccount_crud),
            cmocka_unit_test(test_invalid_with_causes),
            cmocka_unit_test(test_list_paginated),
            cmocka_unit_test(test_watch_stream),
            cmocka_unit_test(test_concurrent_watches_and_requests),
            cmocka_unit_test(test_tls),
            cmocka_unit_test(test_auth_errors),
            cmocka_unit_test(test_apiserver_restart),
            cmocka_unit_test(test_stalled_connection_found),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
