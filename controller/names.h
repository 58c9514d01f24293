/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names and marks of the objects the controller creates (R2, R8), in one place
 * so that planner, apply step and tests agree on them.
 */
#ifndef PP_CONTROLLER_NAMES_H
#define PP_CONTROLLER_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/meta.h"

/* R8: labels on everything the controller creates. */
#define NAMES_LABEL_MANAGED_BY       "app.kubernetes.io/managed-by"
#define NAMES_MANAGED_BY_VALUE       "pullpolicy-controller"
#define NAMES_LABEL_POLICY           "pullpolicy.io/policy"
#define NAMES_LABEL_POLICY_NAMESPACE "pullpolicy.io/policy-namespace"
/* On each RoleBinding: its subject namespace, since a hashed name no longer shows it. */
#define NAMES_LABEL_SUBJECT_NAMESPACE "pullpolicy.io/subject-namespace"

/* R7: the finalizer of every policy, and the link record on service accounts. */
#define NAMES_FINALIZER        "pullpolicy.io/cleanup"
#define NAMES_ANNOTATION_LINKS "pullpolicy.io/links"
/* R6: the record of registry entries each policy merged into the global pull secret. */
#define NAMES_ANNOTATION_MERGED "pullpolicy.io/merged"
/* R5: on each copy, "namespace/name" of its source (for people; the planner compares data). */
#define NAMES_ANNOTATION_SOURCE "pullpolicy.io/source"
/* R4: OpenShift 4.16+ names the service account's own pull secret here. */
#define NAMES_ANNOTATION_INTERNAL_REGISTRY "openshift.io/internal-registry-pull-secret-ref"

#define NAMES_POLICY_API_VERSION "pullpolicy.io/v1alpha1"
#define NAMES_POLICY_KIND        "PullPolicy"

/* Label values are at most this long. */
#define NAMES_LABEL_VALUE_MAX 63
/* Kubernetes object names are at most this long (DNS-1123 subdomain). */
#define NAMES_OBJECT_MAX 253
/* Hex digits of the hash that replaces the tail of a too-long name. */
#define NAMES_HASH_DIGITS 10

/* 64-bit FNV-1a of len bytes: stable across processes and versions (names depend on it). */
uint64_t names_fnv1a64(const void *data, size_t len);

/*
 * R2: the RoleBinding of policy for subject namespace ns: "ppol-<policy>-<ns>-<hash>",
 * hash being NAMES_HASH_DIGITS hex digits of the FNV-1a hash of "<policy>/<ns>". The
 * hash keeps names apart that the dashes alone would not (policy a + namespace b-c and
 * policy a-b + namespace c). When the name is longer than NAMES_OBJECT_MAX, the part
 * before the hash is cut (dots and dashes before the cut trimmed), so the result is
 * stable, unique with overwhelming likelihood, and still valid. Returns 0 and a new
 * string, -EINVAL (empty input) or -ENOMEM.
 */
int names_role_binding(const char *policy, const char *ns, char **ret);

/*
 * The name names_role_binding() gave before it always carried a hash: "ppol-<policy>-<ns>",
 * cut and ended by a hash of that string when too long. Only to find bindings made by
 * earlier versions, which are replaced by ones under the new name. 0, -EINVAL or -ENOMEM.
 */
int names_role_binding_legacy(const char *policy, const char *ns, char **ret);

/*
 * The value of the pullpolicy.io/policy label for policy name: the name itself when it
 * fits a label value (at most 63 characters), else its first characters, "-" and
 * NAMES_HASH_DIGITS hex digits of the FNV-1a hash of the whole name (R8 with names up
 * to 253 characters). Writes a NUL-terminated string into ret.
 */
void names_policy_label(const char *name, char ret[NAMES_LABEL_VALUE_MAX + 1]);

/*
 * "home/<names_policy_label(name)>": what the R8 labels of objects made for a policy
 * say, and the key that model_index_marked_policy() indexes them by. Equal to the
 * policy key whenever the name has at most 63 characters. 0, -EINVAL or -ENOMEM.
 */
int names_marked_key(const char *ns, const char *name, char **ret);

/* "namespace/name" of a policy, as used in link records: 0, -EINVAL or -ENOMEM. */
int names_policy_key(const char *ns, const char *name, char **ret);

/*
 * Whether meta carries the R8 marks of policy (namespace/name): managed-by, policy (as
 * names_policy_label() gives it) and policy-namespace labels all match.
 */
bool names_marked_by(const kube_meta *meta, const char *policy_ns, const char *policy_name);

/* Whether meta carries the managed-by mark and policy-namespace == policy_ns (any policy). */
bool names_marked_by_home(const kube_meta *meta, const char *policy_ns);

/*
 * R4: the name prefix OpenShift gives a service account's own dockercfg secret (then 5
 * random characters follow): "<sa>-dockercfg-" while that has at most 58 characters
 * (names of up to 47), else "<first 38 of sa>-<8 hex of FNV-1a 32 of sa>-dockercfg-":
 * library-go's naming.GetName(sa, "dockercfg-", 58), used by the legacy controllers and
 * by openshift-controller-manager's internal-registry controllers since 4.16.
 */
#define NAMES_DOCKERCFG_PREFIX_MAX 58
void names_dockercfg_prefix(const char *sa, char ret[NAMES_DOCKERCFG_PREFIX_MAX + 1]);

/* Whether s is a DNS-1123 label (namespaces) / subdomain (most object names). */
bool names_is_dns1123_label(const char *s);
bool names_is_dns1123_subdomain(const char *s);

#endif
