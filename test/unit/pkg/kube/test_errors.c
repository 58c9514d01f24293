/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kube/errors.h"
#include "util/macro.h"

static kube_status *parse(const char *body, long code) {
        kube_status *s = NULL;
        assert_int_equal(kube_status_parse(body, body ? strlen(body) : 0, code, &s), 0);
        assert_non_null(s);
        return s;
}

static void test_not_found(void **state) {
        kube_status *s = parse("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                               "\"status\":\"Failure\",\"message\":\"secrets \\\"x\\\" not found\","
                               "\"reason\":\"NotFound\",\"details\":{\"name\":\"x\",\"kind\":"
                               "\"secrets\"},\"code\":404}",
                               404);
        assert_int_equal(s->code, 404);
        assert_int_equal(s->reason, KUBE_REASON_NOT_FOUND);
        assert_string_equal(s->reason_str, "NotFound");
        assert_string_equal(s->message, "secrets \"x\" not found");
        assert_string_equal(s->details.name, "x");
        assert_string_equal(s->details.kind, "secrets");
        assert_string_equal(s->details.group, "");
        assert_int_equal(s->details.n_causes, 0);
        int err = kube_status_to_error(s);
        assert_true(kube_error_is_api(err));
        assert_int_equal(kube_error_http_code(err), 404);
        assert_int_equal(kube_error_reason(err), KUBE_REASON_NOT_FOUND);
        assert_true(kube_error_is_not_found(err));
        assert_false(kube_error_is_conflict(err));
        assert_false(kube_error_is_retryable(err));
        kube_status_free(s);
}

static void test_conflict_kinds(void **state) {
        kube_status *a = parse("{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":"
                               "\"AlreadyExists\",\"message\":\"serviceaccounts \\\"sa\\\" "
                               "already exists\",\"details\":{\"name\":\"sa\",\"kind\":"
                               "\"serviceaccounts\"},\"code\":409}",
                               409);
        kube_status *c = parse("{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":"
                               "\"Conflict\",\"message\":\"Operation cannot be fulfilled: the "
                               "object has been modified\",\"details\":{\"name\":\"sa\"},"
                               "\"code\":409}",
                               409);
        int ea = kube_status_to_error(a), ec = kube_status_to_error(c);
        assert_int_equal(a->reason, KUBE_REASON_ALREADY_EXISTS);
        assert_int_equal(c->reason, KUBE_REASON_CONFLICT);
        assert_int_equal(kube_error_http_code(ea), 409);
        assert_int_equal(kube_error_reason(ea), KUBE_REASON_ALREADY_EXISTS);
        assert_int_equal(kube_error_http_code(ec), 409);
        assert_int_equal(kube_error_reason(ec), KUBE_REASON_CONFLICT);
        assert_true(kube_error_is_already_exists(ea));
        assert_false(kube_error_is_conflict(ea));
        assert_true(kube_error_is_conflict(ec));
        assert_false(kube_error_is_already_exists(ec));
        kube_status_free(a);
        kube_status_free(c);

        /* A 409 without a body is a conflict (the generic meaning). */
        kube_status *b = parse(NULL, 409);
        assert_true(kube_error_is_conflict(kube_status_to_error(b)));
        kube_status_free(b);
}

static void test_gone(void **state) {
        kube_status *s = parse("{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
                               "\"too old resource version: 1 (5)\",\"reason\":\"Expired\","
                               "\"code\":410}",
                               410);
        assert_int_equal(s->reason, KUBE_REASON_EXPIRED);
        assert_true(kube_error_is_gone(kube_status_to_error(s)));
        kube_status_free(s);

        /* The watch ERROR event form: HTTP 200, the code is in the object. */
        struct json_object *o = json_tokener_parse(
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
            "\"too old\",\"reason\":\"Gone\",\"code\":410}");
        assert_non_null(o);
        assert_int_equal(kube_status_from_json(o, 0, &s), 0);
        assert_int_equal(s->code, 410);
        assert_int_equal(s->reason, KUBE_REASON_GONE);
        assert_true(kube_error_is_gone(kube_status_to_error(s)));
        kube_status_free(s);
        json_object_put(o);

        /* Expired is "gone" whatever the code. */
        assert_true(kube_error_is_gone(kube_error_from_http(500, KUBE_REASON_EXPIRED)));
        assert_true(kube_error_is_gone(kube_error_from_http(410, KUBE_REASON_UNKNOWN)));

        /* Not an object. */
        o = json_object_new_string("x");
        s = NULL;
        assert_int_equal(kube_status_from_json(o, 0, &s), -EBADMSG);
        assert_null(s);
        json_object_put(o);
}

