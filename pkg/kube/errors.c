/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/errors.h"

#include <json-c/json.h>
#include <limits.h>
#include <string.h>

#include "util/macro.h"
#include "util/str.h"

static const char *const reason_names[_KUBE_REASON_MAX] = {
    [KUBE_REASON_UNKNOWN] = "",
    [KUBE_REASON_BAD_REQUEST] = "BadRequest",
    [KUBE_REASON_UNAUTHORIZED] = "Unauthorized",
    [KUBE_REASON_FORBIDDEN] = "Forbidden",
    [KUBE_REASON_NOT_FOUND] = "NotFound",
    [KUBE_REASON_METHOD_NOT_ALLOWED] = "MethodNotAllowed",
    [KUBE_REASON_NOT_ACCEPTABLE] = "NotAcceptable",
    [KUBE_REASON_ALREADY_EXISTS] = "AlreadyExists",
    [KUBE_REASON_CONFLICT] = "Conflict",
    [KUBE_REASON_GONE] = "Gone",
    [KUBE_REASON_EXPIRED] = "Expired",
    [KUBE_REASON_REQUEST_ENTITY_TOO_LARGE] = "RequestEntityTooLarge",
    [KUBE_REASON_UNSUPPORTED_MEDIA_TYPE] = "UnsupportedMediaType",
    [KUBE_REASON_INVALID] = "Invalid",
    [KUBE_REASON_TOO_MANY_REQUESTS] = "TooManyRequests",
    [KUBE_REASON_INTERNAL_ERROR] = "InternalError",
    [KUBE_REASON_SERVICE_UNAVAILABLE] = "ServiceUnavailable",
    [KUBE_REASON_SERVER_TIMEOUT] = "ServerTimeout",
    [KUBE_REASON_TIMEOUT] = "Timeout",
};

const char *kube_status_reason_to_string(kube_status_reason r) {
        if ((int)r < 0 || r >= _KUBE_REASON_MAX) return "";
        return reason_names[r];
}

kube_status_reason kube_status_reason_from_string(const char *s) {
        if (!s || !*s) return KUBE_REASON_UNKNOWN;
        for (size_t i = 1; i < ARRAY_SIZE(reason_names); i++)
                if (streq(reason_names[i], s)) return (kube_status_reason)i;
        return KUBE_REASON_UNKNOWN;
}

/* The reason a bare HTTP code implies, for bodies without a Status. */
static kube_status_reason reason_from_http(long code) {
        switch (code) {
        case 400:
                return KUBE_REASON_BAD_REQUEST;
        case 401:
                return KUBE_REASON_UNAUTHORIZED;
        case 403:
                return KUBE_REASON_FORBIDDEN;
        case 404:
                return KUBE_REASON_NOT_FOUND;
        case 405:
                return KUBE_REASON_METHOD_NOT_ALLOWED;
        case 406:
                return KUBE_REASON_NOT_ACCEPTABLE;
        case 409:
                return KUBE_REASON_CONFLICT;
        case 410:
                return KUBE_REASON_GONE;
        case 413:
                return KUBE_REASON_REQUEST_ENTITY_TOO_LARGE;
        case 415:
                return KUBE_REASON_UNSUPPORTED_MEDIA_TYPE;
        case 422:
                return KUBE_REASON_INVALID;
        case 429:
                return KUBE_REASON_TOO_MANY_REQUESTS;
        case 500:
                return KUBE_REASON_INTERNAL_ERROR;
        case 503:
                return KUBE_REASON_SERVICE_UNAVAILABLE;
        case 504:
                return KUBE_REASON_TIMEOUT;
        default:
                return KUBE_REASON_UNKNOWN;
        }
}

