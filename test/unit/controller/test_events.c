/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "metrics.h"
#include "util/macro.h"

/* With no client the recorder runs its filters and counts what it would send. */
static const pp_object_ref policy = {"pullpolicy.io/v1alpha1", "PullPolicy", "project-b", "p",
                                     "uid-1"};

static void test_dedupe_window(void **state) {
        pp_events *e = NULL;
        assert_int_equal(pp_events_new(NULL, NULL, &e), 0);
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked x", 0), 1);
        /* The same message again inside ten minutes is only counted. */
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked x", 10), 0);
        /* A different message, or the same after the window, goes out. */
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked y", 11), 1);
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked y", 700), 1);
        pp_events_stats st;
        pp_events_get_stats(e, &st);
        assert_int_equal(st.sent, 3);
        assert_int_equal(st.suppressed, 1);
        pp_events_free(e);
}

static void test_spam_filter_per_object(void **state) {
        pp_events *e = NULL;
        /* Aggregation off (similar_max above the flood) to see the token bucket alone. */
        pp_events_opts o = {.burst = 3, .refill_seconds = 100, .similar_max = 1000};
        assert_int_equal(pp_events_new(NULL, &o, &e), 0);
        char msg[32];
        int sent = 0;
        for (int i = 0; i < 50; i++) {
                snprintf(msg, sizeof(msg), "flap %d", i);
                sent += pp_events_record(e, &policy, true, "Conflict", msg, 1.0);
        }
        assert_int_equal(sent, 3);
        /* Another object has its own bucket. */
        pp_object_ref other = policy;
        other.name = "q";
        assert_int_equal(pp_events_record(e, &other, true, "Conflict", "x", 1.0), 1);
        /* One token returns after the refill interval, not more. */
        assert_int_equal(pp_events_record(e, &policy, true, "Conflict", "late 1", 101.5), 1);
        assert_int_equal(pp_events_record(e, &policy, true, "Conflict", "late 2", 101.5), 0);
        pp_events_free(e);
}

static void test_bounded_memory(void **state) {
        pp_events *e = NULL;
        pp_events_opts o = {.max_objects = 8};
        assert_int_equal(pp_events_new(NULL, &o, &e), 0);
        char name[32];
        for (int i = 0; i < 1000; i++) {
                pp_object_ref r = policy;
                snprintf(name, sizeof(name), "p%d", i);
                r.name = name;
                assert_int_equal(pp_events_record(e, &r, false, "Linked", "m", i), 1);
        }
        pp_events_free(e);
}

/* ---- requests seen through the observe hook ---- */

#define MAX_SEEN 2048

typedef struct seen {
        kube_method method;
        char *path;
        json_object *body;
} seen;

typedef struct recorder {
        seen reqs[MAX_SEEN];
        size_t n;
} recorder;

static void observe(void *userdata, kube_method method, const char *path, const char *body) {
        recorder *rec = userdata;
        if (rec->n >= MAX_SEEN) fail_msg("more than %d requests", MAX_SEEN);
        seen *s = &rec->reqs[rec->n++];
        s->method = method;
        s->path = strdup(path);
        s->body = json_tokener_parse(body);
        assert_non_null(s->path);
        assert_non_null(s->body);
}

static void recorder_done(recorder *rec) {
        for (size_t i = 0; i < rec->n; i++) {
                free(rec->reqs[i].path);
                json_object_put(rec->reqs[i].body);
        }
        rec->n = 0;
}

static const char *body_str(const seen *s, const char *key) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(s->body, key, &v)) return NULL;
        return json_object_get_string(v);
}

static const char *involved_name(const seen *s) {
        json_object *io = NULL, *v = NULL;
        if (!json_object_object_get_ex(s->body, "involvedObject", &io)) return NULL;
        if (!json_object_object_get_ex(io, "name", &v)) return NULL;
        return json_object_get_string(v);
}

static int body_count(const seen *s) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(s->body, "count", &v)) return -1;
        return json_object_get_int(v);
}

