/* SPDX-License-Identifier: Apache-2.0 */
#include "kubetest.h"

#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testenv.h"

double kt_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kt_sleep(double s) {
        struct timespec d = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&d, &d) < 0 && errno == EINTR) {
        }
}

const char *kt_root(void) {
        const char *r = getenv("PULLPOLICY_ROOT");
        return r && *r ? r : ".";
}

const char *kt_build(void) {
        const char *b = getenv("PULLPOLICY_BUILD");
        return b && *b ? b : "build";
}

char *kt_vfmt(const char *fmt, va_list ap) {
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0) return NULL;
        return s;
}

/*
 * Runs kubectl with the formatted arguments; its stdout (caller frees; may be NULL) is
 * returned and its exit status put in *rc. keep_stderr: let kubectl's stderr through.
 */
static char *kt_vrun(bool keep_stderr, int *rc, const char *fmt, va_list ap) {
        char *cmd = kt_vfmt(fmt, ap), *out = NULL;
        if (!cmd) {
                *rc = -ENOMEM;
                return NULL;
        }
        *rc = testenv_kubectl(&out, keep_stderr ? "%s" : "%s 2>/dev/null", cmd);
        free(cmd);
        return out;
}

int kt_kubectl(const char *fmt, ...) {
        va_list ap;
        int r;
        va_start(ap, fmt);
        free(kt_vrun(true, &r, fmt, ap));
        va_end(ap);
        return r;
}

char *kt_kout(const char *fmt, ...) {
        va_list ap;
        int r;
        va_start(ap, fmt);
        char *out = kt_vrun(false, &r, fmt, ap);
        va_end(ap);
        if (r != 0) {
                free(out);
                return NULL;
        }
        if (!out) return strdup("");
        size_t n = strlen(out);
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\r'))
                out[--n] = 0;
        return out;
}

json_object *kt_kjson(const char *fmt, ...) {
        va_list ap;
        int r;
        va_start(ap, fmt);
        char *out = kt_vrun(false, &r, fmt, ap);
        va_end(ap);
        json_object *o = r == 0 && out ? json_tokener_parse(out) : NULL;
        free(out);
        return o;
}

void kt_apply(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *yaml = kt_vfmt(fmt, ap);
        va_end(ap);
        assert_non_null(yaml);
        char *out = NULL;
        int r = testenv_kubectl_input(yaml, &out, "apply -f - 2>&1");
        if (r != 0)
                fprintf(stderr, "kubectl apply failed (%d): %s\n--- input:\n%s\n", r,
                        out ? out : "", yaml);
        free(out);
        free(yaml);
        assert_int_equal(r, 0);
}

int kt_try_apply(char **out, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *yaml = kt_vfmt(fmt, ap);
        va_end(ap);
        if (!yaml) return -ENOMEM;
        int r = testenv_kubectl_input(yaml, out, "apply -f - 2>&1");
        free(yaml);
        return r;
}

int kt_install_crds(void) {
        if (kt_kubectl("apply --server-side --force-conflicts -k '%s/crds/' >/dev/null",
                       kt_root()) != 0 ||
            kt_kubectl("wait --for condition=established --timeout=60s "
                       "crd/pullpolicies.pullpolicy.io >/dev/null") != 0)
                return -1;
        return 0;
}

json_object *kt_jget(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!o || !json_object_is_type(o, json_type_object)) return NULL;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

json_object *kt_jpath(json_object *o, const char *path) {
        char buf[512];
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) return NULL;
        char *save = NULL;
        for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
                o = kt_jget(o, k);
        return o;
}

static const char *kt_string(json_object *v) {
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

const char *kt_jstr(json_object *o, const char *path) {
        return kt_string(kt_jpath(o, path));
}

long long kt_jint(json_object *o, const char *path) {
        json_object *v = kt_jpath(o, path);
        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

size_t kt_jlen(json_object *o, const char *path) {
        json_object *l = kt_jpath(o, path);
        return l && json_object_is_type(l, json_type_array) ? json_object_array_length(l) : 0;
}

json_object *kt_jidx(json_object *o, const char *path, size_t i) {
        json_object *l = kt_jpath(o, path);
        return l && json_object_is_type(l, json_type_array) ? json_object_array_get_idx(l, i)
                                                            : NULL;
}

const char *kt_label(json_object *obj, const char *key) {
        return kt_string(kt_jget(kt_jpath(obj, "metadata.labels"), key));
}

const char *kt_annotation(json_object *obj, const char *key) {
        return kt_string(kt_jget(kt_jpath(obj, "metadata.annotations"), key));
}

static const char kt_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int kt_b64val(char c) {
        const char *p = c ? strchr(kt_b64_alphabet, c) : NULL;
        return p ? (int)(p - kt_b64_alphabet) : -1;
}

char *kt_b64decode(const char *s) {
        size_t n = strlen(s), o = 0;
        char *out = malloc(n / 4 * 3 + 4);
        uint32_t acc = 0;
        int bits = 0;
        if (!out) return NULL;
        for (size_t i = 0; i < n && s[i] != '='; i++) {
                int v = kt_b64val(s[i]);
                if (v < 0) {
                        free(out);
                        return NULL;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char)((acc >> bits) & 0xff);
                }
        }
        out[o] = 0;
        return out;
}

char *kt_b64encode(const char *s) {
        size_t n = strlen(s), o = 0;
        char *out = malloc((n + 2) / 3 * 4 + 1);
        assert_non_null(out);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
                if (i + 1 < n) v |= (uint32_t)(unsigned char)s[i + 1] << 8;
                if (i + 2 < n) v |= (uint32_t)(unsigned char)s[i + 2];
                out[o++] = kt_b64_alphabet[(v >> 18) & 63];
                out[o++] = kt_b64_alphabet[(v >> 12) & 63];
                out[o++] = i + 1 < n ? kt_b64_alphabet[(v >> 6) & 63] : '=';
                out[o++] = i + 2 < n ? kt_b64_alphabet[v & 63] : '=';
        }
        out[o] = 0;
        return out;
}
