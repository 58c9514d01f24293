/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provisioning of one service account's dockercfg secret, as a chain of
 * asynchronous requests on the loop (see main.c for the behaviour and how it
 * differs from OpenShift's controllers).
 *
 * Each service account that needs work has a sim_sa in sim->pending, keyed "ns/name". A
 * sync starts from a fresh GET (early416 takes its list from the watch cache, sim->cache, on
 * purpose). At most one request of a service account is in flight; events arriving meanwhile
 * set `dirty` and the sync runs again when the chain ends. Legacy writes are full PUTs of the
 * object just read (resourceVersion precondition, sa_rmw); current and early416 write with
 * server-side apply under OpenShift's field managers, current with resourceVersion and uid
 * preconditions, early416 without. A service account that is done is dropped from the table,
 * unless a timer (fill, token refresh) keeps it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <json-c/json.h>

#include "kube/client.h"
#include "kube/errors.h"
#include "kube/ratelimit.h"
#include "kube/types.h"
#include "sim.h"
#include "util/hashmap.h"
#include "util/macro.h"

/* A sync gives up after this many 409s in a row, then retries later with backoff. */
#define MAX_CONFLICTS 50
/* Legacy: client-go's retry.DefaultBackoff makes 4 attempts of the linking Update. */
#define LEGACY_LINK_TRIES 4
/* Legacy: how often the token secret is looked at until kube-controller-manager fills it. */
#define TOKEN_POLL_S 0.2
/* early416 --cache-lag: versions of one service account remembered. */
#define CACHE_HISTORY 32
/* Name collisions tolerated when creating a secret with a random name. */
#define MAX_NAME_TRIES 5
#define BACKOFF_BASE   0.5
#define BACKOFF_MAX    30.0

typedef int (*sa_edit_fn)(sim_sa *sa, json_object *obj);
typedef void (*sa_next_fn)(sim_sa *sa, int result);

struct sim_sa {
        sim *sim;
        char *key; /* "ns/name", the table key */
        char *ns;
        char *name;
        char *uid;         /* as last read; NULL before */
        char *secret;      /* the dockercfg secret's name once chosen */
        double first_seen; /* kube_now() when first seen needing a secret */
        ev_timer timer;
        kube_request *req;
        json_object *obj; /* the service account as last read */
        /* read-modify-write in progress */
        sa_edit_fn edit;
        sa_next_fn next;
        unsigned conflicts;
        unsigned failures;
        unsigned name_tries;
        bool dirty;
        bool gone;
        /* a deleted dockercfg secret whose references must go (legacy) */
        char *deleted_secret;
        /* --link-pause: what to do when the timer fires instead of a resync */
        void (*after_pause)(sim_sa *sa);
        unsigned max_conflicts; /* of the read-modify-write in progress */
        /* current/early416: when the empty secret gets its token, when it is renewed (0: unset) */
        double fill_at, refresh_at;
        bool resync;      /* early416: this sync is an informer resync (--cache-lag applies) */
        bool filled;      /* current/early416: the managed secret holds a token (as last read) */
        char *secret_uid; /* current/early416: the managed secret's uid (fill precondition) */
        /* legacy: the token secret's uid and token (secret data: never logged) */
        char *token_uid, *token;
};

/* A request that outlives its service account (deleting an orphaned secret). */
typedef struct sim_bg {
        sim *sim;
        kube_request *req;
        char *what;
        struct sim_bg *next, *prev;
} sim_bg;

static sim_bg *bg_list; /* one sim per process */

static const char *mode_name(const sim *s) {
        return sim_mode_name(s->opts.mode);
}

static void sync_start(sim_sa *sa);
static void on_timer(struct ev_loop *loop, ev_timer *t, int revents);

static void free_token(char **t) {
        if (!*t) return;
        explicit_bzero(*t, strlen(*t)); /* secret data: not left in freed memory */
        free(*t);
        *t = NULL;
}

static sim_sa *sa_free(sim_sa *sa) {
        if (!sa) return NULL;
        free_token(&sa->token);
        free(sa->token_uid);
        ev_timer_stop(sa->sim->loop, &sa->timer);
        kube_request_cancel(sa->req);
        json_object_put(sa->obj);
        free(sa->key);
        free(sa->ns);
        free(sa->name);
        free(sa->uid);
        free(sa->secret);
        free(sa->secret_uid);
        free(sa->deleted_secret);
        free(sa);
        return NULL;
}

static sim_sa *sa_get_or_new(sim *s, const char *ns, const char *name) {
        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "%s/%s", ns, name) < 0) return NULL;
        sim_sa *sa = hashmap_get(s->pending, key);
        if (sa) return sa;

        sa = calloc(1, sizeof(*sa));
        if (!sa) return NULL;
        sa->sim = s;
        sa->key = TAKE_PTR(key);
        sa->ns = strdup(ns);
        sa->name = strdup(name);
        ev_init(&sa->timer, on_timer);
        sa->timer.data = sa;
        if (!sa->ns || !sa->name || hashmap_put(s->pending, sa->key, sa, NULL) < 0) {
                sa_free(sa);
                return NULL;
        }
        sa->first_seen = kube_now();
        return sa;
}

static void sa_drop(sim_sa *sa) {
        hashmap_remove(sa->sim->pending, sa->key);
        sa_free(sa);
}

static void sa_reset(sim_sa *sa) {
        free(sa->uid);
        sa->uid = NULL;
        free(sa->secret);
        sa->secret = NULL;
        free(sa->secret_uid);
        sa->secret_uid = NULL;
        free(sa->token_uid);
        sa->token_uid = NULL;
        free_token(&sa->token);
        sa->fill_at = sa->refresh_at = 0;
        sa->first_seen = kube_now();
}

/* The chain ended. provisioned: nothing more to do for now. */
static void sa_done(sim_sa *sa, bool provisioned) {
        sa->req = NULL;
        if (provisioned) sa->failures = 0;
        if (sa->gone) {
                sa_drop(sa);
                return;
        }
        if (ev_is_active(&sa->timer)) return; /* the timer resyncs anyway */
        if (sa->dirty) {
                sync_start(sa);
                return;
        }
        if (provisioned) sa_drop(sa);
}

static void sa_wait(sim_sa *sa, double seconds) {
        ev_timer_stop(sa->sim->loop, &sa->timer);
        /*
         * The loop's cached time may lag: without the update (and a hair of margin) the
         * timer fires a little before the delay is over and a second wait follows.
         */
        ev_now_update(sa->sim->loop);
        ev_timer_set(&sa->timer, seconds + 0.002, 0.);
        ev_timer_start(sa->sim->loop, &sa->timer);
}

/*
 * The test hook --link-pause: waits before linking so that a test can write
 * to the service account in between and force the 409 path.
 */
static void sa_pause_then(sim_sa *sa, void (*fn)(sim_sa *sa)) {
        double p = sa->sim->opts.link_pause;
        if (p <= 0) {
                fn(sa);
                return;
        }
        sim_log("%s %s: pausing %.3f s before linking (--link-pause)", mode_name(sa->sim), sa->key,
                p);
        sa->after_pause = fn;
        sa_wait(sa, p);
}

static void sa_retry_later(sim_sa *sa, const char *what, int err) {
        double d = kube_backoff_exp(BACKOFF_BASE, BACKOFF_MAX, sa->failures++);
        sim_log("%s %s: %s failed: %s; retrying in %.1f s", mode_name(sa->sim), sa->key, what,
                kube_strerror(err), d);
        sa_wait(sa, d);
        sa_done(sa, false);
}

/* Forbidden (a terminating namespace) and the like: a later event starts over. */
static void sa_give_up(sim_sa *sa, const char *what, int err) {
        sim_log("%s %s: %s failed: %s; giving up until the next change", mode_name(sa->sim),
                sa->key, what, kube_strerror(err));
        sa->gone = true;
        sa_done(sa, false);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents) {
        sim_sa *sa = t->data;
        if (sa->after_pause) {
                void (*fn)(sim_sa *) = sa->after_pause;
                sa->after_pause = NULL;
                fn(sa);
                return;
        }
        if (sa->req) {
                sa->dirty = true;
                return;
        }
        sync_start(sa);
}

/*
 * An event syncs at once, as an informer-driven controller does; a sync recomputes any
 * wait (delay, token refresh) from its deadline. Only a --link-pause is left to run out.
 */
static void sa_kick(sim_sa *sa) {
        if (sa->req) {
                sa->dirty = true;
                return;
        }
        if (ev_is_active(&sa->timer) && sa->after_pause) return;
        sync_start(sa);
}

/* --- requests --- */

