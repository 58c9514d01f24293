/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pp_reconciler: the PullPolicy control loop. Keys ("home/name") come from the
 * cache's change mapping into a rate-limited workqueue; each reconcile
 *
 *   1. reads in full the secrets the policy names, if the cache's copy is stale,
 *   2. plans (plan.h: pure, from the cache's snapshot),
 *   3. applies the writes in order, then the status if it changed (apply.h),
 *   4. records the plan's events, and
 *   5. requeues: at once on conflict (rate-limited), at the earliest dockercfg
 *      timeout when service accounts wait, or not at all.
 *
 * A change of service accounts only is planned for their namespaces alone (issue 10: a
 * new account must not cost a plan of the policy's thousands of accounts), and the
 * whole plan, which owns the status counts, follows once the policy's accounts are
 * quiet (pp_reconciler_opts.status_quiet).
 *
 * Only an active reconciler (the leader) processes keys; an inactive one
 * keeps its caches warm and drops keys, and is handed every policy when it
 * becomes active.
 */
#ifndef PP_CONTROLLER_RECONCILER_H
#define PP_CONTROLLER_RECONCILER_H

#include <stdbool.h>

#include "cache.h"
#include "events.h"
#include "kube/client.h"
#include "kube/workqueue.h"
#include "metrics.h"
#include "plan.h"

struct ev_loop;

typedef struct pp_reconciler pp_reconciler;

typedef struct pp_reconciler_opts {
        struct ev_loop *loop;
        kube_client *client;
        pp_cache *cache;
        pp_events *events;           /* may be NULL */
        controller_metrics *metrics; /* may be NULL */
        plan_settings settings;      /* arrays borrowed: must outlive the reconciler */
        unsigned workers;            /* concurrent reconciles; 0: 4 */
        double resync_period;        /* seconds; every policy is requeued this often; 0: never */
        /* R13: the stale-pod step after each plan (borrowed; must outlive the reconciler);
         * NULL: none */
        struct pp_stale *stale;
        /*
         * A change of one namespace's accounts (pp_reconciler_enqueue_namespace()) is planned
         * for that namespace alone (plan_policy_namespaces()); the whole plan that recounts the
         * status follows once the policy's accounts have been quiet for status_quiet
         * seconds, and at the latest status_max_delay seconds after the first change it
         * owes. 0: the defaults (0.5 and 5); status_quiet < 0: every change is planned
         * whole, as any other.
         */
        double status_quiet, status_max_delay;
} pp_reconciler_opts;

typedef struct pp_reconciler_stats {
        unsigned long reconciles, errors, writes, status_writes, conflicts;
        unsigned long scoped;         /* reconciles of some namespaces' service accounts only */
        unsigned long relinks_undone; /* resurrected links removed again (removals.h) */
} pp_reconciler_stats;

int pp_reconciler_new(const pp_reconciler_opts *o, pp_reconciler **ret);
/* Cancels what is in flight (no writes continue) and frees. */
pp_reconciler *pp_reconciler_free(pp_reconciler *r);

/* The cache's enqueue callback: ud is the reconciler. */
void pp_reconciler_enqueue(void *ud, const char *policy_key);
/* The cache's enqueue_namespace callback: what concerns namespace's accounts changed (an
 * account, or the binding of that subject namespace); namespace may be the policy's home. */
void pp_reconciler_enqueue_namespace(pp_reconciler *r, const char *policy_key,
                                     const char *namespace);

/*
 * Leader or not. Becoming active queues every policy; becoming inactive
 * cancels the reconciles in flight at once, so that no write follows.
 */
void pp_reconciler_set_active(pp_reconciler *r, bool active);
bool pp_reconciler_is_active(const pp_reconciler *r);

/* R4 Auto: whether image.openshift.io is served; a change requeues every policy. */
void pp_reconciler_set_image_api(pp_reconciler *r, bool served);
/* R4 Auto: OpenShift's registry is Removed or its capability disabled (openshift.h); a
 * change requeues every policy. */
void pp_reconciler_set_registry_removed(pp_reconciler *r, bool removed);

/*
 * A service account as the cache now shows it: a link this controller removed a moment
 * ago and that another writer put back (removals.h) is removed again, at once, by a
 * merge patch guarded by the account's resourceVersion.
 */
void pp_reconciler_sa_changed(pp_reconciler *r, const model_sa *sa);

void pp_reconciler_get_stats(const pp_reconciler *r, pp_reconciler_stats *ret);
kube_workqueue *pp_reconciler_queue(pp_reconciler *r);

#endif
