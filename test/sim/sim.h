/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pullpolicy-sim: a stand-in for OpenShift's service-account pull-secret
 * controller, for tests on a plain Kubernetes control plane. See main.c for
 * what it does and how it differs from OpenShift.
 *
 * Internal header shared by the files of test/sim/ (one binary); nothing
 * here is a library API.
 */
#ifndef PP_SIM_H
#define PP_SIM_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

struct ev_loop;
typedef struct kube_client kube_client;
typedef struct hashmap hashmap;

typedef enum sim_mode {
        SIM_MODE_CURRENT,  /* 4.16.z late, 4.17.z late, 4.18 and later */
        SIM_MODE_EARLY416, /* 4.16.0 / 4.17.0: unguarded apply of the whole list */
        SIM_MODE_LEGACY,   /* before 4.16: token secret, then dockercfg, then Update */
        SIM_MODE_REMOVED,  /* registry Removed / capability disabled: clean-up only */
} sim_mode;

/* The name of a mode as --mode spells it. */
const char *sim_mode_name(sim_mode m);
/* Parses --mode (the old names ocp416 and off are aliases); 0 or -EINVAL. */
int sim_mode_parse(const char *s, sim_mode *ret);

/* Limits: flags that collect names. */
#define SIM_MAX_PREFIXES 32

/* Well-known names (OpenShift's). */
#define SIM_ANN_SA_NAME      "kubernetes.io/service-account.name"
#define SIM_ANN_SA_UID       "kubernetes.io/service-account.uid"
#define SIM_ANN_TOKEN_NAME   "openshift.io/token-secret.name"
#define SIM_ANN_TOKEN_VALUE  "openshift.io/token-secret.value"
#define SIM_ANN_PULL_REF     "openshift.io/internal-registry-pull-secret-ref"
#define SIM_ANN_AUTH_SA      "openshift.io/internal-registry-auth-token.service-account"
#define SIM_ANN_AUTH_BINDING "openshift.io/internal-registry-auth-token.binding"
#define SIM_ANN_PENDING      "openshift.io/create-dockercfg-secrets.pending-token"
#define SIM_ANN_CREATED_BY   "kubernetes.io/created-by"
#define SIM_CREATED_BY       "openshift.io/create-dockercfg-secrets"
#define SIM_TOKEN_TYPE       "kubernetes.io/service-account-token"
/* The field managers of openshift-controller-manager's pkg/internalregistry controllers. */
#define SIM_FM_SA         "openshift.io/image-registry-pull-secrets_service-account-controller"
#define SIM_FM_FILLER     "openshift.io/image-registry-pull-secrets_image-pull-secret-controller"
#define SIM_SECRET_TYPE   "kubernetes.io/dockercfg"
#define SIM_DOCKERCFG_KEY ".dockercfg"
#define SIM_LABEL_SIM     "pullpolicy.io/openshift-sim"

typedef struct sim_opts {
        sim_mode mode;
        double delay;           /* seconds, >= 0 */
        double token_refresh;   /* current/early416: seconds between token refreshes */
        double resync;          /* early416: informer resync period, seconds (0: none) */
        double cache_lag;       /* early416 test hook: resyncs apply the SA as seen this long ago */
        double cleanup_min_age; /* removed: secrets younger than this are left alone */
        const char *include_prefixes[SIM_MAX_PREFIXES]; /* empty: every namespace */
        size_t n_include;
        const char *skip_prefixes[SIM_MAX_PREFIXES];
        size_t n_skip;
        bool verbose;
        /* test hook: seconds to wait between making the secret and linking it */
        double link_pause;
} sim_opts;

typedef struct sim_sa sim_sa;
typedef struct sim_cached sim_cached;

typedef struct sim {
        struct ev_loop *loop;
        kube_client *client;
        sim_opts opts;
        hashmap *pending; /* "ns/name" -> sim_sa: service accounts being provisioned */
        hashmap *cache;   /* early416: "ns/name" -> sim_cached, the watch's view (informer) */
        struct ev_timer *resync_timer;
        unsigned long n_provisioned;
        bool stopping;
} sim;