static int sa_path(const sim_sa *sa, const kube_resource *r, const char *name, char **ret) {
        return kube_resource_path(r, sa->ns, name, NULL, ret);
}

static int sa_request(sim_sa *sa, kube_method method, const char *path, const char *body,
                      kube_patch_type pt, kube_response_cb cb) {
        kube_request_opts o = {
            .method = method,
            .path = path,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .patch_type = pt,
            .timeout_ms = 30000,
            .on_done = cb,
            .userdata = sa,
        };
        return kube_client_request(sa->sim->client, &o, &sa->req);
}

static json_object *parse_body(const kube_response *r) {
        json_tokener *tok = json_tokener_new();
        json_object *obj;
        if (!tok) return NULL;
        obj = json_tokener_parse_ex(tok, r->body ? r->body : "", (int)r->body_len);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(obj);
                obj = NULL;
        }
        json_tokener_free(tok);
        return obj;
}

/* The account as the server answered a write of it, if the answer holds one. */
static void sa_keep_answer(sim_sa *sa, const kube_response *r) {
        json_object *obj = parse_body(r);
        if (obj) {
                json_object_put(sa->obj);
                sa->obj = obj;
        }
}

/*
 * The answer to a request on the service account itself: true when it ends this sync,
 * the account gone (404) or the request failed (retried later); false when it is usable.
 */
static bool sa_answer_failed(sim_sa *sa, const kube_response *r, const char *what) {
        sa->req = NULL;
        if (kube_error_is_not_found(r->error)) {
                sa->gone = true;
                sa_done(sa, true);
                return true;
        }
        if (r->error < 0) {
                sa_retry_later(sa, what, r->error);
                return true;
        }
        return false;
}

static bool deleting(json_object *obj) {
        return sim_meta_str(obj, "deletionTimestamp") != NULL;
}

static void on_bg_done(kube_client *c, const kube_response *r, void *ud) {
        sim_bg *bg = ud;
        if (r->error == 0 || kube_error_is_not_found(r->error))
                sim_log("%s: done", bg->what);
        else
                sim_log("%s: failed: %s", bg->what, kube_strerror(r->error));
        if (bg->prev)
                bg->prev->next = bg->next;
        else
                bg_list = bg->next;
        if (bg->next) bg->next->prev = bg->prev;
        free(bg->what);
        free(bg);
}

/* Deletes a secret this simulation created and no longer wants; failures are only logged. */
static void delete_secret(sim_sa *sa, const char *name, const char *why) {
        _cleanup_free_ char *path = NULL;
        sim_bg *bg = calloc(1, sizeof(*bg));
        if (!bg || sa_path(sa, &KUBE_RES_SECRETS, name, &path) < 0 ||
            asprintf(&bg->what, "%s %s: deleting secret %s/%s (%s)", mode_name(sa->sim), sa->key,
                     sa->ns, name, why) < 0) {
                free(bg);
                sim_log("%s %s: cannot delete secret %s/%s: out of memory", mode_name(sa->sim),
                        sa->key, sa->ns, name);
                return;
        }
        bg->sim = sa->sim;
        kube_request_opts o = {
            .method = KUBE_DELETE,
            .path = path,
            .timeout_ms = 30000,
            .on_done = on_bg_done,
            .userdata = bg,
        };
        if (kube_client_request(sa->sim->client, &o, &bg->req) < 0) {
                sim_log("%s: cannot start the request", bg->what);
                free(bg->what);
                free(bg);
                return;
        }
        bg->next = bg_list;
        if (bg_list) bg_list->prev = bg;
        bg_list = bg;
}

/* --- read-modify-write of the service account --- */

static void rmw_put(sim_sa *sa);

static void on_rmw_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (r->error < 0) {
                sa->next(sa, r->error);
                return;
        }
        json_object *obj = parse_body(r);
        if (!obj) {
                sa->next(sa, -EBADMSG);
                return;
        }
        json_object_put(sa->obj);
        sa->obj = obj;
        rmw_put(sa);
}

static void rmw_read(sim_sa *sa) {
        _cleanup_free_ char *path = NULL;
        int r = sa_path(sa, &KUBE_RES_SERVICEACCOUNTS, sa->name, &path);
        if (r >= 0) r = sa_request(sa, KUBE_GET, path, NULL, 0, on_rmw_read);
        if (r < 0) {
                sa->req = NULL;
                sa->next(sa, r);
        }
}

static void on_rmw_put(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_conflict(r->error)) {
                if (++sa->conflicts >= sa->max_conflicts) {
                        sa->next(sa, r->error);
                        return;
                }
                sim_log("%s %s: update conflicted (409), re-reading (conflict %u)",
                        mode_name(sa->sim), sa->key, sa->conflicts);
                rmw_read(sa);
                return;
        }
        if (r->error == 0) {
                json_object *obj = parse_body(r);
                if (obj) {
                        json_object_put(sa->obj);
                        sa->obj = obj;
                }
        }
        sa->next(sa, r->error);
}

static void rmw_put(sim_sa *sa) {
        const char *uid = sim_meta_str(sa->obj, "uid");
        if (sa->uid && uid && !streq(sa->uid, uid)) {
                /* Deleted and created again under the same name: not the one we worked on. */
                sa->next(sa, -ESRCH);
                return;
        }
        if (deleting(sa->obj)) {
                sa->next(sa, -ENOENT);
                return;
        }
        int changed = sa->edit(sa, sa->obj);
        if (changed <= 0) {
                sa->next(sa, changed == 0 ? 1 : changed);
                return;
        }
        _cleanup_free_ char *path = NULL;
        const char *body = json_object_to_json_string_ext(
            sa->obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        int r = sa_path(sa, &KUBE_RES_SERVICEACCOUNTS, sa->name, &path);
        if (r >= 0 && !body) r = -ENOMEM;
        if (r >= 0) r = sa_request(sa, KUBE_PUT, path, body, 0, on_rmw_put);
        if (r < 0) {
                sa->req = NULL;
                sa->next(sa, r);
        }
}

/*
 * Applies edit to the service account and PUTs it with the resourceVersion it
 * was read with; on 409 re-reads and applies edit again. edit returns 1 when
 * it changed the object, 0 when there is nothing to write, or a negative
 * errno to stop. next gets 0 (written), 1 (nothing to write) or a negative
 * errno (-ESTALE after MAX_CONFLICTS attempts, -ESRCH when the uid changed, -ENOENT
 * when it is gone or being deleted, an edit's or a request's error).
 * With fresh == false the object in sa->obj is used for the first attempt.
 */
static void sa_rmw_tries(sim_sa *sa, bool fresh, sa_edit_fn edit, sa_next_fn next, unsigned tries) {
        sa->edit = edit;
        sa->next = next;
        sa->conflicts = 0;
        sa->max_conflicts = tries;
        if (fresh || !sa->obj)
                rmw_read(sa);
        else
                rmw_put(sa);
}

static void sa_rmw(sim_sa *sa, bool fresh, sa_edit_fn edit, sa_next_fn next) {
        sa_rmw_tries(sa, fresh, edit, next, MAX_CONFLICTS);
}

/* --- helpers shared by the modes --- */

/* Whether a secret carries the four annotations of a legacy (pre-4.16) dockercfg secret. */
static bool legacy_secret(json_object *secret) {
        return sim_annotation(secret, SIM_ANN_SA_NAME) && sim_annotation(secret, SIM_ANN_SA_UID) &&
               sim_annotation(secret, SIM_ANN_TOKEN_NAME) &&
               sim_annotation(secret, SIM_ANN_TOKEN_VALUE);
}

static json_object *jchild(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_is_type(o, json_type_object) &&
                       json_object_object_get_ex(o, key, &v)
                   ? v
                   : NULL;
}

/*
 * Whether field manager `manager` owns the top-level field by server-side apply
 * (metadata.managedFields, operation Apply, fieldsV1 "f:<field>").
 */
static bool applied_by(json_object *obj, const char *manager, const char *field) {
        json_object *mf = jchild(jchild(obj, "metadata"), "managedFields");
        char key[64];
        snprintf(key, sizeof(key), "f:%s", field);
        size_t n =
            mf && json_object_is_type(mf, json_type_array) ? json_object_array_length(mf) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(mf, i);
                json_object *m = jchild(e, "manager"), *op = jchild(e, "operation");
                if (!m || !op || !streq(json_object_get_string(m), manager) ||
                    !streq(json_object_get_string(op), "Apply"))
                        continue;
                if (jchild(jchild(e, "fieldsV1"), key)) return true;
        }
        return false;
}

