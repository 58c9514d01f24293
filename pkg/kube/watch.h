/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_watch_framer: turns the body of a watch response, delivered in chunks
 * of any size, into watch events.
 *
 * The apiserver's JSON stream framing puts one metav1.WatchEvent per line:
 *
 *     {"type":"ADDED","object":{...}}\n
 *
 * The framer scans each byte for '\n' once (a line that arrives a byte at a
 * time is not rescanned), parses each complete line once with json-c and
 * hands {type, object} to a callback. Lines that lie whole within one chunk
 * are parsed in place; only a line split across chunks is copied.
 *
 * Limits (input-controlled sizes):
 *   one event (a line, without its '\n') ... max_event bytes, default
 *                                            KUBE_WATCH_MAX_EVENT_DEFAULT (16 MiB),
 *                                            at most KUBE_WATCH_MAX_EVENT_LIMIT
 *   JSON nesting depth ...................... max_depth, default KUBE_WATCH_MAX_DEPTH_DEFAULT
 *
 * Errors are sticky: after a failure every later call returns the same error
 * until kube_watch_framer_reset(), because a stream that produced garbage
 * cannot be trusted to be in step any more; the caller drops it and watches
 * again.
 */
#ifndef PP_KUBE_WATCH_H
#define PP_KUBE_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "kube/types.h"

#define KUBE_WATCH_MAX_EVENT_DEFAULT ((size_t)16 * 1024 * 1024)
#define KUBE_WATCH_MAX_EVENT_LIMIT   ((size_t)1024 * 1024 * 1024)
#define KUBE_WATCH_MAX_DEPTH_DEFAULT 64

typedef struct kube_watch_framer kube_watch_framer;

typedef struct kube_watch_event {
        kube_event_type type; /* never _KUBE_EVENT_TYPE_INVALID */
        /*
         * The event's "object": an object for ADDED/MODIFIED/DELETED/BOOKMARK,
         * the metav1.Status for ERROR. Borrowed: valid during the callback
         * only; take a reference with json_object_get() to keep it.
         */
        json_object *object;
        /*
         * For ERROR events: the Status' "code" (0 when absent) and "reason"
         * (NULL when absent; points into object). Unset for other types.
         */
        int status_code;
        const char *status_reason;
} kube_watch_event;

/*
 * Called for each complete event, in stream order. Return 0 to go on; a
 * negative value stops the framer, which returns that value from
 * kube_watch_framer_feed() (and keeps returning it: errors are sticky).
 * The callback must not free the framer nor feed it.
 */
typedef int (*kube_watch_event_cb)(const kube_watch_event *ev, void *userdata);

typedef struct kube_watch_framer_opts {
        size_t max_event; /* 0: KUBE_WATCH_MAX_EVENT_DEFAULT; larger than the LIMIT: -EINVAL */
        int max_depth;    /* 0: KUBE_WATCH_MAX_DEPTH_DEFAULT */
} kube_watch_framer_opts;

/* opts may be NULL. Returns 0 and *ret, or -EINVAL / -ENOMEM. */
int kube_watch_framer_new(const kube_watch_framer_opts *opts, kube_watch_event_cb cb,
                          void *userdata, kube_watch_framer **ret);

kube_watch_framer *kube_watch_framer_free(kube_watch_framer *f);

/*
 * Feeds the next len bytes of the stream and delivers every event they
 * complete. Returns 0, or a negative errno (sticky, see above):
 *   -EMSGSIZE  a line longer than max_event (the stream must be dropped)
 *   -EBADMSG   a line that is not a JSON object {"type": <known type>, "object": {...}},
 *              trailing garbage after the object, or invalid UTF-8
 *   -ENOMEM
 *   or whatever negative value the callback returned.
 * Empty and all-whitespace lines are skipped; a '\r' before the '\n' is
 * accepted (the apiserver sends bare '\n').
 */
int kube_watch_framer_feed(kube_watch_framer *f, const char *data, size_t len);

/*
 * Declares the end of the stream. A last line without its '\n' is parsed as
 * an event (an unterminated, unparsable tail gives -EBADMSG: the stream was
 * cut inside an event). Returns 0 or an error as kube_watch_framer_feed().
 * The framer must be reset before it is fed again.
 */
int kube_watch_framer_finish(kube_watch_framer *f);

/* Forgets any partial line and a sticky error; for the next stream. */
void kube_watch_framer_reset(kube_watch_framer *f);

/* Bytes of an incomplete line currently held. */
size_t kube_watch_framer_pending(const kube_watch_framer *f);

/*
 * True for an ERROR event whose Status says the requested resourceVersion is
 * gone: code 410, or reason "Expired" or "Gone". The watcher must relist.
 */
bool kube_watch_event_is_gone(const kube_watch_event *ev);

/*
 * The object's metadata.resourceVersion, or NULL when absent or not a string.
 * Points into obj.
 */
const char *kube_watch_object_resource_version(json_object *obj);

#endif
