/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "kube/errors.h"
#include "util/macro.h"
#include "util/str.h"

static log_config cfg = {
    .format = LOG_FORMAT_TEXT,
    .level = LOG_LEVEL_INFO,
};

static const char *const level_names[_LOG_LEVEL_MAX] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

/* Padded to one width so that text lines align on the message. */
static const char *const level_text[_LOG_LEVEL_MAX] = {
    [LOG_LEVEL_ERROR] = "ERROR",
    [LOG_LEVEL_WARN] = "WARN ",
    [LOG_LEVEL_INFO] = "INFO ",
    [LOG_LEVEL_DEBUG] = "DEBUG",
};

static const char *const format_names[_LOG_FORMAT_MAX] = {
    [LOG_FORMAT_TEXT] = "text",
    [LOG_FORMAT_JSON] = "json",
};

const char *log_level_to_string(log_level l) {
        if (l < 0 || l >= _LOG_LEVEL_MAX) return NULL;
        return level_names[l];
}

log_level log_level_from_string(const char *s) {
        if (!s) return _LOG_LEVEL_INVALID;
        for (int i = 0; i < _LOG_LEVEL_MAX; i++)
                if (streq(s, level_names[i])) return (log_level)i;
        if (streq(s, "warning")) return LOG_LEVEL_WARN;
        return _LOG_LEVEL_INVALID;
}

const char *log_format_to_string(log_format f) {
        if (f < 0 || f >= _LOG_FORMAT_MAX) return NULL;
        return format_names[f];
}

log_format log_format_from_string(const char *s) {
        if (!s) return _LOG_FORMAT_INVALID;
        for (int i = 0; i < _LOG_FORMAT_MAX; i++)
                if (streq(s, format_names[i])) return (log_format)i;
        return _LOG_FORMAT_INVALID;
}

void log_configure(const log_config *c) {
        if (!c) {
                cfg = (log_config){.format = LOG_FORMAT_TEXT, .level = LOG_LEVEL_INFO};
                return;
        }
        cfg = *c;
        if (cfg.format < 0 || cfg.format >= _LOG_FORMAT_MAX) cfg.format = LOG_FORMAT_TEXT;
        if (cfg.level < 0 || cfg.level >= _LOG_LEVEL_MAX) cfg.level = LOG_LEVEL_INFO;
        if (cfg.max_value == 0) cfg.max_value = LOG_VALUE_MAX;
        if (cfg.max_value < 16) cfg.max_value = 16;
}

bool log_enabled(log_level l) {
        return l >= 0 && l <= cfg.level;
}

/* ---- a line buffer that degrades (truncates) instead of failing ---- */

/* A line never exceeds this: message, LOG_FIELDS_MAX values and escaping fit easily. */
#define LINE_MAX_BYTES (128 * 1024)

typedef struct line {
        char buf[LINE_MAX_BYTES];
        size_t len;
        bool full;
} line;

static void put_mem(line *l, const char *s, size_t n) {
        /* Keep one byte for the newline. */
        if (l->full || n > sizeof(l->buf) - 1 - l->len) {
                l->full = true;
                return;
        }
        memcpy(l->buf + l->len, s, n);
        l->len += n;
}

static void put(line *l, const char *s) {
        put_mem(l, s, strlen(s));
}

static void _printf_(2, 3) putf(line *l, const char *fmt, ...) {
        char tmp[128];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0) return;
        put_mem(l, tmp, MIN((size_t)n, sizeof(tmp) - 1));
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
        unsigned c = s[0];
        size_t len;
        uint32_t cp;
        if (c < 0x80) return 1;
        if ((c & 0xe0) == 0xc0) {
                len = 2;
                cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
                len = 3;
                cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
                len = 4;
                cp = c & 0x07;
        } else
                return 0;
        if (len > n) return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80) return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return len;
}

/*
 * Writes s (n bytes) escaped. JSON: a valid string body (invalid UTF-8 becomes
 * U+FFFD). Text: control characters, backslash and quote escaped the same way,
 * so that one log line stays one line whatever the value holds.
 */
