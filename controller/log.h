/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured logging for the controller (pkg/ never logs; it returns errors).
 *
 * One line per call, written with a single fwrite so that lines never interleave:
 *
 *   text: 2026-11-29T03:00:00.123Z INFO  reconcile ok policy=project-b/team-a linked=3
 *   json: {"ts":"2026-11-29T03:00:00.123Z","level":"info","msg":"reconcile ok",
 *          "policy":"project-b/team-a","linked":3}
 *
 * Every line names the object it concerns: the first argument of each macro is a
 * log_obj, a type of its own, so forgetting it (or passing a plain string there)
 * does not compile. Process-level lines name their component instead
 * (LOG_COMPONENT("leader-election") → component=leader-election).
 *
 * Fields are typed compound literals (LOG_STR, LOG_INT, ...), counted by the
 * macro: there is no format string to mismatch and no sentinel to forget.
 *
 *   log_info(LOG_POLICY(ns, name), "reconcile ok", LOG_INT("linked", n));
 *   log_error(LOG_OBJ("serviceaccount", ns, sa), "update failed", LOG_ERRNO(r));
 *
 * Secrets. The controller only ever logs names, counts, reasons and errno strings:
 * there is deliberately no field type that takes a buffer, a JSON object or a
 * secret's payload, and nothing in the controller holds decoded secret data in a
 * char * that could be passed by mistake except the secret modules, which do not
 * log. As a second guard, a value whose key looks like it carries credentials
 * (see log_key_is_sensitive()) is printed as "[REDACTED]" whatever it is.
 *
 * Limits: every string value is cut at the configured max_value bytes (default
 * LOG_VALUE_MAX) and marked "...(+N bytes)"; the message at LOG_MSG_MAX; keys at
 * LOG_KEY_MAX; at most LOG_FIELDS_MAX fields a line (more is a programming error
 * caught by a static assertion in the macros). Control characters are escaped in
 * both formats, so a value can never start a new log line.
 *
 * Not thread-safe: the controller runs on one event loop.
 */
#ifndef PP_CONTROLLER_LOG_H
#define PP_CONTROLLER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#define LOG_VALUE_MAX  512
#define LOG_MSG_MAX    1024
#define LOG_KEY_MAX    64
#define LOG_FIELDS_MAX 32

typedef enum log_level {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARN,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
        _LOG_LEVEL_MAX,
        _LOG_LEVEL_INVALID = -1,
} log_level;

typedef enum log_format {
        LOG_FORMAT_TEXT,
        LOG_FORMAT_JSON,
        _LOG_FORMAT_MAX,
        _LOG_FORMAT_INVALID = -1,
} log_format;

/* "error", "warn", "info", "debug"; from_string also accepts "warning". */
const char *log_level_to_string(log_level l);
log_level log_level_from_string(const char *s);
/* "text", "json" */
const char *log_format_to_string(log_format f);
log_format log_format_from_string(const char *s);

typedef struct log_config {
        FILE *out;         /* NULL: stderr */
        log_format format; /* default text */
        log_level level;   /* lines above this level are dropped; default info */
        size_t max_value;  /* 0: LOG_VALUE_MAX; at least 16 */
        /* Wall clock for timestamps; NULL: clock_gettime(CLOCK_REALTIME). For tests. */
        void (*clock)(struct timespec *ts);
} log_config;

/* Replaces the whole configuration (NULL restores the defaults). Not owned: out stays open. */
void log_configure(const log_config *c);
bool log_enabled(log_level l);

/* The object a line is about: kind=ns/name (ns may be NULL for cluster-scoped ones). */
typedef struct log_obj {
        const char *kind;
        const char *namespace;
        const char *name;
} log_obj;

#define LOG_OBJ(kind, ns, name) ((log_obj){(kind), (ns), (name)})
#define LOG_POLICY(ns, name)    LOG_OBJ("policy", (ns), (name))
#define LOG_COMPONENT(name)     LOG_OBJ("component", NULL, (name))

