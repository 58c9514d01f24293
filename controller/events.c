/* SPDX-License-Identifier: Apache-2.0 */
#include "events.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kube/ratelimit.h"
#include "kube/types.h"
#include "util/hash.h"
#include "util/macro.h"
#include "util/str.h"
#include "util/timefmt.h"

typedef struct filter_entry {
        char *object; /* "kind/ns/name" */
        kube_token_bucket bucket;
        uint64_t last_hash; /* of reason + message */
        double last_sent;
        double last_used;
} filter_entry;

struct pp_events {
        kube_client *client;
        char *component;
        char *instance;
        double burst, refill, dedupe;
        size_t max_objects;
        filter_entry *entries;
        size_t n_entries, cap_entries;
        unsigned long counter;
        pp_events_stats stats;
};

int pp_events_new(kube_client *c, const pp_events_opts *o, pp_events **ret) {
        pp_events_opts def = {0};
        if (!o) o = &def;
        pp_events *e = calloc(1, sizeof(*e));
        if (!e) return -ENOMEM;
        e->client = c;
        e->component = strdup(o->component ? o->component : "pullpolicy-controller");
        e->instance = strdup_or_null(o->instance);
        if (!e->component || (o->instance && !e->instance)) {
                pp_events_free(e);
                return -ENOMEM;
        }
        e->burst = o->burst > 0 ? o->burst : 25;
        e->refill = o->refill_seconds > 0 ? o->refill_seconds : 300;
        e->dedupe = o->dedupe_seconds > 0 ? o->dedupe_seconds : 600;
        e->max_objects = o->max_objects ? o->max_objects : 4096;
        *ret = e;
        return 0;
}

pp_events *pp_events_free(pp_events *e) {
        if (!e) return NULL;
        for (size_t i = 0; i < e->n_entries; i++) free(e->entries[i].object);
        free(e->entries);
        free(e->component);
        free(e->instance);
        free(e);
        return NULL;
}

void pp_events_get_stats(const pp_events *e, pp_events_stats *ret) {
        *ret = e->stats;
}

/*
 * Only used to notice a repeated message, never for security. A 0xff byte (never
 * in UTF-8) ends each string, so that "ab" + "c" and "a" + "bc" differ.
 */
static uint64_t message_hash(const char *reason, const char *message) {
        uint64_t h = hash_fnv1a64(HASH_FNV1A64_INIT, reason, strlen(reason));
        h = hash_fnv1a64(h, "\xff", 1);
        h = hash_fnv1a64(h, message, strlen(message));
        return hash_fnv1a64(h, "\xff", 1);
}

/* Evicts the least recently used entry when the table is full. */
static filter_entry *filter_lookup(pp_events *e, const char *object, double now) {
        for (size_t i = 0; i < e->n_entries; i++)
                if (streq(e->entries[i].object, object)) return &e->entries[i];
        if (e->n_entries >= e->max_objects) {
                size_t lru = 0;
                for (size_t i = 1; i < e->n_entries; i++)
                        if (e->entries[i].last_used < e->entries[lru].last_used) lru = i;
                free(e->entries[lru].object);
                e->entries[lru] = e->entries[--e->n_entries];
        }
        if (GROW(e->entries, e->cap_entries, e->n_entries + 1) < 0) return NULL;
        filter_entry *f = &e->entries[e->n_entries];
        *f = (filter_entry){.object = strdup(object), .last_sent = -1e18};
        if (!f->object) return NULL;
        /* qps = 1/refill: one token back every refill seconds. */
        kube_token_bucket_init(&f->bucket, 1.0 / e->refill, (int)e->burst, now);
        e->n_entries++;
        return f;
}

static void post_done(kube_client *c, const kube_response *r, void *userdata) {
        pp_events *e = userdata;
        if (r->error < 0) e->stats.failed++;
}

