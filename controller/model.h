/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The controller's model: slim cached objects, their decoders (as
 * kube_store_kind vtables for pkg/kube/store.h), and the two records the
 * controller keeps on other people's objects.
 *
 * Each slim type embeds kube_meta (or its first part, kube_meta_core, for the kinds
 * cached by the thousand) as its FIRST member. Decoders read a whole
 * object as the server sends it (a PartialObjectMetadata for secret
 * metadata) and keep only what the planner reads; annotations are filtered to
 * the few keys the controller needs, so that caches stay small.
 *
 * ---------------------------------------------------------------------------
 * The link record: annotation `pullpolicy.io/links` on a ServiceAccount (R7)
 *
 *     {"v":1,"links":[{"policy":"project-b/team-a-pulls","secret":"quay-creds",
 *                      "for":["pull"]}, ...]}
 *
 * One entry per (policy, secret): the policy's key "namespace/name", the
 * secret's name, and the lists ("pull" = .imagePullSecrets, "mount" =
 * .secrets) in which THIS CONTROLLER added the secret on that policy's behalf
 * — or in which it found a link made by the controller for another policy,
 * which the two then share. A link whose name nobody claims was made by
 * someone else (a person, Argo CD, OpenShift) and is never removed. A link is
 * removed only when the last claim on it goes.
 *
 * Serialization is canonical (entries sorted by policy then secret, "for" in
 * the order pull, mount, no spaces) so that an unchanged record re-serializes
 * byte for byte and causes no write (R10). An empty record is no annotation.
 *
 * Limits: MODEL_LINKS_TEXT_MAX bytes of text, MODEL_LINKS_MAX entries; policy
 * keys "ns/name" of DNS names, secret names DNS-1123 subdomains; a version
 * other than 1, unknown members in an entry, a bad name or an empty "for" make
 * the record malformed. A malformed record decodes as EMPTY, with
 * model_sa.links_error set so the planner reports it; it is never trusted for
 * removal, and is replaced by a well-formed record when a policy next links.
 *
 * The merge record: annotation `pullpolicy.io/merged` on the global pull secret (R6)
 *
 *     {"v":1,"entries":[{"policy":"openshift-config/mirror","registry":"quay.io"}, ...]}
 *
 * The registry keys of `.dockerconfigjson` auths that a policy added. Same
 * rules: canonical, limits MODEL_MERGED_MAX entries and MODEL_LINKS_TEXT_MAX
 * bytes, malformed = empty + reported.
 *
 * ---------------------------------------------------------------------------
 * Secrets and their payload (R11)
 *
 * Secrets are cached as metadata (model_kind_secret_meta, from
 * PartialObjectMetadata) except those that policies name, which are decoded
 * in full (model_kind_secret). The full decoder judges the payload and keeps
 * only: the type, a validity verdict, the registry hosts it holds, a hash of
 * each registry's entry, and a hash of the whole data. NO credential, decoded
 * or encoded, is kept in the model, logged or put in messages; scratch
 * buffers holding decoded payloads are wiped before they are freed (json-c's
 * own internal buffers are beyond our reach: best effort there).
 *
 * The hashes are SipHash-2-4 under a per-process random key: equal data gives
 * equal hashes inside one process (enough to see a rotated source, R5, or a
 * changed registry entry, R6), and the values mean nothing outside it, so
 * they are no offline oracle for a password. They are never persisted.
 *
 * Ownership: every slim object owns its strings; free with its *_free()
 * function or the kind's free. Getters return pointers into the object.
 */
#ifndef PP_CONTROLLER_MODEL_H
#define PP_CONTROLLER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kube/meta.h"
#include "kube/store.h"
#include "policy_spec.h"

#define MODEL_LINKS_TEXT_MAX        (64 * 1024)
#define MODEL_LINKS_MAX             1024
#define MODEL_MERGED_MAX            1024
#define MODEL_SA_LIST_MAX           1024          /* entries of .secrets / .imagePullSecrets kept */
#define MODEL_SECRET_PAYLOAD_MAX    (1024 * 1024) /* Kubernetes' own limit on a Secret */
#define MODEL_SECRET_REGISTRIES_MAX 1024
#define MODEL_REGISTRY_MAX          512  /* bytes of one registry key such as "quay.io/org" */
#define MODEL_SUBJECTS_MAX          4096 /* RoleBinding subjects kept */
#define MODEL_PROBLEMS_MAX          20
#define MODEL_JSON_DEPTH            32 /* nesting accepted in a decoded secret payload */