static size_t count_posts(const recorder *rec, const char *type, const char *reason) {
        size_t n = 0;
        for (size_t i = 0; i < rec->n; i++)
                if (rec->reqs[i].method == KUBE_POST &&
                    streq_ptr(body_str(&rec->reqs[i], "type"), type) &&
                    streq_ptr(body_str(&rec->reqs[i], "reason"), reason))
                        n++;
        return n;
}

static pp_events *new_observed(recorder *rec, pp_events_opts *o) {
        pp_events_opts def = {0};
        if (!o) o = &def;
        o->observe = observe;
        o->observe_userdata = rec;
        pp_events *e = NULL;
        assert_int_equal(pp_events_new(NULL, o, &e), 0);
        return e;
}

static void linked_flood(pp_events *e, const pp_object_ref *obj, int first, int n, double now) {
        char msg[128];
        for (int i = first; i < first + n; i++) {
                snprintf(
                    msg, sizeof(msg),
                    "linked secret quay-creds to service account t%d/default (imagePullSecrets)",
                    i);
                assert_true(pp_events_record(e, obj, false, "Linked", msg, now) >= 0);
        }
}

#define TIMEOUT_MSG                                                                                \
        "service account t5/builder has no dockercfg secret after 300s; linked without waiting "   \
        "any "                                                                                     \
        "longer"

/* A wide policy's Linked events must not use up the budget of its warnings. */
static void test_warning_not_starved_by_normals(void **state) {
        recorder rec = {0};
        pp_events *e = new_observed(&rec, NULL);
        linked_flood(e, &policy, 0, 1000, 1.0);
        assert_int_equal(pp_events_record(e, &policy, true, "DockercfgTimeout", TIMEOUT_MSG, 1.0),
                         1);
        assert_int_equal(count_posts(&rec, "Warning", "DockercfgTimeout"), 1);
        const seen *last = &rec.reqs[rec.n - 1];
        assert_string_equal(body_str(last, "message"), TIMEOUT_MSG);
        pp_events_free(e);
        recorder_done(&rec);
}

/* Similar normal events: a few one by one, then one event that says how many it stands for. */
static void test_similar_normals_aggregated(void **state) {
        recorder rec = {0};
        pp_events *e = new_observed(&rec, NULL);
        linked_flood(e, &policy, 0, 1000, 1.0);
        assert_int_equal(count_posts(&rec, "Normal", "Linked"), 10);
        assert_int_equal(pp_events_flush(e, 2.0), 1);
        assert_int_equal(count_posts(&rec, "Normal", "Linked"), 11);
        const seen *agg = &rec.reqs[rec.n - 1];
        assert_int_equal(agg->method, KUBE_POST);
        assert_int_equal(body_count(agg), 990);
        assert_string_equal(body_str(agg, "message"),
                            "(combined from 990 similar events): linked secret quay-creds to "
                            "service account t999/default (imagePullSecrets)");
        assert_string_equal(involved_name(agg), "p");
        pp_events_stats st;
        pp_events_get_stats(e, &st);
        assert_int_equal(st.sent, 11);
        assert_int_equal(st.combined, 990);
        /* Nothing new: a flush sends nothing. */
        assert_int_equal(pp_events_flush(e, 3.0), 0);

        /* More of the same are counted on that event, by a PATCH of count and message. */
        char *agg_name = strdup(json_object_get_string(
            json_object_object_get(json_object_object_get(agg->body, "metadata"), "name")));
        assert_non_null(agg_name);
        linked_flood(e, &policy, 1000, 5, 4.0);
        assert_int_equal(pp_events_flush(e, 5.0), 1);
        const seen *patch = &rec.reqs[rec.n - 1];
        assert_int_equal(patch->method, KUBE_PATCH);
        char want_path[256];
        snprintf(want_path, sizeof(want_path), "/api/v1/namespaces/project-b/events/%s", agg_name);
        assert_string_equal(patch->path, want_path);
        assert_int_equal(body_count(patch), 995);
        assert_non_null(strstr(body_str(patch, "message"), "(combined from 995 similar events): "));
        assert_non_null(body_str(patch, "lastTimestamp"));
        assert_int_equal(count_posts(&rec, "Normal", "Linked"), 11);

        /* Ten quiet minutes end the series: the next one goes out on its own again. */
        assert_int_equal(
            pp_events_record(e, &policy, false, "Linked", "linked secret a to b/c", 700), 1);
        free(agg_name);
        pp_events_free(e);
        recorder_done(&rec);
}

