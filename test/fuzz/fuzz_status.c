/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_status_parse() on arbitrary bodies and HTTP codes. The first two bytes
 * pick the code (a table of the interesting ones, or any value 0..65535 when
 * the first byte is odd); the rest is the body. Checks the header's promises:
 * no NULL string, bounded strings and causes, a raw (non-Status) body rendered
 * printable, the code kept, an errno from the table. A body that is JSON also
 * goes through kube_status_from_json().
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "kube/errors.h"

static const long st_codes[] = {0,
                                -1,
                                100,
                                200,
                                204,
                                301,
                                304,
                                400,
                                401,
                                403,
                                404,
                                405,
                                406,
                                409,
                                410,
                                413,
                                415,
                                422,
                                429,
                                499,
                                500,
                                502,
                                503,
                                504,
                                599,
                                600,
                                999,
                                2147483647L,
                                -2147483647L - 1,
                                4294967296L + 404};

static void st_check_str(const char *s, size_t max) {
        FUZZ_CHECK(s != NULL);
        FUZZ_CHECK(strlen(s) <= max);
}

static void st_check(const kube_status *s, long http_code) {
        FUZZ_CHECK(s->reason >= KUBE_REASON_UNKNOWN && s->reason < _KUBE_REASON_MAX);
        st_check_str(s->reason_str, KUBE_STATUS_MAX_MESSAGE);
        st_check_str(s->message, KUBE_STATUS_MAX_MESSAGE);
        st_check_str(s->details.name, KUBE_STATUS_MAX_MESSAGE);
        st_check_str(s->details.group, KUBE_STATUS_MAX_MESSAGE);
        st_check_str(s->details.kind, KUBE_STATUS_MAX_MESSAGE);
        FUZZ_CHECK(s->details.n_causes <= KUBE_STATUS_MAX_CAUSES);
        if (s->details.n_causes) FUZZ_CHECK(s->details.causes != NULL);
        for (size_t i = 0; i < s->details.n_causes; i++) {
                st_check_str(s->details.causes[i].type, KUBE_STATUS_MAX_MESSAGE);
                st_check_str(s->details.causes[i].message, KUBE_STATUS_MAX_MESSAGE);
                st_check_str(s->details.causes[i].field, KUBE_STATUS_MAX_MESSAGE);
        }
        FUZZ_CHECK(s->details.retry_after_seconds >= 0);
        if (http_code > 0 && http_code <= 2147483647L) FUZZ_CHECK(s->code == (int)http_code);

        int err = kube_status_to_error(s);
        FUZZ_CHECK(err <= 0);
        FUZZ_CHECK(err == kube_error_from_http(s->code, s->reason));
        if (s->code >= 200 && s->code < 300) FUZZ_CHECK(err == 0);
        if (s->code >= 400 || s->code < 200) FUZZ_CHECK(err < 0);
        const char *d = kube_strerror(err);
        FUZZ_CHECK(d != NULL);
        d = kube_strerror(-err);
        FUZZ_CHECK(d != NULL);
        /* At most one of the predicates holds for any code. */
        int n = kube_error_is_not_found(err) + kube_error_is_conflict(err) +
                kube_error_is_already_exists(err) + kube_error_is_gone(err) +
                kube_error_is_invalid(err) + kube_error_is_too_many_requests(err) +
                kube_error_is_server_error(err) + kube_error_is_forbidden(err) +
                kube_error_is_unauthorized(err);
        FUZZ_CHECK(n <= 1);
        (void)kube_error_is_retryable(err);
        const char *rs = kube_status_reason_to_string(s->reason);
        FUZZ_CHECK(rs != NULL);
        FUZZ_CHECK(kube_status_reason_from_string(rs) == s->reason);
}

/* A body that is not a Status becomes a bounded, printable message. */
static void st_check_raw(const kube_status *s) {
        FUZZ_CHECK(strlen(s->message) <= KUBE_STATUS_MAX_RAW);
        for (const char *p = s->message; *p; p++)
                FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
        FUZZ_CHECK(s->details.n_causes == 0);
}

int fuzz_status_one(const uint8_t *data, size_t size) {
        if (size < 2) return 0;
        long code = (data[0] & 1) ? (long)(data[0] << 8 | data[1])
                                  : st_codes[data[1] % (sizeof(st_codes) / sizeof(st_codes[0]))];
        const char *body = (const char *)data + 2;
        size_t len = size - 2;

        kube_status *s = NULL;
        int r = kube_status_parse(body, len, code, &s);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK(s != NULL);
                st_check(s, code);
                if (!memmem(body, len, "Status", 6)) st_check_raw(s);
                FUZZ_CHECK(kube_status_free(s) == NULL);
        }

        json_object *o = fuzz_json((const uint8_t *)body, len);
        if (o) {
                s = NULL;
                r = kube_status_from_json(o, code, &s);
                if (!json_object_is_type(o, json_type_object)) {
                        FUZZ_CHECK(r == -EBADMSG);
                } else {
                        FUZZ_CHECK(r == 0 || r == -ENOMEM);
                        if (r == 0) st_check(s, code);
                }
                kube_status_free(s);
                s = NULL;
                r = kube_status_from_json(o, 0, &s);
                if (r == 0) st_check(s, 0);
                kube_status_free(s);
                json_object_put(o);
        }
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_status_one(data, size);
}
#endif