/* The class of an API answer, named by the errno of the table in errors.h. */
static int classify(long code, kube_status_reason reason) {
        if (reason == KUBE_REASON_EXPIRED || reason == KUBE_REASON_GONE) return -EIDRM;
        switch (code) {
        case 400:
                return -EBADMSG;
        case 401:
                return -EACCES;
        case 403:
                return -EPERM;
        case 404:
                return -ENOENT;
        case 405:
                return -EOPNOTSUPP;
        case 406:
                return -ENOMSG;
        case 409:
                return reason == KUBE_REASON_ALREADY_EXISTS ? -EEXIST : -ESTALE;
        case 410:
                return -EIDRM;
        case 413:
                return -E2BIG;
        case 415:
                return -EPROTONOSUPPORT;
        case 422:
                return -EINVAL;
        case 429:
                return -EAGAIN;
        case 503:
                return -EBUSY;
        case 504:
                return -ETIME;
        default:
                break;
        }
        if (code >= 400 && code < 500) return -EBADR;
        if (code >= 500 && code < 600) {
                if (reason == KUBE_REASON_SERVER_TIMEOUT || reason == KUBE_REASON_TIMEOUT)
                        return -ETIME;
                return -EREMOTEIO;
        }
        return -EREMCHG;
}

int kube_error_from_http(long code, kube_status_reason reason) {
        if (code >= 200 && code < 300) return 0;
        /* A code no HTTP server sends is kept as 0: "unexpected status". */
        if (code < 100 || code > KUBE_EAPI_MAX_CODE) code = 0;
        if ((int)reason < 0 || reason >= _KUBE_REASON_MAX) reason = KUBE_REASON_UNKNOWN;
        return -(KUBE_EAPI_BASE + (int)code * KUBE_EAPI_REASONS + (int)reason);
}

int kube_status_to_error(const kube_status *s) {
        if (!s) return -EIO;
        return kube_error_from_http(s->code, s->reason);
}

bool kube_error_is_api(int err) {
        return err <= -KUBE_EAPI_BASE &&
               err > -(KUBE_EAPI_BASE + (KUBE_EAPI_MAX_CODE + 1) * KUBE_EAPI_REASONS);
}

int kube_error_http_code(int err) {
        if (!kube_error_is_api(err)) return 0;
        return (-err - KUBE_EAPI_BASE) / KUBE_EAPI_REASONS;
}

kube_status_reason kube_error_reason(int err) {
        if (!kube_error_is_api(err)) return KUBE_REASON_UNKNOWN;
        return (kube_status_reason)((-err - KUBE_EAPI_BASE) % KUBE_EAPI_REASONS);
}

/* The class of err (errors.h) when it is an API answer, else 0. */
static int api_class(int err) {
        if (!kube_error_is_api(err)) return 0;
        return classify(kube_error_http_code(err), kube_error_reason(err));
}

bool kube_error_is_not_found(int err) {
        return api_class(err) == -ENOENT;
}
bool kube_error_is_conflict(int err) {
        return api_class(err) == -ESTALE;
}
bool kube_error_is_already_exists(int err) {
        return api_class(err) == -EEXIST;
}
bool kube_error_is_gone(int err) {
        return api_class(err) == -EIDRM;
}
bool kube_error_is_invalid(int err) {
        return api_class(err) == -EINVAL;
}
bool kube_error_is_too_many_requests(int err) {
        return api_class(err) == -EAGAIN;
}
bool kube_error_is_forbidden(int err) {
        return api_class(err) == -EPERM;
}
bool kube_error_is_unauthorized(int err) {
        return api_class(err) == -EACCES;
}

bool kube_error_is_server_error(int err) {
        int c = api_class(err);
        return c == -EREMOTEIO || c == -EBUSY || c == -ETIME;
}

bool kube_error_is_transport(int err) {
        return err == -ETIMEDOUT || err == -ECONNREFUSED || err == -ECONNRESET ||
               err == -EHOSTUNREACH;
}

bool kube_error_is_retryable(int err) {
        return kube_error_is_too_many_requests(err) || kube_error_is_server_error(err) ||
               kube_error_is_transport(err);
}

