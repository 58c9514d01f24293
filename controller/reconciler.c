/* SPDX-License-Identifier: Apache-2.0 */
#include "reconciler.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "kube/errors.h"
#include "kube/ratelimit.h"
#include "kube/types.h"
#include "log.h"
#include "removals.h"
#include "stalepods_act.h"
#include "util/hashmap.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/strv.h"

#define CONTROLLER_NAME "pullpolicy"
#define QUEUE_NAME      "pullpolicy"
#define FIELD_MANAGER   "pullpolicy-controller"
#define GAUGE_INTERVAL  5.0
/* the defaults of pp_reconciler_opts.status_quiet and status_max_delay */
#define STATUS_QUIET     0.5
#define STATUS_MAX_DELAY 5.0
/* namespaces pending for one policy beyond which its whole plan is cheaper */
#define PENDING_NAMESPACES_MAX 64

enum { WRITE_FAILED = 1, WRITE_SKIPPED = 2 };

/* One reconcile in flight; a state machine: fetching → applying → done. */
typedef struct job {
        pp_reconciler *r;
        char *key;
        char *ns, *name; /* split key, for logs and events */
        pp_cache_fetch *fetch;
        plan *plan;
        model_policy *policy; /* metadata copy: the cache may drop its own meanwhile */
        pp_apply *apply;
        bool forbidden_status; /* the status write after a refusal is running */
        bool orphan;           /* the policy is gone; what its marks name is undone */
        char *planned_rv;      /* the cached policy's resourceVersion when planned */
        int failed;            /* the refused write's error, reported after that status */
        /* writes the API server refused, for the status (at most MODEL_PROBLEMS_MAX kept) */
        model_problem *write_problems;
        size_t n_write_problems, n_write_failures;
        bool only_forbidden; /* every failure counted was a 403 */
        char *first_failure; /* "<Kind> <ns>/<name>: <why>" of the first, for Ready's message */
        char *false_since;   /* the stored Ready's lastTransitionTime when it is False */
        double started;
        double plan_seconds; /* planning alone, for the log: the rest is I/O */
        /* the namespaces planned alone (plan_policy_namespaces()); NULL: the whole plan */
        char **scoped;
        size_t n_scoped;
        struct job *prev, *next;
        /* per plan write: WRITE_FAILED (any failure), WRITE_SKIPPED (held back by one) */
        unsigned char *write_undone;
} job;

struct pp_reconciler {
        struct ev_loop *loop;
        kube_client *client;
        pp_cache *cache;
        pp_events *events;
        struct pp_stale *stale; /* R13, may be NULL */
        controller_metrics *metrics;
        plan_settings settings;
        kube_workqueue *queue;
        pp_apply_ctx apply_ctx;
        bool active;
        job *jobs;
        unsigned in_flight;
        ev_timer gauges;
        ev_timer resync;
        double resync_period;
        hashmap *written; /* policy key → status_memo */
        hashmap *pending; /* policy key → pending */
        double status_quiet, status_max_delay;
        pp_removals *removals;      /* links removed recently, to undo a resurrection */
        struct undo_req *undo_reqs; /* the merge patches of those undos in flight */
        pp_reconciler_stats stats;
};

/* One undo in flight (pp_reconciler_sa_changed()). */
typedef struct undo_req {
        pp_reconciler *r;
        kube_request *req;
        char *ns, *name;
        size_t n_undone;
        struct undo_req *prev, *next;
} undo_req;

/* ---- statuses written but not yet seen by the watch ----------------------------------------
 *
 * A reconcile triggered by, say, our own RoleBinding's watch event can run
 * before the watch delivers the status we wrote a moment ago; the planner,
 * comparing with the stale cached status, would write the same status again.
 * So we remember what we wrote, and against which cached resourceVersion: as
 * long as the cache still shows that version, the same status is not written
 * twice. lastTransitionTime is left out of the comparison (it is derived from
 * the cached status, so it is the one thing a stale cache changes).
 */
typedef struct status_memo {
        char *key;
        char *rv;
        uint64_t hash;
} status_memo;

static void status_memo_free(status_memo *m) {
        if (!m) return;
        free(m->key);
        free(m->rv);
        free(m);
}

