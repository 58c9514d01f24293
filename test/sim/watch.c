/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A plain list+watch loop for the simulation: service accounts (whole
 * objects) and dockercfg secrets (metadata only, PartialObjectMetadata, so
 * that no secret data is ever read by the watch) of all namespaces.
 *
 * Kept deliberately simpler than the operator's reflector: a list (paginated)
 * then a watch from its resourceVersion with bookmarks; the stream is cut
 * into events by kube_watch_framer. A 410 Gone (as HTTP status or as an ERROR
 * event) relists; any other failure re-watches from the last resourceVersion
 * after a backoff; a watch that ends normally (timeoutSeconds) re-watches at
 * once. Objects deleted while no watch ran are not reported (the provisioner
 * re-reads before it acts, so that only costs a 404).
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
#include "kube/watch.h"
#include "sim.h"
#include "util/macro.h"

#define LIST_LIMIT        500
#define WATCH_TIMEOUT_MIN 240   /* seconds; jittered up to +60 like client-go */
#define WATCH_IDLE_MS     90000 /* bookmarks come about every minute */
#define BACKOFF_BASE      0.2
#define BACKOFF_MAX       10.0
/* Limit on a resourceVersion or continue token we keep (they are opaque strings). */
#define TOKEN_MAX 4096

typedef struct watcher watcher;
typedef void (*watcher_event_fn)(sim *s, kube_event_type type, json_object *obj);

struct watcher {
        sim *sim;
        sim_watch *owner;
        const char *what;  /* for logs */
        const char *path;  /* collection path */
        const char *query; /* extra query parameters or "" */
        bool metadata_only;
        watcher_event_fn on_event;
        char *rv;
        char *cont;
        kube_request *req;
        kube_watch_framer *framer;
        ev_timer retry;
        unsigned failures;
        bool listing;
        bool synced;
        bool relist; /* the stream said 410 */
};

struct sim_watch {
        sim *sim;
        watcher sas;
        watcher secrets;
        bool announced;
};

static void watcher_list(watcher *w);
static void watcher_watch(watcher *w);

static void on_sa_event(sim *s, kube_event_type type, json_object *obj) {
        if (type == KUBE_EVENT_DELETED)
                sim_forget_sa(s, obj);
        else if (type == KUBE_EVENT_ADDED || type == KUBE_EVENT_MODIFIED)
                sim_observe_sa(s, obj);
}

static void on_secret_event(sim *s, kube_event_type type, json_object *obj) {
        if (type == KUBE_EVENT_DELETED) sim_secret_deleted(s, obj);
}