static void test_invalid_with_causes(void **state) {
        kube_status *s = parse(
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
            "\"message\":\"ServiceAccount \\\"Bad_Name\\\" is invalid\",\"reason\":\"Invalid\","
            "\"details\":{\"name\":\"Bad_Name\",\"kind\":\"ServiceAccount\",\"causes\":["
            "{\"reason\":\"FieldValueInvalid\",\"message\":\"Invalid value: must be lower "
            "case\",\"field\":\"metadata.name\"},"
            "{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\"},"
            "\"not-an-object\"]},\"code\":422}",
            422);
        assert_int_equal(s->reason, KUBE_REASON_INVALID);
        assert_int_equal(kube_error_http_code(kube_status_to_error(s)), 422);
        assert_true(kube_error_is_invalid(kube_status_to_error(s)));
        assert_int_equal(s->details.n_causes, 2);
        assert_string_equal(s->details.causes[0].type, "FieldValueInvalid");
        assert_string_equal(s->details.causes[0].field, "metadata.name");
        assert_string_equal(s->details.causes[0].message, "Invalid value: must be lower case");
        assert_string_equal(s->details.causes[1].type, "FieldValueRequired");
        assert_string_equal(s->details.causes[1].field, "");
        kube_status_free(s);
}

static void test_too_many_requests(void **state) {
        kube_status *s = parse("{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
                               "\"Too many requests, please try again later.\",\"reason\":"
                               "\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":3},"
                               "\"code\":429}",
                               429);
        assert_int_equal(s->reason, KUBE_REASON_TOO_MANY_REQUESTS);
        assert_int_equal(s->details.retry_after_seconds, 3);
        int err = kube_status_to_error(s);
        assert_true(kube_error_is_too_many_requests(err));
        assert_true(kube_error_is_retryable(err));
        assert_false(kube_error_is_server_error(err));
        kube_status_free(s);

        /* A negative or absurd retryAfterSeconds is ignored. */
        s = parse("{\"kind\":\"Status\",\"code\":429,\"details\":{\"retryAfterSeconds\":-5}}", 429);
        assert_int_equal(s->details.retry_after_seconds, 0);
        kube_status_free(s);
}

static void test_server_errors(void **state) {
        kube_status *s = parse("{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
                               "\"Internal error occurred: etcdserver: leader changed\","
                               "\"reason\":\"InternalError\",\"code\":500}",
                               500);
        int err = kube_status_to_error(s);
        assert_int_equal(kube_error_http_code(err), 500);
        assert_int_equal(kube_error_reason(err), KUBE_REASON_INTERNAL_ERROR);
        assert_true(kube_error_is_server_error(err));
        assert_true(kube_error_is_retryable(err));
        kube_status_free(s);

        s = parse("{\"kind\":\"Status\",\"reason\":\"ServerTimeout\",\"code\":500}", 500);
        assert_int_equal(kube_error_reason(kube_status_to_error(s)), KUBE_REASON_SERVER_TIMEOUT);
        assert_non_null(strstr(kube_strerror(kube_status_to_error(s)), "ServerTimeout"));
        assert_true(kube_error_is_server_error(kube_status_to_error(s)));
        kube_status_free(s);

        assert_true(kube_error_is_server_error(kube_error_from_http(503, KUBE_REASON_UNKNOWN)));
        assert_true(kube_error_is_server_error(kube_error_from_http(504, KUBE_REASON_UNKNOWN)));
        assert_true(kube_error_is_server_error(kube_error_from_http(502, KUBE_REASON_UNKNOWN)));
        assert_string_equal(kube_strerror(kube_error_from_http(503, KUBE_REASON_UNKNOWN)),
                            "service unavailable (HTTP 503)");
}

