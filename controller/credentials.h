/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credential verification of policies (spec.verifyCredentials, allowed by the
 * admin's --verify-credentials): for each registry of the secrets a policy links or merges,
 * the registry's own handshake (registry/verify.h) proves the credentials, and the policy's
 * CredentialsVerified condition says how it went.
 *
 * The handshakes block (network), so they run on a small pool of threads, at most
 * `concurrency` at a time over all policies; the event loop never waits for them: results
 * come back through an ev_async and the policy's key is handed to on_result (the reconciler
 * enqueues it and writes the condition with the status). A policy is verified again when its
 * credentials change (a keyed hash of registry, secret, user and password, so that nothing
 * readable is kept beyond the round in flight) or when `interval` has passed since the last
 * round (a timer hands such policies to on_result so that the reconciler calls
 * pp_creds_check() with fresh secrets).
 *
 * Messages name the secret (namespace/name) and the registry, never a credential.
 */
#ifndef PP_CONTROLLER_CREDENTIALS_H
#define PP_CONTROLLER_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "registry/authfile.h"
#include "registry/verify.h"

#define PP_CREDS_MESSAGE_MAX 1024

typedef int (*pp_creds_verify_fn)(const registry_verify_opts *opts, const char *key,
                                  const char *username, const char *password, registry_outcome *ret,
                                  char **ret_detail);

typedef struct pp_creds_opts {
        registry_verify_opts verify;  /* CA bundle and timeouts of every handshake */
        pp_creds_verify_fn verify_fn; /* NULL: registry_verify (tests put a fake here) */
        unsigned concurrency;         /* threads, 1..16; 0: 2 */
        double interval;              /* seconds between rounds of one policy; <= 0: 3600 */
        void (*on_result)(void *ud, const char *policy_key); /* on the loop */
        void *ud;
} pp_creds_opts;

typedef struct pp_creds pp_creds;

int pp_creds_new(struct ev_loop *loop, const pp_creds_opts *opts, pp_creds **ret);
/* Stops the threads (waiting for handshakes in flight, each bounded by its timeouts). */
pp_creds *pp_creds_free(pp_creds *c);

/*
 * The policy's credentials now (the merge of its secrets, registry_authfile). Starts a round
 * when they differ from the last round's or the last round is older than the interval, and
 * none is in flight (then it starts again once that one ends). Returns 1 when a round was
 * started, 0 when nothing was needed, -ENOMEM. Never blocks.
 */
int pp_creds_check(pp_creds *c, const char *policy_key, const registry_authfile *creds);

typedef struct pp_creds_condition {
        const char *status;  /* "True", "False", "Unknown" (a first round in flight) */
        const char *reason;  /* Verified, CredentialsRejected, RegistryUnreachable, Verifying,
                                NoCredentials (Unknown: no secret with credentials was read) */
        const char *message; /* at most PP_CREDS_MESSAGE_MAX bytes */
        const char *last_transition; /* RFC 3339 */
} pp_creds_condition;

/* The condition of a policy pp_creds_check() was called for; false when there is none. The
 * strings stay valid until the next call into c for this policy. */
bool pp_creds_get(const pp_creds *c, const char *policy_key, pp_creds_condition *ret);

/* The policy went away or no longer asks for verification. */
void pp_creds_forget(pp_creds *c, const char *policy_key);

/* Handshakes started since the start, for the metric and tests. */
unsigned long pp_creds_handshakes(const pp_creds *c);

#endif
