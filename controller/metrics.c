/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/macro.h"
#include "util/strbuf.h"
#include "util/strv.h"

typedef struct series {
        char **values; /* n_labels strings */
        double value;  /* counter/gauge value; histogram sum */
        unsigned long long count;
        unsigned long long *buckets; /* histogram: per-bucket (not cumulative) counts */
} series;

struct metrics_family {
        metrics_registry *registry;
        metrics_type type;
        char *name;
        char *help;
        char **label_names;
        size_t n_labels;
        double *bounds;
        size_t n_bounds;
        size_t max_series;
        /* A linear scan: families here hold a handful of series, and it keeps order simple. */
        series *series;
        size_t n_series, cap_series;
};

struct metrics_registry {
        metrics_family **families;
        size_t n, cap;
        metrics_family *dropped;
};

static void series_done(series *s, size_t n_labels) {
        strv_free(s->values, n_labels);
        free(s->buckets);
}

static void family_free(metrics_family *f) {
        if (!f) return;
        for (size_t i = 0; i < f->n_series; i++) series_done(&f->series[i], f->n_labels);
        free(f->series);
        strv_free(f->label_names, f->n_labels);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
}

metrics_registry *metrics_registry_free(metrics_registry *r) {
        if (!r) return NULL;
        for (size_t i = 0; i < r->n; i++) family_free(r->families[i]);
        free(r->families);
        free(r);
        return NULL;
}

int metrics_registry_new(metrics_registry **ret) {
        metrics_registry *r = calloc(1, sizeof(*r));
        if (!r) return -ENOMEM;
        int k = metrics_register(r, METRICS_COUNTER, "pullpolicy_metrics_dropped_series_total",
                                 "Metric updates refused because a family had too many label sets.",
                                 METRICS_LABELS("family"), NULL, 0, 0, &r->dropped);
        if (k < 0) {
                metrics_registry_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

static bool valid_metric_name(const char *s) {
        if (!s || !*s) return false;
        for (const char *p = s; *p; p++) {
                char c = *p;
                bool alpha =
                    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
                if (!alpha && !(p > s && c >= '0' && c <= '9')) return false;
        }
        return true;
}

static bool valid_label_name(const char *s) {
        if (!s || !*s || strncmp(s, "__", 2) == 0) return false;
        for (const char *p = s; *p; p++) {
                char c = *p;
                bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
                if (!alpha && !(p > s && c >= '0' && c <= '9')) return false;
        }
        return true;
}

static size_t strv_len(const char *const *v) {
        size_t n = 0;
        if (v)
                while (v[n]) n++;
        return n;
}

static metrics_family *find_family(const metrics_registry *r, const char *name) {
        for (size_t i = 0; i < r->n; i++)
                if (streq(r->families[i]->name, name)) return r->families[i];
        return NULL;
}

static int find_series(metrics_family *f, const char *const *values, bool create, series **ret);

int metrics_register(metrics_registry *r, metrics_type type, const char *name, const char *help,
                     const char *const *label_names, const double *buckets, size_t n_buckets,
                     size_t max_series, metrics_family **ret) {
        if (!r || !valid_metric_name(name) || !help) return -EINVAL;
        if (type != METRICS_COUNTER && type != METRICS_GAUGE && type != METRICS_HISTOGRAM)
                return -EINVAL;
        size_t nl = strv_len(label_names);
        if (nl > METRICS_LABELS_MAX) return -EINVAL;
        for (size_t i = 0; i < nl; i++) {
                if (!valid_label_name(label_names[i])) return -EINVAL;
                if (type == METRICS_HISTOGRAM && streq(label_names[i], "le")) return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(label_names[i], label_names[j])) return -EINVAL;
        }
        if (type == METRICS_HISTOGRAM) {
                if (!buckets || n_buckets == 0 || n_buckets > METRICS_BUCKETS_MAX) return -EINVAL;
                for (size_t i = 0; i < n_buckets; i++) {
                        if (!isfinite(buckets[i])) return -EINVAL;
                        if (i > 0 && !(buckets[i] > buckets[i - 1])) return -EINVAL;
                }
        } else if (n_buckets != 0)
                return -EINVAL;
        if (find_family(r, name)) return -EEXIST;

        metrics_family *f = calloc(1, sizeof(*f));
        if (!f) return -ENOMEM;
        f->registry = r;
        f->type = type;
        f->max_series = max_series ? max_series : METRICS_SERIES_MAX;
        f->name = strdup(name);
        f->help = strdup(help);
        f->label_names = calloc(nl + 1, sizeof(char *));
        if (!f->name || !f->help || !f->label_names) goto oom;
        for (size_t i = 0; i < nl; i++) {
                f->label_names[i] = strdup(label_names[i]);
                if (!f->label_names[i]) goto oom;
                f->n_labels++;
        }
        if (type == METRICS_HISTOGRAM) {
                f->bounds = malloc(n_buckets * sizeof(double));
                if (!f->bounds) goto oom;
                memcpy(f->bounds, buckets, n_buckets * sizeof(double));
                f->n_bounds = n_buckets;
        }
        if (GROW(r->families, r->cap, r->n + 1) < 0) goto oom;
        /* A family without labels has exactly one series; export it from the start. */
        if (nl == 0) {
                series *s;
                if (find_series(f, METRICS_NO_LABELS, true, &s) < 0) goto oom;
        }
        r->families[r->n++] = f;
        if (ret) *ret = f;
        return 0;
oom:
        family_free(f);
        return -ENOMEM;
}

static bool values_equal(char **a, const char *const *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i])) return false;
        return true;
}

