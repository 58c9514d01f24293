/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the OpenShift simulation: logging, OpenShift's secret naming,
 * base64, the dockercfg payload, small JSON edits of service accounts.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sim.h"
#include "util/macro.h"

static void vlog(const char *fmt, va_list ap) {
        struct timespec ts;
        struct tm tm;
        char when[32] = "";

        clock_gettime(CLOCK_REALTIME, &ts);
        if (gmtime_r(&ts.tv_sec, &tm))
                snprintf(when, sizeof(when), "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000);
        /* One fprintf per line so that lines of concurrent writers do not interleave. */
        char line[1024];
        vsnprintf(line, sizeof(line), fmt, ap);
        fprintf(stderr, "%s pullpolicy-sim: %s\n", when, line);
}

void sim_log(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog(fmt, ap);
        va_end(ap);
}

void sim_debug(const sim *s, const char *fmt, ...) {
        if (!s->opts.verbose) return;
        va_list ap;
        va_start(ap, fmt);
        vlog(fmt, ap);
        va_end(ap);
}

/* FNV-1a, 32 bits: OpenShift hashes over-long names with it. */
static uint32_t fnv1a32(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 16777619u;
        }
        return h;
}

#define PREFIX_MAX 58 /* 63 minus the 5 random characters */

/* library-go's naming.GetName(base, suffix, 58): "<base>-<suffix>" or the hashed form. */
static char *name_prefix(const char *sa_name, const char *suffix) {
        char *ret = NULL;
        size_t n = strlen(sa_name);

        if (n + 1 + strlen(suffix) <= PREFIX_MAX) {
                if (asprintf(&ret, "%s-%s", sa_name, suffix) < 0) return NULL;
                return ret;
        }
        /* base truncated to 58 - len("-xxxxxxxx-") - len(suffix) characters */
        int keep = PREFIX_MAX - 10 - (int)strlen(suffix);
        if (asprintf(&ret, "%.*s-%08x-%s", keep, sa_name, fnv1a32(sa_name), suffix) < 0)
                return NULL;
        return ret;
}

char *sim_dockercfg_prefix(const char *sa_name) {
        return name_prefix(sa_name, "dockercfg-");
}

char *sim_token_prefix(const char *sa_name) {
        return name_prefix(sa_name, "token-");
}

char *sim_generate_name(const char *prefix) {
        /* Kubernetes' utilrand alphabet: no vowels (no words), no confusable 0/1/3. */
        static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
        unsigned char rnd[5];
        char tail[6];
        char *ret;

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
                /* getrandom() on a booted kernel does not fail; fall back anyway. */
                for (size_t i = 0; i < sizeof(rnd); i++) rnd[i] = (unsigned char)rand();
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                tail[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
        tail[5] = 0;
        if (asprintf(&ret, "%s%s", prefix, tail) < 0) return NULL;
        return ret;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sim_base64(const void *data, size_t len) {
        const unsigned char *p = data;
        if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
        if (!out) return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < len) v |= p[i + 2];
                *o++ = b64chars[(v >> 18) & 63];
                *o++ = b64chars[(v >> 12) & 63];
                *o++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
                *o++ = i + 2 < len ? b64chars[v & 63] : '=';
        }
        *o = 0;
        return out;
}

static int b64val(char c) {
        const char *p = c ? strchr(b64chars, c) : NULL;
        return p ? (int)(p - b64chars) : -1;
}

long sim_base64_decode(const char *s, char **ret) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '=') n--;
        if (n % 4 == 1 || n > (size_t)LONG_MAX / 3) return -EINVAL;
        char *out = malloc(n / 4 * 3 + 3 + 1);
        if (!out) return -ENOMEM;
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
                int v = b64val(s[i]);
                if (v < 0) {
                        free(out);
                        return -EINVAL;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char)((acc >> bits) & 0xff);
                }
        }
        out[o] = 0;
        *ret = out;
        return (long)o;
}

char *sim_fake_token(void) {
        /* header.payload.signature, each part made up: nothing verifies it. */
        _cleanup_free_ char *a = sim_generate_name("simtoken");
        _cleanup_free_ char *b = sim_generate_name("notasignature");
        char *ret;
        if (!a || !b) return NULL;
        if (asprintf(&ret, "eyJhbGciOiJub25lIn0.%s.%s", a, b) < 0) return NULL;
        return ret;
}

/* The internal registry as OpenShift's dockercfg secrets name it (service, FQDN, cluster IP). */
static const char *const registry_urls[] = {
    "image-registry.openshift-image-registry.svc:5000",
    "image-registry.openshift-image-registry.svc.cluster.local:5000",
    "172.30.47.21:5000",
};

char *sim_dockercfg_payload(sim_mode mode, const char *token) {
        json_object *root = json_object_new_object();
        _cleanup_free_ char *userpass = NULL, *auth = NULL;
        char *ret = NULL;

        if (!root) return NULL;
        if (mode == SIM_MODE_LEGACY) {
                if (asprintf(&userpass, "serviceaccount:%s", token) < 0) userpass = NULL;
        } else {
                if (asprintf(&userpass, "<token>:%s", token) < 0) userpass = NULL;
        }
        if (!userpass || !(auth = sim_base64(userpass, strlen(userpass)))) goto out;

        for (size_t i = 0; i < ARRAY_SIZE(registry_urls); i++) {
                json_object *e = json_object_new_object();
                if (!e) goto out;
                if (mode == SIM_MODE_LEGACY) {
                        json_object_object_add(e, "username",
                                               json_object_new_string("serviceaccount"));
                        json_object_object_add(e, "password", json_object_new_string(token));
                        json_object_object_add(
                            e, "email", json_object_new_string("serviceaccount@example.org"));
                }
                json_object_object_add(e, "auth", json_object_new_string(auth));
                json_object_object_add(root, registry_urls[i], e);
        }
        ret = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
out:
        json_object_put(root);
        return ret;
}