#define MODEL_SECRET_TYPE_DOCKERCONFIGJSON "kubernetes.io/dockerconfigjson"
#define MODEL_SECRET_TYPE_DOCKERCFG        "kubernetes.io/dockercfg"
#define MODEL_SECRET_TYPE_SA_TOKEN         "kubernetes.io/service-account-token"

/* ---- the link record -------------------------------------------------- */

typedef struct model_link {
        char *policy; /* "namespace/name" */
        char *secret;
        unsigned for_mask; /* POLICY_FOR_* bits, never 0 */
} model_link;

typedef struct model_links {
        model_link *items; /* sorted by (policy, secret), pairs unique */
        size_t n;
} model_links;

/*
 * Parses the annotation's text. NULL text is the empty record. 0, -EINVAL
 * (malformed), -E2BIG (over a limit) or -ENOMEM; *ret untouched on failure.
 */
int model_links_parse(const char *text, model_links *ret);
/* Canonical text in *ret, or *ret = NULL for the empty record. 0 or -ENOMEM. */
int model_links_serialize(const model_links *l, char **ret);
int model_links_copy(const model_links *src, model_links *ret);
void model_links_done(model_links *l);
/* The lists policy claims for secret (0 when none). */
unsigned model_links_get(const model_links *l, const char *policy, const char *secret);
/* The union of the lists that policies OTHER than policy claim for secret. */
unsigned model_links_get_others(const model_links *l, const char *policy, const char *secret);
/* Sets policy's claim on secret to mask (0 removes it). 0, -E2BIG or -ENOMEM. */
int model_links_set(model_links *l, const char *policy, const char *secret, unsigned mask);
bool model_links_mentions(const model_links *l, const char *policy);

/* ---- the merge record ------------------------------------------------- */

typedef struct model_merged_entry {
        char *policy; /* "namespace/name" */
        char *registry;
} model_merged_entry;

typedef struct model_merged {
        model_merged_entry *items; /* sorted by (policy, registry), unique */
        size_t n;
} model_merged;

int model_merged_parse(const char *text, model_merged *ret);
int model_merged_serialize(const model_merged *m, char **ret);
int model_merged_copy(const model_merged *src, model_merged *ret);
void model_merged_done(model_merged *m);
/* The policy that added registry, or NULL. */
const char *model_merged_owner(const model_merged *m, const char *registry);
/* Adds (add=true) or removes policy's entry for registry. 0, -E2BIG, -ENOMEM. */
int model_merged_set(model_merged *m, const char *policy, const char *registry, bool add);

/* ---- Namespace -------------------------------------------------------- */

/*
 * Compact objects (issue 9): a cached Namespace or ServiceAccount keeps only what rules
 * read, in a kube_meta_core (kube_meta's first part: no uid, owner references,
 * finalizers or generation, which no rule reads of these kinds); a Namespace also drops
 * its resourceVersion and annotations, a ServiceAccount all annotations but its link
 * record. The namespace's name is interned: one copy per namespace, shared by the
 * Namespace (meta.name) and every ServiceAccount in it (meta.namespace), refcounted and
 * freed with the last object that holds it. Each object is ONE allocation: its struct,
 * arrays and strings (a ServiceAccount's equal names stored once; a label key that every
 * namespace has, kubernetes.io/metadata.name, is a static string); only an account's
 * parsed links are blocks of their own. Never free or replace a field of one: its
 * *_free() function only.
 */
size_t model_intern_count(void); /* distinct interned names alive */
size_t model_intern_mem(void);   /* heap bytes of the table and its names */

typedef struct model_namespace {
        kube_meta_core meta; /* no annotations, no resourceVersion */
        bool terminating;    /* status.phase Terminating or deletionTimestamp set */
} model_namespace;

int model_namespace_decode(json_object *obj, model_namespace **ret);
void model_namespace_free(model_namespace *ns);

/* ---- ServiceAccount --------------------------------------------------- */

/* The small fields last and narrow counts: one is cached per account (issue 9). */
typedef struct model_sa {
        kube_meta_core meta; /* annotations: only pullpolicy.io/links is kept */
        char **secrets;      /* .secrets[].name, in order (entries without a name skipped) */
        char **pull_secrets; /* .imagePullSecrets[].name, in order */
        char *internal_registry_ref; /* that annotation's value, out of meta.annotations */
        long long created;           /* .metadata.creationTimestamp, Unix seconds; 0 when absent */
        model_links links;  /* parsed pullpolicy.io/links; empty when absent or malformed */
        uint16_t n_secrets; /* at most MODEL_SA_LIST_MAX each */
        uint16_t n_pull_secrets;
        int16_t links_error; /* 0, or why the annotation was malformed (-EINVAL, -E2BIG) */
        /* every entry of both lists is just {name: ...}: the names rebuild them exactly */
        bool refs_plain;
} model_sa;

