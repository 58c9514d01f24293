/* SPDX-License-Identifier: Apache-2.0 */
#include "events.h"

#include <errno.h>
#include <ev.h>
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

/* Keeps the per-series memory small whatever the options say. */
#define SIMILAR_MAX_LIMIT 1024

/* One per (object, type): Warnings never share a budget with Normal events. */
typedef struct filter_entry {
        char *object; /* "N|kind/ns/name/uid" or "W|..." */
        uint64_t object_hash;
        kube_token_bucket bucket;
        uint64_t last_hash; /* of reason + message */
        double last_sent;
        double last_used;
} filter_entry;

/*
 * One per (object, type, reason): the distinct messages seen lately, and the
 * aggregated event that stands for the occurrences beyond similar_max.
 */
typedef struct series {
        char *object; /* the filter_entry key */
        char *reason;
        uint64_t key_hash;
        uint64_t serial; /* names the series to a request's callback; never reused */
        uint64_t *msgs;  /* hashes of the distinct messages sent one by one in the window */
        size_t n_msgs, cap_msgs;
        double last; /* the last occurrence, for the window and the LRU */
        /* The rest is set once something was combined. */
        pp_object_ref ref; /* owned copies */
        bool warning;
        char *message;           /* the latest combined one, already cut */
        unsigned long total;     /* occurrences combined into event_name */
        unsigned long on_server; /* ... of which the server has been told */
        char *event_name;        /* NULL until the aggregated event is posted */
        time_t first_wall;       /* wall clock of the first combined occurrence */
        bool in_flight;
} series;

/* A POST or PATCH of an aggregated event, alive until its callback. */
typedef struct agg_request {
        pp_events *e;
        uint64_t serial;
        unsigned long total; /* the count it carries */
        bool warning;
        struct agg_request *prev, *next;
} agg_request;

struct pp_events {
        kube_client *client;
        struct ev_loop *loop; /* NULL without a client: tests flush by hand */
        ev_timer flush_timer;
        char *component;
        char *instance;
        double burst, refill, dedupe, similar_window, flush_delay;
        void (*observe)(void *userdata, kube_method method, const char *path, const char *body);
        void *observe_userdata;
        controller_metrics *metrics;
        size_t max_objects, similar_max;
        filter_entry *entries;
        size_t n_entries, cap_entries;
        series *series;
        size_t n_series, cap_series;
        uint64_t next_serial;
        agg_request *requests;
        unsigned long counter;
        pp_events_stats stats;
};

static void flush_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
        pp_events *e = w->data;
        pp_events_flush(e, kube_now());
}

int pp_events_new(kube_client *c, const pp_events_opts *o, pp_events **ret) {
        pp_events_opts def = {0};
        if (!o) o = &def;
        if (o->similar_max > SIMILAR_MAX_LIMIT) return -EINVAL;
        pp_events *e = calloc(1, sizeof(*e));
        if (!e) return -ENOMEM;
        e->client = c;
        e->loop = c ? kube_client_loop(c) : NULL;
        ev_timer_init(&e->flush_timer, flush_timer_cb, 0., 0.);
        e->flush_timer.data = e;
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
        e->similar_max = o->similar_max ? o->similar_max : 10;
        e->similar_window = o->similar_seconds > 0 ? o->similar_seconds : 600;
        e->flush_delay = o->flush_seconds > 0 ? o->flush_seconds : 1;
        e->observe = o->observe;
        e->observe_userdata = o->observe_userdata;
        e->metrics = o->metrics;
        *ret = e;
        return 0;
}

static void ref_done(pp_object_ref *r) {
        free((char *)r->api_version);
        free((char *)r->kind);
        free((char *)r->namespace);
        free((char *)r->name);
        free((char *)r->uid);
        *r = (pp_object_ref){0};
}

static void series_done(series *s) {
        free(s->object);
        free(s->reason);
        free(s->msgs);
        ref_done(&s->ref);
        free(s->message);
        free(s->event_name);
}

