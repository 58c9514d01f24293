/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small metrics registry: counters, gauges and histograms with labels, written
 * in the Prometheus text exposition format 0.0.4. Plus the controller's own set
 * of metrics (names compatible with controller-runtime's, so that existing
 * dashboards and alerts work) behind a few update calls.
 *
 * Label values are passed as a NULL-terminated array, most easily with
 * METRICS_LABELS("a", "b"); their number must match the family's label names.
 *
 * Limits: a family has at most METRICS_LABELS_MAX label names and at most its
 * max_series label sets (default METRICS_SERIES_MAX); past that, updates for new
 * label sets are refused with -E2BIG and counted in
 * pullpolicy_metrics_dropped_series_total, so a label fed by unexpected input
 * cannot grow memory without bound. Label values longer than
 * METRICS_LABEL_VALUE_MAX bytes are refused (-EINVAL). Histograms have at most
 * METRICS_BUCKETS_MAX buckets.
 *
 * Values are never secret: labels carry controller names, results, reasons, verbs
 * and HTTP codes, all from fixed sets chosen by the caller (R11).
 *
 * Not thread-safe: everything runs on the controller's event loop, the HTTP
 * server included (see httpserver.h).
 *
 * Ownership: the registry owns its families; a metrics_family pointer stays
 * valid until metrics_registry_free().
 */
#ifndef PP_CONTROLLER_METRICS_H
#define PP_CONTROLLER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#define METRICS_LABELS_MAX      8
#define METRICS_SERIES_MAX      1000
#define METRICS_LABEL_VALUE_MAX 256
#define METRICS_BUCKETS_MAX     64

typedef struct metrics_registry metrics_registry;
typedef struct metrics_family metrics_family;

typedef enum metrics_type {
        METRICS_COUNTER,
        METRICS_GAUGE,
        METRICS_HISTOGRAM,
} metrics_type;

#define METRICS_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define METRICS_NO_LABELS   ((const char *const[]){NULL})

int metrics_registry_new(metrics_registry **ret);
metrics_registry *metrics_registry_free(metrics_registry *r);

/*
 * Registers a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* without a leading "__" (and not "le" for histograms);
 * label_names is NULL-terminated (NULL or METRICS_NO_LABELS for none). A
 * histogram needs buckets: finite upper bounds in strictly increasing order
 * (+Inf is implied). max_series 0 means METRICS_SERIES_MAX. The name must be
 * new (-EEXIST). Returns 0 and *ret (which may be NULL), or -EINVAL / -ENOMEM.
 */
int metrics_register(metrics_registry *r, metrics_type type, const char *name, const char *help,
                     const char *const *label_names, const double *buckets, size_t n_buckets,
                     size_t max_series, metrics_family **ret);

/* Counters: add v >= 0 (-EINVAL otherwise). Gauges: add any finite v. */
int metrics_add(metrics_family *f, const char *const *label_values, double v);
static inline int metrics_inc(metrics_family *f, const char *const *label_values) {
        return metrics_add(f, label_values, 1);
}
/* Gauges only. */
int metrics_set(metrics_family *f, const char *const *label_values, double v);
/* Histograms only. */
int metrics_observe(metrics_family *f, const char *const *label_values, double v);
/* Forgets every label set of a gauge, e.g. before re-publishing per-reason counts. */
int metrics_reset(metrics_family *f);

/*
 * Reads a series back (tests, and the readiness of dashboards): the value of a
 * counter or gauge, or the sum of a histogram with *ret_count its count.
 * -ENOENT if that label set was never updated.
 */
int metrics_get(const metrics_family *f, const char *const *label_values, double *ret,
                unsigned long long *ret_count);

/* Renders every family, in registration order, series sorted by label values. */
int metrics_render(const metrics_registry *r, char **ret, size_t *ret_len);

/* The content type of metrics_render()'s output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Prometheus' way of printing a sample value: shortest round-trip form, and
 * "+Inf", "-Inf", "NaN". buf must hold 32 bytes.
 */
const char *metrics_format_value(double v, char *buf, size_t bufsz);

/* ---- the controller's metrics ---- */

typedef enum metrics_result {
        METRICS_RESULT_SUCCESS,
        METRICS_RESULT_ERROR,
        METRICS_RESULT_REQUEUE,
        METRICS_RESULT_REQUEUE_AFTER,
        _METRICS_RESULT_MAX,
} metrics_result;

typedef struct controller_metrics {
        metrics_registry *registry;                /* owned */
        metrics_family *reconcile_total;           /* {controller,result} */
        metrics_family *reconcile_errors_total;    /* {controller} */
        metrics_family *reconcile_time_seconds;    /* {controller} histogram */
        metrics_family *active_workers;            /* {controller} */
        metrics_family *max_concurrent_reconciles; /* {controller} */
        metrics_family *workqueue_depth;           /* {name} */
        metrics_family *workqueue_adds_total;      /* {name} */
        metrics_family *workqueue_retries_total;   /* {name} */
        metrics_family *workqueue_queue_duration;  /* {name} histogram */
        metrics_family *workqueue_work_duration;   /* {name} histogram */
        metrics_family *leader_status;             /* {name} 0/1 */
        metrics_family *policies;                  /* {reason} */
        metrics_family *linked_service_accounts;
        metrics_family *waiting_service_accounts;
        metrics_family *events_total;       /* {type,result} */
        metrics_family *api_requests_total; /* {verb,code} */
        metrics_family *writes_total;       /* {resource,verb} */
        metrics_family *start_time_seconds; /* process_start_time_seconds */
        /* pullpolicy_objects_skipped_total{resource,reason} */
        metrics_family *objects_skipped_total;
        metrics_family *cache_objects;       /* pullpolicy_cache_objects{source} */
        metrics_family *cache_bytes;         /* pullpolicy_cache_bytes{kind} */
        metrics_family *cache_relists;       /* pullpolicy_cache_relists{reason} */
        metrics_family *api_inflight_limit;  /* pullpolicy_api_inflight_limit */
        metrics_family *api_throttled_total; /* pullpolicy_api_throttled_total */
        unsigned long throttled_seen;        /* what api_throttled_total holds */
        metrics_family *stale_pods;          /* pullpolicy_stale_pods (R13) */
        metrics_family *stale_pods_deleted_total;
} controller_metrics;