static void count_drop(metrics_family *f) {
        metrics_registry *r = f->registry;
        if (!r->dropped || f == r->dropped) return;
        series *s;
        if (find_series(r->dropped, METRICS_LABELS(f->name), true, &s) == 0) s->value += 1;
}

static int find_series(metrics_family *f, const char *const *values, bool create, series **ret) {
        /* Not METRICS_NO_LABELS: a compound literal would die with the if's block. */
        static const char *const no_labels[] = {NULL};
        if (!values) values = no_labels;
        if (strv_len(values) != f->n_labels) return -EINVAL;
        for (size_t i = 0; i < f->n_series; i++)
                if (values_equal(f->series[i].values, values, f->n_labels)) {
                        *ret = &f->series[i];
                        return 0;
                }
        if (!create) return -ENOENT;
        for (size_t i = 0; i < f->n_labels; i++)
                if (strlen(values[i]) > METRICS_LABEL_VALUE_MAX) return -EINVAL;
        if (f->n_series >= f->max_series) {
                count_drop(f);
                return -E2BIG;
        }
        if (GROW(f->series, f->cap_series, f->n_series + 1) < 0) return -ENOMEM;
        series s = {0};
        s.values = calloc(f->n_labels + 1, sizeof(char *));
        if (!s.values) return -ENOMEM;
        for (size_t i = 0; i < f->n_labels; i++) {
                s.values[i] = strdup(values[i]);
                if (!s.values[i]) goto oom;
        }
        if (f->type == METRICS_HISTOGRAM) {
                s.buckets = calloc(f->n_bounds, sizeof(unsigned long long));
                if (!s.buckets) goto oom;
        }
        f->series[f->n_series] = s;
        *ret = &f->series[f->n_series++];
        return 0;
oom:
        series_done(&s, f->n_labels);
        return -ENOMEM;
}

int metrics_add(metrics_family *f, const char *const *label_values, double v) {
        if (!f || !isfinite(v)) return -EINVAL;
        if (f->type == METRICS_HISTOGRAM) return -EINVAL;
        if (f->type == METRICS_COUNTER && v < 0) return -EINVAL;
        series *s;
        int r = find_series(f, label_values, true, &s);
        if (r < 0) return r;
        s->value += v;
        return 0;
}

int metrics_set(metrics_family *f, const char *const *label_values, double v) {
        if (!f || f->type != METRICS_GAUGE || isnan(v)) return -EINVAL;
        series *s;
        int r = find_series(f, label_values, true, &s);
        if (r < 0) return r;
        s->value = v;
        return 0;
}