static uint64_t status_hash(const model_policy *p, const plan_status *st) {
        plan_status copy = *st;
        copy.ready_last_transition = NULL;
        json_object *o = NULL;
        if (pp_apply_status_json(p, &copy, &o) < 0) return 0;
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        uint64_t h = 1469598103934665603ull;
        for (const char *c = text; c && *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
        json_object_put(o);
        return h;
}

static void memo_forget(pp_reconciler *r, const char *key) {
        status_memo_free(hashmap_remove(r->written, key));
}

static void memo_remember(pp_reconciler *r, const char *key, const char *rv, uint64_t hash) {
        memo_forget(r, key);
        if (!rv || hash == 0) return;
        status_memo *m = calloc(1, sizeof(*m));
        if (!m) return;
        m->key = strdup(key);
        m->rv = strdup(rv);
        m->hash = hash;
        if (!m->key || !m->rv || hashmap_put(r->written, m->key, m, NULL) < 0) status_memo_free(m);
}

/* Whether the plan's status is the one we wrote while the cache showed p as it does now. */
static bool memo_same(pp_reconciler *r, const char *key, const model_policy *p,
                      const plan_status *st) {
        const status_memo *m = hashmap_get(r->written, key);
        return m && streq_ptr(m->rv, p->meta.resource_version) && m->hash == status_hash(p, st);
}

/* ---- what a policy's next reconcile is to plan -------------------------------------------
 *
 * A change of service accounts or of their bindings only (pp_reconciler_enqueue_namespace())
 * is planned for their namespaces alone, at the cost of those namespaces' accounts; any
 * other change, and a reconcile nobody asked for in particular (a retry, a requeue, a
 * resync), plans the whole policy. The plan of namespaces writes no status (its counts need
 * every account): it makes the whole plan due, once the policy's accounts have been quiet
 * for status_quiet seconds and at most status_max_delay seconds after the first plan that
 * owed it, so that a burst of new accounts costs one recount, not one per account.
 */
typedef struct pending {
        pp_reconciler *r;
        char *key;
        bool whole;        /* the whole plan is needed */
        char **namespaces; /* else: the namespaces whose accounts (or binding) changed */
        size_t n_namespaces, cap_namespaces;
        double last_change; /* kube_now() of the last such change */
        double owed_since;  /* the first plan of namespaces the recount is owed to */
        ev_timer recount;   /* active while the recount is owed */
} pending;

static void pending_free(pending *pd) {
        if (!pd) return;
        ev_timer_stop(pd->r->loop, &pd->recount);
        strv_free(pd->namespaces, pd->n_namespaces);
        free(pd->key);
        free(pd);
}

static void pending_drop_all(pp_reconciler *r) {
        size_t it = 0;
        void *v;
        while (hashmap_iterate(r->pending, &it, NULL, &v)) pending_free(v);
        hashmap_free(r->pending);
        r->pending = NULL;
        if (hashmap_new(&r->pending) < 0) r->pending = NULL; /* then: whole plans only */
}

static void on_recount(struct ev_loop *loop, ev_timer *w, int revents) {
        pending *pd = w->data;
        pp_reconciler *r = pd->r;
        double now = kube_now();
        double due = MIN(pd->last_change + r->status_quiet, pd->owed_since + r->status_max_delay);
        if (now < due) {
                ev_timer_set(w, due - now, 0.);
                ev_timer_start(loop, w);
                return;
        }
        pd->whole = true;
        if (kube_workqueue_add(r->queue, pd->key) >= 0 && r->metrics)
                metrics_workqueue_added(r->metrics, QUEUE_NAME);
}

static pending *pending_get(pp_reconciler *r, const char *key) {
        if (!r->pending) return NULL;
        pending *pd = hashmap_get(r->pending, key);
        if (pd) return pd;
        pd = calloc(1, sizeof(*pd));
        if (!pd) return NULL;
        pd->r = r;
        pd->key = strdup(key);
        ev_timer_init(&pd->recount, on_recount, 0., 0.);
        pd->recount.data = pd;
        if (!pd->key || hashmap_put(r->pending, pd->key, pd, NULL) < 0) {
                free(pd->key);
                free(pd);
                return NULL;
        }
        return pd;
}

/*
 * What the reconcile of key starting now plans: the namespaces to plan alone (*ret, owned
 * by the caller), or the whole policy (*ret NULL), which settles everything pending.
 */
static void pending_take(pp_reconciler *r, const char *key, bool whole_only, char ***ret,
                         size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        pending *pd = r->pending ? hashmap_get(r->pending, key) : NULL;
        if (!pd) return;
        if (!whole_only && !pd->whole && pd->n_namespaces > 0) {
                *ret = TAKE_PTR(pd->namespaces);
                *ret_n = pd->n_namespaces;
                pd->n_namespaces = pd->cap_namespaces = 0;
                if (!ev_is_active(&pd->recount)) {
                        pd->owed_since = kube_now();
                        ev_timer_set(&pd->recount, r->status_quiet, 0.);
                        ev_timer_start(r->loop, &pd->recount);
                }
                return;
        }
        hashmap_remove(r->pending, key);
        pending_free(pd);
}

/* ---- jobs ------------------------------------------------------------------------------ */

static void job_free(job *j) {
        if (!j) return;
        pp_reconciler *r = j->r;
        if (j->prev)
                j->prev->next = j->next;
        else if (r->jobs == j)
                r->jobs = j->next;
        if (j->next) j->next->prev = j->prev;
        pp_cache_fetch_cancel(j->fetch);
        pp_apply_cancel(j->apply);
        plan_free(j->plan);
        for (size_t i = 0; i < j->n_write_problems; i++) {
                model_problem *pr = &j->write_problems[i];
                free(pr->namespace), free(pr->name), free(pr->reason), free(pr->message);
        }
        free(j->write_problems);
        free(j->write_undone);
        strv_free(j->scoped, j->n_scoped);
        free(j->first_failure);
        free(j->false_since);
        model_policy_free(j->policy);
        free(j->planned_rv);
        free(j->key);
        free(j->ns);
        free(j->name);
        free(j);
        r->in_flight--;
        if (r->metrics) metrics_set_active_workers(r->metrics, CONTROLLER_NAME, (int)r->in_flight);
}

/* Ends a reconcile: reports to the queue (which may start the next one) and frees the job. */
static void job_finish(job *j, int result) {
        pp_reconciler *r = j->r;
        double took = kube_now() - j->started;
        metrics_result mr = METRICS_RESULT_SUCCESS;
        if (result < 0) {
                mr = METRICS_RESULT_ERROR;
                r->stats.errors++;
                /* The queue takes it back rate-limited: a retry. */
                if (r->metrics) metrics_workqueue_retried(r->metrics, QUEUE_NAME);
        } else if (result > 0)
                mr = METRICS_RESULT_REQUEUE_AFTER;
        if (r->metrics) metrics_reconcile_done(r->metrics, CONTROLLER_NAME, mr, took);
        /* The job's own key, taken rather than copied: nothing can fail between the
         * end of a reconcile and done(), which a key left "processing" never gets. */
        _cleanup_free_ char *key = TAKE_PTR(j->key);
        job_free(j);
        kube_workqueue_done(r->queue, key, result);
}

static void emit_events(job *j) {
        pp_reconciler *r = j->r;
        if (r->stale && j->plan && j->policy && !j->scoped) {
                /* R13: stale pods' Events, opt-in deletions; the rate may ask to come back. A
                 * plan of some namespaces alone judges no pods: it must not read as "none". */
                long long after = pp_stale_act(r->stale, &j->policy->meta, j->plan, kube_now());
                if (after >= 0 && (j->plan->requeue_after < 0 || after < j->plan->requeue_after))
                        j->plan->requeue_after = after;
        }
        if (!r->events || !j->plan) return;
        const model_policy *p = j->policy;
        pp_object_ref ref = {
            .api_version = "pullpolicy.io/v1alpha1",
            .kind = "PullPolicy",
            .namespace = p->meta.namespace,
            .name = p->meta.name,
            .uid = p->meta.uid,
        };
        double now = kube_now();
        for (size_t i = 0; i < j->plan->n_events; i++) {
                const plan_event *e = &j->plan->events[i];
                pp_events_record(r->events, &ref, e->warning, e->reason, e->message, now);
        }
}

/* Milliseconds for the queue's "requeue after", bounded to an int. */
static int requeue_ms(long long seconds) {
        if (seconds < 0) return 0;
        if (seconds > 24 * 3600) seconds = 24 * 3600;
        return seconds == 0 ? 1 : (int)(seconds * 1000);
}

static void log_outcome(job *j, const char *msg) {
        const plan *p = j->plan;
        log_level level =
            p && (p->n_writes > 0 || p->status_changed) ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
        if (!log_enabled(level)) return;
        log_at(level, LOG_POLICY(j->ns, j->name), msg, LOG_UINT("writes", p ? p->n_writes : 0),
               LOG_BOOL("statusChanged", p && p->status_changed),
               LOG_STR("reason", p && p->has_status ? p->status.ready_reason : NULL),
               LOG_INT("linked", p && p->has_status ? p->status.linked : 0),
               LOG_INT("waiting", p && p->has_status ? p->status.waiting : 0),
               LOG_FLOAT("planSeconds", j->plan_seconds),
               LOG_FLOAT("seconds", kube_now() - j->started));
}

static void on_forbidden_status(void *ud, int result, size_t n_done, const char *failed_what) {
        job *j = ud;
        j->apply = NULL;
        if (result < 0)
                log_warn(LOG_POLICY(j->ns, j->name),
                         "could not write the status after failed writes", LOG_ERRNO(result));
        else
                memo_remember(j->r, j->key, j->planned_rv,
                              status_hash(j->policy, &j->plan->status));
        job_finish(j, j->failed);
}

/*
 * Races that the next reconcile resolves by itself are no problem of the policy's: a
 * conflict (someone wrote the object since it was planned), an object that appeared or
 * went away meanwhile. Everything else the API server answered is reported.
 */
static bool write_raced(int error) {
        /* -ESTALE/-EEXIST: apply's own finding that the object changed since the plan */
        return kube_error_is_conflict(error) || kube_error_is_already_exists(error) ||
               error == -ESTALE || error == -EEXIST;
}

static bool failure_reported(int error) {
        return !write_raced(error) && !kube_error_is_not_found(error);
}

/* ctx.on_write_failed: one write failed; the apply goes on with the others. */
static void on_write_failed(void *ud, const pp_apply_failure *f) {
        job *j = ud;
        bool reported = failure_reported(f->error);
        log_at(reported ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, LOG_POLICY(j->ns, j->name),
               "write failed", LOG_STR("write", f->what), LOG_ERRNO(f->error),
               LOG_INT("status", f->http_status), LOG_STR("message", f->message));
        if (j->write_undone && f->write_index < j->plan->n_writes)
                j->write_undone[f->write_index] = WRITE_FAILED;
        if (!reported) return;
        bool forbidden = kube_error_is_forbidden(f->error);
        j->only_forbidden = (j->n_write_failures == 0 || j->only_forbidden) && forbidden;
        j->n_write_failures++;
        if (j->n_write_problems >= MODEL_PROBLEMS_MAX) return;
        model_problem *v = realloc(j->write_problems, (j->n_write_problems + 1) * sizeof(*v));
        if (!v) return;
        j->write_problems = v;
        model_problem pr = {0};
        char *detail = NULL;
        int k;
        if (*f->message)
                k = asprintf(&detail, "%s: %s", f->what, f->message);
        else if (f->http_status)
                k = asprintf(&detail, "%s: HTTP %ld%s%s", f->what, f->http_status,
                             *f->api_reason ? " " : "", f->api_reason);
        else
                k = asprintf(&detail, "%s: %s", f->what, kube_strerror(f->error));
        if (k < 0) return;
        if (asprintf(&pr.message, "could not write %s", detail) < 0) pr.message = NULL;
        if (!j->first_failure)
                j->first_failure = detail;
        else
                free(detail);
        pr.namespace = strdup_or_null(f->namespace);
        pr.name = strdup_or_null(f->name);
        pr.reason = strdup(forbidden ? "Forbidden" : "WriteFailed");
        if (!pr.message || !pr.reason || (f->namespace && !pr.namespace) || (f->name && !pr.name)) {
                free(pr.namespace), free(pr.name), free(pr.reason), free(pr.message);
                return;
        }
        j->write_problems[j->n_write_problems++] = pr;
}

/*
 * The status counts what is there: a write that failed, or that the apply skipped after a
 * failure it depends on (pp_apply_write_depends(), as the apply decides), made nothing.
 */
static void uncount_undone(job *j) {
        plan *p = j->plan;
        if (!j->write_undone) return;
        for (size_t k = 0; k < p->n_writes; k++) {
                if (j->write_undone[k] != WRITE_FAILED) continue;
                plan_status_write_undone(p, k);
                /* the apply skips a later write that depends on a failed one (not on a
                 * skipped one); each is uncounted once, however many failures hold it */
                for (size_t i = k + 1; i < p->n_writes; i++)
                        if (!j->write_undone[i] &&
                            pp_apply_write_depends(&p->writes[i], &p->writes[k])) {
                                plan_status_write_undone(p, i);
                                j->write_undone[i] = WRITE_SKIPPED;
                        }
        }
}

/*
 * Writes were refused: say so in the policy's status, Ready=False with reason Forbidden
 * (every refusal a 403: RBAC, usually) or WriteFailed, a message that counts them and
 * names the first, and a problem per object (before the planned ones), so that an admin
 * sees it without reading the controller's log.
 */
static bool report_forbidden(job *j, int error, const char *failed_what) {
        plan *p = j->plan;
        if (!p->has_status || j->n_write_problems == 0) return false;
        uncount_undone(j);
        size_t n = j->n_write_failures;
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "%zu object%s could not be written: %s%s", n, n == 1 ? "" : "s",
                     j->first_failure ? j->first_failure : "?",
                     n > 1 ? " (and others, see problems)" : "") < 0)
                return false;
        char *reason = strdup(j->only_forbidden ? "Forbidden" : "WriteFailed");
        size_t total = MIN(j->n_write_problems + p->status.n_problems, (size_t)MODEL_PROBLEMS_MAX);
        model_problem *probs = calloc(total, sizeof(*probs));
        if (!reason || !probs) {
                free(reason);
                free(probs);
                return false;
        }
        /* the write failures first, then as many planned problems as fit; the rest dropped */
        size_t k = 0;
        for (size_t i = 0; i < j->n_write_problems && k < total; i++)
                probs[k++] = j->write_problems[i];
        j->n_write_problems = 0;
        for (size_t i = 0; i < p->status.n_problems; i++) {
                model_problem *pr = &p->status.problems[i];
                if (k < total)
                        probs[k++] = *pr;
                else
                        free(pr->namespace), free(pr->name), free(pr->reason), free(pr->message);
        }
        free(p->status.problems);
        p->status.problems = probs;
        p->status.n_problems = k;
        free(p->status.ready_reason);
        free(p->status.ready_message);
        /* kept as stored while Ready stays False: a retry that fails the same way writes the
         * same status, which changes nothing (and triggers no watch event); NULL: now */
        free(p->status.ready_last_transition);
        p->status.ready_last_transition = TAKE_PTR(j->false_since);
        p->status.ready_status = "False";
        p->status.ready_reason = reason;
        p->status.ready_message = TAKE_PTR(msg);
        j->failed = error;
        j->forbidden_status = true;
        /* a retry that fails the same way, while the cache still shows that status: no write */
        if (memo_same(j->r, j->key, j->policy, &p->status)) {
                log_debug(LOG_POLICY(j->ns, j->name), "status after failed writes unchanged");
                job_finish(j, error);
                return true;
        }
        int r = pp_apply_status(&j->r->apply_ctx, j->policy, &p->status, on_forbidden_status, j,
                                &j->apply);
        return r >= 0;
}

