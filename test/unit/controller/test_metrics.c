/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "util/macro.h"

/* ---- a small parser of the text format, to read our output back ---- */

typedef struct sample {
        char name[128];
        int n_labels;
        char keys[10][64];
        char values[10][512];
        double value;
} sample;

typedef struct parsed {
        sample *samples;
        size_t n;
        char types[64][128]; /* "name type" */
        size_t n_types;
} parsed;

static void parse_exposition(const char *text, parsed *p) {
        memset(p, 0, sizeof(*p));
        const char *line = text;
        while (*line) {
                const char *nl = strchr(line, '\n');
                assert_non_null(nl); /* every line ends with a newline */
                size_t len = (size_t)(nl - line);
                if (line[0] == '#') {
                        if (strncmp(line, "# TYPE ", 7) == 0) {
                                assert_true(p->n_types < 64);
                                snprintf(p->types[p->n_types++], 128, "%.*s", (int)(len - 7),
                                         line + 7);
                        } else
                                assert_int_equal(strncmp(line, "# HELP ", 7), 0);
                        line = nl + 1;
                        continue;
                }
                p->samples = realloc(p->samples, (p->n + 1) * sizeof(sample));
                assert_non_null(p->samples);
                sample *s = &p->samples[p->n++];
                memset(s, 0, sizeof(*s));
                const char *c = line;
                size_t k = 0;
                while (c < nl && *c != '{' && *c != ' ') s->name[k++] = *c++;
                if (*c == '{') {
                        c++;
                        while (*c != '}') {
                                assert_true(s->n_labels < 10);
                                k = 0;
                                while (*c != '=') s->keys[s->n_labels][k++] = *c++;
                                c++;
                                assert_int_equal(*c, '"');
                                c++;
                                k = 0;
                                while (*c != '"') {
                                        char ch = *c++;
                                        if (ch == '\\') {
                                                ch = *c++;
                                                if (ch == 'n')
                                                        ch = '\n';
                                                else
                                                        assert_true(ch == '\\' || ch == '"');
                                        }
                                        s->values[s->n_labels][k++] = ch;
                                }
                                c++;
                                s->n_labels++;
                                if (*c == ',') c++;
                        }
                        c++;
                }
                assert_int_equal(*c, ' ');
                c++;
                char num[64];
                snprintf(num, sizeof(num), "%.*s", (int)(nl - c), c);
                if (streq(num, "+Inf"))
                        s->value = INFINITY;
                else if (streq(num, "-Inf"))
                        s->value = -INFINITY;
                else if (streq(num, "NaN"))
                        s->value = NAN;
                else {
                        char *end;
                        s->value = strtod(num, &end);
                        assert_true(*end == 0);
                }
                line = nl + 1;
        }
}

static const char *label(const sample *s, const char *key) {
        for (int i = 0; i < s->n_labels; i++)
                if (streq(s->keys[i], key)) return s->values[i];
        return NULL;
}

/* The value of the one sample with this name and these label pairs (NULL-terminated k,v,...). */
static bool find(const parsed *p, double *ret, const char *name, ...) {
        for (size_t i = 0; i < p->n; i++) {
                const sample *s = &p->samples[i];
                if (!streq(s->name, name)) continue;
                va_list ap;
                va_start(ap, name);
                bool match = true;
                int nargs = 0;
                for (;;) {
                        const char *k = va_arg(ap, const char *);
                        if (!k) break;
                        const char *v = va_arg(ap, const char *);
                        nargs++;
                        const char *got = label(s, k);
                        if (!got || !streq(got, v)) match = false;
                }
                va_end(ap);
                if (match && nargs == s->n_labels) {
                        *ret = s->value;
                        return true;
                }
        }
        return false;
}

static char *render(const metrics_registry *r) {
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(metrics_render(r, &text, &len), 0);
        assert_int_equal(strlen(text), len);
        return text;
}

