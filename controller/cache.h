/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pp_cache: the controller's view of the cluster. One reflector and store
 * per resource it reads —
 *
 *   pullpolicies             full (slim model_policy)
 *   namespaces               full (slim model_namespace)
 *   serviceaccounts          full (slim model_sa: names of its two lists, our annotations)
 *   secrets of a used name   METADATA ONLY (PartialObjectMetadata), one reflector per name
 *                            that some policy's spec.pullSecrets names, selecting that
 *                            name in every namespace; opened and closed with the policies.
 *                            No other secret is listed or watched, and no secret data (R11)
 *   the global pull secret   METADATA ONLY, selected by name in its namespace
 *   secrets we made (R5)     full, selected by app.kubernetes.io/managed-by
 *   rolebindings we made     selected by app.kubernetes.io/managed-by
 *   pods                     Pending ones only (field selector status.phase=Pending), slim
 *                            (stale_pod: the fields R13's decision reads); a change of one in
 *                            the pull-error state enqueues the policies its account's link
 *                            record names
 *
 * — plus the full form of the few secrets that policies name (their sources
 * and the global pull secret), read with a GET when planning needs them and
 * kept while their resourceVersion matches the metadata watch.
 *
 * Every change is mapped to the policies it can affect through store indexes
 * (not a scan of every policy) and handed to the enqueue callback. The cache
 * also implements the planner's read-only snapshot (plan.h) over the stores.
 */
#ifndef PP_CONTROLLER_CACHE_H
#define PP_CONTROLLER_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/client.h"
#include "kube/store.h"
#include "metrics.h"
#include "model.h"
#include "plan.h"

typedef struct pp_cache pp_cache;
typedef struct pp_cache_fetch pp_cache_fetch;

typedef void (*pp_cache_enqueue_fn)(void *ud, const char *policy_key);

typedef struct pp_cache_opts {
        kube_client *client;
        const char *namespace; /* watch one namespace (policies, SAs, secrets); NULL: all */
        const char *global_ns; /* the global pull secret (R6) */
        const char *global_name;
        double watch_timeout; /* reflector settings; 0: the reflector's defaults */
        double idle_timeout;
        pp_cache_enqueue_fn enqueue;
        void *userdata;
        /* NULL: none. Each service account as a watch event or relist leaves it (not on
         * deletion), after its policies were enqueued; with userdata. */
        void (*sa_changed)(void *ud, const model_sa *sa);
        /* NULL: enqueue. The policies that a change of a service account, or of one of our
         * RoleBindings, may concern, with the namespace whose accounts it concerns (the
         * account's, the binding's subject namespace), so that the reconciler can plan that
         * namespace alone. */
        void (*enqueue_namespace)(void *ud, const char *policy_key, const char *namespace);
        controller_metrics *metrics; /* NULL: none; pullpolicy_objects_skipped_total */
} pp_cache_opts;

int pp_cache_new(const pp_cache_opts *o, pp_cache **ret);
/* Stops the reflectors, cancels fetches (no callbacks) and frees everything. */
pp_cache *pp_cache_free(pp_cache *c);

int pp_cache_start(pp_cache *c);
/* Every reflector has completed its first LIST (the named secrets: those that the first
 * list of policies named). */
bool pp_cache_synced(const pp_cache *c);
/* NULL when synced, else the name of a resource still listing (for /readyz). */
const char *pp_cache_not_synced(const pp_cache *c);

const model_policy *pp_cache_policy(const pp_cache *c, const char *key);
/* Calls fn for every policy key (e.g. to enqueue all on gaining leadership). */
void pp_cache_foreach_policy(pp_cache *c, pp_cache_enqueue_fn fn, void *ud);

/*
 * Orphans: a policy key ("home/name", or "home/<label>" as R8 marks give it) that no
 * policy of the cache answers to, but that link records, marked RoleBindings or
 * copies, or the global pull secret's merge record still name (a finalizer removed by
 * hand). Keys of homes outside --namespace are never orphans. Meaningful only once
 * the caches have synced.
 */
bool pp_cache_orphaned(pp_cache *c, const char *key);
/* Calls fn for every orphaned key (possibly more than once). */
void pp_cache_foreach_orphan(pp_cache *c, pp_cache_enqueue_fn fn, void *ud);

plan_snapshot pp_cache_snapshot(pp_cache *c);

/*
 * Whether the secrets that p names are watched and listed: until then the planner would
 * take them for missing. 1 when they are; 0 when not yet, and the policy is enqueued once
 * they are; a negative errno when a watch could not be opened (try again later).
 */
int pp_cache_sources_synced(pp_cache *c, const model_policy *p);

/*
 * Reads in full the secrets that planning p needs (its pull secrets in the
 * home, except those whose metadata shows they belong to a service account,
 * and the global pull secret when it may be merged into or its merge record
 * names p) whose full
 * form is missing or older than the metadata watch says. Returns 0 when
 * nothing was needed (no callback), 1 when fetches started (done is called
 * once they all ended; r is 0 or the first error other than not-found), or
 * a negative errno.
 */
int pp_cache_prefetch(pp_cache *c, const model_policy *p, bool global,
                      void (*done)(void *ud, int r), void *ud, pp_cache_fetch **ret);
void pp_cache_fetch_cancel(pp_cache_fetch *f);

typedef struct pp_cache_stats {
        size_t objects;                             /* in all stores, plus full secrets */
        size_t mem;                                 /* tracked bytes of cached objects */
        unsigned long lists, watches, relists_gone; /* summed over the reflectors */
        unsigned long secret_gets;                  /* full reads of named secrets */
} pp_cache_stats;
void pp_cache_get_stats(const pp_cache *c, pp_cache_stats *ret);
/* Sets pullpolicy_cache_objects{source} and pullpolicy_cache_bytes{kind} (metrics.h). */
void pp_cache_publish_metrics(const pp_cache *c);

/* Counts for the pullpolicy gauges: policies by Ready reason. */
typedef void (*pp_cache_policy_visit)(const model_policy *p, void *ud);
void pp_cache_visit_policies(pp_cache *c, pp_cache_policy_visit fn, void *ud);

#endif