static void put_escaped(line *l, const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;
        while (i < n) {
                unsigned c = p[i];
                if (c == '"' || c == '\\') {
                        char e[2] = {'\\', (char)c};
                        put_mem(l, e, 2);
                        i++;
                } else if (c == '\n') {
                        put(l, "\\n");
                        i++;
                } else if (c == '\r') {
                        put(l, "\\r");
                        i++;
                } else if (c == '\t') {
                        put(l, "\\t");
                        i++;
                } else if (c < 0x20 || c == 0x7f) {
                        putf(l, "\\u%04x", c);
                        i++;
                } else if (c < 0x80) {
                        put_mem(l, (const char *)p + i, 1);
                        i++;
                } else {
                        size_t k = utf8_len(p + i, n - i);
                        if (k == 0) {
                                put(l, "\\ufffd");
                                i++;
                        } else {
                                put_mem(l, (const char *)p + i, k);
                                i += k;
                        }
                }
        }
}

char *log_truncate(const char *s, size_t max, char *buf, size_t bufsz) {
        if (!buf || bufsz == 0) return buf;
        if (!s) s = "";
        size_t len = strlen(s);
        char suffix[48] = "";
        size_t keep = str_utf8_cut(s, len, max);
        if (keep < len) snprintf(suffix, sizeof(suffix), "...(+%zu bytes)", len - keep);
        size_t slen = strlen(suffix);
        if (keep + slen + 1 > bufsz) {
                /* The buffer is smaller than max: cut harder, still marking the cut. The
                 * marker for len bytes is at least as long as for any smaller count. */
                char widest[48];
                snprintf(widest, sizeof(widest), "...(+%zu bytes)", len);
                size_t wl = strlen(widest);
                size_t room = bufsz > wl + 1 ? bufsz - wl - 1 : 0;
                keep = str_utf8_cut(s, len, room);
                snprintf(suffix, sizeof(suffix), "...(+%zu bytes)", len - keep);
                slen = MIN(strlen(suffix), bufsz - 1 - keep);
        }
        memcpy(buf, s, keep);
        memcpy(buf + keep, suffix, slen);
        buf[keep + slen] = 0;
        return buf;
}

static const char *const sensitive_words[] = {
    "password",  "passwd", "token",      "auth",        "auths",  "dockerconfigjson",
    "dockercfg", "data",   "credential", "credentials", "bearer",
};

bool log_key_is_sensitive(const char *key) {
        if (!key) return false;
        const char *p = key;
        while (*p) {
                size_t n = strcspn(p, "_-.");
                for (size_t i = 0; i < ARRAY_SIZE(sensitive_words); i++) {
                        const char *w = sensitive_words[i];
                        if (strlen(w) == n && strncasecmp(p, w, n) == 0) return true;
                }
                p += n;
                if (*p) p++;
        }
        /* ".dockerconfigjson" splits into "" and the word; covered above. */
        return false;
}

/* Text values are bare when safe, else quoted (logfmt style). */
static bool text_needs_quotes(const char *s, size_t n) {
        if (n == 0) return true;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
        }
        return false;
}

static void put_string_value(line *l, const char *s) {
        if (!s) {
                put(l, cfg.format == LOG_FORMAT_JSON ? "null" : "<nil>");
                return;
        }
        size_t len = strlen(s);
        size_t keep = str_utf8_cut(s, len, cfg.max_value);
        char suffix[48] = "";
        if (keep < len) snprintf(suffix, sizeof(suffix), "...(+%zu bytes)", len - keep);
        bool quote = cfg.format == LOG_FORMAT_JSON || suffix[0] || text_needs_quotes(s, keep);
        if (quote) put(l, "\"");
        put_escaped(l, s, keep);
        put(l, suffix);
        if (quote) put(l, "\"");
}

static void put_ref_value(line *l, const char *ns, const char *name) {
        char buf[2 * 253 + 2];
        snprintf(buf, sizeof(buf), "%s%s%s", ns ? ns : "", ns ? "/" : "", name ? name : "");
        put_string_value(l, buf);
}

static void put_key(line *l, const char *key) {
        char k[LOG_KEY_MAX + 1];
        /* Keys are literals in our code; still, keep them sane and short. */
        size_t n = 0;
        for (const char *p = key ? key : "?"; *p && n < LOG_KEY_MAX; p++)
                k[n++] = (isalnum((unsigned char)*p) || strchr("_-./", *p)) ? *p : '_';
        k[n] = 0;
        if (cfg.format == LOG_FORMAT_JSON) {
                put(l, ",\"");
                put(l, k);
                put(l, "\":");
        } else {
                put(l, " ");
                put(l, k);
                put(l, "=");
        }
}