/* --- util.c --- */

void sim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sim_debug(const sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The name prefix OpenShift gives a service account's dockercfg secret:
 * "<sa>-dockercfg-", or, when that is longer than 58 characters, the first 38
 * of <sa>, '-', 8 hex digits of FNV-1a(<sa>), "-dockercfg-" (so that the
 * generated name, prefix + 5 random characters, stays within 63).
 * Returns a new string or NULL (ENOMEM).
 */
char *sim_dockercfg_prefix(const char *sa_name);
/* The same rule for the legacy token secret: "<sa>-token-" or the hashed form. */
char *sim_token_prefix(const char *sa_name);

/* prefix + 5 characters from Kubernetes' generateName alphabet; NULL on ENOMEM. */
char *sim_generate_name(const char *prefix);

/* Standard base64 with padding; a new NUL-terminated string or NULL. */
char *sim_base64(const void *data, size_t len);
/*
 * Decodes standard base64 (padding optional, no whitespace). Returns the
 * length and a new buffer (NUL-terminated for convenience) in *ret, or
 * -EINVAL / -ENOMEM.
 */
long sim_base64_decode(const char *s, char **ret);

/* A made-up token that looks like a JWT; a new string or NULL. */
char *sim_fake_token(void);

/*
 * The payload of the dockercfg secret for the internal registry: the legacy
 * form {url: {username, password, email, auth}} or the 4.16 form
 * {url: {auth}}, for each internal registry URL. A new JSON string or NULL.
 */
char *sim_dockercfg_payload(sim_mode mode, const char *token);

/* Whether the namespace is one the simulation provisions (filters of sim_opts). */
bool sim_namespace_wanted(const sim_opts *o, const char *ns);

/* --- json helpers (util.c) --- */

/* obj.metadata.<key> as a string, or NULL. */
const char *sim_meta_str(json_object *obj, const char *key);
/* obj.metadata.annotations.<key>, or NULL. */
const char *sim_annotation(json_object *obj, const char *key);
/* Sets obj.metadata.annotations.<key> = value, creating the map. 0 or -ENOMEM. */
int sim_set_annotation(json_object *obj, const char *key, const char *value);
/* Removes every {name} entry of obj.<field>; 1 when one went, else 0. */
int sim_list_remove(json_object *obj, const char *field, const char *name);
/* Whether obj.<field> (an array of {name}) names name. */
bool sim_list_has(json_object *obj, const char *field, const char *name);
/* The first name in obj.<field> that starts with prefix, or NULL. */
const char *sim_list_find_prefix(json_object *obj, const char *field, const char *prefix);
/* Appends {name} to obj.<field>, creating the array (field NULL: obj is the array). 0 or -ENOMEM.
 */
int sim_list_append(json_object *obj, const char *field, const char *name);

/* --- provision.c --- */

int sim_new(struct ev_loop *loop, kube_client *client, const sim_opts *opts, sim **ret);
sim *sim_free(sim *s);

/*
 * A service account was seen (listed, added or modified): starts or
 * re-triggers its provisioning when it needs one. obj is borrowed.
 */
void sim_observe_sa(sim *s, json_object *obj);
/* A service account was deleted: forgets it (requests in flight finish harmlessly). */
void sim_forget_sa(sim *s, json_object *obj);
/* A dockercfg secret was deleted: OpenShift replaces it. obj is borrowed. */
void sim_secret_deleted(sim *s, json_object *obj);

/* --- watch.c --- */

typedef struct sim_watch sim_watch;

/*
 * Lists and watches service accounts (and dockercfg secrets, for
 * re-creation) of every namespace, feeding sim_observe_sa() and friends;
 * relists after 410 Gone and re-watches with backoff after failures. Logs
 * "synced" once the first list of both is done.
 */
int sim_watch_start(sim *s, sim_watch **ret);
sim_watch *sim_watch_free(sim_watch *w);

#endif
