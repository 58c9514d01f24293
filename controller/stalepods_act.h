/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pp_stale: the reconciler's stale-pod step (R13), after each plan of a policy — what the
 * planner (plan_stalepods.c) cannot do, being pure:
 *  - one Warning StalePullSecrets Event on each stale pod, naming the secrets it lacks; once
 *    per (policy, pod) while it stays stale, not once per reconcile;
 *  - with spec.restartStalePods, the deletion of each stale pod that a ReplicaSet,
 *    StatefulSet, Job or DaemonSet controls (never a bare pod: it would be lost), so that its
 *    controller recreates it and admission gives the new pod the account's pull secrets: at
 *    most per_minute deletions per policy (a token bucket), each with preconditions on the
 *    pod's uid and resourceVersion as planned (a pod re-created under the same name, or one
 *    whose state changed since, e.g. it started pulling, is never deleted: the API server
 *    answers 409 and the next plan judges it afresh), each followed by a Normal
 *    StalePodDeleted Event on the pod and on the policy;
 *  - the pullpolicy_stale_pods gauge (the sum of the last plan's count of every policy).
 * Bounded: at most PP_STALE_TRACK_MAX (policy, pod) pairs are remembered; past that, Events
 * still go out (the recorder's own dedupe holds repeats back) and nothing is deleted.
 */
#ifndef PP_CONTROLLER_STALEPODS_ACT_H
#define PP_CONTROLLER_STALEPODS_ACT_H

#include "events.h"
#include "kube/client.h"
#include "metrics.h"
#include "plan.h"

#define PP_STALE_TRACK_MAX          4096
#define PP_STALE_DELETES_PER_MINUTE 10

typedef struct pp_stale pp_stale;

typedef struct pp_stale_opts {
        kube_client *client;         /* NULL: nothing is deleted (tests) */
        pp_events *events;           /* may be NULL */
        controller_metrics *metrics; /* may be NULL */
        unsigned per_minute;         /* deletions per minute per policy; 0: the default */
        /* Tests: each DELETE the step starts (or would start without a client). */
        void (*observe)(void *ud, const char *path, const char *body);
        void *observe_ud;
} pp_stale_opts;

int pp_stale_new(const pp_stale_opts *o, pp_stale **ret);
/* Cancels deletions in flight (no callbacks) and frees; NULL is fine. */
pp_stale *pp_stale_free(pp_stale *s);

/*
 * After the plan p of the policy (p may be NULL: the policy is gone, forget it). now is the
 * monotonic clock (kube_now()). Returns the seconds after which the policy should be planned
 * again because the rate held deletions back, or -1.
 */
long long pp_stale_act(pp_stale *s, const kube_meta *policy, const plan *p, double now);

#endif