static void on_applied(void *ud, int result, size_t n_done, const char *failed_what) {
        job *j = ud;
        pp_reconciler *r = j->r;
        j->apply = NULL;
        r->stats.writes += n_done;
        if (result < 0) {
                bool conflict = write_raced(result);
                if (conflict) r->stats.conflicts++;
                /* A conflict is the normal outcome of a race with another writer: the
                 * queue retries it at once, after the watch caught up. */
                log_at(conflict && !j->n_write_failures ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
                       LOG_POLICY(j->ns, j->name), "writes failed", LOG_STR("first", failed_what),
                       LOG_ERRNO(result), LOG_UINT("done", n_done),
                       LOG_UINT("failed", j->n_write_failures));
                /* the queue takes it back rate-limited: a backoff per policy */
                if (report_forbidden(j, result, failed_what)) return;
                job_finish(j, result);
                return;
        }
        if (j->plan->has_status && j->plan->status_changed) {
                r->stats.status_writes++;
                memo_remember(r, j->key, j->planned_rv, status_hash(j->policy, &j->plan->status));
        }
        emit_events(j);
        log_outcome(j, j->scoped ? "reconciled service accounts" : "reconciled");
        job_finish(j, j->plan->requeue_after > 0 ? requeue_ms(j->plan->requeue_after) : 0);
}