/* Aggregation is per (object, type, reason): other objects and other reasons stay apart. */
static void test_distinct_objects_not_merged(void **state) {
        recorder rec = {0};
        pp_events *e = new_observed(&rec, NULL);
        pp_object_ref objs[3] = {policy, policy, policy};
        objs[1].name = "q";
        objs[2].namespace = "project-c"; /* same name, other namespace */
        for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
                linked_flood(e, &objs[i], 0, 12, 1.0);
        char msg[64];
        for (int i = 0; i < 12; i++) {
                snprintf(msg, sizeof(msg), "unlinked secret s%d", i);
                assert_true(pp_events_record(e, &policy, false, "Unlinked", msg, 1.0) >= 0);
        }
        assert_int_equal(count_posts(&rec, "Normal", "Linked"), 30);
        assert_int_equal(count_posts(&rec, "Normal", "Unlinked"), 10);
        size_t before = rec.n;
        assert_int_equal(pp_events_flush(e, 2.0), 4);
        assert_int_equal(rec.n, before + 4);
        bool found[4] = {false};
        for (size_t i = before; i < rec.n; i++) {
                const seen *s = &rec.reqs[i];
                assert_int_equal(s->method, KUBE_POST);
                assert_int_equal(body_count(s), 2);
                assert_non_null(strstr(body_str(s, "message"), "(combined from 2 similar events)"));
                bool unlinked = streq(body_str(s, "reason"), "Unlinked");
                if (unlinked) {
                        assert_string_equal(s->path, "/api/v1/namespaces/project-b/events");
                        found[3] = true;
                } else if (streq(involved_name(s), "q")) {
                        found[1] = true;
                } else if (strstr(s->path, "/namespaces/project-c/")) {
                        found[2] = true;
                } else {
                        assert_string_equal(s->path, "/api/v1/namespaces/project-b/events");
                        found[0] = true;
                }
        }
        for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) assert_true(found[i]);
        pp_events_free(e);
        recorder_done(&rec);
}

/* A flood of one warning is combined too, so the next, different warning still goes out. */
static void test_warnings_after_flood_posted(void **state) {
        recorder rec = {0};
        pp_events *e = new_observed(&rec, NULL);
        char msg[64];
        for (int i = 0; i < 1000; i++) {
                snprintf(msg, sizeof(msg), "secret s%d is managed by another policy", i);
                assert_true(pp_events_record(e, &policy, true, "Conflict", msg, 1.0) >= 0);
        }
        linked_flood(e, &policy, 0, 1000, 1.0);
        assert_int_equal(pp_events_record(e, &policy, true, "DockercfgTimeout", TIMEOUT_MSG, 1.0),
                         1);
        assert_int_equal(pp_events_flush(e, 2.0), 2);
        assert_int_equal(count_posts(&rec, "Warning", "Conflict"), 11);
        assert_int_equal(count_posts(&rec, "Warning", "DockercfgTimeout"), 1);
        assert_int_equal(count_posts(&rec, "Normal", "Linked"), 11);
        pp_events_free(e);
        recorder_done(&rec);
}

/* Combined occurrences wait for a token rather than being lost when the budget is spent. */
static void test_aggregate_waits_for_budget(void **state) {
        recorder rec = {0};
        pp_events_opts o = {.burst = 2, .refill_seconds = 100, .similar_max = 2};
        pp_events *e = new_observed(&rec, &o);
        linked_flood(e, &policy, 0, 7, 1.0);
        assert_int_equal(count_posts(&rec, "Normal", "Linked"), 2);
        assert_int_equal(pp_events_flush(e, 2.0), 0);
        assert_int_equal(pp_events_flush(e, 102.0), 1);
        assert_int_equal(body_count(&rec.reqs[rec.n - 1]), 5);
        pp_events_free(e);
        recorder_done(&rec);
}