int metrics_observe(metrics_family *f, const char *const *label_values, double v) {
        if (!f || f->type != METRICS_HISTOGRAM || isnan(v)) return -EINVAL;
        series *s;
        int r = find_series(f, label_values, true, &s);
        if (r < 0) return r;
        /* Upper bounds are inclusive (le); a value above every bound lands only in +Inf. */
        for (size_t i = 0; i < f->n_bounds; i++)
                if (v <= f->bounds[i]) {
                        s->buckets[i]++;
                        break;
                }
        s->count++;
        s->value += v;
        return 0;
}

int metrics_reset(metrics_family *f) {
        if (!f || f->type != METRICS_GAUGE) return -EINVAL;
        if (f->n_labels == 0) {
                f->series[0].value = 0;
                return 0;
        }
        for (size_t i = 0; i < f->n_series; i++) series_done(&f->series[i], f->n_labels);
        f->n_series = 0;
        return 0;
}

int metrics_get(const metrics_family *f, const char *const *label_values, double *ret,
                unsigned long long *ret_count) {
        if (!f) return -EINVAL;
        series *s;
        int r = find_series((metrics_family *)f, label_values, false, &s);
        if (r < 0) return r;
        if (ret) *ret = s->value;
        if (ret_count) *ret_count = f->type == METRICS_HISTOGRAM ? s->count : 0;
        return 0;
}

const char *metrics_format_value(double v, char *buf, size_t bufsz) {
        if (isnan(v))
                snprintf(buf, bufsz, "NaN");
        else if (isinf(v))
                snprintf(buf, bufsz, "%s", v > 0 ? "+Inf" : "-Inf");
        else {
                /* The fewest significant digits that read back as the same double... */
                int prec = 1;
                for (; prec < 17; prec++) {
                        snprintf(buf, bufsz, "%.*e", prec - 1, v);
                        if (strtod(buf, NULL) == v) break;
                }
                snprintf(buf, bufsz, "%.*e", prec - 1, v);
                int exp = atoi(strchr(buf, 'e') + 1);
                /* ...written plainly unless very small or large: le="10", not le="1e+01". */
                if (exp >= -4 && exp < 21)
                        snprintf(buf, bufsz, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, v);
        }
        return buf;
}

/* ---- rendering ---- */

/* HELP text escapes backslash and newline; label values also the double quote. */
static void out_escaped(strbuf *o, const char *s, bool quote) {
        for (const char *p = s; *p; p++) {
                if (*p == '\\')
                        strbuf_add(o, "\\\\");
                else if (*p == '\n')
                        strbuf_add(o, "\\n");
                else if (quote && *p == '"')
                        strbuf_add(o, "\\\"");
                else
                        strbuf_add_mem(o, p, 1);
        }
}

static void out_value(strbuf *o, double v) {
        char buf[40];
        strbuf_add(o, metrics_format_value(v, buf, sizeof(buf)));
}

static void out_u64(strbuf *o, unsigned long long v) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%llu", v);
        strbuf_add(o, buf);
}

/* name{a="x",b="y"[,le="0.5"]} */
static void out_series_name(strbuf *o, const metrics_family *f, const char *suffix, const series *s,
                            const char *le) {
        strbuf_add(o, f->name);
        strbuf_add(o, suffix);
        if (f->n_labels == 0 && !le) return;
        strbuf_add(o, "{");
        for (size_t i = 0; i < f->n_labels; i++) {
                if (i) strbuf_add(o, ",");
                strbuf_add(o, f->label_names[i]);
                strbuf_add(o, "=\"");
                out_escaped(o, s->values[i], true);
                strbuf_add(o, "\"");
        }
        if (le) {
                if (f->n_labels) strbuf_add(o, ",");
                strbuf_add(o, "le=\"");
                strbuf_add(o, le);
                strbuf_add(o, "\"");
        }
        strbuf_add(o, "}");
}