int model_sa_decode(json_object *obj, model_sa **ret);
void model_sa_free(model_sa *sa);
/* openshift.io/internal-registry-pull-secret-ref, or NULL. */
const char *model_sa_internal_registry_ref(const model_sa *sa);
bool model_sa_has_secret(const model_sa *sa, const char *name);      /* in .secrets */
bool model_sa_has_pull_secret(const model_sa *sa, const char *name); /* in .imagePullSecrets */
/*
 * R4: OpenShift has put the service account's own pull secret in place: a
 * secret named in both .secrets and .imagePullSecrets whose name starts with
 * names_dockercfg_prefix() (before 4.16; "<sa>-dockercfg-" or the hashed form of long names),
 * or the internal-registry annotation names a secret that is in .imagePullSecrets.
 */
bool model_sa_provisioned(const model_sa *sa);

/* ---- Secret ------------------------------------------------------------ */

typedef enum model_secret_validity {
        MODEL_SECRET_UNKNOWN,    /* metadata only: the payload was not read */
        MODEL_SECRET_VALID,      /* a pull secret whose payload parses */
        MODEL_SECRET_WRONG_TYPE, /* neither dockerconfigjson nor dockercfg */
        MODEL_SECRET_NO_DATA,    /* the data key of its type is missing */
        MODEL_SECRET_BAD_BASE64,
        MODEL_SECRET_BAD_JSON,  /* not JSON, or not an object */
        MODEL_SECRET_NO_AUTHS,  /* dockerconfigjson without an "auths" object */
        MODEL_SECRET_BAD_ENTRY, /* a registry entry that is not an object */
        MODEL_SECRET_TOO_BIG,   /* over a limit of this module */
} model_secret_validity;

/* A human-readable reason, free of secret data ("the payload is not valid base64"). */
const char *model_secret_validity_to_string(model_secret_validity v);

typedef struct model_registry {
        char *host;    /* the key under "auths" (or the top level for dockercfg) */
        uint64_t hash; /* keyed hash of that entry's JSON */
} model_registry;

typedef struct model_secret {
        kube_meta meta; /* annotations: only "pullpolicy.io/" keys are kept */
        char *type;     /* NULL when only metadata was read */
        bool full;      /* decoded from a whole Secret */
        model_secret_validity validity;
        model_registry *registries; /* sorted by host; empty unless VALID */
        size_t n_registries;
        uint64_t content_hash; /* keyed hash of type and every data key and value; 0 unless full */
        model_merged merged;   /* pullpolicy.io/merged (R6), parsed */
        int merged_error;      /* 0 or why that annotation was malformed */
        /* model_secret_json_belongs_to_sa() of the object as decoded (the type counts
         * only for a whole Secret: metadata has none) */
        bool sa_owned;
} model_secret;

/*
 * Whether a Secret (whole, or its metadata) belongs to a service account, by its
 * own fields: an annotation kubernetes.io/service-account.name or any
 * openshift.io/internal-registry-* annotation, an owner reference of kind
 * ServiceAccount, or type kubernetes.io/service-account-token. Such a secret
 * holds (or stands for) that account's API token: it is never a source (R3, R5,
 * R6). The other sign, a service account's internal-registry-pull-secret-ref
 * naming it, is the planner's to check. A malformed object counts as belonging.
 */
bool model_secret_json_belongs_to_sa(json_object *secret);

/* A whole Secret: judges the payload as above. */
int model_secret_decode(json_object *obj, model_secret **ret);
/* Metadata only (a PartialObjectMetadata or a whole Secret whose data is ignored). */
int model_secret_decode_meta(json_object *obj, model_secret **ret);
void model_secret_free(model_secret *s);
const model_registry *model_secret_registry(const model_secret *s, const char *host);

/*
 * The keyed hash used above, for callers that need to compare a payload they hold
 * (the apply step) with a cached one. Never persist it.
 */
uint64_t model_keyed_hash(const void *data, size_t len);

/*
 * Decodes the payload of a whole Secret into its registry entries: *ret_auths is a
 * new json object (host → entry) that the caller must put, and that holds
 * credentials: use it only to build the object to write, never to log. For the
 * apply step of R6. 0, -EINVAL (not a valid pull secret: see validity) or -ENOMEM.
 */
int model_secret_payload_auths(json_object *secret, json_object **ret_auths,
                               model_secret_validity *ret_validity);

/* ---- RoleBinding ------------------------------------------------------- */