static const char *api_strerror(int cls) {
        switch (-cls) {
        case EBADMSG:
                return "bad request (HTTP 400)";
        case EACCES:
                return "unauthorized (HTTP 401): missing or invalid credentials";
        case EPERM:
                return "forbidden (HTTP 403): not allowed by RBAC";
        case ENOENT:
                return "not found (HTTP 404)";
        case EOPNOTSUPP:
                return "method not allowed (HTTP 405)";
        case ENOMSG:
                return "not acceptable (HTTP 406)";
        case EEXIST:
                return "already exists (HTTP 409)";
        case ESTALE:
                return "conflict (HTTP 409): the object was modified";
        case EIDRM:
                return "gone (HTTP 410): resource version expired";
        case E2BIG:
                return "request entity too large (HTTP 413)";
        case EPROTONOSUPPORT:
                return "unsupported media type (HTTP 415)";
        case EINVAL:
                return "invalid (HTTP 422)";
        case EAGAIN:
                return "too many requests (HTTP 429)";
        case EBADR:
                return "client error (HTTP 4xx)";
        case EREMOTEIO:
                return "internal server error (HTTP 5xx)";
        case EBUSY:
                return "service unavailable (HTTP 503)";
        case ETIME:
                return "server timeout (HTTP 504 or 5xx ServerTimeout)";
        default:
                return "unexpected HTTP status (1xx/3xx)";
        }
}

const char *kube_strerror(int err) {
        if (err == INT_MIN) return "unknown error";
        if (kube_error_is_api(err)) return api_strerror(api_class(err));
        if (kube_error_is_api(-err)) return api_strerror(api_class(-err));
        if (err < 0) err = -err;
        switch (err) {
        case 0:
                return "success";
        case EREMCHG:
                return "no HTTP status line";
        case ETIMEDOUT:
                return "timed out";
        case ECONNREFUSED:
                return "connection refused";
        case ECONNRESET:
                return "connection reset";
        case EHOSTUNREACH:
                return "host unreachable or name not resolved";
        case EPROTO:
                return "TLS or protocol error";
        case EMSGSIZE:
                return "response body over the size limit";
        case ENOMEM:
                return "out of memory";
        case EIO:
                return "I/O error";
        default:
                break;
        }
        const char *d = strerrordesc_np(err);
        return d ? d : "unknown error";
}

/* Copies at most max bytes of s, cut back to a UTF-8 character boundary. */
static char *bounded_strdup(const char *s, size_t len, size_t max) {
        return strndup(s, str_utf8_cut(s, len, max));
}

static char *get_string(struct json_object *o, const char *key) {
        struct json_object *v;
        if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                return bounded_strdup(json_object_get_string(v),
                                      (size_t)json_object_get_string_len(v),
                                      KUBE_STATUS_MAX_MESSAGE);
        return strdup("");
}

static int get_int(struct json_object *o, const char *key, int dflt) {
        struct json_object *v;
        if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)) {
                int64_t x = json_object_get_int64(v);
                if (x < 0 || x > 1000000) return dflt;
                return (int)x;
        }
        return dflt;
}