static int set_token(char **dst, const char *v) {
        if (v && strlen(v) > TOKEN_MAX) return -E2BIG;
        char *n = v && *v ? strdup(v) : NULL;
        if (v && *v && !n) return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

static void announce(sim_watch *sw) {
        if (sw->announced || !sw->sas.synced || !sw->secrets.synced) return;
        sw->announced = true;
        sim_log("synced (mode %s, delay %.3f s)", sim_mode_name(sw->sim->opts.mode),
                sw->sim->opts.delay);
}

static void on_retry(struct ev_loop *loop, ev_timer *t, int revents) {
        watcher *w = t->data;
        if (w->relist || !w->rv)
                watcher_list(w);
        else
                watcher_watch(w);
}

static void retry_later(watcher *w, const char *why, int err) {
        double d =
            kube_backoff_jittered(BACKOFF_BASE, BACKOFF_MAX, w->failures++, 0.5, kube_random());
        sim_log("watch %s: %s: %s; again in %.1f s", w->what, why, kube_strerror(err), d);
        ev_timer_stop(w->sim->loop, &w->retry);
        ev_timer_set(&w->retry, d, 0.);
        ev_timer_start(w->sim->loop, &w->retry);
}

/* --- list --- */

static void on_list(kube_client *c, const kube_response *r, void *ud) {
        watcher *w = ud;
        w->req = NULL;
        if (r->error < 0) {
                retry_later(w, "list failed", r->error);
                return;
        }
        json_tokener *tok = json_tokener_new();
        json_object *list =
            tok ? json_tokener_parse_ex(tok, r->body ? r->body : "", (int)r->body_len) : NULL;
        if (tok && json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(list);
                list = NULL;
        }
        json_tokener_free(tok);
        json_object *items = NULL, *meta = NULL, *v = NULL;
        if (!list || !json_object_object_get_ex(list, "metadata", &meta)) {
                json_object_put(list);
                retry_later(w, "list unreadable", -EBADMSG);
                return;
        }
        if (json_object_object_get_ex(list, "items", &items) &&
            json_object_is_type(items, json_type_array)) {
                size_t n = json_object_array_length(items);
                for (size_t i = 0; i < n; i++)
                        w->on_event(w->sim, KUBE_EVENT_ADDED, json_object_array_get_idx(items, i));
        }
        const char *cont = json_object_object_get_ex(meta, "continue", &v) &&
                                   json_object_is_type(v, json_type_string)
                               ? json_object_get_string(v)
                               : NULL;
        const char *rv = json_object_object_get_ex(meta, "resourceVersion", &v) &&
                                 json_object_is_type(v, json_type_string)
                             ? json_object_get_string(v)
                             : NULL;
        int e = set_token(&w->cont, cont);
        if (e >= 0 && !w->cont) e = set_token(&w->rv, rv);
        json_object_put(list);
        if (e < 0) {
                retry_later(w, "list", e);
                return;
        }
        if (w->cont) {
                watcher_list(w);
                return;
        }
        if (!w->rv) {
                w->relist = true;
                retry_later(w, "list has no resourceVersion", -EBADMSG);
                return;
        }
        w->relist = false;
        w->listing = false;
        w->synced = true;
        announce(w->owner);
        watcher_watch(w);
}

static void watcher_list(watcher *w) {
        _cleanup_free_ char *path = NULL;
        if (w->sim->stopping) return;
        if (!w->cont) w->listing = true;
        if (asprintf(&path, "%s?limit=%d%s%s%s%s", w->path, LIST_LIMIT, w->cont ? "&continue=" : "",
                     w->cont ? w->cont : "", *w->query ? "&" : "", w->query) < 0) {
                retry_later(w, "list", -ENOMEM);
                return;
        }
        kube_request_opts o = {
            .method = KUBE_GET,
            .path = path,
            .accept = w->metadata_only
                          ? "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
                          : NULL,
            .timeout_ms = 60000,
            .on_done = on_list,
            .userdata = w,
        };
        int r = kube_client_request(w->sim->client, &o, &w->req);
        if (r < 0) {
                w->req = NULL;
                retry_later(w, "list", r);
        }
}

/* --- watch --- */

static int on_watch_event(const kube_watch_event *ev, void *ud) {
        watcher *w = ud;
        if (ev->type == KUBE_EVENT_ERROR) {
                if (kube_watch_event_is_gone(ev)) {
                        w->relist = true;
                        return -EIDRM;
                }
                sim_log("watch %s: ERROR event (code %d, %s)", w->what, ev->status_code,
                        ev->status_reason ? ev->status_reason : "no reason");
                return -EREMOTEIO;
        }
        const char *rv = kube_watch_object_resource_version(ev->object);
        if (rv) {
                int r = set_token(&w->rv, rv);
                if (r < 0) return r;
        }
        if (ev->type != KUBE_EVENT_BOOKMARK) w->on_event(w->sim, ev->type, ev->object);
        return 0;
}

static int on_watch_data(kube_client *c, const char *data, size_t len, void *ud) {
        watcher *w = ud;
        /* Data flowing means the watch works: reset the backoff. */
        w->failures = 0;
        return kube_watch_framer_feed(w->framer, data, len);
}

static void on_watch_done(kube_client *c, const kube_response *r, void *ud) {
        watcher *w = ud;
        w->req = NULL;
        int e = r->error;
        if (e == 0) e = kube_watch_framer_finish(w->framer);
        kube_watch_framer_reset(w->framer);
        if (w->sim->stopping) return;
        if (w->relist || kube_error_is_gone(e)) {
                w->relist = true;
                sim_log("watch %s: resourceVersion too old, relisting", w->what);
                watcher_list(w);
                return;
        }
        if (e == 0) {
                watcher_watch(w); /* the server ended it (timeoutSeconds) */
                return;
        }
        retry_later(w, "watch ended", e);
}

static void watcher_watch(watcher *w) {
        _cleanup_free_ char *path = NULL;
        if (w->sim->stopping) return;
        int timeout = WATCH_TIMEOUT_MIN + (int)(kube_random() * 60);
        if (asprintf(&path,
                     "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d%s%s",
                     w->path, w->rv, timeout, *w->query ? "&" : "", w->query) < 0) {
                retry_later(w, "watch", -ENOMEM);
                return;
        }
        kube_request_opts o = {
            .method = KUBE_GET,
            .path = path,
            .accept = w->metadata_only
                          ? "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
                          : NULL,
            .idle_timeout_ms = WATCH_IDLE_MS,
            .no_rate_limit = true,
            .on_data = on_watch_data,
            .on_done = on_watch_done,
            .userdata = w,
        };
        int r = kube_client_request(w->sim->client, &o, &w->req);
        if (r < 0) {
                w->req = NULL;
                retry_later(w, "watch", r);
        }
}

static int watcher_init(watcher *w, sim_watch *owner, const char *what, const char *path,
                        const char *query, bool metadata_only, watcher_event_fn fn) {
        w->sim = owner->sim;
        w->owner = owner;
        w->what = what;
        w->path = path;
        w->query = query;
        w->metadata_only = metadata_only;
        w->on_event = fn;
        ev_init(&w->retry, on_retry);
        w->retry.data = w;
        return kube_watch_framer_new(NULL, on_watch_event, w, &w->framer);
}

static void watcher_done(watcher *w) {
        if (!w->sim) return;
        ev_timer_stop(w->sim->loop, &w->retry);
        kube_request_cancel(w->req);
        w->req = NULL;
        kube_watch_framer_free(w->framer);
        free(w->rv);
        free(w->cont);
}

int sim_watch_start(sim *s, sim_watch **ret) {
        sim_watch *sw = calloc(1, sizeof(*sw));
        if (!sw) return -ENOMEM;
        sw->sim = s;
        int r = watcher_init(&sw->sas, sw, "serviceaccounts", "/api/v1/serviceaccounts", "", false,
                             on_sa_event);
        if (r >= 0)
                r = watcher_init(&sw->secrets, sw, "dockercfg secrets", "/api/v1/secrets",
                                 "fieldSelector=type%3Dkubernetes.io%2Fdockercfg", true,
                                 on_secret_event);
        if (r < 0) {
                sim_watch_free(sw);
                return r;
        }
        watcher_list(&sw->sas);
        watcher_list(&sw->secrets);
        *ret = sw;
        return 0;
}

sim_watch *sim_watch_free(sim_watch *sw) {
        if (!sw) return NULL;
        watcher_done(&sw->sas);
        watcher_done(&sw->secrets);
        free(sw);
        return NULL;
}