/*
 * Remembers the links the plan's service-account edits remove (and forgets those it
 * adds), before the writes go out: a writer's resurrection can arrive on the watch
 * before the whole plan is done. A removal that then fails is harmless to remember: the
 * record still claims the link, and a claimed link is never undone.
 */
static void note_sa_edits(pp_reconciler *r, const plan *pl) {
        double now = kube_now();
        for (size_t i = 0; i < pl->n_writes; i++) {
                const plan_write *w = &pl->writes[i];
                if (w->kind != PLAN_SA_EDIT) continue;
                const plan_sa_desired *d = &w->sa.desired;
                for (size_t k = 0; k < d->n_added; k++)
                        pp_removals_note_added(r->removals, w->namespace, w->name,
                                               d->added[k].secret, d->added[k].list);
                for (size_t k = 0; k < d->n_removed + d->n_released; k++) {
                        const plan_sa_change *c =
                            k < d->n_removed ? &d->removed[k] : &d->released[k - d->n_removed];
                        if (pp_removals_note_removed(r->removals, w->namespace, w->name, c->secret,
                                                     c->list, now) < 0)
                                log_warn(LOG_OBJ("serviceaccount", w->namespace, w->name),
                                         "cannot remember a removed link", LOG_ERRNO(-ENOMEM));
                }
        }
}

/*
 * A policy that no longer exists (its finalizer removed by hand, or deleted while no
 * controller ran) left objects marked for it: they are undone as its finalizer would
 * have (plan_orphan()), and looked at again until the caches show nothing left.
 */