/* A new array [{name}] of the names of obj.<field>, without `drop` (may be NULL). */
static json_object *names_of(json_object *obj, const char *field, const char *drop) {
        json_object *out = json_object_new_array(), *l = jchild(obj, field);
        size_t n = l && json_object_is_type(l, json_type_array) ? json_object_array_length(l) : 0;
        if (!out) return NULL;
        for (size_t i = 0; i < n; i++) {
                json_object *nm = jchild(json_object_array_get_idx(l, i), "name");
                if (!nm || !json_object_is_type(nm, json_type_string)) continue;
                if (drop && streq(json_object_get_string(nm), drop)) continue;
                if (sim_list_append(out, NULL, json_object_get_string(nm)) < 0) {
                        json_object_put(out);
                        return NULL;
                }
        }
        return out;
}

/*
 * The server-side apply body of the service account: the pull-secret-ref annotation,
 * [{name}] in .secrets when `secrets`, and `ips` (taken) as .imagePullSecrets when not
 * NULL; uid and rv as preconditions when not NULL. A new string or NULL.
 */
static char *sa_apply_body(const sim_sa *sa, const char *uid, const char *rv, bool secrets,
                           json_object *ips) {
        json_object *o = json_object_new_object(), *meta = json_object_new_object();
        char *ret = NULL;
        if (!o || !meta) {
                json_object_put(o);
                json_object_put(meta);
                json_object_put(ips);
                return NULL;
        }
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("ServiceAccount"));
        json_object_object_add(o, "metadata", meta);
        json_object_object_add(meta, "name", json_object_new_string(sa->name));
        json_object_object_add(meta, "namespace", json_object_new_string(sa->ns));
        if (uid) json_object_object_add(meta, "uid", json_object_new_string(uid));
        if (rv) json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
        if (sim_set_annotation(o, SIM_ANN_PULL_REF, sa->secret) < 0) goto out;
        if (secrets) {
                json_object *l = json_object_new_array();
                if (!l) goto out;
                json_object_object_add(o, "secrets", l);
                if (sim_list_append(l, NULL, sa->secret) < 0) goto out;
        }
        if (ips) {
                json_object_object_add(o, "imagePullSecrets", ips);
                ips = NULL;
        }
        ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
out:
        json_object_put(ips);
        json_object_put(o);
        return ret;
}

/* PATCH (server-side apply, force) of a service account or secret by field manager fm. */
static int sa_apply(sim_sa *sa, const kube_resource *res, const char *name, const char *fm,
                    const char *body, kube_response_cb cb) {
        _cleanup_free_ char *path = NULL, *full = NULL;
        int r = sa_path(sa, res, name, &path);
        if (r < 0) return r;
        if (!body) return -ENOMEM;
        if (asprintf(&full, "%s?fieldManager=%s&force=true", path, fm) < 0) return -ENOMEM;
        return sa_request(sa, KUBE_PATCH, full, body, KUBE_PATCH_APPLY, cb);
}

static int set_str(char **dst, const char *v) {
        char *n = v ? strdup(v) : NULL;
        if (v && !n) return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

/* --- early416: the informer's view of service accounts --- */

/*
 * The versions of one service account the watch delivered, oldest first, with the time
 * each arrived. Without --cache-lag only the newest is kept.
 */
struct sim_cached {
        char *key;
        json_object *v[CACHE_HISTORY];
        double t[CACHE_HISTORY];
        size_t n;
};

static sim_cached *cached_free(sim_cached *c) {
        if (!c) return NULL;
        for (size_t i = 0; i < c->n; i++) json_object_put(c->v[i]);
        free(c->key);
        free(c);
        return NULL;
}

static void cached_drop_oldest(sim_cached *c) {
        json_object_put(c->v[0]);
        memmove(c->v, c->v + 1, (c->n - 1) * sizeof(c->v[0]));
        memmove(c->t, c->t + 1, (c->n - 1) * sizeof(c->t[0]));
        c->n--;
}

static void cache_store(sim *s, const char *key, json_object *obj) {
        sim_cached *c = hashmap_get(s->cache, key);
        double now = kube_now();
        if (!c) {
                c = calloc(1, sizeof(*c));
                if (!c || !(c->key = strdup(key)) || hashmap_put(s->cache, c->key, c, NULL) < 0) {
                        cached_free(c);
                        return;
                }
        }
        if (c->n == CACHE_HISTORY || (c->n > 0 && s->opts.cache_lag <= 0)) cached_drop_oldest(c);
        /* A version older than the lag is needed only while no younger one is old enough. */
        while (c->n >= 2 && c->t[1] <= now - s->opts.cache_lag) cached_drop_oldest(c);
        c->v[c->n] = json_object_get(obj);
        c->t[c->n] = now;
        c->n++;
}

static void cache_forget(sim *s, const char *key) {
        cached_free(hashmap_remove(s->cache, key));
}

/*
 * The service account as the informer shows it: the newest version, or at a resync under
 * --cache-lag the newest one that arrived at least that long ago (else the oldest known).
 * Borrowed; falls back to the object just read.
 */
static json_object *sa_view(sim_sa *sa, double *age) {
        sim_cached *c = hashmap_get(sa->sim->cache, sa->key);
        double now = kube_now();
        *age = 0;
        if (!c || c->n == 0) return sa->obj;
        size_t i = c->n - 1;
        if (sa->resync && sa->sim->opts.cache_lag > 0)
                while (i > 0 && c->t[i] > now - sa->sim->opts.cache_lag) i--;
        *age = now - c->t[i];
        return c->v[i];
}

static void on_resync(struct ev_loop *loop, ev_timer *t, int revents) {
        sim *s = t->data;
        const char *key;
        void *v;
        for (size_t state = 0; hashmap_iterate(s->cache, &state, &key, &v);) {
                sim_cached *c = v;
                json_object *obj = c->v[c->n - 1];
                const char *ns = sim_meta_str(obj, "namespace"), *name = sim_meta_str(obj, "name");
                if (!ns || !name) continue;
                sim_sa *sa = sa_get_or_new(s, ns, name);
                if (!sa) continue;
                sa->resync = true;
                sa_kick(sa);
        }
}

/* --- current and early416: the managed secret (pkg/internalregistry) --- */

static bool secret_filled(json_object *secret) {
        const char *binding = sim_annotation(secret, SIM_ANN_AUTH_BINDING);
        json_object *v = jchild(jchild(secret, "data"), SIM_DOCKERCFG_KEY);
        _cleanup_free_ char *decoded = NULL;
        if (!binding || !streq(binding, "bound")) return false;
        if (!v || !json_object_is_type(v, json_type_string)) return false;
        return sim_base64_decode(json_object_get_string(v), &decoded) > 2;
}

/* The managed secret as the service-account controller applies it: empty, owned by the SA. */
static char *managed_secret_body(sim_sa *sa) {
        json_object *o = json_object_new_object();
        char *ret = NULL;
        _cleanup_free_ char *empty = sim_base64("{}", 2);
        if (!o || !empty) goto out;
        json_object *meta = json_object_new_object(), *ann = json_object_new_object(),
                    *owners = json_object_new_array(), *owner = json_object_new_object(),
                    *data = json_object_new_object();
        json_object_object_add(o, "metadata", meta);
        json_object_object_add(o, "data", data);
        if (!meta || !ann || !owners || !owner || !data) {
                json_object_put(ann);
                json_object_put(owners);
                json_object_put(owner);
                goto out;
        }
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("Secret"));
        json_object_object_add(meta, "name", json_object_new_string(sa->secret));
        json_object_object_add(meta, "namespace", json_object_new_string(sa->ns));
        json_object_object_add(ann, SIM_ANN_AUTH_SA, json_object_new_string(sa->name));
        json_object_object_add(meta, "annotations", ann);
        /* Not a controller reference: OpenShift sets only these four fields. */
        json_object_object_add(owner, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(owner, "kind", json_object_new_string("ServiceAccount"));
        json_object_object_add(owner, "name", json_object_new_string(sa->name));
        json_object_object_add(owner, "uid", json_object_new_string(sa->uid));
        json_object_array_add(owners, owner);
        json_object_object_add(meta, "ownerReferences", owners);
        json_object_object_add(o, "type", json_object_new_string(SIM_SECRET_TYPE));
        json_object_object_add(data, SIM_DOCKERCFG_KEY, json_object_new_string(empty));
        ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
out:
        json_object_put(o);
        return ret;
}

static void reg_after_secret(sim_sa *sa);
static void e416_link(sim_sa *sa);

static void on_filled(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_not_found(r->error) || kube_error_is_conflict(r->error)) {
                sync_start(sa); /* deleted (and maybe made again) meanwhile */
                return;
        }
        if (r->error < 0) {
                sa_retry_later(sa, "filling the secret", r->error);
                return;
        }
        sim_log("%s %s: %s secret %s/%s with a bound token (%s: bound)", mode_name(sa->sim),
                sa->key, sa->filled ? "refreshed" : "filled", sa->ns, sa->secret,
                SIM_ANN_AUTH_BINDING);
        sa->filled = true;
        sa->fill_at = 0;
        sa->refresh_at =
            sa->sim->opts.token_refresh > 0 ? kube_now() + sa->sim->opts.token_refresh : 0;
        if (sa->sim->opts.mode == SIM_MODE_EARLY416)
                sa_pause_then(sa, e416_link);
        else
                reg_after_secret(sa);
}