pp_events *pp_events_free(pp_events *e) {
        if (!e) return NULL;
        if (e->loop) ev_timer_stop(e->loop, &e->flush_timer);
        for (size_t i = 0; i < e->n_entries; i++) free(e->entries[i].object);
        free(e->entries);
        for (size_t i = 0; i < e->n_series; i++) series_done(&e->series[i]);
        free(e->series);
        /* Their requests were cancelled with the client (see main.c's teardown). */
        while (e->requests) {
                agg_request *q = e->requests;
                e->requests = q->next;
                free(q);
        }
        free(e->component);
        free(e->instance);
        free(e);
        return NULL;
}

void pp_events_get_stats(const pp_events *e, pp_events_stats *ret) {
        *ret = e->stats;
        ret->objects = e->n_entries;
        ret->series = e->n_series;
}

/* The metric beside the stats: what became of events, by type. */
static void note(pp_events *e, bool warning, const char *result, unsigned long n) {
        metrics_events(e->metrics, warning ? "Warning" : "Normal", result, n);
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
        uint64_t oh = message_hash(object, "");
        for (size_t i = 0; i < e->n_entries; i++)
                if (e->entries[i].object_hash == oh && streq(e->entries[i].object, object))
                        return &e->entries[i];
        if (e->n_entries >= e->max_objects) {
                size_t lru = 0;
                for (size_t i = 1; i < e->n_entries; i++)
                        if (e->entries[i].last_used < e->entries[lru].last_used) lru = i;
                free(e->entries[lru].object);
                e->entries[lru] = e->entries[--e->n_entries];
        }
        if (GROW(e->entries, e->cap_entries, e->n_entries + 1) < 0) return NULL;
        filter_entry *f = &e->entries[e->n_entries];
        *f = (filter_entry){.object = strdup(object), .object_hash = oh, .last_sent = -1e18};
        if (!f->object) return NULL;
        /* qps = 1/refill: one token back every refill seconds. */
        kube_token_bucket_init(&f->bucket, 1.0 / e->refill, (int)e->burst, now);
        e->n_entries++;
        return f;
}

/* Takes a token of the object's budget; 0 when granted, else seconds until one is. */
static double filter_take(filter_entry *f, double now) {
        double wait = kube_token_bucket_reserve(&f->bucket, now);
        /* Give the token back: a suppressed event must not cost one. */
        if (wait > 0) f->bucket.tokens += 1;
        return wait;
}

/* Occurrences combined but not yet on the server. */
static unsigned long series_pending(const series *s) {
        return s->total - s->on_server;
}

static series *series_find_serial(pp_events *e, uint64_t serial) {
        for (size_t i = 0; i < e->n_series; i++)
                if (e->series[i].serial == serial) return &e->series[i];
        return NULL;
}

/* Like filter_lookup(); what an evicted series had not posted yet is lost and counted. */
static series *series_lookup(pp_events *e, const char *object, const char *reason, double now) {
        uint64_t kh = message_hash(object, reason);
        for (size_t i = 0; i < e->n_series; i++) {
                series *s = &e->series[i];
                if (s->key_hash == kh && streq(s->object, object) && streq(s->reason, reason))
                        return s;
        }
        if (e->n_series >= e->max_objects) {
                size_t lru = 0;
                for (size_t i = 1; i < e->n_series; i++)
                        if (e->series[i].last < e->series[lru].last) lru = i;
                e->stats.suppressed += series_pending(&e->series[lru]);
                note(e, e->series[lru].warning, "suppressed", series_pending(&e->series[lru]));
                series_done(&e->series[lru]);
                e->series[lru] = e->series[--e->n_series];
        }
        if (GROW(e->series, e->cap_series, e->n_series + 1) < 0) return NULL;
        series *s = &e->series[e->n_series];
        *s = (series){
            .object = strdup(object),
            .reason = strdup(reason),
            .key_hash = kh,
            .serial = ++e->next_serial,
            .last = now,
        };
        if (!s->object || !s->reason) {
                series_done(s);
                return NULL;
        }
        e->n_series++;
        return s;
}

