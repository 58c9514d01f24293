/* SPDX-License-Identifier: Apache-2.0 */
/*
 * API errors: the metav1.Status that kube-apiserver returns with a non-2xx
 * answer (and inside watch ERROR events), decoded into kube_status, and the
 * errors that callers branch on as one int.
 *
 * An API answer and a local condition never share a code. An API answer is
 * a negative int beyond any errno that carries the HTTP code and the Status
 * reason:
 *
 *     -(KUBE_EAPI_BASE + http_code * KUBE_EAPI_REASONS + reason)
 *
 * built by kube_error_from_http() / kube_status_to_error() and taken apart by
 * kube_error_is_api(), kube_error_http_code() and kube_error_reason(). Never
 * compare one with an errno: use the predicates. Local conditions (bad
 * arguments, -EBUSY from a store changed inside its handler, -EAGAIN from a
 * reflector not synced yet, ...) keep plain errnos and no predicate below is
 * true for them, so an -EINVAL is a bad argument and never a 422.
 *
 * The classes of API answers (http status, Status.reason), with the errno that
 * names the class in kube_strerror() and in this table only. Every predicate
 * is true for exactly one class:
 *
 *     400 BadRequest                       EBADMSG
 *     401 Unauthorized                     EACCES      kube_error_is_unauthorized
 *     403 Forbidden                        EPERM       kube_error_is_forbidden
 *     404 NotFound                         ENOENT      kube_error_is_not_found
 *     405 MethodNotAllowed                 EOPNOTSUPP
 *     406 NotAcceptable                    ENOMSG
 *     409 reason AlreadyExists             EEXIST      kube_error_is_already_exists
 *     409 any other reason (Conflict)      ESTALE      kube_error_is_conflict
 *     410 Gone, or any code with reason
 *         Expired or Gone                  EIDRM       kube_error_is_gone
 *     413 RequestEntityTooLarge            E2BIG
 *     415 UnsupportedMediaType             EPROTONOSUPPORT
 *     422 Invalid                          EINVAL      kube_error_is_invalid
 *     429 TooManyRequests                  EAGAIN      kube_error_is_too_many_requests
 *     other 4xx                            EBADR
 *     500 InternalError, other 5xx         EREMOTEIO   kube_error_is_server_error
 *     503 ServiceUnavailable               EBUSY       kube_error_is_server_error
 *     504 Timeout, or reason ServerTimeout
 *         / Timeout with a 5xx code        ETIME       kube_error_is_server_error
 *     1xx/3xx (no redirects are followed)  EREMCHG
 *
 * Transport failures reported by the client (client.h) are plain errnos:
 * -ETIMEDOUT (our own deadline or idle timeout), -ECONNREFUSED, -ECONNRESET,
 * -EHOSTUNREACH (name resolution) (kube_error_is_transport), -EPROTO (TLS),
 * -EMSGSIZE (a body over the client's limit), -EACCES (a credential could not
 * be read or may not be sent), -EREMCHG (no status line at all), -ENOMEM, -EIO
 * (anything else).
 */
#ifndef PP_KUBE_ERRORS_H
#define PP_KUBE_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;

/* metav1.StatusReason values known to the client. */
typedef enum kube_status_reason {
        KUBE_REASON_UNKNOWN, /* "" or a reason this client does not know */
        KUBE_REASON_BAD_REQUEST,
        KUBE_REASON_UNAUTHORIZED,
        KUBE_REASON_FORBIDDEN,
        KUBE_REASON_NOT_FOUND,
        KUBE_REASON_METHOD_NOT_ALLOWED,
        KUBE_REASON_NOT_ACCEPTABLE,
        KUBE_REASON_ALREADY_EXISTS,
        KUBE_REASON_CONFLICT,
        KUBE_REASON_GONE,
        KUBE_REASON_EXPIRED,
        KUBE_REASON_REQUEST_ENTITY_TOO_LARGE,
        KUBE_REASON_UNSUPPORTED_MEDIA_TYPE,
        KUBE_REASON_INVALID,
        KUBE_REASON_TOO_MANY_REQUESTS,
        KUBE_REASON_INTERNAL_ERROR,
        KUBE_REASON_SERVICE_UNAVAILABLE,
        KUBE_REASON_SERVER_TIMEOUT,
        KUBE_REASON_TIMEOUT,
        _KUBE_REASON_MAX,
} kube_status_reason;

/* "NotFound" for KUBE_REASON_NOT_FOUND; "" for KUBE_REASON_UNKNOWN. */
const char *kube_status_reason_to_string(kube_status_reason r);
/* Unknown strings (and NULL) give KUBE_REASON_UNKNOWN. */
kube_status_reason kube_status_reason_from_string(const char *s);