static void sweep_orphan(job *j) {
        pp_reconciler *r = j->r;
        if (!pp_cache_orphaned(r->cache, j->key)) {
                job_finish(j, 0); /* it came back, or nothing is left */
                return;
        }
        plan_snapshot snap = pp_cache_snapshot(r->cache);
        plan_settings st = r->settings;
        st.now = (long long)time(NULL);
        int k = plan_orphan(j->ns, j->name, &snap, &st, &j->plan);
        if (k < 0) {
                log_error(LOG_POLICY(j->ns, j->name),
                          "planning the clean-up of a deleted policy "
                          "failed",
                          LOG_ERRNO(k));
                job_finish(j, k);
                return;
        }
        if (j->plan->n_writes == 0) {
                job_finish(j, j->plan->requeue_after > 0 ? requeue_ms(j->plan->requeue_after) : 0);
                return;
        }
        log_info(LOG_POLICY(j->ns, j->name), "undoing what a policy that no longer exists left",
                 LOG_UINT("writes", j->plan->n_writes));
        note_sa_edits(r, j->plan);
        k = pp_apply_plan(&r->apply_ctx, j->policy, j->plan, on_applied, j, &j->apply);
        if (k < 0) {
                log_error(LOG_POLICY(j->ns, j->name), "could not start the writes", LOG_ERRNO(k));
                job_finish(j, k);
        }
}

static void plan_and_apply(job *j) {
        pp_reconciler *r = j->r;
        if (j->orphan) {
                sweep_orphan(j);
                return;
        }
        const model_policy *p = pp_cache_policy(r->cache, j->key);
        if (!p) {
                memo_forget(r, j->key);
                job_finish(j, 0);
                return;
        }
        plan_snapshot snap = pp_cache_snapshot(r->cache);
        plan_settings st = r->settings;
        st.now = (long long)time(NULL);
        double t0 = kube_now();
        int k = -ENOTSUP;
        if (j->scoped) {
                k = plan_policy_namespaces(p, j->scoped, j->n_scoped, &snap, &st, &j->plan);
                if (k == -ENOTSUP) {
                        /* only the whole plan will do (plan.h), and it settles the recount */
                        strv_free(j->scoped, j->n_scoped);
                        j->scoped = NULL;
                        j->n_scoped = 0;
                        char **none = NULL;
                        size_t n_none = 0;
                        pending_take(r, j->key, true, &none, &n_none);
                } else if (k >= 0)
                        r->stats.scoped++;
        }
        if (k == -ENOTSUP) k = plan_policy(p, &snap, &st, &j->plan);
        j->plan_seconds = kube_now() - t0;
        if (k < 0) {
                log_error(LOG_POLICY(j->ns, j->name), "planning failed", LOG_ERRNO(k));
                job_finish(j, k);
                return;
        }
        /* The apply step outlives this turn of the loop; the cache's object may not. */
        j->policy = calloc(1, sizeof(*j->policy));
        if (!j->policy || kube_meta_copy(&p->meta, &j->policy->meta) < 0) {
                free(j->policy);
                j->policy = NULL;
                job_finish(j, -ENOMEM);
                return;
        }
        j->planned_rv = strdup_or_null(p->meta.resource_version);
        if (p->status.has_ready && streq_ptr(p->status.ready_status, "False"))
                j->false_since = strdup_or_null(p->status.ready_last_transition);
        if (j->plan->has_status && j->plan->status_changed &&
            memo_same(r, j->key, j->policy, &j->plan->status))
                j->plan->status_changed = false;
        if (j->plan->n_writes == 0 && !(j->plan->has_status && j->plan->status_changed)) {
                /* Converged (R10): no request at all. */
                emit_events(j);
                log_outcome(j, j->scoped ? "service accounts in sync" : "in sync");
                job_finish(j, j->plan->requeue_after > 0 ? requeue_ms(j->plan->requeue_after) : 0);
                return;
        }
        if (j->plan->n_writes > 0) {
                j->write_undone = calloc(j->plan->n_writes, 1);
                if (!j->write_undone) {
                        job_finish(j, -ENOMEM);
                        return;
                }
        }
        note_sa_edits(r, j->plan);
        k = pp_apply_plan(&r->apply_ctx, j->policy, j->plan, on_applied, j, &j->apply);
        if (k < 0) {
                log_error(LOG_POLICY(j->ns, j->name), "could not start the writes", LOG_ERRNO(k));
                job_finish(j, k);
        }
}

static void on_prefetched(void *ud, int result) {
        job *j = ud;
        j->fetch = NULL;
        if (result < 0) {
                log_warn(LOG_POLICY(j->ns, j->name), "reading the named secrets failed",
                         LOG_ERRNO(result));
                job_finish(j, result);
                return;
        }
        plan_and_apply(j);
}

static bool home_may_merge(const pp_reconciler *r, const char *home) {
        for (size_t i = 0; i < r->settings.n_distribution_namespaces; i++)
                if (streq(r->settings.distribution_namespaces[i], home)) return true;
        return false;
}

