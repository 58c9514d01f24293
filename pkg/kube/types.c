/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

static const char *const event_type_names[_KUBE_EVENT_TYPE_MAX] = {
    [KUBE_EVENT_ADDED] = "ADDED",     [KUBE_EVENT_MODIFIED] = "MODIFIED",
    [KUBE_EVENT_DELETED] = "DELETED", [KUBE_EVENT_BOOKMARK] = "BOOKMARK",
    [KUBE_EVENT_ERROR] = "ERROR",
};

const char *kube_event_type_to_string(kube_event_type t) {
        if (t < 0 || t >= _KUBE_EVENT_TYPE_MAX) return NULL;
        return event_type_names[t];
}

kube_event_type kube_event_type_from_string(const char *s) {
        if (!s) return _KUBE_EVENT_TYPE_INVALID;
        for (size_t i = 0; i < ARRAY_SIZE(event_type_names); i++)
                if (streq(event_type_names[i], s)) return (kube_event_type)i;
        return _KUBE_EVENT_TYPE_INVALID;
}

const kube_resource KUBE_RES_NAMESPACES = {"", "v1", "namespaces", false};
const kube_resource KUBE_RES_SERVICEACCOUNTS = {"", "v1", "serviceaccounts", true};
const kube_resource KUBE_RES_SECRETS = {"", "v1", "secrets", true};
const kube_resource KUBE_RES_PODS = {"", "v1", "pods", true};
const kube_resource KUBE_RES_ROLEBINDINGS = {"rbac.authorization.k8s.io", "v1", "rolebindings",
                                             true};
const kube_resource KUBE_RES_EVENTS = {"events.k8s.io", "v1", "events", true};
const kube_resource KUBE_RES_LEASES = {"coordination.k8s.io", "v1", "leases", true};
const kube_resource KUBE_RES_PULLPOLICIES = {"pullpolicy.io", "v1alpha1", "pullpolicies", true};

/* Object names are DNS-1123 subdomains or, for RBAC objects, path segments
 * without '/' or '%'; refusing anything else keeps names from forging paths. */
static bool path_segment_ok(const char *s) {
        if (!s || !*s || strlen(s) > 253) return false;
        if (streq(s, ".") || streq(s, "..")) return false;
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if (c <= 0x20 || c >= 0x7f || c == '/' || c == '%' || c == '?' || c == '#' ||
                    c == '\\')
                        return false;
        }
        return true;
}

int kube_resource_path(const kube_resource *r, const char *namespace, const char *name,
                       const char *subresource, char **ret) {
        if (!r || !ret) return -EINVAL;
        if (namespace && !path_segment_ok(namespace)) return -EINVAL;
        if (name && !path_segment_ok(name)) return -EINVAL;
        if (subresource && !path_segment_ok(subresource)) return -EINVAL;
        if (subresource && !name) return -EINVAL;
        if (!r->namespaced && namespace) return -EINVAL;

        char *s = NULL;
        int n;
        const char *prefix = r->group[0] ? "/apis/" : "/api";
        n = asprintf(&s, "%s%s/%s%s%s/%s%s%s%s%s", prefix, r->group, r->version,
                     namespace ? "/namespaces/" : "", namespace ? namespace : "", r->plural,
                     name ? "/" : "", name ? name : "", subresource ? "/" : "",
                     subresource ? subresource : "");
        if (n < 0) return -ENOMEM;
        *ret = s;
        return 0;
}