static void test_mapping_table(void **state) {
        static const struct {
                long code;
                kube_status_reason reason;
                const char *desc; /* kube_strerror(); NULL for 2xx */
        } table[] = {
            {200, KUBE_REASON_UNKNOWN, NULL},
            {201, KUBE_REASON_UNKNOWN, NULL},
            {400, KUBE_REASON_BAD_REQUEST, "bad request (HTTP 400)"},
            {401, KUBE_REASON_UNAUTHORIZED, "unauthorized (HTTP 401)"},
            {403, KUBE_REASON_FORBIDDEN, "forbidden (HTTP 403)"},
            {404, KUBE_REASON_NOT_FOUND, "not found (HTTP 404)"},
            {405, KUBE_REASON_UNKNOWN, "method not allowed (HTTP 405)"},
            {406, KUBE_REASON_UNKNOWN, "not acceptable (HTTP 406)"},
            {409, KUBE_REASON_ALREADY_EXISTS, "already exists (HTTP 409)"},
            {409, KUBE_REASON_CONFLICT, "conflict (HTTP 409)"},
            {410, KUBE_REASON_GONE, "gone (HTTP 410)"},
            {413, KUBE_REASON_UNKNOWN, "request entity too large (HTTP 413)"},
            {415, KUBE_REASON_UNKNOWN, "unsupported media type (HTTP 415)"},
            {418, KUBE_REASON_UNKNOWN, "client error (HTTP 4xx)"},
            {422, KUBE_REASON_INVALID, "invalid (HTTP 422)"},
            {429, KUBE_REASON_TOO_MANY_REQUESTS, "too many requests (HTTP 429)"},
            {500, KUBE_REASON_INTERNAL_ERROR, "internal server error (HTTP 5xx)"},
            {503, KUBE_REASON_SERVICE_UNAVAILABLE, "service unavailable (HTTP 503)"},
            {504, KUBE_REASON_TIMEOUT, "server timeout (HTTP 504"},
            {302, KUBE_REASON_UNKNOWN, "unexpected HTTP status (1xx/3xx)"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
                int e = kube_error_from_http(table[i].code, table[i].reason);
                if (!table[i].desc) {
                        assert_int_equal(e, 0);
                        continue;
                }
                assert_true(kube_error_is_api(e));
                assert_int_equal(kube_error_http_code(e), table[i].code);
                assert_int_equal(kube_error_reason(e), table[i].reason);
                if (!strstr(kube_strerror(e), table[i].desc))
                        fail_msg("%ld: \"%s\"", table[i].code, kube_strerror(e));
        }

        assert_true(kube_error_is_forbidden(kube_error_from_http(403, KUBE_REASON_UNKNOWN)));
        assert_true(kube_error_is_unauthorized(kube_error_from_http(401, KUBE_REASON_UNKNOWN)));
        assert_false(kube_error_is_forbidden(kube_error_from_http(401, KUBE_REASON_UNKNOWN)));
        assert_int_equal(kube_status_to_error(NULL), -EIO);

        /* Each predicate holds for one code only. */
        bool (*preds[])(int) = {kube_error_is_not_found,      kube_error_is_conflict,
                                kube_error_is_already_exists, kube_error_is_gone,
                                kube_error_is_invalid,        kube_error_is_too_many_requests,
                                kube_error_is_forbidden,      kube_error_is_unauthorized};
        for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
                int hits = 0;
                int e = kube_error_from_http(table[i].code, table[i].reason);
                for (size_t p = 0; p < ARRAY_SIZE(preds); p++) hits += preds[p](e);
                int expect = table[i].code == 401 || table[i].code == 403 || table[i].code == 404 ||
                             table[i].code == 409 || table[i].code == 410 || table[i].code == 422 ||
                             table[i].code == 429;
                assert_int_equal(hits, expect);
        }
}

static void test_reason_strings(void **state) {
        for (int r = 0; r < _KUBE_REASON_MAX; r++)
                assert_int_equal(kube_status_reason_from_string(kube_status_reason_to_string(r)),
                                 r);
        assert_int_equal(kube_status_reason_from_string("SomethingNew"), KUBE_REASON_UNKNOWN);
        assert_int_equal(kube_status_reason_from_string(NULL), KUBE_REASON_UNKNOWN);
        assert_string_equal(kube_status_reason_to_string(_KUBE_REASON_MAX), "");

        /* An unknown reason keeps its text but the type comes from the code. */
        kube_status *s =
            parse("{\"kind\":\"Status\",\"reason\":\"SomethingNew\",\"code\":404}", 404);
        assert_string_equal(s->reason_str, "SomethingNew");
        assert_int_equal(s->reason, KUBE_REASON_NOT_FOUND);
        kube_status_free(s);
}