static bool has_prefix(const char *s, const char *p) {
        return strncmp(s, p, strlen(p)) == 0;
}

const char *sim_mode_name(sim_mode m) {
        switch (m) {
        case SIM_MODE_CURRENT:
                return "current";
        case SIM_MODE_EARLY416:
                return "early416";
        case SIM_MODE_LEGACY:
                return "legacy";
        case SIM_MODE_REMOVED:
                return "removed";
        }
        return "?";
}

int sim_mode_parse(const char *s, sim_mode *ret) {
        static const struct {
                const char *name;
                sim_mode mode;
        } modes[] = {
            {"current", SIM_MODE_CURRENT}, {"early416", SIM_MODE_EARLY416},
            {"legacy", SIM_MODE_LEGACY},   {"removed", SIM_MODE_REMOVED},
            {"ocp416", SIM_MODE_CURRENT},  {"off", SIM_MODE_REMOVED},
        };
        for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
                if (streq(s, modes[i].name)) {
                        *ret = modes[i].mode;
                        return 0;
                }
        return -EINVAL;
}

/* OpenShift serves every namespace, kube-* included; only the test filters apply. */
bool sim_namespace_wanted(const sim_opts *o, const char *ns) {
        for (size_t i = 0; i < o->n_skip; i++)
                if (has_prefix(ns, o->skip_prefixes[i])) return false;
        if (o->n_include == 0) return true;
        for (size_t i = 0; i < o->n_include; i++)
                if (has_prefix(ns, o->include_prefixes[i])) return true;
        return false;
}

static json_object *child(json_object *obj, const char *key) {
        json_object *v = NULL;
        if (!obj || !json_object_is_type(obj, json_type_object)) return NULL;
        if (!json_object_object_get_ex(obj, key, &v)) return NULL;
        return v;
}

static const char *str_child(json_object *obj, const char *key) {
        json_object *v = child(obj, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

const char *sim_meta_str(json_object *obj, const char *key) {
        return str_child(child(obj, "metadata"), key);
}

const char *sim_annotation(json_object *obj, const char *key) {
        return str_child(child(child(obj, "metadata"), "annotations"), key);
}

int sim_set_annotation(json_object *obj, const char *key, const char *value) {
        json_object *meta = child(obj, "metadata"), *ann;
        if (!meta || !json_object_is_type(meta, json_type_object)) return -EINVAL;
        ann = child(meta, "annotations");
        if (!ann || !json_object_is_type(ann, json_type_object)) {
                ann = json_object_new_object();
                if (!ann) return -ENOMEM;
                if (json_object_object_add(meta, "annotations", ann) < 0) {
                        json_object_put(ann);
                        return -ENOMEM;
                }
        }
        json_object *v = json_object_new_string(value);
        if (!v) return -ENOMEM;
        if (json_object_object_add(ann, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *list_of(json_object *obj, const char *field) {
        json_object *l = child(obj, field);
        return l && json_object_is_type(l, json_type_array) ? l : NULL;
}

bool sim_list_has(json_object *obj, const char *field, const char *name) {
        json_object *l = list_of(obj, field);
        size_t n = l ? json_object_array_length(l) : 0;
        for (size_t i = 0; i < n; i++) {
                const char *v = str_child(json_object_array_get_idx(l, i), "name");
                if (v && streq(v, name)) return true;
        }
        return false;
}

const char *sim_list_find_prefix(json_object *obj, const char *field, const char *prefix) {
        json_object *l = list_of(obj, field);
        size_t n = l ? json_object_array_length(l) : 0;
        for (size_t i = 0; i < n; i++) {
                const char *v = str_child(json_object_array_get_idx(l, i), "name");
                if (v && has_prefix(v, prefix)) return v;
        }
        return NULL;
}

int sim_list_remove(json_object *obj, const char *field, const char *name) {
        json_object *l = list_of(obj, field);
        int changed = 0;
        for (size_t i = l ? json_object_array_length(l) : 0; i-- > 0;) {
                const char *v = str_child(json_object_array_get_idx(l, i), "name");
                if (v && streq(v, name)) {
                        json_object_array_del_idx(l, i, 1);
                        changed = 1;
                }
        }
        return changed;
}

int sim_list_append(json_object *obj, const char *field, const char *name) {
        json_object *l = field ? list_of(obj, field) : obj, *e;
        if (!field && !json_object_is_type(obj, json_type_array)) return -EINVAL;
        if (!l) {
                l = json_object_new_array();
                if (!l) return -ENOMEM;
                if (json_object_object_add(obj, field, l) < 0) {
                        json_object_put(l);
                        return -ENOMEM;
                }
        }
        e = json_object_new_object();
        if (!e) return -ENOMEM;
        json_object_object_add(e, "name", json_object_new_string(name));
        if (json_object_array_add(l, e) < 0) {
                json_object_put(e);
                return -ENOMEM;
        }
        return 0;
}