/* After a quiet window, similar messages go out one by one again. */
static void series_restart(series *s) {
        s->n_msgs = 0;
        if (s->in_flight || series_pending(s) > 0) return; /* the flush still owes it */
        s->total = s->on_server = 0;
        free(s->event_name);
        s->event_name = NULL;
}

static bool series_has(const series *s, uint64_t h) {
        for (size_t i = 0; i < s->n_msgs; i++)
                if (s->msgs[i] == h) return true;
        return false;
}

static int ref_copy(pp_object_ref *dst, const pp_object_ref *src) {
        pp_object_ref r = {
            .api_version = strdup(src->api_version),
            .kind = strdup(src->kind),
            .namespace = strdup_or_null(src->namespace),
            .name = strdup(src->name),
            .uid = strdup_or_null(src->uid),
        };
        if (!r.api_version || !r.kind || !r.name || (src->namespace && !r.namespace) ||
            (src->uid && !r.uid)) {
                ref_done(&r);
                return -ENOMEM;
        }
        *dst = r;
        return 0;
}

static int series_combine(series *s, const pp_object_ref *obj, bool warning, const char *message) {
        if (!s->ref.kind) {
                int r = ref_copy(&s->ref, obj);
                if (r < 0) return r;
                s->warning = warning;
        }
        size_t len = str_utf8_cut(message, strlen(message), PP_EVENTS_MESSAGE_MAX);
        char *m = strndup(message, len);
        if (!m) return -ENOMEM;
        free(s->message);
        s->message = m;
        if (s->total == 0) s->first_wall = time(NULL);
        s->total++;
        return 0;
}

/* Runs the flush after seconds, or sooner if it is armed for sooner already. */
static void flush_arm(pp_events *e, double after) {
        if (!e->loop) return;
        if (ev_is_active(&e->flush_timer)) {
                if (ev_timer_remaining(e->loop, &e->flush_timer) <= after) return;
                ev_timer_stop(e->loop, &e->flush_timer);
        }
        ev_timer_set(&e->flush_timer, after, 0.);
        ev_timer_start(e->loop, &e->flush_timer);
}

static void post_done(pp_events *e, bool warning, const kube_response *r) {
        if (r->error >= 0) return;
        e->stats.failed++;
        note(e, warning, "failed", 1);
}

static void post_done_normal(kube_client *c, const kube_response *r, void *userdata) {
        post_done(userdata, false, r);
}

static void post_done_warning(kube_client *c, const kube_response *r, void *userdata) {
        post_done(userdata, true, r);
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

/* Events live in the object's namespace; cluster-scoped objects use "default". */
static const char *event_namespace(const pp_object_ref *obj) {
        return obj->namespace ? obj->namespace : "default";
}

static void event_name(pp_events *e, const pp_object_ref *obj, char *buf, size_t n) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(buf, n, "%.200s.%llx%lx", obj->name,
                 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
                 e->counter++ & 0xfff);
}

static void wall_stamp(time_t t, char buf[static TIMEFMT_RFC3339_MAX]) {
        if (timefmt_rfc3339(t, buf, TIMEFMT_RFC3339_MAX) < 0)
                snprintf(buf, TIMEFMT_RFC3339_MAX, "1970-01-01T00:00:00Z");
}

/* A whole core/v1 Event; message is cut at PP_EVENTS_MESSAGE_MAX here. */
static json_object *event_json(pp_events *e, const pp_object_ref *obj, const char *name,
                               bool warning, const char *reason, const char *message, int count,
                               const char *first, const char *last) {
        json_object *ev = json_object_new_object();
        if (!ev) return NULL;
        json_object *meta = json_object_new_object();
        json_object_object_add(meta, "name", json_object_new_string(name));
        json_object_object_add(meta, "namespace", json_object_new_string(event_namespace(obj)));
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
        json_object_object_add(ev, "firstTimestamp", json_object_new_string(first));
        json_object_object_add(ev, "lastTimestamp", json_object_new_string(last));
        json_object_object_add(ev, "count", json_object_new_int(count));
        json_object_object_add(ev, "reportingComponent", json_object_new_string(e->component));
        json_object_object_add(ev, "reportingInstance",
                               json_object_new_string(e->instance ? e->instance : e->component));
        return ev;
}