static void test_garbage_bodies(void **state) {
        /* HTML from a proxy: typed by the HTTP code, message sanitised. */
        kube_status *s = parse("<html>\n<body>Bad\tGateway\x01</body></html>\n", 502);
        assert_int_equal(s->code, 502);
        assert_true(kube_error_is_server_error(kube_status_to_error(s)));
        assert_string_equal(s->message, "<html> <body>Bad Gateway?</body></html>");
        assert_string_equal(s->reason_str, "");
        kube_status_free(s);

        /* Truncated JSON. */
        s = parse("{\"kind\":\"Status\",\"code\":40", 404);
        assert_int_equal(s->reason, KUBE_REASON_NOT_FOUND);
        assert_string_equal(s->message, "{\"kind\":\"Status\",\"code\":40");
        kube_status_free(s);

        /* Valid JSON, not a Status (kind missing or different). */
        s = parse("{\"kind\":\"Secret\",\"reason\":\"AlreadyExists\",\"code\":409}", 409);
        assert_true(kube_error_is_conflict(kube_status_to_error(s)));
        kube_status_free(s);
        s = parse("[1,2,3]", 403);
        assert_true(kube_error_is_forbidden(kube_status_to_error(s)));
        kube_status_free(s);

        /* Trailing garbage after a Status object. */
        s = parse("{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"code\":409} xyz", 409);
        assert_true(kube_error_is_conflict(kube_status_to_error(s)));
        kube_status_free(s);

        /* Status fields of the wrong type are ignored, not trusted. */
        s = parse("{\"kind\":\"Status\",\"reason\":7,\"message\":{\"a\":1},\"details\":[],"
                  "\"code\":\"409\"}",
                  409);
        assert_string_equal(s->message, "");
        assert_int_equal(s->reason, KUBE_REASON_CONFLICT);
        assert_int_equal(s->code, 409);
        kube_status_free(s);

        /* Empty body. */
        s = parse("", 401);
        assert_true(kube_error_is_unauthorized(kube_status_to_error(s)));
        assert_string_equal(s->message, "");
        kube_status_free(s);

        /* Embedded NUL and invalid UTF-8 become '?'. */
        const char raw[] = {'a', 0, 'b', (char)0xff, 'c'};
        s = NULL;
        assert_int_equal(kube_status_parse(raw, sizeof(raw), 500, &s), 0);
        assert_string_equal(s->message, "a?b?c");
        kube_status_free(s);
}

static void test_message_bounds(void **state) {
        /* A huge non-JSON body: message capped at KUBE_STATUS_MAX_RAW. */
        size_t n = 1 << 20;
        char *big = malloc(n + 1);
        assert_non_null(big);
        memset(big, 'x', n);
        big[n] = 0;
        kube_status *s = parse(big, 500);
        assert_int_equal(strlen(s->message), KUBE_STATUS_MAX_RAW);
        kube_status_free(s);

        /* A huge message in a Status: capped at KUBE_STATUS_MAX_MESSAGE. */
        char *js = NULL;
        assert_true(asprintf(&js, "{\"kind\":\"Status\",\"message\":\"%s\",\"code\":500}", big) >
                    0);
        s = parse(js, 500);
        assert_int_equal(strlen(s->message), KUBE_STATUS_MAX_MESSAGE);
        kube_status_free(s);
        free(js);

        /* Cut on a UTF-8 boundary: 'é' is two bytes; 1023 'a' then 'é' must not split it. */
        memset(big, 'a', KUBE_STATUS_MAX_MESSAGE - 1);
        strcpy(big + KUBE_STATUS_MAX_MESSAGE - 1, "\xc3\xa9zz");
        assert_true(asprintf(&js, "{\"kind\":\"Status\",\"message\":\"%s\",\"code\":500}", big) >
                    0);
        s = parse(js, 500);
        assert_int_equal(strlen(s->message), KUBE_STATUS_MAX_MESSAGE - 1);
        kube_status_free(s);
        free(js);

        /* Many causes: at most KUBE_STATUS_MAX_CAUSES kept. */
        size_t cap = 64 * 1024, len = 0;
        char *c = malloc(cap);
        assert_non_null(c);
        len += (size_t)snprintf(c + len, cap - len,
                                "{\"kind\":\"Status\",\"code\":422,\"details\":{\"causes\":[");
        for (int i = 0; i < 100; i++)
                len +=
                    (size_t)snprintf(c + len, cap - len, "%s{\"field\":\"f%d\"}", i ? "," : "", i);
        snprintf(c + len, cap - len, "]}}");
        s = parse(c, 422);
        assert_int_equal(s->details.n_causes, KUBE_STATUS_MAX_CAUSES);
        assert_string_equal(s->details.causes[KUBE_STATUS_MAX_CAUSES - 1].field, "f31");
        kube_status_free(s);
        free(c);

        /* Deeply nested JSON is refused by the parser, still typed by the code. */
        memset(big, '[', 5000);
        big[5000] = 0;
        s = parse(big, 400);
        assert_int_equal(kube_error_http_code(kube_status_to_error(s)), 400);
        kube_status_free(s);
        free(big);
}

