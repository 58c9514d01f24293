/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R13 (issue 11), the pure part: whether a Pending pod is stale — admitted before the
 * controller linked a secret to its service account (a pod's imagePullSecrets are fixed at
 * admission), and failing to pull because of it — and whether it may be deleted so that its
 * controller recreates it with the secret. The planner applies it (plan_stalepods.c), the
 * reconciler's stale-pod step acts on the verdicts (stalepods_act.h).
 *
 * A pod is stale when it is Pending, one of its containers (or init containers) waits with
 * reason ErrImagePull or ImagePullBackOff, and its spec.imagePullSecrets lack at least one
 * secret the controller linked to its service account. It is restartable when, besides, a
 * ReplicaSet, StatefulSet, Job or DaemonSet controls it (ownerReferences with controller:
 * true): a bare pod would be lost.
 *
 * The cache keeps Pending pods as stale_pod (below): only the fields the decision reads, so
 * that a watch of Pending pods costs little per pod; running pods are never listed.
 */
#ifndef PP_CONTROLLER_STALEPODS_H
#define PP_CONTROLLER_STALEPODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kube/meta.h"
#include "kube/store.h"

#define STALE_POD_MAX_CONTAINERS 512 /* more are not looked at */
#define STALE_POD_MAX_SECRETS    256

/*
 * A cached Pending pod: meta holds namespace, name, uid and resourceVersion only (no labels,
 * annotations, owners). pull_error is the verdict on its container statuses at decode time,
 * restartable_owner that on its controller reference, so neither list is kept.
 */
typedef struct stale_pod {
        kube_meta meta;
        char *service_account; /* spec.serviceAccountName; "default" when absent */
        char **pull_secrets;   /* spec.imagePullSecrets[].name, at most STALE_POD_MAX_SECRETS */
        uint32_t n_pull_secrets;
        long long created; /* metadata.creationTimestamp, Unix seconds; 0 when absent */
        bool pending;      /* status.phase Pending */
        bool pull_error;   /* a container or init container waits ErrImagePull/ImagePullBackOff */
        bool restartable_owner; /* controlled by a ReplicaSet, StatefulSet, Job or DaemonSet */
} stale_pod;

/* A whole Pod (or one without metadata when need_name is false) → *ret. 0, -EINVAL, -ENOMEM. */
int stale_pod_decode(json_object *obj, bool need_name, stale_pod **ret);
void stale_pod_free(stale_pod *p);
extern const kube_store_kind stale_pod_kind;

/* Store index of pods by "namespace/serviceAccountName" (stale_pod_sa_key()). */
#define STALE_POD_INDEX_SA "service-account"
int stale_pod_index_sa(const void *obj, char ***ret_values, size_t *ret_n);

typedef struct stale_pod_verdict {
        bool stale;
        bool restartable;
        char **missing; /* the linked secrets the pod lacks, in the order given */
        size_t n_missing;
} stale_pod_verdict;

/*
 * Judges pod (a whole Pod object) against the names the controller linked to its service
 * account. Returns 0 and fills *ret (free with stale_pod_verdict_done()), -EINVAL for a pod
 * that is not an object, -ENOMEM.
 */
int stale_pod_judge(json_object *pod, const char *const *linked, size_t n_linked,
                    stale_pod_verdict *ret);
void stale_pod_verdict_done(stale_pod_verdict *v);

/*
 * The same decision on a cached pod. sa_pull (n_sa_pull names; NULL: not checked) is the
 * service account's imagePullSecrets now: a pod that names a pull secret the account does not
 * have got its list from its own spec, not from the account at admission, and recreating it
 * would not add the link: such a pod is never stale.
 */
int stale_pod_check(const stale_pod *pod, const char *const *linked, size_t n_linked,
                    char *const *sa_pull, size_t n_sa_pull, stale_pod_verdict *ret);

/* At most per_minute deletions per policy: a token bucket refilled continuously. */
typedef struct stale_rate {
        double tokens;
        double last; /* seconds, monotonic; 0: never used */
} stale_rate;

/* Takes a token at time now if there is one; true then. per_minute 0 allows nothing. */
bool stale_rate_allow(stale_rate *r, double now, unsigned per_minute);

#endif
