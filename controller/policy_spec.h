/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The spec of a PullPolicy, parsed and validated.
 *
 * The CRD rejects most bad input, but a stored object may predate the schema
 * (or the CRD may have been edited), so everything is checked again here with
 * the same limits and the same defaults. A spec that fails is reported by the
 * caller as Ready=False, reason InvalidSpec, with the message returned here;
 * the controller never guesses what was meant.
 *
 * Limits (the CRD's):
 *   subjects.namespaces ........... POLICY_SPEC_LIST_MAX (256) DNS-1123 labels, unique
 *   subjects.serviceAccounts ...... POLICY_SPEC_LIST_MAX (256) DNS-1123 subdomains, unique
 *   selectors ..................... see kube/labels.h
 *   imagePuller.clusterRole ....... 1..253 bytes, no '/' or '%'
 *   pullSecrets ................... POLICY_SPEC_SECRETS_MAX (64), names DNS-1123 subdomains,
 *                                   unique; for: 1..2 of pull, mount, unique
 *   dockercfg.timeoutSeconds ...... 0..POLICY_SPEC_TIMEOUT_MAX (86400)
 *
 * Defaults (the CRD's): clusterRole system:image-puller, for [pull], wait Auto,
 * timeoutSeconds 300, merge false.
 *
 * An explicitly empty list is given, not absent: `serviceAccounts: []` selects no
 * service account by name (it does not widen the policy to all of them), and
 * `namespaces: []` no namespace (the home is the default only when neither
 * namespaces nor namespaceSelector is present). Least privilege wins over guessing.
 *
 * Ownership: a policy_spec owns everything in it; free with policy_spec_free().
 */
#ifndef PP_CONTROLLER_POLICY_SPEC_H
#define PP_CONTROLLER_POLICY_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "kube/labels.h"
#include "util/macro.h"

#define POLICY_SPEC_LIST_MAX        256
#define POLICY_SPEC_SECRETS_MAX     64
#define POLICY_SPEC_TIMEOUT_MAX     86400
#define POLICY_SPEC_ROLE_MAX        253
#define POLICY_SPEC_DEFAULT_ROLE    "system:image-puller"
#define POLICY_SPEC_DEFAULT_TIMEOUT 300

/* Where a pull secret is linked: bits of a mask. */
typedef enum policy_for {
        POLICY_FOR_PULL = 1 << 0,  /* .imagePullSecrets */
        POLICY_FOR_MOUNT = 1 << 1, /* .secrets */
} policy_for;

typedef enum policy_wait {
        POLICY_WAIT_AUTO,
        POLICY_WAIT_ALWAYS,
        POLICY_WAIT_NEVER,
} policy_wait;

typedef struct policy_pull_secret {
        char *name;
        unsigned for_mask; /* policy_for bits, never 0 */
} policy_pull_secret;

typedef struct policy_spec {
        /* subjects; a NULL selector means the field was absent */
        char **namespaces; /* in input order, unique */
        size_t n_namespaces;
        bool has_namespaces; /* the list was given (possibly empty) */
        kube_selector *namespace_selector;
        char **service_accounts;
        size_t n_service_accounts;
        bool has_service_accounts;
        kube_selector *sa_selector;

        bool image_puller;  /* imagePuller was given */
        char *cluster_role; /* set (defaulted) when image_puller */

        policy_pull_secret *pull_secrets; /* in input order */
        size_t n_pull_secrets;

        policy_wait wait;
        int timeout_seconds;

        bool merge; /* globalPullSecret.merge */

        bool verify_credentials; /* verifyCredentials (effective only with --verify-credentials) */
        bool restart_stale_pods; /* restartStalePods */
} policy_spec;

/*
 * Parses and validates .spec (the spec member itself, not the whole object). On
 * failure returns -EINVAL (invalid), -E2BIG (a limit) or -ENOMEM, and, if reterr is
 * non-NULL, sets *reterr to a message for people such as
 * `spec.pullSecrets[2].name: "a_b" is not a valid secret name` (caller frees; may be
 * NULL after -ENOMEM).
 */
int policy_spec_parse(json_object *spec, policy_spec **ret, char **reterr);

policy_spec *policy_spec_free(policy_spec *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(policy_spec *, policy_spec_free);

/* Whether the policy defines its subject namespaces (else: the home alone). */
bool policy_spec_has_namespace_subjects(const policy_spec *s);

/* Whether every service account of a subject namespace is a subject (no names, no
 * selector, or the selector {}). */
bool policy_spec_all_service_accounts(const policy_spec *s);

const char *policy_wait_to_string(policy_wait w);

#endif