/* Every cache is capped, whatever the number of objects and messages. */
static void test_aggregate_memory_bounded(void **state) {
        recorder rec = {0};
        pp_events_opts o = {.max_objects = 8};
        pp_events *e = new_observed(&rec, &o);
        char name[32];
        for (int i = 0; i < 100; i++) {
                pp_object_ref r = policy;
                snprintf(name, sizeof(name), "p%d", i);
                r.name = name;
                linked_flood(e, &r, 0, 15, i);
                pp_events_stats st;
                pp_events_get_stats(e, &st);
                assert_true(st.objects <= 8);
                assert_true(st.series <= 8);
        }
        /* Only the series still in the cache have something to post. */
        assert_int_equal(pp_events_flush(e, 200), 8);
        pp_events_stats st;
        pp_events_get_stats(e, &st);
        assert_int_equal(st.combined, 100 * 5);
        assert_true(st.suppressed >= 92 * 5);
        pp_events_free(e);
        recorder_done(&rec);
}

static double events_metric(controller_metrics *m, const char *type, const char *result) {
        double v = 0;
        if (metrics_get(m->events_total, METRICS_LABELS(type, result), &v, NULL) < 0) return 0;
        return v;
}

/* pullpolicy_events_total says what became of the events, by type. */
static void test_events_metric(void **state) {
        recorder rec = {0};
        controller_metrics *m = NULL;
        assert_int_equal(controller_metrics_new(&m), 0);
        pp_events_opts o = {.metrics = m, .burst = 12};
        pp_events *e = new_observed(&rec, &o);
        linked_flood(e, &policy, 0, 1000, 1.0);
        assert_int_equal(pp_events_record(e, &policy, true, "DockercfgTimeout", TIMEOUT_MSG, 1.0),
                         1);
        assert_int_equal(pp_events_record(e, &policy, true, "DockercfgTimeout", TIMEOUT_MSG, 2.0),
                         0);
        assert_int_equal(pp_events_flush(e, 2.0), 1);
        linked_flood(e, &policy, 1000, 3, 3.0);
        assert_int_equal(pp_events_flush(e, 4.0), 1);
        linked_flood(e, &policy, 2000, 3, 5.0);
        assert_int_equal(pp_events_flush(e, 6.0), 0); /* the 12 tokens are spent */
        assert_true(events_metric(m, "Normal", "sent") == 11);
        assert_true(events_metric(m, "Normal", "combined") == 996);
        assert_true(events_metric(m, "Normal", "patched") == 1);
        assert_true(events_metric(m, "Warning", "sent") == 1);
        assert_true(events_metric(m, "Warning", "suppressed") == 1);
        assert_true(events_metric(m, "Warning", "combined") == 0);
        pp_events_free(e);
        controller_metrics_free(m);
        recorder_done(&rec);
}

static void test_bad_arguments(void **state) {
        pp_events *e = NULL;
        assert_int_equal(pp_events_new(NULL, NULL, &e), 0);
        pp_object_ref r = policy;
        r.name = NULL;
        assert_int_equal(pp_events_record(e, &r, false, "Linked", "m", 0), -EINVAL);
        assert_int_equal(pp_events_record(e, &policy, false, NULL, "m", 0), -EINVAL);
        assert_null(pp_events_free(NULL));
        pp_events_free(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dedupe_window),
            cmocka_unit_test(test_spam_filter_per_object),
            cmocka_unit_test(test_bounded_memory),
            cmocka_unit_test(test_warning_not_starved_by_normals),
            cmocka_unit_test(test_similar_normals_aggregated),
            cmocka_unit_test(test_distinct_objects_not_merged),
            cmocka_unit_test(test_warnings_after_flood_posted),
            cmocka_unit_test(test_aggregate_waits_for_budget),
            cmocka_unit_test(test_aggregate_memory_bounded),
            cmocka_unit_test(test_events_metric),
            cmocka_unit_test(test_bad_arguments),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