/* Starts the request (or only shows it to the observer when there is no client). */
static int send_json(pp_events *e, kube_method method, const char *ns, const char *name,
                     json_object *body, kube_response_cb on_done, void *userdata) {
        _cleanup_free_ char *path = NULL;
        static const kube_resource core_events = {"", "v1", "events", true};
        int r = kube_resource_path(&core_events, ns, name, NULL, &path);
        if (r < 0) return r;
        size_t len;
        const char *s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
        if (!s) return -ENOMEM;
        kube_request_opts ro = {
            .method = method,
            .path = path,
            .body = s,
            .body_len = len,
            .patch_type = KUBE_PATCH_MERGE,
            .timeout_ms = 30000,
            .on_done = on_done,
            .userdata = userdata,
        };
        if (e->observe) e->observe(e->observe_userdata, method, path, s);
        return e->client ? kube_client_request(e->client, &ro, NULL) : 0;
}

/* The outcome of an aggregated event's POST or PATCH that carried count total. */
static void agg_finish(pp_events *e, series *s, unsigned long total, int error) {
        s->in_flight = false;
        if (error >= 0) {
                s->on_server = total;
        } else {
                /*
                 * The server may not have the event (expired, refused): start a new
                 * one with what came since. What the failed request carried is lost,
                 * as client-go's correlator loses it: events are best effort.
                 */
                e->stats.failed++;
                note(e, s->warning, "failed", 1);
                s->total = s->total > total ? s->total - total : 0;
                s->on_server = 0;
                free(s->event_name);
                s->event_name = NULL;
        }
        if (series_pending(s) > 0) flush_arm(e, e->flush_delay);
}

static void agg_done(kube_client *c, const kube_response *r, void *userdata) {
        agg_request *q = userdata;
        pp_events *e = q->e;
        if (q->prev)
                q->prev->next = q->next;
        else
                e->requests = q->next;
        if (q->next) q->next->prev = q->prev;
        series *s = series_find_serial(e, q->serial);
        if (s)
                agg_finish(e, s, q->total, r->error);
        else if (r->error < 0) {
                e->stats.failed++;
                note(e, q->warning, "failed", 1);
        }
        free(q);
}

/* POSTs the aggregated event of s, or PATCHes its count and message if it is posted. */
static int agg_send(pp_events *e, series *s) {
        char stamp[TIMEFMT_RFC3339_MAX];
        wall_stamp(time(NULL), stamp);
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "(combined from %lu similar events): %s", s->total, s->message) < 0)
                return -ENOMEM;
        int count = s->total > INT32_MAX ? INT32_MAX : (int)s->total;
        _cleanup_free_ char *new_name = NULL;
        json_object *body;
        if (s->event_name) {
                body = json_object_new_object();
                if (body) {
                        size_t len = str_utf8_cut(msg, strlen(msg), PP_EVENTS_MESSAGE_MAX);
                        json_object_object_add(body, "count", json_object_new_int(count));
                        json_object_object_add(body, "lastTimestamp",
                                               json_object_new_string(stamp));
                        json_object_object_add(body, "message",
                                               json_object_new_string_len(msg, (int)len));
                }
        } else {
                char name[254], first[TIMEFMT_RFC3339_MAX];
                event_name(e, &s->ref, name, sizeof(name));
                wall_stamp(s->first_wall, first);
                new_name = strdup(name);
                if (!new_name) return -ENOMEM;
                body =
                    event_json(e, &s->ref, name, s->warning, s->reason, msg, count, first, stamp);
        }
        if (!body) return -ENOMEM;

        agg_request *q = NULL;
        if (e->client) {
                q = calloc(1, sizeof(*q));
                if (!q) {
                        json_object_put(body);
                        return -ENOMEM;
                }
                *q = (agg_request){
                    .e = e, .serial = s->serial, .total = s->total, .warning = s->warning};
        }
        bool patch = s->event_name != NULL;
        int r = send_json(e, patch ? KUBE_PATCH : KUBE_POST, event_namespace(&s->ref),
                          patch ? s->event_name : NULL, body, agg_done, q);
        json_object_put(body);
        if (r < 0) {
                free(q);
                return r;
        }
        if (patch)
                e->stats.patched++;
        else {
                e->stats.sent++;
                s->event_name = TAKE_PTR(new_name);
        }
        note(e, s->warning, patch ? "patched" : "sent", 1);
        if (!q) {
                /* No client: the request "succeeds" at once. */
                agg_finish(e, s, s->total, 0);
                return 0;
        }
        s->in_flight = true;
        q->next = e->requests;
        if (q->next) q->next->prev = q;
        e->requests = q;
        return 0;
}