static size_t sort_nlabels;
static int cmp_series(const void *a, const void *b) {
        const series *x = *(const series *const *)a, *y = *(const series *const *)b;
        for (size_t i = 0; i < sort_nlabels; i++) {
                int c = strcmp(x->values[i], y->values[i]);
                if (c) return c;
        }
        return 0;
}

static void out_family(strbuf *o, const metrics_family *f) {
        static const char *const type_names[] = {"counter", "gauge", "histogram"};
        if (f->n_series == 0) return; /* like client_golang: no samples, no family */

        const series **order = malloc(f->n_series * sizeof(*order));
        if (!order) {
                o->oom = true;
                return;
        }
        for (size_t i = 0; i < f->n_series; i++) order[i] = &f->series[i];
        sort_nlabels = f->n_labels;
        qsort(order, f->n_series, sizeof(*order), cmp_series);

        strbuf_add(o, "# HELP ");
        strbuf_add(o, f->name);
        strbuf_add(o, " ");
        out_escaped(o, f->help, false);
        strbuf_add(o, "\n# TYPE ");
        strbuf_add(o, f->name);
        strbuf_add(o, " ");
        strbuf_add(o, type_names[f->type]);
        strbuf_add(o, "\n");

        for (size_t k = 0; k < f->n_series; k++) {
                const series *s = order[k];
                if (f->type != METRICS_HISTOGRAM) {
                        out_series_name(o, f, "", s, NULL);
                        strbuf_add(o, " ");
                        out_value(o, s->value);
                        strbuf_add(o, "\n");
                        continue;
                }
                unsigned long long cum = 0;
                char le[40];
                for (size_t i = 0; i < f->n_bounds; i++) {
                        cum += s->buckets[i];
                        out_series_name(o, f, "_bucket", s,
                                        metrics_format_value(f->bounds[i], le, sizeof(le)));
                        strbuf_add(o, " ");
                        out_u64(o, cum);
                        strbuf_add(o, "\n");
                }
                out_series_name(o, f, "_bucket", s, "+Inf");
                strbuf_add(o, " ");
                out_u64(o, s->count);
                strbuf_add(o, "\n");
                out_series_name(o, f, "_sum", s, NULL);
                strbuf_add(o, " ");
                out_value(o, s->value);
                strbuf_add(o, "\n");
                out_series_name(o, f, "_count", s, NULL);
                strbuf_add(o, " ");
                out_u64(o, s->count);
                strbuf_add(o, "\n");
        }
        free(order);
}

int metrics_render(const metrics_registry *r, char **ret, size_t *ret_len) {
        if (!r || !ret) return -EINVAL;
        strbuf o = {0};
        for (size_t i = 0; i < r->n; i++) out_family(&o, r->families[i]);
        /* an empty registry still renders a valid empty string */
        return strbuf_finish(&o, ret, ret_len);
}

/* ---- the controller's metrics ---- */

/* controller-runtime's reconcile-time buckets. */
static const double reconcile_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1,  0.15, 0.2,  0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
    0.7,   0.8,  0.9,   1.0,  1.25, 1.5,  1.75, 2.0,  2.5, 3.0,  3.5, 4.0,  4.5, 5,
    6,     7,    8,     9,    10,   15,   20,   25,   30,  40,   50,  60,
};

/* client-go's workqueue buckets: 10ns to 1000s, exponential by 10. */
static const double workqueue_buckets[] = {
    1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000,
};

static const char *const result_names[_METRICS_RESULT_MAX] = {
    [METRICS_RESULT_SUCCESS] = "success",
    [METRICS_RESULT_ERROR] = "error",
    [METRICS_RESULT_REQUEUE] = "requeue",
    [METRICS_RESULT_REQUEUE_AFTER] = "requeue_after",
};

const char *metrics_result_to_string(metrics_result r) {
        if ((int)r < 0 || r >= _METRICS_RESULT_MAX) return NULL;
        return result_names[r];
}

controller_metrics *controller_metrics_free(controller_metrics *m) {
        if (!m) return NULL;
        metrics_registry_free(m->registry);
        free(m);
        return NULL;
}