/* One metav1.StatusCause, e.g. {FieldValueInvalid, "must be ...", "metadata.name"}. */
typedef struct kube_status_cause {
        char *type;    /* never NULL ("" when absent) */
        char *message; /* never NULL */
        char *field;   /* never NULL */
} kube_status_cause;

/*
 * Limits applied while decoding, so that a hostile or broken server cannot
 * make us hold much: strings are cut (on a UTF-8 boundary) at
 * KUBE_STATUS_MAX_MESSAGE bytes, at most KUBE_STATUS_MAX_CAUSES causes are
 * kept, and a body that is not a Status contributes at most
 * KUBE_STATUS_MAX_RAW bytes (control characters replaced) as the message.
 */
#define KUBE_STATUS_MAX_MESSAGE 1024
#define KUBE_STATUS_MAX_CAUSES  32
#define KUBE_STATUS_MAX_RAW     256

typedef struct kube_status {
        int code; /* HTTP status: the transport's, else Status.code */
        kube_status_reason reason;
        char *reason_str; /* reason as sent (bounded), never NULL */
        char *message;    /* never NULL ("" when absent) */
        struct {
                char *name;  /* never NULL */
                char *group; /* never NULL */
                char *kind;  /* never NULL */
                kube_status_cause *causes;
                size_t n_causes;
                int retry_after_seconds; /* 0 when absent */
        } details;
} kube_status;

/*
 * Decodes the body of a non-2xx answer. A body that is not a JSON Status
 * (HTML from a proxy, truncated JSON, nothing) still yields a kube_status
 * whose code is http_code and whose reason is derived from it, with a
 * bounded, sanitised copy of the body as message. Returns 0 and a new
 * kube_status in *ret (free with kube_status_free), or -ENOMEM.
 */
int kube_status_parse(const char *body, size_t len, long http_code, kube_status **ret);

/*
 * The same from an already parsed object, e.g. the "object" of a watch ERROR
 * event. http_code 0 takes the object's "code". Returns 0 and *ret,
 * -EBADMSG when obj is not a JSON object, or -ENOMEM.
 */
int kube_status_from_json(struct json_object *obj, long http_code, kube_status **ret);

kube_status *kube_status_free(kube_status *s);

/* API answers live in [-(KUBE_EAPI_BASE + (KUBE_EAPI_MAX_CODE + 1) * 64), -KUBE_EAPI_BASE]. */
#define KUBE_EAPI_BASE     65536
#define KUBE_EAPI_REASONS  64 /* > _KUBE_REASON_MAX */
#define KUBE_EAPI_MAX_CODE 999

/*
 * The API error for an HTTP code and a Status reason; 0 for 2xx. A code
 * outside 100..999 is kept as 0, an unknown reason as KUBE_REASON_UNKNOWN.
 */
int kube_error_from_http(long http_code, kube_status_reason reason);
/* kube_error_from_http(s->code, s->reason); -EIO for NULL. */
int kube_status_to_error(const kube_status *s);

/* True when err is an API answer (kube_error_from_http), not an errno. */
bool kube_error_is_api(int err);
/* The HTTP status of an API answer (0 when unknown), 0 for anything else. */
int kube_error_http_code(int err);
/* The Status reason of an API answer as sent; KUBE_REASON_UNKNOWN for anything else. */
kube_status_reason kube_error_reason(int err);

/* The predicates below are true for API answers only (never for a local errno). */
bool kube_error_is_not_found(int err);
bool kube_error_is_conflict(int err);
bool kube_error_is_already_exists(int err);
bool kube_error_is_gone(int err);
bool kube_error_is_invalid(int err);
bool kube_error_is_too_many_requests(int err);
bool kube_error_is_server_error(int err);
bool kube_error_is_forbidden(int err);
bool kube_error_is_unauthorized(int err);
/* -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH: no answer came. */
bool kube_error_is_transport(int err);
/*
 * True for failures where repeating the same request later may succeed: API
 * 429 and 5xx (incl. 503/504), and the transport failures. Never for a local
 * condition such as -EBUSY or -EAGAIN.
 */
bool kube_error_is_retryable(int err);

/*
 * A short static description of err: for an API answer its class, e.g.
 * "not found (HTTP 404)", "conflict (HTTP 409): the object was modified"; for
 * the transport failures above the client's meaning; other errnos the C
 * library's description. Never NULL. Accepts err with either sign.
 */
const char *kube_strerror(int err);

#endif