static void test_register_validation(void **state) {
        metrics_registry *r;
        assert_int_equal(metrics_registry_new(&r), 0);
        double b[] = {1, 2}, bad_b[] = {2, 1}, dup_b[] = {1, 1}, inf_b[] = {1, INFINITY};
        metrics_family *f;
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "", "h", NULL, NULL, 0, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "1abc", "h", NULL, NULL, 0, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "a-b", "h", NULL, NULL, 0, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "a", NULL, NULL, NULL, 0, 0, &f),
                         -EINVAL);
        assert_int_equal(
            metrics_register(r, METRICS_COUNTER, "a", "h", METRICS_LABELS("__x"), NULL, 0, 0, &f),
            -EINVAL);
        assert_int_equal(
            metrics_register(r, METRICS_COUNTER, "a", "h", METRICS_LABELS("a:b"), NULL, 0, 0, &f),
            -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "a", "h", METRICS_LABELS("x", "x"),
                                          NULL, 0, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "a", "h", NULL, b, 2, 0, &f),
                         -EINVAL);
        assert_int_equal(
            metrics_register(r, METRICS_HISTOGRAM, "h", "h", METRICS_LABELS("le"), b, 2, 0, &f),
            -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_HISTOGRAM, "h", "h", NULL, NULL, 0, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_HISTOGRAM, "h", "h", NULL, bad_b, 2, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_HISTOGRAM, "h", "h", NULL, dup_b, 2, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_HISTOGRAM, "h", "h", NULL, inf_b, 2, 0, &f),
                         -EINVAL);
        assert_int_equal(metrics_register(r, METRICS_HISTOGRAM, "h", "h", NULL, b, 2, 0, &f), 0);
        assert_int_equal(metrics_register(r, METRICS_GAUGE, "h", "h", NULL, NULL, 0, 0, &f),
                         -EEXIST);
        assert_int_equal(metrics_register(r, METRICS_GAUGE, "ns:sub_x", "h",
                                          METRICS_LABELS("a", "b", "c", "d", "e", "f", "g", "h"),
                                          NULL, 0, 0, NULL),
                         0);
        assert_int_equal(
            metrics_register(r, METRICS_GAUGE, "too_many", "h",
                             METRICS_LABELS("a", "b", "c", "d", "e", "f", "g", "h", "i"), NULL, 0,
                             0, NULL),
            -EINVAL);
        metrics_registry_free(r);
        assert_null(metrics_registry_free(NULL));
}

static void test_updates(void **state) {
        metrics_registry *r;
        assert_int_equal(metrics_registry_new(&r), 0);
        metrics_family *c, *g, *h;
        double b[] = {0.5, 1};
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "c_total", "c", METRICS_LABELS("x"),
                                          NULL, 0, 0, &c),
                         0);
        assert_int_equal(metrics_register(r, METRICS_GAUGE, "g", "g", NULL, NULL, 0, 0, &g), 0);
        assert_int_equal(metrics_register(r, METRICS_HISTOGRAM, "h", "h", NULL, b, 2, 0, &h), 0);

        assert_int_equal(metrics_add(c, METRICS_LABELS("a"), -1), -EINVAL);
        assert_int_equal(metrics_add(c, METRICS_LABELS("a"), NAN), -EINVAL);
        assert_int_equal(metrics_add(c, METRICS_LABELS("a", "b"), 1), -EINVAL);
        assert_int_equal(metrics_add(c, NULL, 1), -EINVAL);
        assert_int_equal(metrics_set(c, METRICS_LABELS("a"), 1), -EINVAL);
        assert_int_equal(metrics_observe(c, METRICS_LABELS("a"), 1), -EINVAL);
        assert_int_equal(metrics_add(h, NULL, 1), -EINVAL);
        assert_int_equal(metrics_reset(c), -EINVAL);

        double v;
        unsigned long long n;
        assert_int_equal(metrics_get(c, METRICS_LABELS("a"), &v, NULL), -ENOENT);
        assert_int_equal(metrics_inc(c, METRICS_LABELS("a")), 0);
        assert_int_equal(metrics_add(c, METRICS_LABELS("a"), 2.5), 0);
        assert_int_equal(metrics_get(c, METRICS_LABELS("a"), &v, NULL), 0);
        assert_true(v == 3.5);

        /* A label-less gauge exists from the start, at 0. */
        assert_int_equal(metrics_get(g, NULL, &v, NULL), 0);
        assert_true(v == 0);
        assert_int_equal(metrics_set(g, NULL, 7), 0);
        assert_int_equal(metrics_add(g, NULL, -10), 0);
        assert_int_equal(metrics_get(g, METRICS_NO_LABELS, &v, NULL), 0);
        assert_true(v == -3);
        assert_int_equal(metrics_reset(g), 0);
        assert_int_equal(metrics_get(g, NULL, &v, NULL), 0);
        assert_true(v == 0);

        assert_int_equal(metrics_observe(h, NULL, 0.25), 0);
        assert_int_equal(metrics_observe(h, NULL, 2), 0);
        assert_int_equal(metrics_get(h, NULL, &v, &n), 0);
        assert_true(v == 2.25);
        assert_int_equal(n, 2);

        char big[METRICS_LABEL_VALUE_MAX + 2];
        memset(big, 'v', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(metrics_inc(c, METRICS_LABELS(big)), -EINVAL);
        metrics_registry_free(r);
}