/* The image-pull-secret controller: a new token in every registry entry, by its field manager. */
static void reg_fill(sim_sa *sa) {
        _cleanup_free_ char *token = sim_fake_token(), *payload = NULL, *b64 = NULL;
        _cleanup_free_ char *body = NULL;
        int r = -ENOMEM;
        if (token && (payload = sim_dockercfg_payload(sa->sim->opts.mode, token)) &&
            (b64 = sim_base64(payload, strlen(payload))) &&
            asprintf(&body,
                     "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\","
                     "\"namespace\":\"%s\",\"uid\":\"%s\",\"annotations\":{\"%s\":\"bound\"}},"
                     "\"type\":\"%s\",\"data\":{\"%s\":\"%s\"}}",
                     sa->secret, sa->ns, sa->secret_uid ? sa->secret_uid : "", SIM_ANN_AUTH_BINDING,
                     SIM_SECRET_TYPE, SIM_DOCKERCFG_KEY, b64) >= 0)
                r = sa_apply(sa, &KUBE_RES_SECRETS, sa->secret, SIM_FM_FILLER, body, on_filled);
        else
                body = NULL;
        if (payload) explicit_bzero(payload, strlen(payload));
        if (b64) explicit_bzero(b64, strlen(b64));
        if (body) explicit_bzero(body, strlen(body));
        if (token) explicit_bzero(token, strlen(token));
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "filling the secret", r);
        }
}

/*
 * After the managed secret was read or made: fill it once --delay is over, renew its
 * token every --token-refresh, or (early416) go on to the apply of the lists.
 */
static void reg_after_secret(sim_sa *sa) {
        double now = kube_now();
        if (!sa->filled) {
                if (sa->fill_at <= 0) sa->fill_at = now + sa->sim->opts.delay;
                if (sa->fill_at - now > 0.0005) {
                        sim_log("%s %s: secret %s holds no token yet; filling in %.3f s",
                                mode_name(sa->sim), sa->key, sa->secret, sa->fill_at - now);
                        sa_wait(sa, sa->fill_at - now);
                        sa_done(sa, false);
                        return;
                }
                reg_fill(sa);
                return;
        }
        if (sa->sim->opts.token_refresh > 0) {
                if (sa->refresh_at <= 0) sa->refresh_at = now + sa->sim->opts.token_refresh;
                if (sa->refresh_at - now <= 0.0005) {
                        reg_fill(sa);
                        return;
                }
                sa_wait(sa, sa->refresh_at - now); /* keeps it in the table until then */
        }
        sa_done(sa, true);
}

static void on_managed_secret_created(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (r->error < 0) {
                if (kube_error_is_forbidden(r->error) || kube_error_is_not_found(r->error))
                        sa_give_up(sa, "applying the managed secret", r->error);
                else
                        sa_retry_later(sa, "applying the managed secret", r->error);
                return;
        }
        json_object *secret = parse_body(r);
        int e = set_str(&sa->secret_uid, secret ? sim_meta_str(secret, "uid") : NULL);
        json_object_put(secret);
        if (e < 0 || !sa->secret_uid) {
                sa_retry_later(sa, "applying the managed secret", e < 0 ? e : -EBADMSG);
                return;
        }
        sim_log("%s %s: created secret %s/%s (type %s, %s: {}, owner ServiceAccount %s)",
                mode_name(sa->sim), sa->key, sa->ns, sa->secret, SIM_SECRET_TYPE, SIM_DOCKERCFG_KEY,
                sa->name);
        sa->filled = false;
        sa->fill_at = kube_now() + sa->sim->opts.delay;
        sa->refresh_at = 0;
        reg_after_secret(sa);
}

static void on_managed_secret_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_not_found(r->error)) {
                _cleanup_free_ char *body = managed_secret_body(sa);
                int e = sa_apply(sa, &KUBE_RES_SECRETS, sa->secret, SIM_FM_SA, body,
                                 on_managed_secret_created);
                if (e < 0) {
                        sa->req = NULL;
                        sa_retry_later(sa, "applying the managed secret", e);
                }
                return;
        }
        if (r->error < 0) {
                sa_retry_later(sa, "reading the managed secret", r->error);
                return;
        }
        json_object *secret = parse_body(r);
        if (!secret) {
                sa_retry_later(sa, "reading the managed secret", -EBADMSG);
                return;
        }
        bool legacy = legacy_secret(secret), filled = secret_filled(secret);
        int e = set_str(&sa->secret_uid, sim_meta_str(secret, "uid"));
        json_object_put(secret);
        if (e < 0) {
                sa_retry_later(sa, "reading the managed secret", e);
                return;
        }
        if (legacy) {
                /* A secret the pre-4.16 controller made: OpenShift keeps using it as is. */
                sa_done(sa, true);
                return;
        }
        if (filled && !sa->filled) sa->refresh_at = 0; /* first seen filled: renew from now */
        sa->filled = filled;
        if (filled && sa->sim->opts.mode == SIM_MODE_EARLY416 &&
            !(sa->refresh_at > 0 && sa->refresh_at <= kube_now())) {
                e416_link(sa);
                return;
        }
        reg_after_secret(sa);
}

static void reg_read_secret(sim_sa *sa) {
        _cleanup_free_ char *path = NULL;
        int r = sa_path(sa, &KUBE_RES_SECRETS, sa->secret, &path);
        if (r >= 0) r = sa_request(sa, KUBE_GET, path, NULL, 0, on_managed_secret_read);
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "reading the managed secret", r);
        }
}

/*
 * The secret name of the annotation, or the one chosen before, or the legacy secret the
 * account already lists (4.16+ adopts it: upgrades keep their pre-4.16 secrets; OpenShift
 * also checks the secret's legacy annotations, here its name prefix in .imagePullSecrets
 * suffices), or a new one.
 */
static int reg_choose_name(sim_sa *sa) {
        const char *ref = sim_annotation(sa->obj, SIM_ANN_PULL_REF);
        if (ref) return set_str(&sa->secret, ref);
        if (sa->secret) return 0;
        _cleanup_free_ char *prefix = sim_dockercfg_prefix(sa->name);
        if (!prefix) return -ENOMEM;
        const char *legacy = sim_list_find_prefix(sa->obj, "imagePullSecrets", prefix);
        if (legacy) return set_str(&sa->secret, legacy);
        sa->secret = sim_generate_name(prefix);
        return sa->secret ? 0 : -ENOMEM;
}

/* --- current (4.16.z late, 4.17.z late, 4.18+) --- */

static void on_cur_applied(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_conflict(r->error)) {
                /* resourceVersion or uid precondition failed: re-read and decide again */
                if (++sa->conflicts >= MAX_CONFLICTS) {
                        sa->conflicts = 0;
                        sa_retry_later(sa, "applying the service account", r->error);
                        return;
                }
                sim_log("current %s: apply conflicted (409), re-reading (conflict %u)", sa->key,
                        sa->conflicts);
                sync_start(sa);
                return;
        }
        if (kube_error_is_not_found(r->error)) {
                sa->gone = true;
                sa_done(sa, true);
                return;
        }
        if (r->error < 0) {
                if (r->status && r->status->message[0])
                        sim_log("current %s: the apply was refused: %.300s", sa->key,
                                r->status->message);
                sa_retry_later(sa, "applying the service account", r->error);
                return;
        }
        sa->conflicts = 0;
        sa_keep_answer(sa, r);
        sim_log("current %s: applied %s=%s, .secrets and .imagePullSecrets += %s in one write "
                "(resourceVersion and uid preconditions)",
                sa->key, SIM_ANN_PULL_REF, sa->secret, sa->secret);
        sa->sim->n_provisioned++;
        reg_read_secret(sa);
}

/*
 * The one write of the account: annotation, .secrets entry and .imagePullSecrets, from the
 * account as read (after a --link-pause, as read before it: the resourceVersion precondition
 * then fails and the account is read again).
 */