typedef struct model_subject {
        char *kind;      /* ServiceAccount, User, Group */
        char *api_group; /* NULL when absent */
        char *name;
        char *namespace; /* NULL when absent */
} model_subject;

typedef struct model_role_binding {
        kube_meta meta; /* no annotations kept */
        char *role_api_group;
        char *role_kind;
        char *role_name;
        model_subject *subjects;
        size_t n_subjects;
} model_role_binding;

int model_role_binding_decode(json_object *obj, model_role_binding **ret);
void model_role_binding_free(model_role_binding *rb);

/* ---- PullPolicy ------------------------------------------------------- */

typedef struct model_problem {
        char *namespace; /* may be NULL */
        char *name;      /* may be NULL */
        char *reason;
        char *message;
} model_problem;

/* The status fields the planner compares, to write nothing when nothing changed. */
/* A status condition other than Ready, kept as written (status, reason, lastTransitionTime set). */
typedef struct model_condition {
        char *status, *reason, *message, *last_transition;
        long long observed_generation; /* -1 when absent */
} model_condition;

/* Frees c's strings; c may be NULL. */
void model_condition_done(model_condition *c);
/* A deep copy into *ret (untouched on failure). */
int model_condition_copy(const model_condition *c, model_condition *ret);

typedef struct model_policy_status {
        long long observed_generation; /* -1 when absent */
        bool has_ready;
        char *ready_status; /* "True", "False", "Unknown" */
        char *ready_reason;
        char *ready_message;
        long long ready_observed_generation;                  /* -1 when absent */
        char *ready_last_transition;                          /* as the server wrote it */
        long long namespaces, role_bindings, linked, waiting; /* -1 when absent */
        char *dockercfg_form;                                 /* NULL when absent */
        model_problem *problems;
        size_t n_problems;
        bool problems_truncated; /* more than MODEL_PROBLEMS_MAX were stored */
        /* CredentialsVerified (R12) as the verifier wrote it: the reconciler's own status
         * patch replaces the whole conditions list, so it carries this one over verbatim */
        bool has_credentials;
        model_condition credentials;
        long long stale_pods; /* R13: status.stalePods; -1 when absent */
} model_policy_status;

typedef struct model_policy {
        kube_meta meta;    /* no annotations kept */
        policy_spec *spec; /* NULL when the spec is invalid */
        char *spec_error;  /* why, for InvalidSpec (NULL when valid) */
        model_policy_status status;
} model_policy;

/* Fails only on a broken object (no name) or ENOMEM; an invalid spec is recorded, not refused. */
int model_policy_decode(json_object *obj, model_policy **ret);
void model_policy_free(model_policy *p);

/* ---- store vtables ------------------------------------------------------ */

extern const kube_store_kind model_kind_namespace;
extern const kube_store_kind model_kind_service_account;
extern const kube_store_kind model_kind_secret_meta;
extern const kube_store_kind model_kind_secret;
extern const kube_store_kind model_kind_role_binding;
extern const kube_store_kind model_kind_policy;

/*
 * Why one of the kinds above refused obj, the server's JSON, with its decoder's
 * error (-E2BIG: a limit; anything else: malformed): one of a fixed set of names,
 * never data of the object, for a warning and the reason label of
 * pullpolicy_objects_skipped_total: "too_many_finalizers",
 * "too_many_owner_references", "too_many_labels", "too_many_annotations",
 * "too_many_secret_references" (.secrets or .imagePullSecrets of a
 * ServiceAccount), "over_limit" (another limit of the model) or "malformed".
 */
const char *model_refusal_reason(json_object *obj, int error);

/*
 * Index functions (kube_store_index_fn) for the stores:
 *  - model_index_sa_linked_policies: the policy keys in a service account's link record
 *    (the SAs a policy must clean up, even outside its subjects);
 *  - model_index_marked_policy: "home/<policy label>" from the R8 labels of an object
 *    the controller made (RoleBindings, copied secrets); none for unmarked objects.
 *    That is names_marked_key() of the policy: its key "home/name" whenever the name
 *    has at most 63 characters; for longer names the label holds a shortened, hashed
 *    form (names_policy_label()), so map such values back through an index of
 *    policies by names_marked_key(), not by reading the label as a name.
 */
#define MODEL_INDEX_LINKED_POLICIES "linked-policies"
#define MODEL_INDEX_MARKED_POLICY   "marked-policy"
int model_index_sa_linked_policies(const void *obj, char ***ret_values, size_t *ret_n);
int model_index_marked_policy(const void *obj, char ***ret_values, size_t *ret_n);

#endif
