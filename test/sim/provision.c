/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provisioning of one service account's dockercfg secret, as a chain of
 * asynchronous requests on the loop (see main.c for the behaviour and how it
 * differs from OpenShift's controllers).
 *
 * Each service account that needs a secret has a sim_sa in sim->pending,
 * keyed "ns/name". A sync always starts from a fresh GET, never from the
 * watch's copy, so a stale event can at most cost a read. At most one request
 * of a service account is in flight; events arriving meanwhile set `dirty`
 * and the sync runs again when the chain ends. Every write of a service
 * account is a full PUT of the object just read (its resourceVersion is the
 * precondition); a 409 re-reads and re-applies the edit (sa_rmw), so entries
 * added by others are never dropped. A service account that is provisioned
 * and idle is dropped from the table.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
        switch (s->opts.mode) {
        case SIM_MODE_LEGACY:
                return "legacy";
        case SIM_MODE_OCP416:
                return "ocp416";
        default:
                return "off";
        }
}

static void sync_start(sim_sa *sa);
static void on_timer(struct ev_loop *loop, ev_timer *t, int revents);

static sim_sa *sa_free(sim_sa *sa) {
        if (!sa) return NULL;
        ev_timer_stop(sa->sim->loop, &sa->timer);
        kube_request_cancel(sa->req);
        json_object_put(sa->obj);
        free(sa->key);
        free(sa->ns);
        free(sa->name);
        free(sa->uid);
        free(sa->secret);
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

static void sa_kick(sim_sa *sa) {
        if (sa->req) {
                sa->dirty = true;
                return;
        }
        if (ev_is_active(&sa->timer)) return;
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
                if (++sa->conflicts > MAX_CONFLICTS) {
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
        const char *body = json_object_to_json_string_ext(sa->obj, JSON_C_TO_STRING_PLAIN);
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
 * errno (-ESTALE after MAX_CONFLICTS, -ESRCH when the uid changed, -ENOENT
 * when it is gone or being deleted, an edit's or a request's error).
 * With fresh == false the object in sa->obj is used for the first attempt.
 */
static void sa_rmw(sim_sa *sa, bool fresh, sa_edit_fn edit, sa_next_fn next) {
        sa->edit = edit;
        sa->next = next;
        sa->conflicts = 0;
        if (fresh || !sa->obj)
                rmw_read(sa);
        else
                rmw_put(sa);
}

/* --- legacy (before 4.16) --- */

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
        return !in_m || !in_p;
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

static void legacy_link(sim_sa *sa) {
        sa_rmw(sa, false, edit_link_both, legacy_linked);
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
        _cleanup_free_ char *token = sim_fake_token();
        _cleanup_free_ char *tprefix = NULL, *tname = NULL, *payload = NULL, *b64 = NULL;
        char *ret = NULL;

        if (!token || asprintf(&tprefix, "%s-token-", sa->name) < 0) return NULL;
        if (!(tname = sim_generate_name(tprefix))) return NULL;
        if (!(payload = sim_dockercfg_payload(SIM_MODE_LEGACY, token))) return NULL;
        if (!(b64 = sim_base64(payload, strlen(payload)))) return NULL;

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
                return NULL;
        }
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("Secret"));
        json_object_object_add(meta, "name", json_object_new_string(sa->secret));
        json_object_object_add(meta, "namespace", json_object_new_string(sa->ns));
        json_object_object_add(ann, SIM_ANN_SA_NAME, json_object_new_string(sa->name));
        json_object_object_add(ann, SIM_ANN_SA_UID, json_object_new_string(sa->uid));
        json_object_object_add(ann, SIM_ANN_TOKEN_NAME, json_object_new_string(tname));
        json_object_object_add(ann, SIM_ANN_TOKEN_VALUE, json_object_new_string(token));
        json_object_object_add(meta, "annotations", ann);
        json_object_object_add(owner, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(owner, "kind", json_object_new_string("ServiceAccount"));
        json_object_object_add(owner, "name", json_object_new_string(sa->name));
        json_object_object_add(owner, "uid", json_object_new_string(sa->uid));
        json_object_array_add(owners, owner);
        json_object_object_add(meta, "ownerReferences", owners);
        json_object_object_add(o, "metadata", meta);
        json_object_object_add(o, "type", json_object_new_string(SIM_SECRET_TYPE));
        json_object_object_add(data, SIM_DOCKERCFG_KEY, json_object_new_string(b64));
        json_object_object_add(o, "data", data);
        ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
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

/* Drops every {name: name} entry of obj[field]; 1 when one went, else 0. */
static int list_remove_name(json_object *obj, const char *field, const char *name) {
        json_object *l = NULL;
        int changed = 0;
        if (!json_object_object_get_ex(obj, field, &l) || !json_object_is_type(l, json_type_array))
                return 0;
        for (size_t i = json_object_array_length(l); i-- > 0;) {
                json_object *e = json_object_array_get_idx(l, i), *n = NULL;
                if (json_object_object_get_ex(e, "name", &n) &&
                    json_object_is_type(n, json_type_string) &&
                    streq(json_object_get_string(n), name)) {
                        json_object_array_del_idx(l, i, 1);
                        changed = 1;
                }
        }
        return changed;
}

static int edit_remove_deleted(sim_sa *sa, json_object *obj) {
        int a = list_remove_name(obj, "secrets", sa->deleted_secret);
        int b = list_remove_name(obj, "imagePullSecrets", sa->deleted_secret);
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

static void legacy_sync(sim_sa *sa) {
        sim *s = sa->sim;
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
        double wait = sa->first_seen + s->opts.delay - kube_now();
        if (wait > 0.0005) {
                sim_log("legacy %s: no dockercfg secret yet; provisioning in %.3f s", sa->key,
                        wait);
                sa_wait(sa, wait);
                sa_done(sa, false);
                return;
        }
        sa->name_tries = 0;
        legacy_create(sa);
}

/* --- 4.16 and later --- */

static bool secret_filled(json_object *secret) {
        const char *binding = sim_annotation(secret, SIM_ANN_AUTH_BINDING);
        json_object *data = NULL, *v = NULL;
        _cleanup_free_ char *decoded = NULL;
        if (!binding || !streq(binding, "bound")) return false;
        if (!json_object_object_get_ex(secret, "data", &data) ||
            !json_object_object_get_ex(data, SIM_DOCKERCFG_KEY, &v) ||
            !json_object_is_type(v, json_type_string))
                return false;
        return sim_base64_decode(json_object_get_string(v), &decoded) > 2;
}

static bool ocp416_linked(const sim *s, json_object *obj, const char *name) {
        return sim_list_has(obj, "imagePullSecrets", name) &&
               (!s->opts.ocp416_mountable || sim_list_has(obj, "secrets", name));
}

static int edit_link416(sim_sa *sa, json_object *obj) {
        const char *ref = sim_annotation(obj, SIM_ANN_PULL_REF);
        if (!ref || !streq(ref, sa->secret)) return -EAGAIN; /* changed under us: start over */
        int changed = 0, r;
        if (!sim_list_has(obj, "imagePullSecrets", sa->secret)) {
                if ((r = sim_list_append(obj, "imagePullSecrets", sa->secret)) < 0) return r;
                changed = 1;
        }
        if (sa->sim->opts.ocp416_mountable && !sim_list_has(obj, "secrets", sa->secret)) {
                if ((r = sim_list_append(obj, "secrets", sa->secret)) < 0) return r;
                changed = 1;
        }
        return changed;
}

static void ocp416_linked_done(sim_sa *sa, int result);

static void ocp416_link(sim_sa *sa) {
        sa_rmw(sa, false, edit_link416, ocp416_linked_done);
}

static void ocp416_linked_done(sim_sa *sa, int result) {
        if (result == 0) {
                sim_log("ocp416 %s: linked %s in .imagePullSecrets%s", sa->key, sa->secret,
                        sa->sim->opts.ocp416_mountable ? " and .secrets" : "");
                sa->sim->n_provisioned++;
        }
        if (result >= 0 || result == -ENOENT || kube_error_is_not_found(result)) {
                sa_done(sa, true);
                return;
        }
        if (result == -EAGAIN || result == -ESRCH) {
                sa_reset(sa);
                sync_start(sa);
                return;
        }
        sa_retry_later(sa, "linking", result);
}

/* While the secret holds no credentials, OpenShift keeps it out of .imagePullSecrets. */
static int edit_unlink416(sim_sa *sa, json_object *obj) {
        return list_remove_name(obj, "imagePullSecrets", sa->secret);
}

static void ocp416_fill(sim_sa *sa);

static void ocp416_unlinked(sim_sa *sa, int result) {
        if (result == 0)
                sim_log("ocp416 %s: removed unfilled %s from .imagePullSecrets", sa->key,
                        sa->secret);
        if (result >= 0) {
                ocp416_fill(sa);
                return;
        }
        if (result == -ENOENT || kube_error_is_not_found(result))
                sa_done(sa, true);
        else if (result == -ESRCH) {
                sa_reset(sa);
                sync_start(sa);
        } else
                sa_retry_later(sa, "unlinking the unfilled secret", result);
}

static void on_filled(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_not_found(r->error)) {
                sync_start(sa); /* deleted meanwhile: made again */
                return;
        }
        if (r->error < 0) {
                sa_retry_later(sa, "filling the secret", r->error);
                return;
        }
        sim_log("ocp416 %s: filled secret %s/%s with registry credentials", sa->key, sa->ns,
                sa->secret);
        sa_pause_then(sa, ocp416_link);
}

static void ocp416_fill(sim_sa *sa) {
        double wait = sa->first_seen + sa->sim->opts.delay - kube_now();
        if (wait > 0.0005) {
                sim_log("ocp416 %s: secret %s not filled yet; filling in %.3f s", sa->key,
                        sa->secret, wait);
                sa_wait(sa, wait);
                sa_done(sa, false);
                return;
        }
        _cleanup_free_ char *token = sim_fake_token(), *payload = NULL, *b64 = NULL;
        _cleanup_free_ char *path = NULL, *body = NULL;
        int r = -ENOMEM;
        if (token && (payload = sim_dockercfg_payload(SIM_MODE_OCP416, token)) &&
            (b64 = sim_base64(payload, strlen(payload))) &&
            asprintf(&body,
                     "{\"metadata\":{\"annotations\":{\"%s\":\"bound\"}},\"data\":{\"%s\":\"%s\"}}",
                     SIM_ANN_AUTH_BINDING, SIM_DOCKERCFG_KEY, b64) >= 0)
                r = sa_path(sa, &KUBE_RES_SECRETS, sa->secret, &path);
        else
                body = NULL;
        if (r >= 0) r = sa_request(sa, KUBE_PATCH, path, body, KUBE_PATCH_MERGE, on_filled);
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "filling the secret", r);
        }
}

static void on_secret416_created(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (r->error < 0 && !kube_error_is_already_exists(r->error)) {
                if (kube_error_is_forbidden(r->error) || kube_error_is_not_found(r->error))
                        sa_give_up(sa, "creating the managed secret", r->error);
                else
                        sa_retry_later(sa, "creating the managed secret", r->error);
                return;
        }
        if (r->error == 0)
                sim_log("ocp416 %s: created secret %s/%s (type %s, no credentials yet)", sa->key,
                        sa->ns, sa->secret, SIM_SECRET_TYPE);
        sa_rmw(sa, false, edit_unlink416, ocp416_unlinked);
}

static char *ocp416_secret_body(sim_sa *sa) {
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
        json_object_object_add(owner, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(owner, "kind", json_object_new_string("ServiceAccount"));
        json_object_object_add(owner, "name", json_object_new_string(sa->name));
        json_object_object_add(owner, "uid", json_object_new_string(sa->uid));
        json_object_array_add(owners, owner);
        json_object_object_add(meta, "ownerReferences", owners);
        json_object_object_add(o, "type", json_object_new_string(SIM_SECRET_TYPE));
        json_object_object_add(data, SIM_DOCKERCFG_KEY, json_object_new_string(empty));
        ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
        json_object_put(o);
        return ret;
}

static void on_secret416_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_not_found(r->error)) {
                _cleanup_free_ char *path = NULL, *body = ocp416_secret_body(sa);
                int e = body ? sa_path(sa, &KUBE_RES_SECRETS, NULL, &path) : -ENOMEM;
                if (e >= 0) e = sa_request(sa, KUBE_POST, path, body, 0, on_secret416_created);
                if (e < 0) {
                        sa->req = NULL;
                        sa_retry_later(sa, "creating the managed secret", e);
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
        bool filled = secret_filled(secret);
        json_object_put(secret);
        if (filled)
                sa_rmw(sa, false, edit_link416, ocp416_linked_done);
        else if (sim_list_has(sa->obj, "imagePullSecrets", sa->secret))
                sa_rmw(sa, false, edit_unlink416, ocp416_unlinked);
        else
                ocp416_fill(sa);
}

static void ocp416_read_secret(sim_sa *sa) {
        _cleanup_free_ char *path = NULL;
        int r = sa_path(sa, &KUBE_RES_SECRETS, sa->secret, &path);
        if (r >= 0) r = sa_request(sa, KUBE_GET, path, NULL, 0, on_secret416_read);
        if (r < 0) {
                sa->req = NULL;
                sa_retry_later(sa, "reading the managed secret", r);
        }
}

static int edit_annotate(sim_sa *sa, json_object *obj) {
        const char *ref = sim_annotation(obj, SIM_ANN_PULL_REF);
        if (ref) {
                /* Someone (an earlier run of ours) chose already: keep that name stable. */
                char *n = strdup(ref);
                if (!n) return -ENOMEM;
                free(sa->secret);
                sa->secret = n;
                return 0;
        }
        int r = sim_set_annotation(obj, SIM_ANN_PULL_REF, sa->secret);
        return r < 0 ? r : 1;
}

static void ocp416_annotated(sim_sa *sa, int result) {
        if (result == 0)
                sim_log("ocp416 %s: annotated %s=%s", sa->key, SIM_ANN_PULL_REF, sa->secret);
        if (result >= 0) {
                ocp416_read_secret(sa);
                return;
        }
        if (result == -ENOENT || kube_error_is_not_found(result))
                sa_done(sa, true);
        else if (result == -ESRCH) {
                sa_reset(sa);
                sync_start(sa);
        } else
                sa_retry_later(sa, "annotating", result);
}

static void ocp416_sync(sim_sa *sa) {
        const char *ref = sim_annotation(sa->obj, SIM_ANN_PULL_REF);
        if (ref) {
                char *n = strdup(ref);
                if (!n) {
                        sa_retry_later(sa, "sync", -ENOMEM);
                        return;
                }
                free(sa->secret);
                sa->secret = n;
                ocp416_read_secret(sa);
                return;
        }
        if (!sa->secret) {
                _cleanup_free_ char *prefix = sim_dockercfg_prefix(sa->name);
                sa->secret = prefix ? sim_generate_name(prefix) : NULL;
                if (!sa->secret) {
                        sa_retry_later(sa, "sync", -ENOMEM);
                        return;
                }
        }
        sa_rmw(sa, false, edit_annotate, ocp416_annotated);
}

/* --- the start of every sync --- */

static void on_sa_read(kube_client *c, const kube_response *r, void *ud) {
        sim_sa *sa = ud;
        sa->req = NULL;
        if (kube_error_is_not_found(r->error)) {
                sa->gone = true;
                sa_done(sa, true);
                return;
        }
        if (r->error < 0) {
                sa_retry_later(sa, "reading the service account", r->error);
                return;
        }
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
        if (sa->sim->opts.mode == SIM_MODE_LEGACY)
                legacy_sync(sa);
        else
                ocp416_sync(sa);
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
        if (s->opts.mode == SIM_MODE_LEGACY) {
                _cleanup_free_ char *prefix = sim_dockercfg_prefix(name);
                if (!prefix) return true;
                return !sim_list_find_prefix(obj, "secrets", prefix) ||
                       !sim_list_find_prefix(obj, "imagePullSecrets", prefix);
        }
        const char *ref = sim_annotation(obj, SIM_ANN_PULL_REF);
        return !ref || !ocp416_linked(s, obj, ref);
}

void sim_observe_sa(sim *s, json_object *obj) {
        const char *ns = sim_meta_str(obj, "namespace"), *name = sim_meta_str(obj, "name");
        const char *uid = sim_meta_str(obj, "uid");
        if (s->opts.mode == SIM_MODE_OFF || !ns || !name || !uid) return;
        if (!sim_namespace_wanted(&s->opts, ns)) return;

        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "%s/%s", ns, name) < 0) return;
        sim_sa *sa = hashmap_get(s->pending, key);
        if (!needs_provisioning(s, obj, name)) {
                /* Provisioned by someone else, e.g. an earlier run: forget it when idle. */
                if (sa && !sa->req && !sa->deleted_secret && sa->uid && streq(sa->uid, uid))
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
        if (s->opts.mode == SIM_MODE_OFF || !ns || !name) return;
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
        }
        sa->first_seen = kube_now();
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
        if (r < 0) {
                free(s);
                return r;
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