static void current_apply(sim_sa *sa) {
        bool in_ips = sim_list_has(sa->obj, "imagePullSecrets", sa->secret);
        /*
         * .imagePullSecrets is atomic: the whole list goes into the apply, guarded by the
         * resourceVersion read. When the name is listed already the list is sent only if
         * this manager owns it (else leaving it out would not change it, and sending it
         * back unchanged keeps it owned).
         */
        json_object *ips = NULL;
        if (!in_ips) {
                ips = names_of(sa->obj, "imagePullSecrets", NULL);
                if (ips && sim_list_append(ips, NULL, sa->secret) < 0) {
                        json_object_put(ips);
                        ips = NULL;
                }
                if (!ips) {
                        sa_retry_later(sa, "sync", -ENOMEM);
                        return;
                }
        } else if (applied_by(sa->obj, SIM_FM_SA, "imagePullSecrets")) {
                ips = names_of(sa->obj, "imagePullSecrets", NULL);
                if (!ips) {
                        sa_retry_later(sa, "sync", -ENOMEM);
                        return;
                }
        }
        const char *rv = ips ? sim_meta_str(sa->obj, "resourceVersion") : NULL;
        _cleanup_free_ char *body = sa_apply_body(sa, sa->uid, rv, true, ips);
        int e = sa_apply(sa, &KUBE_RES_SERVICEACCOUNTS, sa->name, SIM_FM_SA, body, on_cur_applied);
        if (e < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "applying the service account", e);
        }
}

static void current_sync(sim_sa *sa) {
        int e = reg_choose_name(sa);
        if (e < 0) {
                sa_retry_later(sa, "sync", e);
                return;
        }
        const char *ref = sim_annotation(sa->obj, SIM_ANN_PULL_REF);
        if (ref && sim_list_has(sa->obj, "imagePullSecrets", sa->secret) &&
            sim_list_has(sa->obj, "secrets", sa->secret)) {
                reg_read_secret(sa);
                return;
        }
        sa_pause_then(sa, current_apply);
}

/* --- early416 (4.16.0 / 4.17.0) --- */

static void on_e416_linked(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        if (sa_answer_failed(sa, r, "applying the lists")) return;
        sa_keep_answer(sa, r);
        reg_after_secret(sa); /* filled: waits for the refresh, or is done */
}

/*
 * The 4.16.0 service-account controller's second apply: the annotation, the secret in
 * .secrets and the WHOLE .imagePullSecrets list of its cache (plus the secret), with
 * force and without a resourceVersion: whatever changed since the cache saw it is undone.
 */
static void e416_link(sim_sa *sa) {
        double age = 0;
        bool resync = sa->resync;
        json_object *view = sa_view(sa, &age);
        sa->resync = false;
        json_object *ips = names_of(view, "imagePullSecrets", sa->filled ? NULL : sa->secret);
        if (ips && sa->filled && !sim_list_has(view, "imagePullSecrets", sa->secret) &&
            sim_list_append(ips, NULL, sa->secret) < 0) {
                json_object_put(ips);
                ips = NULL;
        }
        if (!ips) {
                sa_retry_later(sa, "applying the lists", -ENOMEM);
                return;
        }
        _cleanup_free_ char *names = strdup(json_object_to_json_string_ext(
            ips, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object *cur = names_of(sa->obj, "imagePullSecrets", NULL);
        bool same = cur && json_object_equal(ips, cur);
        json_object_put(cur);
        sim_log("early416 %s: %sapplying .imagePullSecrets=%s from its cache (seen %.3f s ago%s), "
                "force, no resourceVersion%s",
                sa->key, resync ? "resync: " : "", names ? names : "?", age,
                resync && sa->sim->opts.cache_lag > 0 ? ", --cache-lag" : "",
                same ? " (same as the server's)" : " (differs from the server's)");
        _cleanup_free_ char *body = sa_apply_body(sa, NULL, NULL, sa->filled, ips);
        int e = sa_apply(sa, &KUBE_RES_SERVICEACCOUNTS, sa->name, SIM_FM_SA, body, on_e416_linked);
        if (e < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "applying the lists", e);
        }
}

static void on_e416_annotated(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        if (sa_answer_failed(sa, r, "annotating")) return;
        sa_keep_answer(sa, r);
        sim_log("early416 %s: applied %s=%s (force, no resourceVersion)", sa->key, SIM_ANN_PULL_REF,
                sa->secret);
        sa->sim->n_provisioned++;
        reg_read_secret(sa);
}

static void early416_sync(sim_sa *sa) {
        /*
         * The name comes from the object just read, not from the (possibly lagging) view:
         * OpenShift finds an existing secret by its annotation when the SA lacks the ref.
         */
        int e = reg_choose_name(sa);
        if (e < 0) {
                sa_retry_later(sa, "sync", e);
                return;
        }
        const char *ref = sim_annotation(sa->obj, SIM_ANN_PULL_REF);
        if (ref) {
                reg_read_secret(sa);
                return;
        }
        /* The first apply: the annotation, plus the lists only where this manager owns them. */
        json_object *ips = NULL;
        if (applied_by(sa->obj, SIM_FM_SA, "imagePullSecrets") &&
            !(ips = names_of(sa->obj, "imagePullSecrets", NULL))) {
                sa_retry_later(sa, "sync", -ENOMEM);
                return;
        }
        _cleanup_free_ char *body =
            sa_apply_body(sa, NULL, NULL, applied_by(sa->obj, SIM_FM_SA, "secrets"), ips);
        e = sa_apply(sa, &KUBE_RES_SERVICEACCOUNTS, sa->name, SIM_FM_SA, body, on_e416_annotated);
        if (e < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "annotating", e);
        }
}
/* --- legacy (before 4.16) --- */

/* Removes the pending-token annotation; 1 when it was there. */
static int drop_pending(json_object *obj) {
        json_object *ann = jchild(jchild(obj, "metadata"), "annotations");
        if (!jchild(ann, SIM_ANN_PENDING)) return 0;
        json_object_object_del(ann, SIM_ANN_PENDING);
        return 1;
}

static int edit_link_both(sim_sa *sa, json_object *obj) {
        _cleanup_free_ char *prefix = sim_dockercfg_prefix(sa->name);
        if (!prefix) return -ENOMEM;
        bool in_m = sim_list_has(obj, "secrets", sa->secret);
        bool in_p = sim_list_has(obj, "imagePullSecrets", sa->secret);
        if (!in_m && !in_p && sim_list_find_prefix(obj, "secrets", prefix) &&
            sim_list_find_prefix(obj, "imagePullSecrets", prefix))
                return -EALREADY; /* provisioned meanwhile by someone else */
        int r = 0;
        if (!in_m && (r = sim_list_append(obj, "secrets", sa->secret)) < 0) return r;
        if (!in_p && (r = sim_list_append(obj, "imagePullSecrets", sa->secret)) < 0) return r;
        /* The link clears the pending-token annotation in the same Update. */
        return drop_pending(obj) | !in_m | !in_p;
}

static void legacy_linked(sim_sa *sa, int result) {
        if (result == 0 || result == 1) {
                sim_log("legacy %s: linked %s in .secrets and .imagePullSecrets", sa->key,
                        sa->secret);
                sa->sim->n_provisioned++;
                sa_done(sa, true);
                return;
        }
        if (result == -EALREADY || result == -ESRCH || kube_error_is_not_found(result) ||
            result == -ENOENT) {
                delete_secret(sa, sa->secret, "service account provisioned, gone or replaced");
                sa_reset(sa);
                if (result == -ESRCH) {
                        sync_start(sa);
                        return;
                }
                sa_done(sa, true);
                return;
        }
        /* Like OpenShift: drop the unlinked secret, make a new one on the next try. */
        delete_secret(sa, sa->secret, "could not link it");
        free(sa->secret);
        sa->secret = NULL;
        if (kube_error_is_forbidden(result))
                sa_give_up(sa, "linking", result);
        else
                sa_retry_later(sa, "linking", result);
}

static void legacy_create(sim_sa *sa);

/*
 * The Update that links: with the resourceVersion read, at most LEGACY_LINK_TRIES times
 * (re-reading after a 409); then the secret is deleted and a new name is tried later.
 */
static void legacy_link(sim_sa *sa) {
        sa_rmw_tries(sa, false, edit_link_both, legacy_linked, LEGACY_LINK_TRIES);
}

