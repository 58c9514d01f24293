/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Vocabulary shared by the kube modules (client, watch, reflector, store),
 * kept apart so that none of them has to include another just for an enum.
 */
#ifndef PP_KUBE_TYPES_H
#define PP_KUBE_TYPES_H

#include <stdbool.h>

/* The "type" field of a watch event (metav1.WatchEvent). */
typedef enum kube_event_type {
        KUBE_EVENT_ADDED,
        KUBE_EVENT_MODIFIED,
        KUBE_EVENT_DELETED,
        KUBE_EVENT_BOOKMARK,
        KUBE_EVENT_ERROR,
        _KUBE_EVENT_TYPE_MAX,
        _KUBE_EVENT_TYPE_INVALID = -1,
} kube_event_type;

const char *kube_event_type_to_string(kube_event_type t);
kube_event_type kube_event_type_from_string(const char *s);

/*
 * A resource the client can address, e.g. {"", "v1", "serviceaccounts", true}
 * or {"rbac.authorization.k8s.io", "v1", "rolebindings", true}.
 */
typedef struct kube_resource {
        const char *group; /* "" for the core group */
        const char *version;
        const char *plural;
        bool namespaced;
} kube_resource;

extern const kube_resource KUBE_RES_NAMESPACES;
extern const kube_resource KUBE_RES_SERVICEACCOUNTS;
extern const kube_resource KUBE_RES_SECRETS;
extern const kube_resource KUBE_RES_PODS;
extern const kube_resource KUBE_RES_ROLEBINDINGS;
extern const kube_resource KUBE_RES_EVENTS;
extern const kube_resource KUBE_RES_LEASES;
extern const kube_resource KUBE_RES_PULLPOLICIES;

/*
 * Builds the collection or object path of r into a newly allocated string:
 * "/api/v1/namespaces/ns/secrets[/name]" or "/apis/g/v/...". namespace NULL
 * means all namespaces (collections) or a cluster-scoped resource; name NULL
 * means the collection; subresource may be NULL. Names are checked against
 * the DNS-1123 character set so that nothing user-controlled can escape the
 * path. Returns 0 and *ret, or -EINVAL / -ENOMEM.
 */
int kube_resource_path(const kube_resource *r, const char *namespace, const char *name,
                       const char *subresource, char **ret);

#endif
