/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R12 wiring (issue 11): finds the policies that ask for verifyCredentials (the cache's
 * policies, every few seconds; no hook in the reconciler), reads their pull secrets with a GET
 * when a secret's resourceVersion changed or a round is due, hands the merged credentials to
 * controller/credentials (handshakes off the loop) and writes the CredentialsVerified
 * condition into the policy's status (a merge patch with a resourceVersion precondition that
 * carries the Ready condition as cached, since a merge patch replaces the whole list). When
 * the reconciler's own status write replaces the list, the next tick puts the condition back.
 * Only while active (the leader). Secret payloads live only for the GET's callback and the
 * round's jobs, wiped after.
 */
#ifndef PP_CONTROLLER_VERIFIER_H
#define PP_CONTROLLER_VERIFIER_H

#include <stdbool.h>

#include <ev.h>

#include "cache.h"
#include "credentials.h"
#include "kube/client.h"

typedef struct pp_verifier_opts {
        struct ev_loop *loop;
        kube_client *client;
        pp_cache *cache;
        registry_verify_opts verify;
        unsigned concurrency;
        double interval;
        double tick; /* seconds between looks at the cache; <= 0: 5 */
        bool (*active)(void *ud);
        void *ud;
} pp_verifier_opts;

typedef struct pp_verifier pp_verifier;

int pp_verifier_new(const pp_verifier_opts *o, pp_verifier **ret);
pp_verifier *pp_verifier_free(pp_verifier *v);

#endif