/*
 * Creates a registry with every metric above registered (families exist, with
 * no series until updated, like controller-runtime's). Names:
 *   controller_runtime_reconcile_total{controller,result}   result:
 * success|error|requeue|requeue_after controller_runtime_reconcile_errors_total{controller}
 *   controller_runtime_reconcile_time_seconds{controller}   histogram
 *   controller_runtime_active_workers{controller}
 *   controller_runtime_max_concurrent_reconciles{controller}
 *   workqueue_depth{name}, workqueue_adds_total{name}, workqueue_retries_total{name}
 *   workqueue_queue_duration_seconds{name}, workqueue_work_duration_seconds{name}  histograms
 *   leader_election_master_status{name}
 *   pullpolicy_policies{reason}        policies by their Ready reason (Applied, Waiting, ...)
 *   pullpolicy_linked_service_accounts, pullpolicy_waiting_service_accounts
 *   pullpolicy_api_requests_total{verb,code}   code: HTTP status, or "error" without one
 *   pullpolicy_api_inflight_limit              the client's flow window now (kube/flowctl.h)
 *   pullpolicy_api_throttled_total             429 answers, each retry counted
 *   pullpolicy_writes_total{resource,verb}     writes made (R10: zero when converged)
 *   process_start_time_seconds
 *   pullpolicy_objects_skipped_total{resource,reason}  objects the cache's model refused
 *                                      (model_refusal_reason()), skipped by LIST and WATCH
 *   pullpolicy_cache_objects{source}   objects held by each of the cache's sources
 *   pullpolicy_cache_bytes{kind}       tracked heap bytes of the cached objects of a kind
 *   pullpolicy_cache_relists{reason}   full relists since start by the cache's standing
 *                                      reflectors; "gone": after an expired resourceVersion (410)
 *   pullpolicy_stale_pods              stale pods (R13) of every policy, as last planned
 *   pullpolicy_stale_pods_deleted_total  stale pods deleted for restartStalePods
 *   pullpolicy_metrics_dropped_series_total    (the registry's own, see above)
 */
int controller_metrics_new(controller_metrics **ret);
controller_metrics *controller_metrics_free(controller_metrics *m);

/*
 * Update helpers. They ignore errors on purpose: a metric that cannot be
 * recorded (out of series) must never fail a reconcile; the drop is counted.
 * NULL m is accepted and does nothing, so that code can run without metrics.
 */
const char *metrics_result_to_string(metrics_result r);
void metrics_reconcile_done(controller_metrics *m, const char *controller, metrics_result result,
                            double seconds);
void metrics_set_active_workers(controller_metrics *m, const char *controller, int n);
void metrics_set_max_workers(controller_metrics *m, const char *controller, int n);
void metrics_workqueue_added(controller_metrics *m, const char *queue);
void metrics_workqueue_retried(controller_metrics *m, const char *queue);
void metrics_workqueue_set_depth(controller_metrics *m, const char *queue, size_t depth);
/* Seconds from add to pick-up, and from pick-up to done. */
void metrics_workqueue_queued_for(controller_metrics *m, const char *queue, double seconds);
void metrics_workqueue_worked_for(controller_metrics *m, const char *queue, double seconds);
void metrics_set_leader(controller_metrics *m, const char *lease_name, bool leading);
/*
 * Publishes the number of policies per reason: reasons[i] has counts[i]. The
 * previous set is replaced, so a reason that no policy has any more disappears.
 */
void metrics_set_policies(controller_metrics *m, const char *const *reasons, const size_t *counts,
                          size_t n);
void metrics_set_service_accounts(controller_metrics *m, size_t linked, size_t waiting);
/* n events of type Normal/Warning: sent, patched, combined, suppressed or failed. */
void metrics_events(controller_metrics *m, const char *type, const char *result, unsigned long n);
/* verb: GET, LIST, WATCH, POST, PUT, PATCH, DELETE; http_status 0 = no response. */
void metrics_api_request(controller_metrics *m, const char *verb, long http_status);
void metrics_write(controller_metrics *m, const char *resource, const char *verb);
/* The client's flow window and its 429 count so far (kube_client_stats). */
void metrics_api_flow(controller_metrics *m, unsigned long limit, unsigned long throttled);
/* An object of resource skipped by the cache, reason from model_refusal_reason(). */
void metrics_object_skipped(controller_metrics *m, const char *resource, const char *reason);
/* Gauges of the cache: objects held by a source, bytes held for a kind. */
void metrics_set_cache_objects(controller_metrics *m, const char *source, size_t n);
void metrics_set_cache_bytes(controller_metrics *m, const char *kind, size_t bytes);
void metrics_set_cache_relists(controller_metrics *m, const char *reason, unsigned long n);
/* R13: stale pods over all policies, and one deletion of a stale pod. */
void metrics_set_stale_pods(controller_metrics *m, size_t n);
void metrics_stale_pod_deleted(controller_metrics *m);

#endif