static void on_legacy_created(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_already_exists(r->error) && ++sa->name_tries < MAX_NAME_TRIES) {
                legacy_create(sa);
                return;
        }
        if (r->error < 0) {
                free(sa->secret);
                sa->secret = NULL;
                if (kube_error_is_forbidden(r->error) || kube_error_is_not_found(r->error))
                        sa_give_up(sa, "creating the dockercfg secret", r->error);
                else
                        sa_retry_later(sa, "creating the dockercfg secret", r->error);
                return;
        }
        sim_log("legacy %s: created secret %s/%s (type %s)", sa->key, sa->ns, sa->secret,
                SIM_SECRET_TYPE);
        sa_pause_then(sa, legacy_link);
}

static char *legacy_secret_body(sim_sa *sa) {
        _cleanup_free_ char *payload = NULL, *b64 = NULL;
        const char *tname = sim_annotation(sa->obj, SIM_ANN_PENDING);
        char *ret = NULL;

        if (!tname || !sa->token || !sa->token_uid) return NULL;
        if (!(payload = sim_dockercfg_payload(SIM_MODE_LEGACY, sa->token))) return NULL;
        b64 = sim_base64(payload, strlen(payload));
        explicit_bzero(payload, strlen(payload));
        if (!b64) return NULL;

        json_object *o = json_object_new_object(), *meta = json_object_new_object(),
                    *ann = json_object_new_object(), *owners = json_object_new_array(),
                    *owner = json_object_new_object(), *data = json_object_new_object();
        if (!o || !meta || !ann || !owners || !owner || !data) {
                json_object_put(o);
                json_object_put(meta);
                json_object_put(ann);
                json_object_put(owners);
                json_object_put(owner);
                json_object_put(data);
                explicit_bzero(b64, strlen(b64));
                return NULL;
        }
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("Secret"));
        json_object_object_add(meta, "name", json_object_new_string(sa->secret));
        json_object_object_add(meta, "namespace", json_object_new_string(sa->ns));
        json_object_object_add(ann, SIM_ANN_SA_NAME, json_object_new_string(sa->name));
        json_object_object_add(ann, SIM_ANN_SA_UID, json_object_new_string(sa->uid));
        json_object_object_add(ann, SIM_ANN_TOKEN_NAME, json_object_new_string(tname));
        json_object_object_add(ann, SIM_ANN_TOKEN_VALUE, json_object_new_string(sa->token));
        json_object_object_add(meta, "annotations", ann);
        /* A controller reference to the TOKEN secret, blockOwnerDeletion false. */
        json_object_object_add(owner, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(owner, "kind", json_object_new_string("Secret"));
        json_object_object_add(owner, "name", json_object_new_string(tname));
        json_object_object_add(owner, "uid", json_object_new_string(sa->token_uid));
        json_object_object_add(owner, "controller", json_object_new_boolean(1));
        json_object_object_add(owner, "blockOwnerDeletion", json_object_new_boolean(0));
        json_object_array_add(owners, owner);
        json_object_object_add(meta, "ownerReferences", owners);
        json_object_object_add(o, "metadata", meta);
        json_object_object_add(o, "type", json_object_new_string(SIM_SECRET_TYPE));
        json_object_object_add(data, SIM_DOCKERCFG_KEY, json_object_new_string(b64));
        json_object_object_add(o, "data", data);
        explicit_bzero(b64, strlen(b64));
        ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return ret;
}

static void legacy_create(sim_sa *sa) {
        _cleanup_free_ char *prefix = sim_dockercfg_prefix(sa->name);
        _cleanup_free_ char *path = NULL, *body = NULL;

        free(sa->secret);
        sa->secret = prefix ? sim_generate_name(prefix) : NULL;
        int r = sa->secret ? sa_path(sa, &KUBE_RES_SECRETS, NULL, &path) : -ENOMEM;
        if (r >= 0 && !(body = legacy_secret_body(sa))) r = -ENOMEM;
        if (r >= 0) r = sa_request(sa, KUBE_POST, path, body, 0, on_legacy_created);
        if (body) explicit_bzero(body, strlen(body));
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "creating the dockercfg secret", r);
        }
}

static int edit_fix_other_list(sim_sa *sa, json_object *obj) {
        _cleanup_free_ char *prefix = sim_dockercfg_prefix(sa->name);
        if (!prefix) return -ENOMEM;
        const char *m = sim_list_find_prefix(obj, "secrets", prefix);
        const char *p = sim_list_find_prefix(obj, "imagePullSecrets", prefix);
        if ((m && p) || (!m && !p)) return 0;
        free(sa->secret);
        sa->secret = strdup(m ? m : p);
        if (!sa->secret) return -ENOMEM;
        int r = sim_list_append(obj, m ? "imagePullSecrets" : "secrets", sa->secret);
        drop_pending(obj);
        return r < 0 ? r : 1;
}

static void legacy_fixed(sim_sa *sa, int result) {
        if (result == 0)
                sim_log("legacy %s: added %s to the list that lacked it", sa->key, sa->secret);
        if (result >= 0) {
                /* Both lists named it, or neither does any more: the next sync decides. */
                sa->dirty = true;
                sa_done(sa, false);
                return;
        }
        if (result == -ENOENT || kube_error_is_not_found(result))
                sa_done(sa, true);
        else if (result == -ESRCH) {
                sa_reset(sa);
                sync_start(sa);
        } else
                sa_retry_later(sa, "completing the links", result);
}

static int edit_remove_deleted(sim_sa *sa, json_object *obj) {
        int a = sim_list_remove(obj, "secrets", sa->deleted_secret);
        int b = sim_list_remove(obj, "imagePullSecrets", sa->deleted_secret);
        return a | b;
}

static void legacy_removed_deleted(sim_sa *sa, int result) {
        if (result == 0)
                sim_log("legacy %s: removed deleted secret %s from its lists", sa->key,
                        sa->deleted_secret);
        if (result >= 0 || result == -ESRCH) {
                free(sa->deleted_secret);
                sa->deleted_secret = NULL;
                sa->first_seen = kube_now();
                sync_start(sa);
                return;
        }
        if (result == -ENOENT || kube_error_is_not_found(result))
                sa_done(sa, true);
        else
                sa_retry_later(sa, "removing a deleted secret", result);
}

/* --- legacy: the token secret that kube-controller-manager fills --- */

static void legacy_token(sim_sa *sa);

static int edit_set_pending(sim_sa *sa, json_object *obj) {
        if (sim_annotation(obj, SIM_ANN_PENDING)) return 0;
        _cleanup_free_ char *prefix = sim_token_prefix(sa->name);
        _cleanup_free_ char *name = prefix ? sim_generate_name(prefix) : NULL;
        if (!name) return -ENOMEM;
        int r = sim_set_annotation(obj, SIM_ANN_PENDING, name);
        return r < 0 ? r : 1;
}

static void legacy_pending_set(sim_sa *sa, int result) {
        if (result == 0)
                sim_log("legacy %s: annotated %s=%s", sa->key, SIM_ANN_PENDING,
                        sim_annotation(sa->obj, SIM_ANN_PENDING));
        if (result >= 0) {
                legacy_token(sa);
                return;
        }
        if (result == -ENOENT || kube_error_is_not_found(result))
                sa_done(sa, true);
        else if (result == -ESRCH || kube_error_is_conflict(result)) {
                /* OpenShift: a conflict means another sync of this account follows. */
                sa_reset(sa);
                sync_start(sa);
        } else
                sa_retry_later(sa, "annotating the pending token", result);
}

static char *token_secret_body(sim_sa *sa, const char *name) {
        json_object *o = json_object_new_object(), *meta = json_object_new_object(),
                    *ann = json_object_new_object();
        char *ret = NULL;
        if (!o || !meta || !ann) {
                json_object_put(o);
                json_object_put(meta);
                json_object_put(ann);
                return NULL;
        }
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("Secret"));
        json_object_object_add(o, "metadata", meta);
        json_object_object_add(meta, "name", json_object_new_string(name));
        json_object_object_add(meta, "namespace", json_object_new_string(sa->ns));
        json_object_object_add(ann, SIM_ANN_SA_NAME, json_object_new_string(sa->name));
        json_object_object_add(ann, SIM_ANN_SA_UID, json_object_new_string(sa->uid));
        json_object_object_add(ann, SIM_ANN_CREATED_BY, json_object_new_string(SIM_CREATED_BY));
        json_object_object_add(meta, "annotations", ann);
        json_object_object_add(o, "type", json_object_new_string(SIM_TOKEN_TYPE));
        ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return ret;
}

static void legacy_token_poll(sim_sa *sa) {
        sa_wait(sa, TOKEN_POLL_S);
        sa_done(sa, false);
}