static int process(kube_workqueue *q, const char *key, void *ud) {
        pp_reconciler *r = ud;
        if (!r->active) {
                /* Not the leader: the new leader is handed every policy anyway. */
                kube_workqueue_forget(q, key);
                return kube_workqueue_done(q, key, 0);
        }
        const model_policy *p = pp_cache_policy(r->cache, key);
        model_policy *ghost = NULL;
        int synced = p ? pp_cache_sources_synced(r->cache, p) : 1;
        if (synced < 0) return synced;
        if (synced == 0) {
                /* planned now, its sources would look missing; the cache enqueues it again
                 * once the secrets it names are listed */
                log_debug(LOG_COMPONENT("reconciler"), "waiting for the secrets it names",
                          LOG_STR("policy", key));
                return kube_workqueue_done(q, key, 0);
        }
        if (!p) {
                if (!pp_cache_orphaned(r->cache, key)) {
                        char **none = NULL;
                        size_t n_none = 0;
                        pending_take(r, key, true, &none, &n_none);
                        log_debug(LOG_COMPONENT("reconciler"), "policy gone",
                                  LOG_STR("policy", key));
                        return kube_workqueue_done(q, key, 0);
                }
                /* gone, but its marks are still on objects: only its identity is needed */
                const char *slash = strchr(key, '/');
                ghost = calloc(1, sizeof(*ghost));
                if (!ghost) return -ENOMEM;
                ghost->meta.namespace = strndup(key, (size_t)(slash - key));
                ghost->meta.name = strdup(slash + 1);
                ghost->meta.deleting = true;
                if (!ghost->meta.namespace || !ghost->meta.name) {
                        model_policy_free(ghost);
                        return -ENOMEM;
                }
                p = ghost;
        }
        job *j = calloc(1, sizeof(*j));
        if (!j) {
                model_policy_free(ghost);
                return -ENOMEM;
        }
        j->orphan = ghost != NULL;
        j->policy = ghost;
        j->r = r;
        j->started = kube_now();
        pending_take(r, key, ghost != NULL, &j->scoped, &j->n_scoped);
        j->key = strdup(key);
        j->ns = strdup(p->meta.namespace ? p->meta.namespace : "");
        j->name = strdup(p->meta.name);
        j->next = r->jobs;
        if (r->jobs) r->jobs->prev = j;
        r->jobs = j;
        r->in_flight++;
        r->stats.reconciles++;
        if (r->metrics) metrics_set_active_workers(r->metrics, CONTROLLER_NAME, (int)r->in_flight);
        if (!j->key || !j->ns || !j->name) {
                job_free(j);
                return -ENOMEM;
        }
        int k =
            pp_cache_prefetch(r->cache, p, home_may_merge(r, j->ns), on_prefetched, j, &j->fetch);
        if (k < 0) {
                job_free(j);
                return k;
        }
        if (k == 0) plan_and_apply(j);
        return 0;
}

/* ---- queue metrics ---------------------------------------------------------------------- */

static void observe_queue(void *ud, double seconds) {
        pp_reconciler *r = ud;
        if (r->metrics) metrics_workqueue_queued_for(r->metrics, QUEUE_NAME, seconds);
}

static void observe_work(void *ud, double seconds) {
        pp_reconciler *r = ud;
        if (r->metrics) metrics_workqueue_worked_for(r->metrics, QUEUE_NAME, seconds);
}

typedef struct gauge_ctx {
        const char *reasons[16];
        size_t counts[16];
        size_t n;
        size_t linked, waiting;
} gauge_ctx;

static void count_policy(const model_policy *p, void *ud) {
        gauge_ctx *g = ud;
        const char *reason =
            p->status.has_ready && p->status.ready_reason ? p->status.ready_reason : "Unknown";
        size_t i;
        for (i = 0; i < g->n; i++)
                if (streq(g->reasons[i], reason)) break;
        if (i == g->n) {
                if (g->n == ARRAY_SIZE(g->reasons)) return;
                g->reasons[g->n++] = reason;
        }
        g->counts[i]++;
        if (p->status.linked > 0) g->linked += (size_t)p->status.linked;
        if (p->status.waiting > 0) g->waiting += (size_t)p->status.waiting;
}

static void on_gauges(struct ev_loop *loop, ev_timer *w, int revents) {
        pp_reconciler *r = w->data;
        if (!r->metrics) return;
        gauge_ctx g = {0};
        pp_cache_visit_policies(r->cache, count_policy, &g);
        metrics_set_policies(r->metrics, g.reasons, g.counts, g.n);
        metrics_set_service_accounts(r->metrics, g.linked, g.waiting);
        kube_workqueue_stats qs;
        kube_workqueue_get_stats(r->queue, &qs);
        metrics_workqueue_set_depth(r->metrics, QUEUE_NAME, qs.depth);
        pp_cache_publish_metrics(r->cache);
}

static void on_resync(struct ev_loop *loop, ev_timer *w, int revents) {
        pp_reconciler *r = w->data;
        if (!r->active) return;
        pp_cache_foreach_policy(r->cache, pp_reconciler_enqueue, r);
        pp_cache_foreach_orphan(r->cache, pp_reconciler_enqueue, r);
}

/*
 * Every counter series exists from the start, at 0, as with controller-runtime:
 * Prometheus' increase() cannot see a series' first sample, so an alert on
 * the first reconcile error would never fire if the series appeared at 1.
 */
static void metrics_zero(controller_metrics *m) {
        for (int res = 0; res < _METRICS_RESULT_MAX; res++)
                (void)metrics_add(m->reconcile_total,
                                  METRICS_LABELS(CONTROLLER_NAME, metrics_result_to_string(res)),
                                  0);
        (void)metrics_add(m->reconcile_errors_total, METRICS_LABELS(CONTROLLER_NAME), 0);
        (void)metrics_add(m->workqueue_adds_total, METRICS_LABELS(QUEUE_NAME), 0);
        (void)metrics_add(m->workqueue_retries_total, METRICS_LABELS(QUEUE_NAME), 0);
        (void)metrics_set(m->workqueue_depth, METRICS_LABELS(QUEUE_NAME), 0);
        metrics_set_active_workers(m, CONTROLLER_NAME, 0);
        metrics_set_service_accounts(m, 0, 0);
}

/* ---- public ----------------------------------------------------------------------------- */

/* ---- undoing resurrected links (removals.h) ------------------------------------------------ */

static unsigned recently_removed(void *ud, const char *ns, const char *sa, const char *secret) {
        return pp_removals_lists(ud, ns, sa, secret, kube_now());
}

static void undo_req_free(undo_req *u) {
        if (!u) return;
        pp_reconciler *r = u->r;
        if (u->prev)
                u->prev->next = u->next;
        else if (r->undo_reqs == u)
                r->undo_reqs = u->next;
        if (u->next) u->next->prev = u->prev;
        free(u->ns);
        free(u->name);
        free(u);
}