int pp_events_flush(pp_events *e, double now) {
        if (!e) return -EINVAL;
        int n = 0, r = 0;
        double wait = -1;
        for (size_t i = 0; i < e->n_series && r >= 0; i++) {
                series *s = &e->series[i];
                if (series_pending(s) == 0) continue;
                if (s->in_flight) {
                        /* agg_finish() arms the flush again when it lands. */
                        continue;
                }
                filter_entry *f = filter_lookup(e, s->object, now);
                if (!f) {
                        r = -ENOMEM;
                        break;
                }
                f->last_used = now;
                double w = filter_take(f, now);
                if (w > 0) {
                        if (wait < 0 || w < wait) wait = w;
                        continue;
                }
                r = agg_send(e, s);
                if (r >= 0) n++;
        }
        /* What the budget holds back now goes out when a token returns. */
        if (wait > 0) flush_arm(e, wait);
        return r < 0 ? r : n;
}

int pp_events_record(pp_events *e, const pp_object_ref *obj, bool warning, const char *reason,
                     const char *message, double now) {
        if (!e || !obj || !obj->kind || !obj->name || !obj->api_version || !reason || !message)
                return -EINVAL;

        _cleanup_free_ char *object = NULL;
        if (asprintf(&object, "%c|%s/%s/%s/%s", warning ? 'W' : 'N', obj->kind,
                     obj->namespace ? obj->namespace : "", obj->name, obj->uid ? obj->uid : "") < 0)
                return -ENOMEM;
        filter_entry *f = filter_lookup(e, object, now);
        if (!f) return -ENOMEM;
        f->last_used = now;

        uint64_t h = message_hash(reason, message);
        if (h == f->last_hash && now - f->last_sent < e->dedupe) {
                e->stats.suppressed++;
                note(e, warning, "suppressed", 1);
                return 0;
        }

        series *s = series_lookup(e, object, reason, now);
        if (!s) return -ENOMEM;
        if (now - s->last > e->similar_window) series_restart(s);
        s->last = now;
        if (!series_has(s, h)) {
                if (s->n_msgs >= e->similar_max) {
                        int r = series_combine(s, obj, warning, message);
                        if (r < 0) return r;
                        e->stats.combined++;
                        note(e, warning, "combined", 1);
                        flush_arm(e, e->flush_delay);
                        return 0;
                }
                if (GROW(s->msgs, s->cap_msgs, s->n_msgs + 1) < 0) return -ENOMEM;
                s->msgs[s->n_msgs++] = h;
        }

        if (filter_take(f, now) > 0) {
                e->stats.suppressed++;
                note(e, warning, "suppressed", 1);
                return 0;
        }

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char stamp[TIMEFMT_RFC3339_MAX];
        wall_stamp(ts.tv_sec, stamp);
        char name[254];
        event_name(e, obj, name, sizeof(name));
        json_object *ev = event_json(e, obj, name, warning, reason, message, 1, stamp, stamp);
        if (!ev) return -ENOMEM;
        int r = send_json(e, KUBE_POST, event_namespace(obj), NULL, ev,
                          warning ? post_done_warning : post_done_normal, e);
        json_object_put(ev);
        if (r < 0) return r;
        f->last_hash = h;
        f->last_sent = now;
        e->stats.sent++;
        note(e, warning, "sent", 1);
        return 1;
}