static void on_token_created(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (r->error < 0 && !kube_error_is_already_exists(r->error)) {
                if (kube_error_is_forbidden(r->error) || kube_error_is_not_found(r->error))
                        sa_give_up(sa, "creating the token secret", r->error);
                else
                        sa_retry_later(sa, "creating the token secret", r->error);
                return;
        }
        if (r->error == 0)
                sim_log("legacy %s: created token secret %s/%s (type %s); waiting for "
                        "kube-controller-manager to fill it",
                        sa->key, sa->ns, sim_annotation(sa->obj, SIM_ANN_PENDING), SIM_TOKEN_TYPE);
        legacy_token_poll(sa);
}

static void on_token_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        const char *tname = sim_annotation(sa->obj, SIM_ANN_PENDING);
        if (kube_error_is_not_found(r->error)) {
                _cleanup_free_ char *path = NULL, *body = token_secret_body(sa, tname);
                int e = body ? sa_path(sa, &KUBE_RES_SECRETS, NULL, &path) : -ENOMEM;
                if (e >= 0) e = sa_request(sa, KUBE_POST, path, body, 0, on_token_created);
                if (e < 0) {
                        sa->req = NULL;
                        sa_retry_later(sa, "creating the token secret", e);
                }
                return;
        }
        if (r->error < 0) {
                sa_retry_later(sa, "reading the token secret", r->error);
                return;
        }
        json_object *secret = parse_body(r);
        json_object *tok = jchild(jchild(secret, "data"), "token");
        _cleanup_free_ char *token = NULL;
        long n = tok && json_object_is_type(tok, json_type_string)
                     ? sim_base64_decode(json_object_get_string(tok), &token)
                     : -EINVAL;
        int e = n > 0 ? set_str(&sa->token_uid, sim_meta_str(secret, "uid")) : 0;
        json_object_put(secret);
        if (n <= 0 || e < 0 || !sa->token_uid) {
                if (token) explicit_bzero(token, strlen(token));
                legacy_token_poll(sa); /* not filled yet */
                return;
        }
        free_token(&sa->token);
        sa->token = TAKE_PTR(token);
        double wait = sa->first_seen + sa->sim->opts.delay - kube_now();
        if (wait > 0.0005) {
                sim_log("legacy %s: token secret %s filled; dockercfg secret in %.3f s", sa->key,
                        tname, wait);
                sa_wait(sa, wait);
                sa_done(sa, false);
                return;
        }
        sa->name_tries = 0;
        legacy_create(sa);
}

static void legacy_token(sim_sa *sa) {
        _cleanup_free_ char *path = NULL;
        int r = sa_path(sa, &KUBE_RES_SECRETS, sim_annotation(sa->obj, SIM_ANN_PENDING), &path);
        if (r >= 0) r = sa_request(sa, KUBE_GET, path, NULL, 0, on_token_read);
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "reading the token secret", r);
        }
}

static void legacy_sync(sim_sa *sa) {
        _cleanup_free_ char *prefix = sim_dockercfg_prefix(sa->name);
        if (!prefix) {
                sa_retry_later(sa, "sync", -ENOMEM);
                return;
        }
        if (sa->deleted_secret) {
                sa_rmw(sa, false, edit_remove_deleted, legacy_removed_deleted);
                return;
        }
        const char *m = sim_list_find_prefix(sa->obj, "secrets", prefix);
        const char *p = sim_list_find_prefix(sa->obj, "imagePullSecrets", prefix);
        if (m && p) {
                sa_done(sa, true);
                return;
        }
        if (m || p) {
                /* OpenShift completes a half-made link with the secret it finds. */
                sa_rmw(sa, false, edit_fix_other_list, legacy_fixed);
                return;
        }
        if (!sim_annotation(sa->obj, SIM_ANN_PENDING)) {
                /* One Update with the resourceVersion read; a conflict re-syncs. */
                sa_rmw_tries(sa, false, edit_set_pending, legacy_pending_set, 1);
                return;
        }
        legacy_token(sa);
}

/* --- removed: the operator's clean-up (cluster-openshift-controller-manager-operator) --- */

/*
 * The managed secret the clean-up looks for: the pull-secret-ref annotation, else a name
 * with the account's dockercfg prefix in .imagePullSecrets, else in .secrets. Borrowed.
 */
static const char *removed_target(json_object *obj, const char *sa_name) {
        const char *ref = sim_annotation(obj, SIM_ANN_PULL_REF);
        if (ref) return ref;
        _cleanup_free_ char *prefix = sim_dockercfg_prefix(sa_name);
        if (!prefix) return NULL;
        const char *n = sim_list_find_prefix(obj, "imagePullSecrets", prefix);
        return n ? n : sim_list_find_prefix(obj, "secrets", prefix);
}

static int edit_unlink_target(sim_sa *sa, json_object *obj) {
        int a = sim_list_remove(obj, "secrets", sa->secret);
        int b = sim_list_remove(obj, "imagePullSecrets", sa->secret);
        return a | b; /* the annotation stays, as OpenShift leaves it */
}

static void removed_unlinked(sim_sa *sa, int result) {
        if (result == 0)
                sim_log("removed %s: removed %s from .secrets and .imagePullSecrets (annotation "
                        "left)",
                        sa->key, sa->secret);
        if (result >= 0 || result == -ENOENT || kube_error_is_not_found(result) ||
            result == -ESRCH) {
                sa_done(sa, true);
                return;
        }
        sa_retry_later(sa, "removing the references", result);
}

static void on_removed_deleted(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (r->error < 0 && !kube_error_is_not_found(r->error)) {
                sa_retry_later(sa, "deleting the managed secret", r->error);
                return;
        }
        if (r->error == 0)
                sim_log("removed %s: deleted managed secret %s/%s", sa->key, sa->ns, sa->secret);
        sa_rmw(sa, false, edit_unlink_target, removed_unlinked);
}

static void removed_delete(sim_sa *sa) {
        _cleanup_free_ char *path = NULL;
        int r = sa_path(sa, &KUBE_RES_SECRETS, sa->secret, &path);
        if (r >= 0) r = sa_request(sa, KUBE_DELETE, path, NULL, 0, on_removed_deleted);
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "deleting the managed secret", r);
        }
}

static void on_removed_token_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (r->error == 0) {
                json_object *t = parse_body(r);
                const char *by = sim_annotation(t, SIM_ANN_CREATED_BY);
                const char *name = sim_meta_str(t, "name");
                /* Only a token secret the legacy controller made (OpenShift checks the same). */
                if (by && streq(by, SIM_CREATED_BY) && name)
                        delete_secret(sa, name, "registry removed: the legacy token secret");
                json_object_put(t);
        }
        removed_delete(sa);
}

static time_t parse_rfc3339(const char *s) {
        struct tm tm = {0};
        const char *e = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        return e ? timegm(&tm) : (time_t)-1;
}

static void on_removed_secret_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_not_found(r->error)) {
                sa_rmw(sa, false, edit_unlink_target, removed_unlinked);
                return;
        }
        if (r->error < 0) {
                sa_retry_later(sa, "reading the managed secret", r->error);
                return;
        }
        json_object *secret = parse_body(r);
        bool managed = secret && (sim_annotation(secret, SIM_ANN_AUTH_SA) ||
                                  sim_annotation(secret, SIM_ANN_TOKEN_NAME));
        time_t created = parse_rfc3339(sim_meta_str(secret, "creationTimestamp"));
        _cleanup_free_ char *token = NULL;
        if (managed && set_str(&token, sim_annotation(secret, SIM_ANN_TOKEN_NAME)) < 0)
                managed = false;
        json_object_put(secret);
        if (!managed) {
                sa_done(sa, true); /* a secret someone else made under that name: left alone */
                return;
        }
        double left = (double)created + sa->sim->opts.cleanup_min_age - (double)time(NULL);
        if (sa->sim->opts.cleanup_min_age > 0 && created != (time_t)-1 && left > 0) {
                sim_log("removed %s: secret %s is younger than %.0f s; cleaning up in %.0f s",
                        sa->key, sa->secret, sa->sim->opts.cleanup_min_age, left);
                sa_wait(sa, left);
                sa_done(sa, false);
                return;
        }
        if (token) {
                _cleanup_free_ char *path = NULL;
                int e = sa_path(sa, &KUBE_RES_SECRETS, token, &path);
                if (e >= 0) e = sa_request(sa, KUBE_GET, path, NULL, 0, on_removed_token_read);
                if (e >= 0) return;
                sa->req = NULL;
        }
        removed_delete(sa);
}