static void test_strerror(void **state) {
        int e404 = kube_error_from_http(404, KUBE_REASON_NOT_FOUND);
        assert_string_equal(kube_strerror(e404), "not found (HTTP 404)");
        assert_string_equal(kube_strerror(-e404), "not found (HTTP 404)");
        assert_non_null(
            strstr(kube_strerror(kube_error_from_http(409, KUBE_REASON_CONFLICT)), "409"));
        assert_non_null(strstr(kube_strerror(kube_error_from_http(409, KUBE_REASON_ALREADY_EXISTS)),
                               "already exists"));
        assert_non_null(strstr(kube_strerror(kube_error_from_http(410, KUBE_REASON_GONE)), "410"));
        assert_non_null(strstr(kube_strerror(-EMSGSIZE), "limit"));
        /* A local errno means what the C library says, not an HTTP answer. */
        assert_string_equal(kube_strerror(-ENOENT), strerror(ENOENT));
        assert_string_equal(kube_strerror(-EBUSY), strerror(EBUSY));
        assert_string_equal(kube_strerror(-ENOSPC), strerror(ENOSPC));
        assert_non_null(kube_strerror(-100000));
        assert_non_null(kube_strerror(INT_MIN));
        assert_null(kube_status_free(NULL));
}

/* The code and the reason travel with the error. */
static void test_api_accessors(void **state) {
        kube_status *s =
            parse("{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"code\":409}", 409);
        int e = kube_status_to_error(s);
        kube_status_free(s);
        assert_true(kube_error_is_api(e));
        assert_int_equal(kube_error_http_code(e), 409);
        assert_int_equal(kube_error_reason(e), KUBE_REASON_ALREADY_EXISTS);

        /* A reason that contradicts the code wins where the table says so. */
        e = kube_error_from_http(500, KUBE_REASON_EXPIRED);
        assert_int_equal(kube_error_http_code(e), 500);
        assert_true(kube_error_is_gone(e));
        assert_false(kube_error_is_server_error(e));

        /* Out-of-range input stays an API answer with code 0. */
        e = kube_error_from_http(1000000, _KUBE_REASON_MAX);
        assert_true(kube_error_is_api(e));
        assert_int_equal(kube_error_http_code(e), 0);
        assert_int_equal(kube_error_reason(e), KUBE_REASON_UNKNOWN);
        assert_false(kube_error_is_retryable(e));
        e = kube_error_from_http(0, KUBE_REASON_UNKNOWN);
        assert_true(kube_error_is_api(e));
        assert_int_equal(kube_error_http_code(e), 0);

        /* Plain errnos are not API answers. */
        int local[] = {0, -1, -ENOENT, -EBUSY, -EAGAIN, -EINVAL, -4095, INT_MIN, 1, 70000};
        for (size_t i = 0; i < ARRAY_SIZE(local); i++) {
                assert_false(kube_error_is_api(local[i]));
                assert_int_equal(kube_error_http_code(local[i]), 0);
                assert_int_equal(kube_error_reason(local[i]), KUBE_REASON_UNKNOWN);
        }

        /* Distinct (code, reason) pairs give distinct errors. */
        assert_int_not_equal(kube_error_from_http(409, KUBE_REASON_CONFLICT),
                             kube_error_from_http(409, KUBE_REASON_ALREADY_EXISTS));
        assert_int_not_equal(kube_error_from_http(503, KUBE_REASON_UNKNOWN),
                             kube_error_from_http(502, KUBE_REASON_UNKNOWN));
}