typedef enum log_field_type {
        _LOG_FIELD_NONE,
        LOG_FIELD_STR,
        LOG_FIELD_INT,
        LOG_FIELD_UINT,
        LOG_FIELD_FLOAT,
        LOG_FIELD_BOOL,
        LOG_FIELD_ERRNO,
        LOG_FIELD_REF,
} log_field_type;

typedef struct log_field {
        const char *key;
        log_field_type type;
        union {
                const char *s; /* STR; NULL prints as null */
                long long i;   /* INT, ERRNO (negative errno) */
                unsigned long long u;
                double f;
                bool b;
                struct {
                        const char *ns;
                        const char *name;
                } ref; /* REF: "ns/name" */
        };
} log_field;

#define LOG_STR(k, v)   ((log_field){.key = (k), .type = LOG_FIELD_STR, .s = (v)})
#define LOG_INT(k, v)   ((log_field){.key = (k), .type = LOG_FIELD_INT, .i = (v)})
#define LOG_UINT(k, v)  ((log_field){.key = (k), .type = LOG_FIELD_UINT, .u = (v)})
#define LOG_FLOAT(k, v) ((log_field){.key = (k), .type = LOG_FIELD_FLOAT, .f = (v)})
#define LOG_BOOL(k, v)  ((log_field){.key = (k), .type = LOG_FIELD_BOOL, .b = (v)})
/* A negative errno as error="Connection refused", an API answer (kube/errors.h) as
 * error="not found (HTTP 404)" (positive values are accepted too). */
#define LOG_ERRNO(r) ((log_field){.key = "error", .type = LOG_FIELD_ERRNO, .i = (r)})
/* Another object than the line's subject: secret=project-b/quay-creds. */
#define LOG_REF(k, ns, nm) ((log_field){.key = (k), .type = LOG_FIELD_REF, .ref = {(ns), (nm)}})

void log_emit(log_level level, log_obj obj, const char *msg, const log_field *fields,
              size_t n_fields);

/* The dummy first element lets the field list be empty without a GNU zero-size array. */
#define _LOG_FIELDS(...)  ((const log_field[]){{.type = _LOG_FIELD_NONE}, ##__VA_ARGS__})
#define _LOG_NFIELDS(...) (sizeof(_LOG_FIELDS(__VA_ARGS__)) / sizeof(log_field) - 1)

#define log_at(level, obj, msg, ...)                                                               \
        do {                                                                                       \
                _Static_assert(_LOG_NFIELDS(__VA_ARGS__) <= LOG_FIELDS_MAX, "too many fields");    \
                if (log_enabled(level))                                                            \
                        log_emit((level), (obj), (msg), _LOG_FIELDS(__VA_ARGS__) + 1,              \
                                 _LOG_NFIELDS(__VA_ARGS__));                                       \
        } while (0)

#define log_error(obj, msg, ...) log_at(LOG_LEVEL_ERROR, obj, msg, ##__VA_ARGS__)
#define log_warn(obj, msg, ...)  log_at(LOG_LEVEL_WARN, obj, msg, ##__VA_ARGS__)
#define log_info(obj, msg, ...)  log_at(LOG_LEVEL_INFO, obj, msg, ##__VA_ARGS__)
#define log_debug(obj, msg, ...) log_at(LOG_LEVEL_DEBUG, obj, msg, ##__VA_ARGS__)

/*
 * True for keys that name credentials: a word of the key (words are separated by
 * '_', '-' or '.'; case-insensitive) is password, passwd, token, auth, auths,
 * dockerconfigjson, dockercfg, data, credential(s) or bearer. Such values are
 * printed as [REDACTED]. ("key" is not on the list: work-queue keys are names.)
 */
bool log_key_is_sensitive(const char *key);

/*
 * Copies s into buf (of size bufsz >= 32), cut to at most max bytes of s
 * (never inside a UTF-8 sequence) followed by "...(+N bytes)" when cut.
 * Returns buf. For building values out of long strings (e.g. a list of names).
 */
char *log_truncate(const char *s, size_t max, char *buf, size_t bufsz);

#endif