static void removed_sync(sim_sa *sa) {
        const char *target = removed_target(sa->obj, sa->name);
        if (!target) {
                sa_done(sa, true);
                return;
        }
        int e = set_str(&sa->secret, target);
        _cleanup_free_ char *path = NULL;
        if (e >= 0) e = sa_path(sa, &KUBE_RES_SECRETS, sa->secret, &path);
        if (e >= 0) e = sa_request(sa, KUBE_GET, path, NULL, 0, on_removed_secret_read);
        if (e < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "reading the managed secret", e);
        }
}

/* --- the start of every sync --- */

static void on_sa_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        if (sa_answer_failed(sa, r, "reading the service account")) return;
        json_object *obj = parse_body(r);
        const char *uid = obj ? sim_meta_str(obj, "uid") : NULL;
        if (!uid) {
                json_object_put(obj);
                sa_retry_later(sa, "reading the service account", -EBADMSG);
                return;
        }
        if (sa->uid && !streq(sa->uid, uid)) sa_reset(sa);
        if (!sa->uid && !(sa->uid = strdup(uid))) {
                json_object_put(obj);
                sa_retry_later(sa, "reading the service account", -ENOMEM);
                return;
        }
        json_object_put(sa->obj);
        sa->obj = obj;
        if (deleting(obj)) {
                sa->gone = true;
                sa_done(sa, true);
                return;
        }
        switch (sa->sim->opts.mode) {
        case SIM_MODE_CURRENT:
                current_sync(sa);
                break;
        case SIM_MODE_EARLY416:
                early416_sync(sa);
                break;
        case SIM_MODE_LEGACY:
                legacy_sync(sa);
                break;
        case SIM_MODE_REMOVED:
                removed_sync(sa);
                break;
        }
}

static void sync_start(sim_sa *sa) {
        _cleanup_free_ char *path = NULL;
        ev_timer_stop(sa->sim->loop, &sa->timer);
        sa->after_pause = NULL;
        if (sa->sim->stopping) return;
        sa->dirty = false;
        int r = sa_path(sa, &KUBE_RES_SERVICEACCOUNTS, sa->name, &path);
        if (r >= 0) r = sa_request(sa, KUBE_GET, path, NULL, 0, on_sa_read);
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "reading the service account", r);
        }
}

/* --- events --- */

static bool needs_provisioning(const sim *s, json_object *obj, const char *name) {
        if (deleting(obj)) return false;
        switch (s->opts.mode) {
        case SIM_MODE_LEGACY: {
                _cleanup_free_ char *prefix = sim_dockercfg_prefix(name);
                if (!prefix) return true;
                return !sim_list_find_prefix(obj, "secrets", prefix) ||
                       !sim_list_find_prefix(obj, "imagePullSecrets", prefix);
        }
        case SIM_MODE_CURRENT: {
                const char *ref = sim_annotation(obj, SIM_ANN_PULL_REF);
                return !ref || !sim_list_has(obj, "imagePullSecrets", ref) ||
                       !sim_list_has(obj, "secrets", ref);
        }
        case SIM_MODE_EARLY416:
                return true; /* every event syncs, and every sync applies */
        case SIM_MODE_REMOVED: {
                const char *t = removed_target(obj, name);
                return t && (sim_list_has(obj, "imagePullSecrets", t) ||
                             sim_list_has(obj, "secrets", t));
        }
        }
        return false;
}

void sim_observe_sa(sim *s, json_object *obj) {
        const char *ns = sim_meta_str(obj, "namespace"), *name = sim_meta_str(obj, "name");
        const char *uid = sim_meta_str(obj, "uid");
        if (!ns || !name || !uid) return;
        if (!sim_namespace_wanted(&s->opts, ns)) return;

        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "%s/%s", ns, name) < 0) return;
        if (s->opts.mode == SIM_MODE_EARLY416) cache_store(s, key, obj);
        sim_sa *sa = hashmap_get(s->pending, key);
        if (!needs_provisioning(s, obj, name)) {
                /*
                 * Provisioned by someone else, e.g. an earlier run: forget it when idle
                 * (not while its token refresh is due).
                 */
                if (sa && !sa->req && !sa->deleted_secret && sa->uid && streq(sa->uid, uid) &&
                    !ev_is_active(&sa->timer))
                        sa_drop(sa);
                return;
        }
        if (!sa) {
                sa = sa_get_or_new(s, ns, name);
                if (!sa) {
                        sim_log("%s %s: out of memory", mode_name(s), key);
                        return;
                }
                sim_debug(s, "%s %s: needs a dockercfg secret", mode_name(s), key);
        } else if (sa->uid && !streq(sa->uid, uid) && !sa->req) {
                sa_reset(sa);
        }
        sa_kick(sa);
}

void sim_forget_sa(sim *s, json_object *obj) {
        const char *ns = sim_meta_str(obj, "namespace"), *name = sim_meta_str(obj, "name");
        _cleanup_free_ char *key = NULL;
        if (!ns || !name || asprintf(&key, "%s/%s", ns, name) < 0) return;
        cache_forget(s, key);
        sim_sa *sa = hashmap_get(s->pending, key);
        if (!sa) return;
        if (sa->req)
                sa->gone = true; /* dropped when its request ends */
        else
                sa_drop(sa);
}

void sim_secret_deleted(sim *s, json_object *obj) {
        const char *ns = sim_meta_str(obj, "namespace"), *name = sim_meta_str(obj, "name");
        const char *sa_name;
        if (s->opts.mode == SIM_MODE_REMOVED || !ns || !name) return;
        if (!sim_namespace_wanted(&s->opts, ns)) return;

        if (s->opts.mode == SIM_MODE_LEGACY) {
                sa_name = sim_annotation(obj, SIM_ANN_SA_NAME);
                /* Only the secrets this controller makes (they name their token secret). */
                if (!sa_name || !sim_annotation(obj, SIM_ANN_TOKEN_NAME)) return;
        } else {
                sa_name = sim_annotation(obj, SIM_ANN_AUTH_SA);
                if (!sa_name) return;
        }
        sim_sa *sa = sa_get_or_new(s, ns, sa_name);
        if (!sa) return;
        sim_log("%s %s/%s: dockercfg secret %s was deleted; re-syncing", mode_name(s), ns, sa_name,
                name);
        if (s->opts.mode == SIM_MODE_LEGACY) {
                free(sa->deleted_secret);
                sa->deleted_secret = strdup(name);
                /* The deleted-dockercfg controller also deletes the token secret. */
                const char *token = sim_annotation(obj, SIM_ANN_TOKEN_NAME);
                if (token) delete_secret(sa, token, "its dockercfg secret was deleted");
        }
        sa->first_seen = kube_now();
        sa->fill_at = sa->refresh_at = 0;
        sa->filled = false;
        if (sa->req)
                sa->dirty = true;
        else {
                ev_timer_stop(s->loop, &sa->timer);
                sync_start(sa);
        }
}

int sim_new(struct ev_loop *loop, kube_client *client, const sim_opts *opts, sim **ret) {
        sim *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;
        s->loop = loop;
        s->client = client;
        s->opts = *opts;
        int r = hashmap_new(&s->pending);
        if (r >= 0) r = hashmap_new(&s->cache);
        if (r >= 0 && opts->mode == SIM_MODE_EARLY416 && opts->resync > 0 &&
            !(s->resync_timer = calloc(1, sizeof(*s->resync_timer))))
                r = -ENOMEM;
        if (r < 0) {
                hashmap_free(s->pending);
                hashmap_free(s->cache);
                free(s);
                return r;
        }
        if (s->resync_timer) {
                /* The shared informer's resync: every cached account is synced again. */
                ev_timer_init(s->resync_timer, on_resync, opts->resync, opts->resync);
                s->resync_timer->data = s;
                ev_timer_start(loop, s->resync_timer);
        }
        *ret = s;
        return 0;
}

sim *sim_free(sim *s) {
        if (!s) return NULL;
        s->stopping = true;
        const char *key;
        void *v;
        for (;;) {
                /* Collect one at a time: removing while iterating is not supported. */
                size_t state = 0;
                if (!hashmap_iterate(s->pending, &state, &key, &v)) break;
                sa_drop(v);
        }
        hashmap_free(s->pending);
        for (;;) {
                size_t state = 0;
                if (!hashmap_iterate(s->cache, &state, &key, &v)) break;
                cache_forget(s, key);
        }
        hashmap_free(s->cache);
        if (s->resync_timer) ev_timer_stop(s->loop, s->resync_timer);
        free(s->resync_timer);
        while (bg_list) {
                sim_bg *bg = bg_list;
                bg_list = bg->next;
                kube_request_cancel(bg->req);
                free(bg->what);
                free(bg);
        }
        free(s);
        return NULL;
}
