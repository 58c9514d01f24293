/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R4/R7: the links this controller removed recently, per service account, so that a
 * writer that puts them back from a stale copy is undone.
 *
 * OpenShift 4.16.0/4.17.0 (and any tool that server-side applies the whole
 * .imagePullSecrets list with force, without a resourceVersion) writes the list it
 * holds in its cache. When the controller has just removed a link (a policy deleted or
 * changed), such a write can put it back; the record (pullpolicy.io/links) no longer
 * claims it, so by R7 it would count as someone else's link and stay forever.
 *
 * This memory says "the controller removed secret S from list L of account ns/sa at
 * time t". When the account is seen again with S in L, unclaimed by any policy, within
 * ttl seconds, and fewer than max_undos times for that removal, S is removed again.
 * Linking S again (any policy) forgets the removal. The bounds keep it from looping
 * against a writer that means it (a person, a GitOps tool): after max_undos the link is
 * left alone, and after ttl it is anybody's.
 *
 * Bounds: at most max_accounts accounts (the oldest entry goes first) and
 * REMOVALS_PER_ACCOUNT_MAX removals per account (likewise). In memory only: a restart
 * or a new leader starts empty.
 */
#ifndef PP_CONTROLLER_REMOVALS_H
#define PP_CONTROLLER_REMOVALS_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

#define REMOVALS_PER_ACCOUNT_MAX 32

typedef struct pp_removals pp_removals;

typedef struct pp_removals_opts {
        size_t max_accounts; /* 0: 4096 */
        double ttl;          /* seconds; 0: 120 */
        unsigned max_undos;  /* per removal; 0: 5 */
} pp_removals_opts;

int pp_removals_new(const pp_removals_opts *o, pp_removals **ret);
pp_removals *pp_removals_free(pp_removals *m);

/* The controller removed secret from lists (POLICY_FOR_* bits) of ns/sa at now. 0 or -ENOMEM. */
int pp_removals_note_removed(pp_removals *m, const char *ns, const char *sa, const char *secret,
                             unsigned lists, double now);
/* The controller linked secret in lists of ns/sa: a removal of it there is forgotten. */
void pp_removals_note_added(pp_removals *m, const char *ns, const char *sa, const char *secret,
                            unsigned lists);

/* What to write to undo resurrections: the account's lists without the resurrected names. */
typedef struct pp_removals_undo {
        char **secrets; /* desired .secrets names, in the account's order */
        size_t n_secrets;
        char **pull_secrets; /* desired .imagePullSecrets names */
        size_t n_pull_secrets;
        char **undone; /* the names taken out (for the log) */
        size_t n_undone;
} pp_removals_undo;

/*
 * Looks at sa as now seen. Returns 1 and *ret filled when names must be removed again
 * (each such removal's undo count is raised), 0 when nothing is to be done, -ENOMEM.
 * Accounts whose lists hold more than names (refs_plain false) or whose record is
 * malformed are left alone (0): a merge patch of names could not rebuild them.
 */
int pp_removals_check(pp_removals *m, const model_sa *sa, double now, pp_removals_undo *ret);
void pp_removals_undo_done(pp_removals_undo *u);

/* The lists (POLICY_FOR_*) of ns/sa from which secret was removed less than ttl ago. */
unsigned pp_removals_lists(const pp_removals *m, const char *ns, const char *sa, const char *secret,
                           double now);

/* Accounts currently remembered (for tests and a gauge). */
size_t pp_removals_accounts(const pp_removals *m);

#endif
