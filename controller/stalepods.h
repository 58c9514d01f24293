/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R13 (issue 11), the pure part: whether a Pending pod is stale — admitted before the
 * controller linked a secret to its service account (a pod's imagePullSecrets are fixed at
 * admission), and failing to pull because of it — and whether it may be deleted so that its
 * controller recreates it with the secret. Not wired into the controller yet (no pod watch).
 *
 * A pod is stale when it is Pending, one of its containers (or init containers) waits with
 * reason ErrImagePull or ImagePullBackOff, and its spec.imagePullSecrets lack at least one
 * secret the controller linked to its service account. It is restartable when, besides, a
 * ReplicaSet, StatefulSet, Job or DaemonSet controls it (ownerReferences with controller:
 * true): a bare pod would be lost.
 */
#ifndef PP_CONTROLLER_STALEPODS_H
#define PP_CONTROLLER_STALEPODS_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define STALE_POD_MAX_CONTAINERS 512 /* more are not looked at */
#define STALE_POD_MAX_SECRETS    256

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

/* At most per_minute deletions per policy: a token bucket refilled continuously. */
typedef struct stale_rate {
        double tokens;
        double last; /* seconds, monotonic; 0: never used */
} stale_rate;

/* Takes a token at time now if there is one; true then. per_minute 0 allows nothing. */
bool stale_rate_allow(stale_rate *r, double now, unsigned per_minute);

#endif