static void cancel_undos(pp_reconciler *r) {
        while (r->undo_reqs) {
                undo_req *u = r->undo_reqs;
                kube_request_cancel(u->req);
                undo_req_free(u);
        }
}

static void on_undo_done(kube_client *c, const kube_response *resp, void *ud) {
        undo_req *u = ud;
        pp_reconciler *r = u->r;
        if (resp->error == 0) {
                r->stats.writes++;
                r->stats.relinks_undone += u->n_undone;
        } else if (write_raced(resp->error)) {
                /* the account changed meanwhile: its next watch event looks again */
                r->stats.conflicts++;
                log_debug(LOG_OBJ("serviceaccount", u->ns, u->name),
                          "removing a resurrected link raced another write",
                          LOG_ERRNO(resp->error));
        } else
                log_warn(LOG_OBJ("serviceaccount", u->ns, u->name),
                         "could not remove a resurrected link", LOG_ERRNO(resp->error));
        undo_req_free(u);
}

static json_object *names_array(char *const *names, size_t n) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++) {
                json_object *e = json_object_new_object();
                if (!e || jsonutil_add(e, "name", json_object_new_string(names[i])) < 0 ||
                    json_object_array_add(a, e) < 0) {
                        json_object_put(e);
                        json_object_put(a);
                        return NULL;
                }
        }
        return a;
}

/* The merge patch: the changed lists, guarded by the resourceVersion they were read at. */
static int undo_body(const model_sa *sa, const pp_removals_undo *u, char **ret) {
        json_object *p = json_object_new_object(), *meta = json_object_new_object();
        int k = p && meta ? 0 : -ENOMEM;
        if (k >= 0)
                k = jsonutil_add(meta, "resourceVersion",
                                 json_object_new_string(sa->meta.resource_version));
        if (k >= 0) {
                k = jsonutil_add(p, "metadata", meta);
                meta = NULL;
        }
        if (k >= 0 && u->n_secrets != sa->n_secrets)
                k = jsonutil_add(p, "secrets", names_array(u->secrets, u->n_secrets));
        if (k >= 0 && u->n_pull_secrets != sa->n_pull_secrets)
                k = jsonutil_add(p, "imagePullSecrets",
                                 names_array(u->pull_secrets, u->n_pull_secrets));
        if (k >= 0) {
                const char *s = json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN);
                *ret = s ? strdup(s) : NULL;
                if (!*ret) k = -ENOMEM;
        }
        json_object_put(meta);
        json_object_put(p);
        return k;
}

void pp_reconciler_sa_changed(pp_reconciler *r, const model_sa *sa) {
        if (!r || !r->active || !sa || !sa->meta.resource_version) return;
        pp_removals_undo u = {0};
        int k = pp_removals_check(r->removals, sa, kube_now(), &u);
        if (k <= 0) return;
        _cleanup_free_ char *path = NULL, *body = NULL;
        undo_req *q = NULL;
        k = kube_resource_path(&KUBE_RES_SERVICEACCOUNTS, sa->meta.namespace, sa->meta.name, NULL,
                               &path);
        if (k >= 0) k = undo_body(sa, &u, &body);
        if (k >= 0 && !(q = calloc(1, sizeof(*q)))) k = -ENOMEM;
        if (k >= 0) {
                q->r = r;
                q->ns = strdup(sa->meta.namespace);
                q->name = strdup(sa->meta.name);
                q->n_undone = u.n_undone;
                if (!q->ns || !q->name) k = -ENOMEM;
        }
        if (k >= 0) {
                q->next = r->undo_reqs;
                if (r->undo_reqs) r->undo_reqs->prev = q;
                r->undo_reqs = q;
                log_info(LOG_OBJ("serviceaccount", sa->meta.namespace, sa->meta.name),
                         "removing again a link that another writer put back",
                         LOG_STR("secret", u.undone[0]), LOG_UINT("links", u.n_undone));
                kube_request_opts o = {
                    .method = KUBE_PATCH,
                    .patch_type = KUBE_PATCH_MERGE,
                    .path = path,
                    .body = body,
                    .body_len = strlen(body),
                    .timeout_ms = 30000,
                    .on_done = on_undo_done,
                    .userdata = q,
                };
                k = kube_client_request(r->client, &o, &q->req);
                if (k < 0) {
                        undo_req_free(q);
                        q = NULL;
                } else if (r->metrics)
                        metrics_write(r->metrics, "serviceaccounts", "patch");
        } else if (q) {
                free(q->ns);
                free(q->name);
                free(q);
        }
        if (k < 0)
                log_warn(LOG_OBJ("serviceaccount", sa->meta.namespace, sa->meta.name),
                         "could not remove a resurrected link", LOG_ERRNO(k));
        pp_removals_undo_done(&u);
}

void pp_reconciler_enqueue(void *ud, const char *policy_key) {
        pp_reconciler *r = ud;
        if (!r->active) return;
        /* nothing pending: the reconcile plans the whole policy anyway */
        pending *pd = r->pending ? hashmap_get(r->pending, policy_key) : NULL;
        if (pd) pd->whole = true;
        if (kube_workqueue_add(r->queue, policy_key) >= 0 && r->metrics)
                metrics_workqueue_added(r->metrics, QUEUE_NAME);
}

void pp_reconciler_enqueue_namespace(pp_reconciler *r, const char *policy_key,
                                     const char *namespace) {
        if (!r->active) return;
        pending *pd = r->status_quiet >= 0 && namespace ? pending_get(r, policy_key) : NULL;
        if (!pd) {
                pp_reconciler_enqueue(r, policy_key);
                return;
        }
        pd->last_change = kube_now();
        if (!pd->whole && !strv_contains(pd->namespaces, pd->n_namespaces, namespace) &&
            (pd->n_namespaces >= PENDING_NAMESPACES_MAX ||
             strv_push(&pd->namespaces, &pd->n_namespaces, &pd->cap_namespaces, namespace) < 0))
                pd->whole = true;
        if (kube_workqueue_add(r->queue, policy_key) >= 0 && r->metrics)
                metrics_workqueue_added(r->metrics, QUEUE_NAME);
}