static void put_double(line *l, double v) {
        if (isnan(v) || isinf(v)) {
                /* JSON has no NaN/Inf literals. */
                put_string_value(l, isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
                return;
        }
        putf(l, "%.6g", v);
}

static void put_field(line *l, const log_field *f) {
        put_key(l, f->key);
        if (log_key_is_sensitive(f->key)) {
                put_string_value(l, "[REDACTED]");
                return;
        }
        switch (f->type) {
        case LOG_FIELD_STR:
                put_string_value(l, f->s);
                break;
        case LOG_FIELD_INT:
                putf(l, "%lld", f->i);
                break;
        case LOG_FIELD_UINT:
                putf(l, "%llu", f->u);
                break;
        case LOG_FIELD_FLOAT:
                put_double(l, f->f);
                break;
        case LOG_FIELD_BOOL:
                put(l, f->b ? "true" : "false");
                break;
        case LOG_FIELD_ERRNO: {
                long long e = f->i < 0 ? -f->i : f->i;
                char buf[128];
                /* An API answer is no errno: "not found (HTTP 404)", not "Unknown error". */
                const char *s = e > INT32_MAX                ? "Unknown error"
                                : kube_error_is_api(-(int)e) ? kube_strerror(-(int)e)
                                                             : strerror_r((int)e, buf, sizeof(buf));
                put_string_value(l, s);
                break;
        }
        case LOG_FIELD_REF:
                put_ref_value(l, f->ref.ns, f->ref.name);
                break;
        default:
                put_string_value(l, NULL);
                break;
        }
}

static void put_timestamp(line *l) {
        struct timespec ts;
        if (cfg.clock)
                cfg.clock(&ts);
        else
                clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        putf(l, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void log_emit(log_level level, log_obj obj, const char *msg, const log_field *fields,
              size_t n_fields) {
        if (!log_enabled(level)) return;
        static line l; /* 128 KiB: not on the stack; one loop, no re-entrancy. */
        l.len = 0;
        l.full = false;
        bool json = cfg.format == LOG_FORMAT_JSON;
        size_t save_max = cfg.max_value;

        if (!msg) msg = "";
        if (json) {
                put(&l, "{\"ts\":\"");
                put_timestamp(&l);
                put(&l, "\",\"level\":\"");
                put(&l, level_names[level]);
                put(&l, "\",\"msg\":");
                cfg.max_value = LOG_MSG_MAX;
                put_string_value(&l, msg);
                cfg.max_value = save_max;
        } else {
                put_timestamp(&l);
                put(&l, " ");
                put(&l, level_text[level]);
                put(&l, " ");
                /* The message is bare in text form: it is a literal of ours; only escape it. */
                size_t len = strlen(msg);
                size_t keep = str_utf8_cut(msg, len, LOG_MSG_MAX);
                put_escaped(&l, msg, keep);
        }

        if (obj.kind) {
                put_key(&l, obj.kind);
                put_ref_value(&l, obj.namespace, obj.name);
        }
        for (size_t i = 0; i < MIN(n_fields, (size_t)LOG_FIELDS_MAX); i++)
                put_field(&l, &fields[i]);

        if (l.full) {
                /* Keep the JSON valid: drop the fields, say so. */
                l.full = false;
                l.len = 0;
                if (json) {
                        put(&l, "{\"ts\":\"");
                        put_timestamp(&l);
                        put(&l, "\",\"level\":\"");
                        put(&l, level_names[level]);
                        put(&l, "\",\"msg\":\"log line too long\"}");
                } else {
                        put_timestamp(&l);
                        put(&l, " ");
                        put(&l, level_text[level]);
                        put(&l, " log line too long");
                }
        } else if (json)
                put(&l, "}");
        l.buf[l.len++] = '\n';

        FILE *out = cfg.out ? cfg.out : stderr;
        fwrite(l.buf, 1, l.len, out);
        fflush(out);
}
