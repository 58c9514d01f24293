/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Label selectors (metav1.LabelSelector): parse from JSON, validate, match
 * against an object's labels, print in the query form "a=b,c in (x,y),!d".
 *
 * Semantics are those of the apiserver's LabelSelectorAsSelector():
 *   - matchLabels {k: v}        k=v         the label exists with value v
 *   - In [v...]                 k in (...)  the label exists with one of the values
 *   - NotIn [v...]              k notin (...) the label is absent or has none of the values
 *   - Exists                    k           the label exists
 *   - DoesNotExist              !k          the label is absent
 *   All requirements must hold. An empty selector ({}) matches every object;
 *   a NULL selector (the field was absent) matches nothing: callers decide
 *   what absence means for them.
 *
 * Limits (documented and enforced at parse time; they match the CRD):
 *   matchLabels entries ........... KUBE_SELECTOR_LABELS_MAX (64)
 *   matchExpressions .............. KUBE_SELECTOR_EXPRS_MAX (64)
 *   values per expression ......... KUBE_SELECTOR_VALUES_MAX (64)
 *   key ........................... optional DNS-1123 subdomain prefix (<= 253) + '/'
 *                                   + a name of 1..63 of [A-Za-z0-9-_.], alphanumeric at
 *                                   both ends
 *   value ......................... 0..63 of the same set, alphanumeric at both ends
 *
 * Ownership: a kube_selector owns all its strings; free it with
 * kube_selector_free(). Parse error messages are newly allocated strings
 * owned by the caller.
 */
#ifndef PP_KUBE_LABELS_H
#define PP_KUBE_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "kube/meta.h"
#include "util/macro.h"

#define KUBE_SELECTOR_LABELS_MAX 64
#define KUBE_SELECTOR_EXPRS_MAX  64
#define KUBE_SELECTOR_VALUES_MAX 64
#define KUBE_LABEL_NAME_MAX      63
#define KUBE_LABEL_PREFIX_MAX    253
#define KUBE_LABEL_VALUE_MAX     63

typedef enum kube_selector_op {
        KUBE_SELECTOR_EQUALS, /* from matchLabels */
        KUBE_SELECTOR_IN,
        KUBE_SELECTOR_NOT_IN,
        KUBE_SELECTOR_EXISTS,
        KUBE_SELECTOR_DOES_NOT_EXIST,
} kube_selector_op;

typedef struct kube_requirement {
        char *key;
        kube_selector_op op;
        char **values; /* sorted, unique; one value for EQUALS, none for (DOES_NOT_)EXISTS */
        size_t n_values;
} kube_requirement;

/* Requirements are kept sorted by key (stable), so printing is canonical. */
typedef struct kube_selector {
        kube_requirement *reqs;
        size_t n_reqs;
} kube_selector;

/*
 * Parses a metav1.LabelSelector object. JSON null members count as absent;
 * unknown members are ignored (the apiserver prunes them). On failure returns
 * -EINVAL (syntax or semantics: a bad key or value, an unknown operator, In/NotIn
 * without values, Exists/DoesNotExist with values, a member of the wrong type),
 * -E2BIG (a limit exceeded) or -ENOMEM; then, if reterr is non-NULL and memory
 * allows, *reterr is a human-readable reason such as
 * `matchExpressions[1]: operator In needs at least one value` (caller frees).
 */
int kube_selector_parse(json_object *obj, kube_selector **ret, char **reterr);

/* Deep copy; 0 or -ENOMEM. */
int kube_selector_copy(const kube_selector *s, kube_selector **ret);

kube_selector *kube_selector_free(kube_selector *s);

/* True when s has no requirement (it matches everything). NULL → false. */
bool kube_selector_is_empty(const kube_selector *s);

/* Whether labels satisfy every requirement of s. s NULL → false; labels NULL = no labels. */
bool kube_selector_matches(const kube_selector *s, const kube_kvs *labels);

/*
 * The selector as text, e.g. "app=web,tier in (a,b),!legacy", as accepted by
 * the apiserver's labelSelector query parameter (before URL encoding; see
 * kube_selector_to_query()). "" for the empty selector. 0, -EINVAL (s NULL) or -ENOMEM.
 */
int kube_selector_to_string(const kube_selector *s, char **ret);

/* The same, percent-encoded for a URL query value ("app%3Dweb%2C..."). */
int kube_selector_to_query(const kube_selector *s, char **ret);

/* Syntax checks usable on their own: 0 or -EINVAL. */
int kube_label_key_validate(const char *key);
int kube_label_value_validate(const char *value);

DEFINE_TRIVIAL_CLEANUP_FUNC(kube_selector *, kube_selector_free);

#endif