int pp_reconciler_new(const pp_reconciler_opts *o, pp_reconciler **ret) {
        if (!o || !o->loop || !o->client || !o->cache || !ret) return -EINVAL;
        pp_reconciler *r = calloc(1, sizeof(*r));
        if (!r) return -ENOMEM;
        r->loop = o->loop;
        r->client = o->client;
        r->cache = o->cache;
        r->events = o->events;
        r->stale = o->stale;
        r->metrics = o->metrics;
        r->settings = o->settings;
        r->resync_period = o->resync_period;
        r->status_quiet = o->status_quiet ? o->status_quiet : STATUS_QUIET;
        r->status_max_delay = o->status_max_delay > 0 ? o->status_max_delay : STATUS_MAX_DELAY;
        r->apply_ctx = (pp_apply_ctx){
            .client = o->client,
            .field_manager = FIELD_MANAGER,
            .metrics = o->metrics,
            .global_ns = o->settings.global_pull_secret_namespace,
            .global_name = o->settings.global_pull_secret_name,
            .on_write_failed = on_write_failed,
        };
        kube_workqueue_opts qo = {
            .max_in_flight = o->workers ? o->workers : 4,
            .process = process,
            .userdata = r,
            .observe_queue_latency = observe_queue,
            .observe_work_duration = observe_work,
            .metrics_ud = r,
        };
        int k = hashmap_new(&r->written);
        if (k >= 0) k = hashmap_new(&r->pending);
        if (k < 0) {
                hashmap_free(r->written);
                free(r);
                return k;
        }
        k = pp_removals_new(NULL, &r->removals);
        if (k < 0) {
                hashmap_free(r->pending);
                hashmap_free(r->written);
                free(r);
                return k;
        }
        r->settings.recently_removed = recently_removed;
        r->settings.recently_removed_ud = r->removals;
        k = kube_workqueue_new(o->loop, &qo, &r->queue);
        if (k < 0) {
                pp_removals_free(r->removals);
                hashmap_free(r->pending);
                hashmap_free(r->written);
                free(r);
                return k;
        }
        if (r->metrics) {
                metrics_set_max_workers(r->metrics, CONTROLLER_NAME, (int)qo.max_in_flight);
                metrics_zero(r->metrics);
        }
        ev_timer_init(&r->gauges, on_gauges, 0.5, GAUGE_INTERVAL);
        r->gauges.data = r;
        ev_timer_start(r->loop, &r->gauges);
        ev_timer_init(&r->resync, on_resync, r->resync_period, r->resync_period);
        r->resync.data = r;
        if (r->resync_period > 0) ev_timer_start(r->loop, &r->resync);
        *ret = r;
        return 0;
}

static void cancel_jobs(pp_reconciler *r) {
        while (r->jobs) {
                job *j = r->jobs;
                _cleanup_free_ char *key = TAKE_PTR(j->key);
                job_free(j);
                kube_workqueue_done(r->queue, key, 0);
        }
}

pp_reconciler *pp_reconciler_free(pp_reconciler *r) {
        if (!r) return NULL;
        ev_timer_stop(r->loop, &r->gauges);
        ev_timer_stop(r->loop, &r->resync);
        r->active = false;
        kube_workqueue_shutdown(r->queue);
        cancel_jobs(r);
        cancel_undos(r);
        pending_drop_all(r);
        hashmap_free(r->pending);
        pp_removals_free(r->removals);
        kube_workqueue_free(r->queue);
        size_t it = 0;
        void *v;
        while (hashmap_iterate(r->written, &it, NULL, &v)) status_memo_free(v);
        hashmap_free(r->written);
        free(r);
        return NULL;
}

void pp_reconciler_set_active(pp_reconciler *r, bool active) {
        if (r->active == active) return;
        r->active = active;
        if (active) {
                /* the caches have synced (main.c): marks of policies gone meanwhile are swept */
                pp_cache_foreach_policy(r->cache, pp_reconciler_enqueue, r);
                pp_cache_foreach_orphan(r->cache, pp_reconciler_enqueue, r);
                return;
        }
        /* Lost leadership: nothing more may be written, not even the rest of a plan. */
        cancel_jobs(r);
        cancel_undos(r);
        pending_drop_all(r); /* a new term starts with every policy's whole plan */
}

bool pp_reconciler_is_active(const pp_reconciler *r) {
        return r->active;
}

void pp_reconciler_set_image_api(pp_reconciler *r, bool served) {
        if (r->settings.image_api_served == served) return;
        r->settings.image_api_served = served;
        log_info(LOG_COMPONENT("reconciler"), "image.openshift.io availability changed",
                 LOG_BOOL("served", served),
                 LOG_STR("dockercfgForm", plan_dockercfg_form(&r->settings)));
        if (r->active) pp_cache_foreach_policy(r->cache, pp_reconciler_enqueue, r);
}

void pp_reconciler_set_registry_removed(pp_reconciler *r, bool removed) {
        if (r->settings.registry_removed == removed) return;
        r->settings.registry_removed = removed;
        log_info(LOG_COMPONENT("reconciler"), "OpenShift's internal registry state changed",
                 LOG_BOOL("registryRemoved", removed),
                 LOG_STR("dockercfgForm", plan_dockercfg_form(&r->settings)));
        if (r->active) pp_cache_foreach_policy(r->cache, pp_reconciler_enqueue, r);
}

void pp_reconciler_get_stats(const pp_reconciler *r, pp_reconciler_stats *ret) {
        *ret = r->stats;
}

kube_workqueue *pp_reconciler_queue(pp_reconciler *r) {
        return r->queue;
}