static void test_render_golden(void **state) {
        metrics_registry *r;
        assert_int_equal(metrics_registry_new(&r), 0);
        metrics_family *c, *g, *h, *empty;
        double b[] = {0.1, 0.5, 1};
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "req_total",
                                          "Requests.\nSecond \\ line.",
                                          METRICS_LABELS("verb", "code"), NULL, 0, 0, &c),
                         0);
        assert_int_equal(
            metrics_register(r, METRICS_GAUGE, "temp", "Temperature", NULL, NULL, 0, 0, &g), 0);
        assert_int_equal(metrics_register(r, METRICS_HISTOGRAM, "lat_seconds", "Latency",
                                          METRICS_LABELS("op"), b, 3, 0, &h),
                         0);
        assert_int_equal(metrics_register(r, METRICS_GAUGE, "unused", "No series yet",
                                          METRICS_LABELS("x"), NULL, 0, 0, &empty),
                         0);
        /* Added out of order: the output is sorted by label values. */
        assert_int_equal(metrics_add(c, METRICS_LABELS("PUT", "409"), 2), 0);
        assert_int_equal(metrics_inc(c, METRICS_LABELS("GET", "200")), 0);
        assert_int_equal(metrics_set(g, NULL, -1.5), 0);
        assert_int_equal(metrics_observe(h, METRICS_LABELS("get"), 0.1), 0); /* le is inclusive */
        assert_int_equal(metrics_observe(h, METRICS_LABELS("get"), 0.3), 0);
        assert_int_equal(metrics_observe(h, METRICS_LABELS("get"), 7), 0);
        char *text = render(r);
        const char *want = "# HELP req_total Requests.\\nSecond \\\\ line.\n"
                           "# TYPE req_total counter\n"
                           "req_total{verb=\"GET\",code=\"200\"} 1\n"
                           "req_total{verb=\"PUT\",code=\"409\"} 2\n"
                           "# HELP temp Temperature\n"
                           "# TYPE temp gauge\n"
                           "temp -1.5\n"
                           "# HELP lat_seconds Latency\n"
                           "# TYPE lat_seconds histogram\n"
                           "lat_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"
                           "lat_seconds_bucket{op=\"get\",le=\"0.5\"} 2\n"
                           "lat_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                           "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"
                           "lat_seconds_sum{op=\"get\"} 7.4\n"
                           "lat_seconds_count{op=\"get\"} 3\n";
        /* The registry's own dropped-series counter has no series yet, so it is absent. */
        assert_string_equal(text, want);
        free(text);
        metrics_registry_free(r);
}

static void test_label_escaping(void **state) {
        metrics_registry *r;
        assert_int_equal(metrics_registry_new(&r), 0);
        metrics_family *c;
        assert_int_equal(metrics_register(r, METRICS_COUNTER, "x_total", "x", METRICS_LABELS("v"),
                                          NULL, 0, 0, &c),
                         0);
        const char *evil = "a\"b\\c\nd}{,=";
        assert_int_equal(metrics_inc(c, METRICS_LABELS(evil)), 0);
        char *text = render(r);
        assert_non_null(strstr(text, "x_total{v=\"a\\\"b\\\\c\\nd}{,=\"} 1\n"));
        parsed p;
        parse_exposition(text, &p);
        double v;
        assert_true(find(&p, &v, "x_total", "v", evil, NULL));
        assert_true(v == 1);
        free(p.samples);
        free(text);
        metrics_registry_free(r);
}