int controller_metrics_new(controller_metrics **ret) {
        controller_metrics *m = calloc(1, sizeof(*m));
        if (!m) return -ENOMEM;
        int r = metrics_registry_new(&m->registry);
        if (r < 0) goto fail;
        metrics_registry *g = m->registry;
        const struct {
                metrics_family **slot;
                metrics_type type;
                const char *name, *help;
                const char *const *labels;
                const double *buckets;
                size_t n_buckets;
        } defs[] = {
            {&m->reconcile_total, METRICS_COUNTER, "controller_runtime_reconcile_total",
             "Total number of reconciliations per controller",
             METRICS_LABELS("controller", "result"), NULL, 0},
            {&m->reconcile_errors_total, METRICS_COUNTER,
             "controller_runtime_reconcile_errors_total",
             "Total number of reconciliation errors per controller", METRICS_LABELS("controller"),
             NULL, 0},
            {&m->reconcile_time_seconds, METRICS_HISTOGRAM,
             "controller_runtime_reconcile_time_seconds",
             "Length of time per reconciliation per controller", METRICS_LABELS("controller"),
             reconcile_buckets, ARRAY_SIZE(reconcile_buckets)},
            {&m->active_workers, METRICS_GAUGE, "controller_runtime_active_workers",
             "Number of currently used workers per controller", METRICS_LABELS("controller"), NULL,
             0},
            {&m->max_concurrent_reconciles, METRICS_GAUGE,
             "controller_runtime_max_concurrent_reconciles",
             "Maximum number of concurrent reconciles per controller", METRICS_LABELS("controller"),
             NULL, 0},
            {&m->workqueue_depth, METRICS_GAUGE, "workqueue_depth", "Current depth of workqueue",
             METRICS_LABELS("name"), NULL, 0},
            {&m->workqueue_adds_total, METRICS_COUNTER, "workqueue_adds_total",
             "Total number of adds handled by workqueue", METRICS_LABELS("name"), NULL, 0},
            {&m->workqueue_retries_total, METRICS_COUNTER, "workqueue_retries_total",
             "Total number of retries handled by workqueue", METRICS_LABELS("name"), NULL, 0},
            {&m->workqueue_queue_duration, METRICS_HISTOGRAM, "workqueue_queue_duration_seconds",
             "How long in seconds an item stays in workqueue before being requested",
             METRICS_LABELS("name"), workqueue_buckets, ARRAY_SIZE(workqueue_buckets)},
            {&m->workqueue_work_duration, METRICS_HISTOGRAM, "workqueue_work_duration_seconds",
             "How long in seconds processing an item from workqueue takes", METRICS_LABELS("name"),
             workqueue_buckets, ARRAY_SIZE(workqueue_buckets)},
            {&m->leader_status, METRICS_GAUGE, "leader_election_master_status",
             "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
             "backup, 1 indicates master. 'name' is the string used to identify the lease.",
             METRICS_LABELS("name"), NULL, 0},
            {&m->policies, METRICS_GAUGE, "pullpolicy_policies",
             "PullPolicies by the reason of their Ready condition", METRICS_LABELS("reason"), NULL,
             0},
            {&m->linked_service_accounts, METRICS_GAUGE, "pullpolicy_linked_service_accounts",
             "Service accounts with every pull secret of their policies linked", NULL, NULL, 0},
            {&m->waiting_service_accounts, METRICS_GAUGE, "pullpolicy_waiting_service_accounts",
             "Service accounts waiting for their OpenShift dockercfg secret", NULL, NULL, 0},
            {&m->events_total, METRICS_COUNTER, "pullpolicy_events_total",
             "Events by type and what became of them: sent, patched (an aggregated event's "
             "count), combined (into an aggregated event), suppressed (rate limit, dedupe), "
             "failed",
             METRICS_LABELS("type", "result"), NULL, 0},
            {&m->api_requests_total, METRICS_COUNTER, "pullpolicy_api_requests_total",
             "Requests to the API server by verb and HTTP status code",
             METRICS_LABELS("verb", "code"), NULL, 0},
            {&m->api_inflight_limit, METRICS_GAUGE, "pullpolicy_api_inflight_limit",
             "API requests the client lets be in flight now (its flow window: grows while the "
             "server answers promptly, halves on 429/503 or rising latency)",
             NULL, NULL, 0},
            {&m->api_throttled_total, METRICS_COUNTER, "pullpolicy_api_throttled_total",
             "Answers 429 (Too Many Requests) from the API server, each retry counted", NULL, NULL,
             0},
            {&m->writes_total, METRICS_COUNTER, "pullpolicy_writes_total",
             "Writes made to the API server by resource and verb",
             METRICS_LABELS("resource", "verb"), NULL, 0},
            {&m->start_time_seconds, METRICS_GAUGE, "process_start_time_seconds",
             "Start time of the process since unix epoch in seconds.", NULL, NULL, 0},
            {&m->objects_skipped_total, METRICS_COUNTER, "pullpolicy_objects_skipped_total",
             "Objects the cache skipped because its model refuses them, by resource and reason",
             METRICS_LABELS("resource", "reason"), NULL, 0},
            {&m->cache_objects, METRICS_GAUGE, "pullpolicy_cache_objects",
             "Objects held by each source of the controller's cache", METRICS_LABELS("source"),
             NULL, 0},
            {&m->cache_bytes, METRICS_GAUGE, "pullpolicy_cache_bytes",
             "Tracked heap bytes of the cached objects of a kind (keys and indexes included)",
             METRICS_LABELS("kind"), NULL, 0},
            {&m->cache_relists, METRICS_GAUGE, "pullpolicy_cache_relists",
             "Full relists since start by the cache's standing reflectors, by reason (gone: "
             "after an expired resourceVersion)",
             METRICS_LABELS("reason"), NULL, 0},
            {&m->stale_pods, METRICS_GAUGE, "pullpolicy_stale_pods",
             "Pods of subject service accounts that were created before a pull secret was linked "
             "and cannot pull (R13), summed over the policies",
             NULL, NULL, 0},
            {&m->stale_pods_deleted_total, METRICS_COUNTER, "pullpolicy_stale_pods_deleted_total",
             "Stale pods deleted for their controller to recreate them (restartStalePods)", NULL,
             NULL, 0},
        };
        for (size_t i = 0; i < ARRAY_SIZE(defs); i++) {
                r = metrics_register(g, defs[i].type, defs[i].name, defs[i].help, defs[i].labels,
                                     defs[i].buckets, defs[i].n_buckets, 0, defs[i].slot);
                if (r < 0) goto fail;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        metrics_set(m->start_time_seconds, NULL, (double)ts.tv_sec + ts.tv_nsec / 1e9);
        *ret = m;
        return 0;
fail:
        controller_metrics_free(m);
        return r;
}

void metrics_reconcile_done(controller_metrics *m, const char *controller, metrics_result result,
                            double seconds) {
        const char *res = metrics_result_to_string(result);
        if (!m || !controller || !res) return;
        (void)metrics_inc(m->reconcile_total, METRICS_LABELS(controller, res));
        if (result == METRICS_RESULT_ERROR)
                (void)metrics_inc(m->reconcile_errors_total, METRICS_LABELS(controller));
        (void)metrics_observe(m->reconcile_time_seconds, METRICS_LABELS(controller), seconds);
}

void metrics_set_active_workers(controller_metrics *m, const char *controller, int n) {
        if (!m || !controller) return;
        (void)metrics_set(m->active_workers, METRICS_LABELS(controller), n);
}

void metrics_set_max_workers(controller_metrics *m, const char *controller, int n) {
        if (!m || !controller) return;
        (void)metrics_set(m->max_concurrent_reconciles, METRICS_LABELS(controller), n);
}

void metrics_workqueue_added(controller_metrics *m, const char *queue) {
        if (!m || !queue) return;
        (void)metrics_inc(m->workqueue_adds_total, METRICS_LABELS(queue));
}

void metrics_workqueue_retried(controller_metrics *m, const char *queue) {
        if (!m || !queue) return;
        (void)metrics_inc(m->workqueue_retries_total, METRICS_LABELS(queue));
}

void metrics_workqueue_set_depth(controller_metrics *m, const char *queue, size_t depth) {
        if (!m || !queue) return;
        (void)metrics_set(m->workqueue_depth, METRICS_LABELS(queue), (double)depth);
}

void metrics_workqueue_queued_for(controller_metrics *m, const char *queue, double seconds) {
        if (!m || !queue) return;
        (void)metrics_observe(m->workqueue_queue_duration, METRICS_LABELS(queue), seconds);
}

void metrics_workqueue_worked_for(controller_metrics *m, const char *queue, double seconds) {
        if (!m || !queue) return;
        (void)metrics_observe(m->workqueue_work_duration, METRICS_LABELS(queue), seconds);
}

void metrics_set_leader(controller_metrics *m, const char *lease_name, bool leading) {
        if (!m || !lease_name) return;
        (void)metrics_set(m->leader_status, METRICS_LABELS(lease_name), leading ? 1 : 0);
}

void metrics_set_policies(controller_metrics *m, const char *const *reasons, const size_t *counts,
                          size_t n) {
        if (!m) return;
        (void)metrics_reset(m->policies);
        for (size_t i = 0; i < n; i++)
                if (reasons[i])
                        (void)metrics_set(m->policies, METRICS_LABELS(reasons[i]),
                                          (double)counts[i]);
}

void metrics_set_service_accounts(controller_metrics *m, size_t linked, size_t waiting) {
        if (!m) return;
        (void)metrics_set(m->linked_service_accounts, NULL, (double)linked);
        (void)metrics_set(m->waiting_service_accounts, NULL, (double)waiting);
}

void metrics_events(controller_metrics *m, const char *type, const char *result, unsigned long n) {
        if (!m || !type || !result || n == 0) return;
        (void)metrics_add(m->events_total, METRICS_LABELS(type, result), (double)n);
}

void metrics_api_request(controller_metrics *m, const char *verb, long http_status) {
        if (!m || !verb) return;
        char code[16];
        if (http_status >= 100 && http_status <= 999)
                snprintf(code, sizeof(code), "%ld", http_status);
        else
                snprintf(code, sizeof(code), "error");
        (void)metrics_inc(m->api_requests_total, METRICS_LABELS(verb, code));
}

void metrics_api_flow(controller_metrics *m, unsigned long limit, unsigned long throttled) {
        if (!m) return;
        (void)metrics_set(m->api_inflight_limit, NULL, (double)limit);
        if (throttled > m->throttled_seen) {
                (void)metrics_add(m->api_throttled_total, NULL,
                                  (double)(throttled - m->throttled_seen));
                m->throttled_seen = throttled;
        }
}

void metrics_write(controller_metrics *m, const char *resource, const char *verb) {
        if (!m || !resource || !verb) return;
        (void)metrics_inc(m->writes_total, METRICS_LABELS(resource, verb));
}

void metrics_object_skipped(controller_metrics *m, const char *resource, const char *reason) {
        if (!m || !resource || !reason) return;
        (void)metrics_inc(m->objects_skipped_total, METRICS_LABELS(resource, reason));
}

void metrics_set_cache_objects(controller_metrics *m, const char *source, size_t n) {
        if (!m || !source) return;
        (void)metrics_set(m->cache_objects, METRICS_LABELS(source), (double)n);
}

void metrics_set_cache_relists(controller_metrics *m, const char *reason, unsigned long n) {
        if (!m || !reason) return;
        (void)metrics_set(m->cache_relists, METRICS_LABELS(reason), (double)n);
}

void metrics_set_cache_bytes(controller_metrics *m, const char *kind, size_t bytes) {
        if (!m || !kind) return;
        (void)metrics_set(m->cache_bytes, METRICS_LABELS(kind), (double)bytes);
}

void metrics_set_stale_pods(controller_metrics *m, size_t n) {
        if (!m) return;
        (void)metrics_set(m->stale_pods, NULL, (double)n);
}

void metrics_stale_pod_deleted(controller_metrics *m) {
        if (!m) return;
        (void)metrics_inc(m->stale_pods_deleted_total, NULL);
}