kube_status *kube_status_free(kube_status *s) {
        if (!s) return NULL;
        free(s->reason_str);
        free(s->message);
        free(s->details.name);
        free(s->details.group);
        free(s->details.kind);
        for (size_t i = 0; i < s->details.n_causes; i++) {
                free(s->details.causes[i].type);
                free(s->details.causes[i].message);
                free(s->details.causes[i].field);
        }
        free(s->details.causes);
        free(s);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(kube_status *, kube_status_free);

/* Fills the string members that are still NULL with "" so that none is NULL. */
static int fill_empty(kube_status *s) {
        char **fields[] = {&s->reason_str, &s->message, &s->details.name, &s->details.group,
                           &s->details.kind};
        for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
                if (!*fields[i] && !(*fields[i] = strdup(""))) return -ENOMEM;
        return 0;
}

int kube_status_from_json(struct json_object *obj, long http_code, kube_status **ret) {
        if (!obj || !json_object_is_type(obj, json_type_object)) return -EBADMSG;

        _cleanup_(kube_status_freep) kube_status *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;

        int body_code = get_int(obj, "code", 0);
        s->code = http_code > 0 ? (int)http_code : body_code;
        s->reason_str = get_string(obj, "reason");
        s->message = get_string(obj, "message");
        if (!s->reason_str || !s->message) return -ENOMEM;
        s->reason = kube_status_reason_from_string(s->reason_str);
        if (s->reason == KUBE_REASON_UNKNOWN) s->reason = reason_from_http(s->code);

        struct json_object *d = NULL;
        if (json_object_object_get_ex(obj, "details", &d) &&
            json_object_is_type(d, json_type_object)) {
                s->details.name = get_string(d, "name");
                s->details.group = get_string(d, "group");
                s->details.kind = get_string(d, "kind");
                if (!s->details.name || !s->details.group || !s->details.kind) return -ENOMEM;
                s->details.retry_after_seconds = get_int(d, "retryAfterSeconds", 0);

                struct json_object *causes;
                if (json_object_object_get_ex(d, "causes", &causes) &&
                    json_object_is_type(causes, json_type_array)) {
                        size_t n = json_object_array_length(causes);
                        if (n > KUBE_STATUS_MAX_CAUSES) n = KUBE_STATUS_MAX_CAUSES;
                        if (n > 0) {
                                s->details.causes = calloc(n, sizeof(kube_status_cause));
                                if (!s->details.causes) return -ENOMEM;
                        }
                        for (size_t i = 0; i < n; i++) {
                                struct json_object *c = json_object_array_get_idx(causes, i);
                                kube_status_cause *kc = &s->details.causes[s->details.n_causes];
                                if (!json_object_is_type(c, json_type_object)) continue;
                                s->details.n_causes++;
                                kc->type = get_string(c, "reason");
                                kc->message = get_string(c, "message");
                                kc->field = get_string(c, "field");
                                if (!kc->type || !kc->message || !kc->field) return -ENOMEM;
                        }
                }
        }
        if (fill_empty(s) < 0) return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

/* A printable, bounded rendering of a body that is not a Status. */
static char *sanitize_raw(const char *body, size_t len) {
        if (!body) len = 0;
        if (len > KUBE_STATUS_MAX_RAW) len = KUBE_STATUS_MAX_RAW;
        char *m = malloc(len + 1);
        if (!m) return NULL;
        size_t j = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)body[i];
                if (ch == '\n' || ch == '\r' || ch == '\t')
                        m[j++] = ' ';
                else if (ch < 0x20 || ch == 0x7f || ch >= 0x80)
                        m[j++] = '?';
                else
                        m[j++] = (char)ch;
        }
        while (j > 0 && m[j - 1] == ' ') j--;
        m[j] = 0;
        return m;
}

int kube_status_parse(const char *body, size_t len, long http_code, kube_status **ret) {
        if (body && len > 0) {
                struct json_tokener *tok = json_tokener_new_ex(16);
                if (!tok) return -ENOMEM;
                struct json_object *obj = NULL;
                if (len <= INT32_MAX) {
                        obj = json_tokener_parse_ex(tok, body, (int)len);
                        if (json_tokener_get_error(tok) != json_tokener_success) {
                                json_object_put(obj);
                                obj = NULL;
                        } else if (json_tokener_get_parse_end(tok) < len) {
                                /* Trailing bytes after a value: keep it only if blank. */
                                for (size_t i = json_tokener_get_parse_end(tok); i < len && obj;
                                     i++)
                                        if (!strchr(" \t\r\n", body[i])) {
                                                json_object_put(obj);
                                                obj = NULL;
                                        }
                        }
                }
                json_tokener_free(tok);

                struct json_object *kind;
                if (obj && json_object_is_type(obj, json_type_object) &&
                    json_object_object_get_ex(obj, "kind", &kind) &&
                    json_object_is_type(kind, json_type_string) &&
                    streq(json_object_get_string(kind), "Status")) {
                        int r = kube_status_from_json(obj, http_code, ret);
                        json_object_put(obj);
                        return r;
                }
                json_object_put(obj);
        }

        _cleanup_(kube_status_freep) kube_status *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;
        s->code = (int)http_code;
        s->reason = reason_from_http(http_code);
        s->reason_str = strdup(kube_status_reason_to_string(s->reason));
        s->message = sanitize_raw(body, len);
        if (!s->reason_str || !s->message || fill_empty(s) < 0) return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}