static void test_cardinality_bound(void **state) {
        metrics_registry *r;
        assert_int_equal(metrics_registry_new(&r), 0);
        metrics_family *g;
        assert_int_equal(
            metrics_register(r, METRICS_GAUGE, "g", "g", METRICS_LABELS("k"), NULL, 0, 2, &g), 0);
        assert_int_equal(metrics_set(g, METRICS_LABELS("a"), 1), 0);
        assert_int_equal(metrics_set(g, METRICS_LABELS("b"), 1), 0);
        assert_int_equal(metrics_set(g, METRICS_LABELS("c"), 1), -E2BIG);
        assert_int_equal(metrics_set(g, METRICS_LABELS("d"), 1), -E2BIG);
        /* Existing series still update. */
        assert_int_equal(metrics_set(g, METRICS_LABELS("a"), 5), 0);
        char *text = render(r);
        parsed p;
        parse_exposition(text, &p);
        double v;
        assert_true(find(&p, &v, "pullpolicy_metrics_dropped_series_total", "family", "g", NULL));
        assert_true(v == 2);
        assert_true(find(&p, &v, "g", "k", "a", NULL));
        assert_true(v == 5);
        assert_false(find(&p, &v, "g", "k", "c", NULL));
        free(p.samples);
        free(text);
        metrics_registry_free(r);
}

static void test_format_value(void **state) {
        char buf[40];
        assert_string_equal(metrics_format_value(0, buf, sizeof(buf)), "0");
        assert_string_equal(metrics_format_value(3, buf, sizeof(buf)), "3");
        assert_string_equal(metrics_format_value(0.1, buf, sizeof(buf)), "0.1");
        assert_string_equal(metrics_format_value(-2.5, buf, sizeof(buf)), "-2.5");
        assert_string_equal(metrics_format_value(1e-8, buf, sizeof(buf)), "1e-08");
        assert_string_equal(metrics_format_value(10, buf, sizeof(buf)), "10");
        assert_string_equal(metrics_format_value(60, buf, sizeof(buf)), "60");
        assert_string_equal(metrics_format_value(123456789, buf, sizeof(buf)), "123456789");
        assert_string_equal(metrics_format_value(0.0001, buf, sizeof(buf)), "0.0001");
        assert_string_equal(metrics_format_value(0.00001, buf, sizeof(buf)), "1e-05");
        assert_string_equal(metrics_format_value(1e21, buf, sizeof(buf)), "1e+21");
        assert_string_equal(metrics_format_value(1795921200.125, buf, sizeof(buf)),
                            "1795921200.125");
        assert_string_equal(metrics_format_value(INFINITY, buf, sizeof(buf)), "+Inf");
        assert_string_equal(metrics_format_value(-INFINITY, buf, sizeof(buf)), "-Inf");
        assert_string_equal(metrics_format_value(NAN, buf, sizeof(buf)), "NaN");
        /* Round trip for awkward values. */
        double vals[] = {1.0 / 3, 1795921200.123456, 1e300, 5e-324, 0.30000000000000004};
        for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
                metrics_format_value(vals[i], buf, sizeof(buf));
                assert_true(strtod(buf, NULL) == vals[i]);
        }
}

static void test_histogram_consistency(parsed *p, const char *name) {
        /* For every label set: buckets non-decreasing, +Inf == _count. */
        char bucket[160], count[160];
        snprintf(bucket, sizeof(bucket), "%s_bucket", name);
        snprintf(count, sizeof(count), "%s_count", name);
        size_t seen = 0;
        for (size_t i = 0; i < p->n; i++) {
                sample *s = &p->samples[i];
                if (!streq(s->name, bucket)) continue;
                const char *le = label(s, "le");
                assert_non_null(le);
                if (!streq(le, "+Inf")) continue;
                seen++;
                /* Walk back over this series' buckets. */
                double prev = s->value;
                for (size_t j = i; j > 0 && streq(p->samples[j - 1].name, bucket) &&
                                   !streq(label(&p->samples[j - 1], "le"), "+Inf");
                     j--) {
                        assert_true(p->samples[j - 1].value <= prev);
                        prev = p->samples[j - 1].value;
                }
                assert_true(i + 2 < p->n);
                assert_string_equal(p->samples[i + 2].name, count);
                assert_true(p->samples[i + 2].value == s->value);
        }
        assert_true(seen > 0);
}

