/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the apply step (apply.c and apply_lanes.c), not an API.
 *
 * apply_lanes.c runs a large plan as parallel lanes: each lane is an ordinary
 * sequential apply (apply.c) of the writes of some namespaces, in plan order, so
 * that every write that may depend on another (pp_apply_write_depends(): a link
 * after the copy in its namespace, a binding's replacement after its creation)
 * runs in the same lane, after it. Finalizer writes run alone, before (ADD) and
 * after (REMOVE) the lanes; the status last, as a sequential apply does.
 *
 * The source cache: the sources an apply (and all its lanes) read, kept for that
 * apply's life, so that copying one source into N namespaces reads it once (R5).
 */
#ifndef PP_CONTROLLER_APPLY_INTERNAL_H
#define PP_CONTROLLER_APPLY_INTERNAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "apply.h"

/* Lanes of a parallel apply, and the least number of writes that makes a plan use them. */
#define PP_APPLY_LANES            64
#define PP_APPLY_LANES_MIN_WRITES 64
/* Sources remembered by one apply (more are read each time, as before). */
#define PP_APPLY_SOURCES_MAX 64

typedef struct apply_sources apply_sources;
typedef struct apply_lanes apply_lanes;

/* A new, empty cache with one reference; NULL on ENOMEM. */
apply_sources *apply_sources_new(void);
apply_sources *apply_sources_ref(apply_sources *s);
apply_sources *apply_sources_unref(apply_sources *s); /* NULL is fine; returns NULL */
/* The source ns/name as read earlier in this apply (a new reference), or NULL. */
json_object *apply_sources_get(apply_sources *s, const char *ns, const char *name);
/* Remembers obj (takes a new reference) as ns/name; silently not when full or on ENOMEM. */
void apply_sources_put(apply_sources *s, const char *ns, const char *name, json_object *obj);

/* Whether p is applied in lanes: large, and its finalizer writes first and last only. */
bool apply_lanes_wanted(const plan *p);

/*
 * Starts p in lanes for the shell apply `a` (apply.c made it with the caller's ctx,
 * policy, done and ud); done is called once, from the loop. 0 or -ENOMEM.
 */
int apply_lanes_start(pp_apply *a, const pp_apply_ctx *ctx, const model_policy *policy,
                      const plan *p, pp_apply_done_fn done, void *ud, apply_lanes **ret);
/* Cancels every lane (no callbacks) and frees the group. NULL is fine. */
void apply_lanes_free(apply_lanes *g);

/* apply.c: pp_apply_plan() without lanes (each lane is one). */
int apply_plan_sequential(const pp_apply_ctx *ctx, const model_policy *policy, const plan *p,
                          pp_apply_done_fn done, void *ud, pp_apply **ret);
/* apply.c: the cache a running apply uses (lanes share their group's). */
void apply_set_sources(pp_apply *a, apply_sources *s);
/* apply.c: frees the shell apply of a group that has finished (before its done is called). */
void apply_shell_free(pp_apply *a);

#endif