/*
 * Issue 7 item 11: an API answer and a local condition never share a code.
 * Today -EBUSY is both HTTP 503 and "store changed from inside a handler",
 * -EINVAL both 422 and a bad argument, -EAGAIN both 429 and "not synced yet",
 * -EPROTONOSUPPORT both 415 and "server sent full objects".
 */
static void test_local_errno_is_not_api(void **state) {
        int e503 = kube_error_from_http(503, KUBE_REASON_SERVICE_UNAVAILABLE);
        int e422 = kube_error_from_http(422, KUBE_REASON_INVALID);
        int e429 = kube_error_from_http(429, KUBE_REASON_TOO_MANY_REQUESTS);
        int e415 = kube_error_from_http(415, KUBE_REASON_UNSUPPORTED_MEDIA_TYPE);

        /* A local -EBUSY is a programming error: never retried. An API 503 is. */
        assert_false(kube_error_is_retryable(-EBUSY));
        assert_false(kube_error_is_server_error(-EBUSY));
        assert_true(kube_error_is_retryable(e503));
        assert_true(kube_error_is_server_error(e503));
        assert_int_not_equal(e503, -EBUSY);

        /* A bad argument is not an object the API refused. */
        assert_false(kube_error_is_invalid(-EINVAL));
        assert_true(kube_error_is_invalid(e422));
        assert_int_not_equal(e422, -EINVAL);

        /* "Not synced yet" is not throttling. */
        assert_false(kube_error_is_too_many_requests(-EAGAIN));
        assert_false(kube_error_is_retryable(-EAGAIN));
        assert_true(kube_error_is_too_many_requests(e429));
        assert_true(kube_error_is_retryable(e429));
        assert_int_not_equal(e429, -EAGAIN);

        assert_int_not_equal(e415, -EPROTONOSUPPORT);

        /* Local errnos that look like API answers are not API answers. */
        assert_false(kube_error_is_not_found(-ENOENT));
        assert_false(kube_error_is_conflict(-ESTALE));
        assert_false(kube_error_is_already_exists(-EEXIST));
        assert_false(kube_error_is_gone(-EIDRM));
        assert_false(kube_error_is_forbidden(-EPERM));
        assert_false(kube_error_is_unauthorized(-EACCES));
        assert_false(kube_error_is_server_error(-EREMOTEIO));
        assert_false(kube_error_is_server_error(-ETIME));

        /* Transport failures stay plain errnos and stay retryable. */
        assert_true(kube_error_is_retryable(-ETIMEDOUT));
        assert_true(kube_error_is_retryable(-ECONNREFUSED));
        assert_true(kube_error_is_retryable(-ECONNRESET));
        assert_true(kube_error_is_retryable(-EHOSTUNREACH));
        assert_false(kube_error_is_retryable(-EPROTO));
        assert_false(kube_error_is_retryable(-ENOMEM));

        /* Every API answer is beyond any errno. */
        for (long code = 100; code < 600; code++)
                for (int r = 0; r < _KUBE_REASON_MAX; r++) {
                        int e = kube_error_from_http(code, (kube_status_reason)r);
                        if (code >= 200 && code < 300)
                                assert_int_equal(e, 0);
                        else
                                assert_true(e <= -4096);
                }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_not_found),
            cmocka_unit_test(test_conflict_kinds),
            cmocka_unit_test(test_gone),
            cmocka_unit_test(test_invalid_with_causes),
            cmocka_unit_test(test_too_many_requests),
            cmocka_unit_test(test_server_errors),
            cmocka_unit_test(test_mapping_table),
            cmocka_unit_test(test_reason_strings),
            cmocka_unit_test(test_garbage_bodies),
            cmocka_unit_test(test_message_bounds),
            cmocka_unit_test(test_strerror),
            cmocka_unit_test(test_local_errno_is_not_api),
            cmocka_unit_test(test_api_accessors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