static void test_controller_metrics(void **state) {
        controller_metrics *m;
        assert_int_equal(controller_metrics_new(&m), 0);

        metrics_reconcile_done(m, "pullpolicy", METRICS_RESULT_SUCCESS, 0.003);
        metrics_reconcile_done(m, "pullpolicy", METRICS_RESULT_SUCCESS, 0.2);
        metrics_reconcile_done(m, "pullpolicy", METRICS_RESULT_ERROR, 1.1);
        metrics_reconcile_done(m, "pullpolicy", METRICS_RESULT_REQUEUE_AFTER, 100);
        metrics_reconcile_done(m, "pullpolicy", (metrics_result)99, 1); /* ignored */
        metrics_set_active_workers(m, "pullpolicy", 3);
        metrics_set_max_workers(m, "pullpolicy", 4);
        metrics_workqueue_added(m, "pullpolicy");
        metrics_workqueue_added(m, "pullpolicy");
        metrics_workqueue_retried(m, "pullpolicy");
        metrics_workqueue_set_depth(m, "pullpolicy", 5);
        metrics_workqueue_queued_for(m, "pullpolicy", 0.002);
        metrics_workqueue_worked_for(m, "pullpolicy", 0.02);
        metrics_set_leader(m, "pullpolicy-controller", true);
        const char *reasons[] = {"Applied", "Waiting"};
        size_t counts[] = {4, 1};
        metrics_set_policies(m, reasons, counts, 2);
        const char *reasons2[] = {"Applied"};
        size_t counts2[] = {5};
        metrics_set_policies(m, reasons2, counts2, 1);
        metrics_set_service_accounts(m, 11, 2);
        metrics_api_request(m, "GET", 200);
        metrics_api_request(m, "GET", 200);
        metrics_api_request(m, "PUT", 409);
        metrics_api_request(m, "WATCH", 0);
        metrics_write(m, "serviceaccounts", "PUT");

        /* NULL is a no-op, not a crash. */
        metrics_reconcile_done(NULL, "x", METRICS_RESULT_SUCCESS, 1);
        metrics_set_leader(NULL, "x", true);

        char *text = render(m->registry);
        parsed p;
        parse_exposition(text, &p);
        double v;
        assert_true(find(&p, &v, "controller_runtime_reconcile_total", "controller", "pullpolicy",
                         "result", "success", NULL));
        assert_true(v == 2);
        assert_true(find(&p, &v, "controller_runtime_reconcile_total", "controller", "pullpolicy",
                         "result", "error", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "controller_runtime_reconcile_total", "controller", "pullpolicy",
                         "result", "requeue_after", NULL));
        assert_true(v == 1);
        assert_false(find(&p, &v, "controller_runtime_reconcile_total", "controller", "pullpolicy",
                          "result", "requeue", NULL));
        assert_true(find(&p, &v, "controller_runtime_reconcile_errors_total", "controller",
                         "pullpolicy", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "controller_runtime_reconcile_time_seconds_count", "controller",
                         "pullpolicy", NULL));
        assert_true(v == 4);
        assert_true(find(&p, &v, "controller_runtime_reconcile_time_seconds_bucket", "controller",
                         "pullpolicy", "le", "0.005", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "controller_runtime_reconcile_time_seconds_bucket", "controller",
                         "pullpolicy", "le", "60", NULL));
        assert_true(v == 3); /* 100 s is past the last bound */
        assert_true(find(&p, &v, "controller_runtime_reconcile_time_seconds_sum", "controller",
                         "pullpolicy", NULL));
        assert_true(fabs(v - 101.303) < 1e-9);
        test_histogram_consistency(&p, "controller_runtime_reconcile_time_seconds");
        test_histogram_consistency(&p, "workqueue_queue_duration_seconds");
        test_histogram_consistency(&p, "workqueue_work_duration_seconds");
        assert_true(
            find(&p, &v, "controller_runtime_active_workers", "controller", "pullpolicy", NULL));
        assert_true(v == 3);
        assert_true(find(&p, &v, "controller_runtime_max_concurrent_reconciles", "controller",
                         "pullpolicy", NULL));
        assert_true(v == 4);
        assert_true(find(&p, &v, "workqueue_adds_total", "name", "pullpolicy", NULL));
        assert_true(v == 2);
        assert_true(find(&p, &v, "workqueue_retries_total", "name", "pullpolicy", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "workqueue_depth", "name", "pullpolicy", NULL));
        assert_true(v == 5);
        assert_true(find(&p, &v, "workqueue_queue_duration_seconds_bucket", "name", "pullpolicy",
                         "le", "0.01", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "workqueue_queue_duration_seconds_bucket", "name", "pullpolicy",
                         "le", "0.001", NULL));
        assert_true(v == 0);
        assert_true(
            find(&p, &v, "leader_election_master_status", "name", "pullpolicy-controller", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "pullpolicy_policies", "reason", "Applied", NULL));
        assert_true(v == 5);
        assert_false(find(&p, &v, "pullpolicy_policies", "reason", "Waiting", NULL));
        assert_true(find(&p, &v, "pullpolicy_linked_service_accounts", NULL));
        assert_true(v == 11);
        assert_true(find(&p, &v, "pullpolicy_waiting_service_accounts", NULL));
        assert_true(v == 2);
        assert_true(
            find(&p, &v, "pullpolicy_api_requests_total", "verb", "GET", "code", "200", NULL));
        assert_true(v == 2);
        assert_true(
            find(&p, &v, "pullpolicy_api_requests_total", "verb", "PUT", "code", "409", NULL));
        assert_true(v == 1);
        assert_true(
            find(&p, &v, "pullpolicy_api_requests_total", "verb", "WATCH", "code", "error", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "pullpolicy_writes_total", "resource", "serviceaccounts", "verb",
                         "PUT", NULL));
        assert_true(v == 1);
        assert_true(find(&p, &v, "process_start_time_seconds", NULL));
        assert_true(v > 1.6e9);

        /* Every TYPE line is one of the three, and every family is declared once. */
        for (size_t i = 0; i < p.n_types; i++) {
                const char *t = strchr(p.types[i], ' ');
                assert_non_null(t);
                assert_true(streq(t + 1, "counter") || streq(t + 1, "gauge") ||
                            streq(t + 1, "histogram"));
                for (size_t j = 0; j < i; j++) assert_string_not_equal(p.types[i], p.types[j]);
        }

        /* promtool, when Debian's prometheus package is installed, must accept the output. */
        const char *promtool = NULL;
        const char *candidates[] = {"/usr/bin/promtool", "/usr/local/bin/promtool"};
        for (size_t i = 0; i < ARRAY_SIZE(candidates); i++)
                if (access(candidates[i], X_OK) == 0) promtool = candidates[i];
        if (promtool) {
                char path[] = "/tmp/pp-metrics-XXXXXX";
                int fd = mkstemp(path);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
                close(fd);
                char cmd[256];
                snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", promtool, path);
                FILE *f = popen(cmd, "r");
                assert_non_null(f);
                char out[4096];
                size_t n = fread(out, 1, sizeof(out) - 1, f);
                out[n] = 0;
                int st = pclose(f);
                unlink(path);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("promtool: %s", out);
        } else
                print_message("promtool not installed (Debian package prometheus): lint skipped\n");

        free(p.samples);
        free(text);
        controller_metrics_free(m);
        assert_null(controller_metrics_free(NULL));
}

