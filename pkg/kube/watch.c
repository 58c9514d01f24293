/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

/* A buffer that once held a huge event is released rather than kept for the
 * life of the watch. */
#define KEEP_BUFFER_MAX ((size_t)1024 * 1024)
#define BUFFER_MIN      ((size_t)4096)

struct kube_watch_framer {
        kube_watch_event_cb cb;
        void *userdata;
        size_t max_event;
        json_tokener *tok;
        /* The head of a line that is not complete yet; never holds a '\n'. */
        char *buf;
        size_t len;
        size_t cap;
        int error; /* sticky, 0 while healthy */
};

int kube_watch_framer_new(const kube_watch_framer_opts *opts, kube_watch_event_cb cb,
                          void *userdata, kube_watch_framer **ret) {
        size_t max_event = KUBE_WATCH_MAX_EVENT_DEFAULT;
        int depth = KUBE_WATCH_MAX_DEPTH_DEFAULT;

        if (!cb || !ret) return -EINVAL;
        if (opts && opts->max_event > 0) {
                if (opts->max_event > KUBE_WATCH_MAX_EVENT_LIMIT) return -EINVAL;
                max_event = opts->max_event;
        }
        if (opts && opts->max_depth != 0) {
                if (opts->max_depth < 0) return -EINVAL;
                depth = opts->max_depth;
        }

        kube_watch_framer *f = calloc(1, sizeof(*f));
        if (!f) return -ENOMEM;
        f->tok = json_tokener_new_ex(depth);
        if (!f->tok) {
                free(f);
                return -ENOMEM;
        }
        /* Strict: only standard JSON; trailing bytes are checked by hand so
         * that a '\r' or spaces after the object are allowed. */
        json_tokener_set_flags(f->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                           JSON_TOKENER_VALIDATE_UTF8);
        f->cb = cb;
        f->userdata = userdata;
        f->max_event = max_event;
        *ret = f;
        return 0;
}

kube_watch_framer *kube_watch_framer_free(kube_watch_framer *f) {
        if (!f) return NULL;
        if (f->tok) json_tokener_free(f->tok);
        free(f->buf);
        free(f);
        return NULL;
}

void kube_watch_framer_reset(kube_watch_framer *f) {
        if (!f) return;
        f->len = 0;
        f->error = 0;
        if (f->cap > KEEP_BUFFER_MAX) {
                free(f->buf);
                f->buf = NULL;
                f->cap = 0;
        }
}

size_t kube_watch_framer_pending(const kube_watch_framer *f) {
        return f ? f->len : 0;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool all_space(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!is_space(p[i])) return false;
        return true;
}

const char *kube_watch_object_resource_version(json_object *obj) {
        json_object *meta, *rv;

        if (!json_object_object_get_ex(obj, "metadata", &meta)) return NULL;
        if (!json_object_object_get_ex(meta, "resourceVersion", &rv)) return NULL;
        if (!json_object_is_type(rv, json_type_string)) return NULL;
        return json_object_get_string(rv);
}

bool kube_watch_event_is_gone(const kube_watch_event *ev) {
        if (!ev || ev->type != KUBE_EVENT_ERROR) return false;
        if (ev->status_code == 410) return true;
        return ev->status_reason &&
               (streq(ev->status_reason, "Expired") || streq(ev->status_reason, "Gone"));
}

/* Parses one line (without its '\n') and hands the event to the callback. */
static int process_line(kube_watch_framer *f, const char *p, size_t n) {
        json_object *root, *type_obj, *object;
        kube_watch_event ev = {0};
        int r;

        /* max_event <= KUBE_WATCH_MAX_EVENT_LIMIT < INT_MAX, so n fits the int length. */
        if (n > f->max_event) return -EMSGSIZE;
        if (all_space(p, n)) return 0;

        json_tokener_reset(f->tok);
        root = json_tokener_parse_ex(f->tok, p, (int)n);
        if (!root) return -EBADMSG;
        if (!all_space(p + json_tokener_get_parse_end(f->tok),
                       n - json_tokener_get_parse_end(f->tok))) {
                r = -EBADMSG;
                goto out;
        }
        if (!json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "type", &type_obj) ||
            !json_object_is_type(type_obj, json_type_string) ||
            !json_object_object_get_ex(root, "object", &object) ||
            !json_object_is_type(object, json_type_object)) {
                r = -EBADMSG;
                goto out;
        }
        ev.type = kube_event_type_from_string(json_object_get_string(type_obj));
        if (ev.type == _KUBE_EVENT_TYPE_INVALID) {
                r = -EBADMSG;
                goto out;
        }
        ev.object = object;
        if (ev.type == KUBE_EVENT_ERROR) {
                json_object *v;
                if (json_object_object_get_ex(object, "code", &v) &&
                    json_object_is_type(v, json_type_int)) {
                        int64_t code = json_object_get_int64(v);
                        ev.status_code = code >= 0 && code <= 999 ? (int)code : 0;
                }
                if (json_object_object_get_ex(object, "reason", &v) &&
                    json_object_is_type(v, json_type_string))
                        ev.status_reason = json_object_get_string(v);
        }
        r = f->cb(&ev, f->userdata);
        if (r > 0) r = 0;
out:
        json_object_put(root);
        return r;
}

/* Makes room for need bytes in the partial-line buffer (need <= max_event). */
static int buf_reserve(kube_watch_framer *f, size_t need) {
        if (need <= f->cap) return 0;
        size_t ncap = f->cap ? f->cap : BUFFER_MIN;
        while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
        if (ncap > f->max_event) ncap = MAX(need, f->max_event);
        char *n = realloc(f->buf, ncap);
        if (!n) return -ENOMEM;
        f->buf = n;
        f->cap = ncap;
        return 0;
}

static int buf_append(kube_watch_framer *f, const char *data, size_t len) {
        /* Checked before copying: memory stays bounded by max_event. */
        if (f->len + len > f->max_event) return -EMSGSIZE;
        int r = buf_reserve(f, f->len + len);
        if (r < 0) return r;
        memcpy(f->buf + f->len, data, len);
        f->len += len;
        return 0;
}

static int fail(kube_watch_framer *f, int r) {
        f->error = r;
        f->len = 0;
        return r;
}

int kube_watch_framer_feed(kube_watch_framer *f, const char *data, size_t len) {
        int r;

        if (!f || (!data && len > 0)) return -EINVAL;
        if (f->error) return f->error;

        while (len > 0) {
                /* Only the new bytes are searched: the held head has no '\n'. */
                const char *nl = memchr(data, '\n', len);
                if (!nl) {
                        r = buf_append(f, data, len);
                        if (r < 0) return fail(f, r);
                        return 0;
                }
                size_t n = (size_t)(nl - data);
                if (f->len == 0) {
                        /* The whole line is in this chunk: parse it in place. */
                        r = process_line(f, data, n);
                } else {
                        r = buf_append(f, data, n);
                        if (r >= 0) r = process_line(f, f->buf, f->len);
                        f->len = 0;
                        if (f->cap > KEEP_BUFFER_MAX) {
                                free(f->buf);
                                f->buf = NULL;
                                f->cap = 0;
                        }
                }
                if (r < 0) return fail(f, r);
                data = nl + 1;
                len -= n + 1;
        }
        return 0;
}

int kube_watch_framer_finish(kube_watch_framer *f) {
        int r;

        if (!f) return -EINVAL;
        if (f->error) return f->error;
        if (f->len == 0) return 0;
        r = process_line(f, f->buf, f->len);
        f->len = 0;
        if (r < 0) return fail(f, r);
        return 0;
}