static json_object *object_ref_json(const pp_object_ref *obj) {
        json_object *o = json_object_new_object();
        if (!o) return NULL;
        json_object_object_add(o, "apiVersion", json_object_new_string(obj->api_version));
        json_object_object_add(o, "kind", json_object_new_string(obj->kind));
        if (obj->namespace)
                json_object_object_add(o, "namespace", json_object_new_string(obj->namespace));
        json_object_object_add(o, "name", json_object_new_string(obj->name));
        if (obj->uid) json_object_object_add(o, "uid", json_object_new_string(obj->uid));
        return o;
}

int pp_events_record(pp_events *e, const pp_object_ref *obj, bool warning, const char *reason,
                     const char *message, double now) {
        if (!e || !obj || !obj->kind || !obj->name || !obj->api_version || !reason || !message)
                return -EINVAL;

        _cleanup_free_ char *object = NULL;
        if (asprintf(&object, "%s/%s/%s", obj->kind, obj->namespace ? obj->namespace : "",
                     obj->name) < 0)
                return -ENOMEM;
        filter_entry *f = filter_lookup(e, object, now);
        if (!f) return -ENOMEM;
        f->last_used = now;

        uint64_t h = message_hash(reason, message);
        if (h == f->last_hash && now - f->last_sent < e->dedupe) {
                e->stats.suppressed++;
                return 0;
        }
        if (kube_token_bucket_reserve(&f->bucket, now) > 0) {
                /* Give the token back: a suppressed event must not cost one. */
                f->bucket.tokens += 1;
                e->stats.suppressed++;
                return 0;
        }

        /* Events live in the object's namespace; cluster-scoped objects use "default". */
        const char *ns = obj->namespace ? obj->namespace : "default";
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char stamp[TIMEFMT_RFC3339_MAX];
        timefmt_rfc3339(ts.tv_sec, stamp, sizeof(stamp));

        char name[254];
        snprintf(name, sizeof(name), "%.200s.%llx%lx", obj->name,
                 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
                 e->counter++ & 0xfff);

        json_object *ev = json_object_new_object();
        if (!ev) return -ENOMEM;
        json_object *meta = json_object_new_object();
        json_object_object_add(meta, "name", json_object_new_string(name));
        json_object_object_add(meta, "namespace", json_object_new_string(ns));
        json_object_object_add(ev, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(ev, "kind", json_object_new_string("Event"));
        json_object_object_add(ev, "metadata", meta);
        json_object_object_add(ev, "involvedObject", object_ref_json(obj));
        json_object_object_add(ev, "reason", json_object_new_string(reason));
        size_t message_len = str_utf8_cut(message, strlen(message), PP_EVENTS_MESSAGE_MAX);
        json_object_object_add(ev, "message",
                               json_object_new_string_len(message, (int)message_len));
        json_object_object_add(ev, "type", json_object_new_string(warning ? "Warning" : "Normal"));
        json_object *src = json_object_new_object();
        json_object_object_add(src, "component", json_object_new_string(e->component));
        json_object_object_add(ev, "source", src);
        json_object_object_add(ev, "firstTimestamp", json_object_new_string(stamp));
        json_object_object_add(ev, "lastTimestamp", json_object_new_string(stamp));
        json_object_object_add(ev, "count", json_object_new_int(1));
        json_object_object_add(ev, "reportingComponent", json_object_new_string(e->component));
        json_object_object_add(ev, "reportingInstance",
                               json_object_new_string(e->instance ? e->instance : e->component));

        _cleanup_free_ char *path = NULL;
        static const kube_resource core_events = {"", "v1", "events", true};
        int r = kube_resource_path(&core_events, ns, NULL, NULL, &path);
        if (r < 0) {
                json_object_put(ev);
                return r;
        }
        size_t len;
        const char *body = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN, &len);
        kube_request_opts ro = {
            .method = KUBE_POST,
            .path = path,
            .body = body,
            .body_len = len,
            .timeout_ms = 30000,
            .on_done = post_done,
            .userdata = e,
        };
        r = e->client ? kube_client_request(e->client, &ro, NULL) : 0;
        json_object_put(ev);
        if (r < 0) return r;
        f->last_hash = h;
        f->last_sent = now;
        e->stats.sent++;
        return 1;
}