/* The cache's skipped objects (issue 7: an object its model refuses is skipped, not relisted). */
static void test_objects_skipped(void **state) {
        controller_metrics *m;
        assert_int_equal(controller_metrics_new(&m), 0);
        metrics_object_skipped(m, "serviceaccounts", "too_many_secret_references");
        metrics_object_skipped(m, "serviceaccounts", "too_many_secret_references");
        metrics_object_skipped(m, "namespaces", "too_many_labels");
        metrics_object_skipped(NULL, "x", "y");
        metrics_object_skipped(m, NULL, "y");

        char *text = render(m->registry);
        parsed p;
        parse_exposition(text, &p);
        double v;
        assert_true(find(&p, &v, "pullpolicy_objects_skipped_total", "resource", "serviceaccounts",
                         "reason", "too_many_secret_references", NULL));
        assert_true(v == 2);
        assert_true(find(&p, &v, "pullpolicy_objects_skipped_total", "resource", "namespaces",
                         "reason", "too_many_labels", NULL));
        assert_true(v == 1);
        assert_non_null(strstr(text, "# TYPE pullpolicy_objects_skipped_total counter"));
        free(p.samples);
        free(text);
        controller_metrics_free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_register_validation), cmocka_unit_test(test_updates),
            cmocka_unit_test(test_render_golden),       cmocka_unit_test(test_label_escaping),
            cmocka_unit_test(test_cardinality_bound),   cmocka_unit_test(test_format_value),
            cmocka_unit_test(test_controller_metrics),  cmocka_unit_test(test_objects_skipped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
