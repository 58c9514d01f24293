/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "kube/errors.h"
#include "log.h"

/* A fixed wall clock: 2026-11-29T03:00:00.123456789Z. */
static void fixed_clock(struct timespec *ts) {
        ts->tv_sec = 1795921200;
        ts->tv_nsec = 123456789;
}

typedef struct capture {
        char *buf;
        size_t len;
        FILE *f;
} capture;

static capture *cap_open(log_format fmt, log_level level, size_t max_value) {
        capture *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        c->f = open_memstream(&c->buf, &c->len);
        assert_non_null(c->f);
        log_config cfg = {.out = c->f,
                          .format = fmt,
                          .level = level,
                          .max_value = max_value,
                          .clock = fixed_clock};
        log_configure(&cfg);
        return c;
}

static void cap_close(capture *c) {
        log_configure(NULL);
        fclose(c->f);
        free(c->buf);
        free(c);
}

static size_t count_lines(const char *s) {
        size_t n = 0;
        for (; *s; s++)
                if (*s == '\n') n++;
        return n;
}

static json_object *parse_line(const char *line) {
        json_tokener *t = json_tokener_new();
        json_object *o = json_tokener_parse_ex(t, line, (int)strlen(line));
        enum json_tokener_error e = json_tokener_get_error(t);
        json_tokener_free(t);
        assert_int_equal(e, json_tokener_success);
        assert_true(json_object_is_type(o, json_type_object));
        return o;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        assert_true(json_object_object_get_ex(o, key, &v));
        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static void test_text_golden(void **state) {
        capture *c = cap_open(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, 0);
        log_info(LOG_POLICY("project-b", "team-a"), "reconcile ok", LOG_INT("linked", 3));
        assert_string_equal(c->buf, "2026-11-29T03:00:00.123Z INFO  reconcile ok "
                                    "policy=project-b/team-a linked=3\n");
        cap_close(c);
}

static void test_text_all_types(void **state) {
        capture *c = cap_open(LOG_FORMAT_TEXT, LOG_LEVEL_DEBUG, 0);
        log_debug(LOG_COMPONENT("leader-election"), "state", LOG_STR("s", "two words"),
                  LOG_UINT("u", 18446744073709551615ULL), LOG_FLOAT("f", 0.25),
                  LOG_BOOL("b", false), LOG_ERRNO(-ECONNREFUSED), LOG_REF("secret", "ns1", "quay"),
                  LOG_REF("node", NULL, "n1"), LOG_STR("nil", NULL), LOG_STR("empty", ""),
                  LOG_INT("neg", -5));
        assert_string_equal(c->buf,
                            "2026-11-29T03:00:00.123Z DEBUG state component=leader-election "
                            "s=\"two words\" u=18446744073709551615 f=0.25 b=false "
                            "error=\"Connection refused\" secret=ns1/quay node=n1 nil=<nil> "
                            "empty=\"\" neg=-5\n");
        cap_close(c);
}

/* An API answer is no errno: it is logged with its HTTP meaning (kube/errors.h). */
static void test_errno_of_api_answer(void **state) {
        capture *c = cap_open(LOG_FORMAT_TEXT, LOG_LEVEL_DEBUG, 0);
        log_info(LOG_COMPONENT("x"), "m",
                 LOG_ERRNO(kube_error_from_http(404, KUBE_REASON_NOT_FOUND)), LOG_ERRNO(-ENOENT));
        assert_non_null(
            strstr(c->buf, "error=\"not found (HTTP 404)\" error=\"No such file or directory\""));
        cap_close(c);
}

static void test_json_roundtrip(void **state) {
        capture *c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 0);
        log_warn(LOG_OBJ("serviceaccount", "project-a", "builder"), "update failed",
                 LOG_ERRNO(-EPERM), LOG_INT("attempt", 2), LOG_BOOL("retry", true),
                 LOG_FLOAT("after", 1.5), LOG_STR("nil", NULL));
        assert_int_equal(count_lines(c->buf), 1);
        json_object *o = parse_line(c->buf);
        assert_string_equal(jstr(o, "ts"), "2026-11-29T03:00:00.123Z");
        assert_string_equal(jstr(o, "level"), "warn");
        assert_string_equal(jstr(o, "msg"), "update failed");
        assert_string_equal(jstr(o, "serviceaccount"), "project-a/builder");
        assert_string_equal(jstr(o, "error"), "Operation not permitted");
        json_object *v;
        assert_true(json_object_object_get_ex(o, "attempt", &v));
        assert_true(json_object_is_type(v, json_type_int));
        assert_int_equal(json_object_get_int(v), 2);
        assert_true(json_object_object_get_ex(o, "retry", &v));
        assert_true(json_object_is_type(v, json_type_boolean));
        assert_true(json_object_get_boolean(v));
        assert_true(json_object_object_get_ex(o, "after", &v));
        assert_true(json_object_is_type(v, json_type_double));
        assert_true(json_object_get_double(v) == 1.5);
        assert_true(json_object_object_get_ex(o, "nil", &v));
        assert_null(v);
        json_object_put(o);
        cap_close(c);
}

static void test_json_nonfinite_float(void **state) {
        capture *c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 0);
        log_info(LOG_COMPONENT("x"), "m", LOG_FLOAT("inf", 1.0 / 0.0));
        json_object *o = parse_line(c->buf);
        assert_string_equal(jstr(o, "inf"), "+Inf");
        json_object_put(o);
        cap_close(c);
}

static void test_levels(void **state) {
        capture *c = cap_open(LOG_FORMAT_TEXT, LOG_LEVEL_WARN, 0);
        assert_true(log_enabled(LOG_LEVEL_ERROR));
        assert_true(log_enabled(LOG_LEVEL_WARN));
        assert_false(log_enabled(LOG_LEVEL_INFO));
        assert_false(log_enabled(LOG_LEVEL_DEBUG));
        log_debug(LOG_COMPONENT("x"), "dropped debug");
        log_info(LOG_COMPONENT("x"), "dropped info");
        log_warn(LOG_COMPONENT("x"), "kept warn");
        log_error(LOG_COMPONENT("x"), "kept error");
        assert_int_equal(count_lines(c->buf), 2);
        assert_null(strstr(c->buf, "dropped"));
        assert_non_null(strstr(c->buf, "WARN  kept warn"));
        assert_non_null(strstr(c->buf, "ERROR kept error"));
        cap_close(c);
}

/* The arguments of a disabled line are not even evaluated. */
static int side_effects;
static long long bump(void) {
        return ++side_effects;
}

static void test_disabled_not_evaluated(void **state) {
        capture *c = cap_open(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, 0);
        side_effects = 0;
        log_debug(LOG_COMPONENT("x"), "m", LOG_INT("n", bump()));
        assert_int_equal(side_effects, 0);
        log_info(LOG_COMPONENT("x"), "m", LOG_INT("n", bump()));
        assert_int_equal(side_effects, 1);
        cap_close(c);
}

static void test_level_format_strings(void **state) {
        assert_string_equal(log_level_to_string(LOG_LEVEL_ERROR), "error");
        assert_string_equal(log_level_to_string(LOG_LEVEL_DEBUG), "debug");
        assert_null(log_level_to_string(_LOG_LEVEL_MAX));
        assert_int_equal(log_level_from_string("warn"), LOG_LEVEL_WARN);
        assert_int_equal(log_level_from_string("warning"), LOG_LEVEL_WARN);
        assert_int_equal(log_level_from_string("info"), LOG_LEVEL_INFO);
        assert_int_equal(log_level_from_string("INFO"), _LOG_LEVEL_INVALID);
        assert_int_equal(log_level_from_string(NULL), _LOG_LEVEL_INVALID);
        assert_int_equal(log_format_from_string("json"), LOG_FORMAT_JSON);
        assert_int_equal(log_format_from_string("text"), LOG_FORMAT_TEXT);
        assert_int_equal(log_format_from_string("xml"), _LOG_FORMAT_INVALID);
        assert_string_equal(log_format_to_string(LOG_FORMAT_JSON), "json");
}

static void test_escaping_keeps_one_line(void **state) {
        const char *evil = "a\nb\"c\\d\te\x01"
                           "f\r";
        capture *c = cap_open(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, 0);
        log_info(LOG_OBJ("secret", "ns", "n\nx"), "msg\nwith newline", LOG_STR("v", evil));
        assert_int_equal(count_lines(c->buf), 1);
        assert_non_null(strstr(c->buf, "msg\\nwith newline"));
        assert_non_null(strstr(c->buf, "v=\"a\\nb\\\"c\\\\d\\te\\u0001f\\r\""));
        assert_non_null(strstr(c->buf, "secret=\"ns/n\\nx\""));
        cap_close(c);

        c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 0);
        log_info(LOG_OBJ("secret", "ns", "n\nx"), "msg\nwith newline", LOG_STR("v", evil));
        assert_int_equal(count_lines(c->buf), 1);
        json_object *o = parse_line(c->buf);
        assert_string_equal(jstr(o, "v"), evil);
        assert_string_equal(jstr(o, "msg"), "msg\nwith newline");
        assert_string_equal(jstr(o, "secret"), "ns/n\nx");
        json_object_put(o);
        cap_close(c);
}

static void test_json_utf8(void **state) {
        capture *c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 0);
        /* Valid UTF-8 passes through; a stray byte and a truncated sequence become U+FFFD. */
        log_info(LOG_COMPONENT("x"), "m", LOG_STR("ok", "gr\xc3\xbc\xc3\x9f"),
                 LOG_STR("bad", "a\xff"
                                "b\xe2\x82"));
        json_object *o = parse_line(c->buf);
        assert_string_equal(jstr(o, "ok"), "gr\xc3\xbc\xc3\x9f");
        assert_string_equal(jstr(o, "bad"), "a\xef\xbf\xbd"
                                            "b\xef\xbf\xbd\xef\xbf\xbd");
        json_object_put(o);
        cap_close(c);
}

static void test_redaction(void **state) {
        assert_true(log_key_is_sensitive("token"));
        assert_true(log_key_is_sensitive("bearer_token"));
        assert_true(log_key_is_sensitive("Password"));
        assert_true(log_key_is_sensitive(".dockerconfigjson"));
        assert_true(log_key_is_sensitive("secret.data"));
        assert_true(log_key_is_sensitive("auths"));
        assert_false(log_key_is_sensitive("secret"));
        assert_false(log_key_is_sensitive("key"));
        assert_false(log_key_is_sensitive("tokens_left")); /* "tokens" is not "token" */
        assert_false(log_key_is_sensitive("policy"));
        assert_false(log_key_is_sensitive(NULL));

        capture *c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 0);
        log_info(LOG_COMPONENT("x"), "m", LOG_STR("token", "s3cr3t"), LOG_INT("auth", 42),
                 LOG_STR("secret", "quay-creds"));
        assert_null(strstr(c->buf, "s3cr3t"));
        assert_null(strstr(c->buf, "42"));
        json_object *o = parse_line(c->buf);
        assert_string_equal(jstr(o, "token"), "[REDACTED]");
        assert_string_equal(jstr(o, "auth"), "[REDACTED]");
        assert_string_equal(jstr(o, "secret"), "quay-creds");
        json_object_put(o);
        cap_close(c);
}

static void test_value_truncation(void **state) {
        char big[300];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        capture *c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 100);
        log_info(LOG_COMPONENT("x"), "m", LOG_STR("names", big));
        json_object *o = parse_line(c->buf);
        const char *v = jstr(o, "names");
        assert_int_equal(strspn(v, "x"), 100);
        assert_string_equal(v + 100, "...(+199 bytes)");
        json_object_put(o);
        cap_close(c);

        /* Text form quotes a cut value so that the marker reads as part of it. */
        c = cap_open(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, 16);
        log_info(LOG_COMPONENT("x"), "m", LOG_STR("v", "abcdefghijklmnopqrstuvwxyz"));
        assert_non_null(strstr(c->buf, "v=\"abcdefghijklmnop...(+10 bytes)\"\n"));
        cap_close(c);
}

static void test_truncate_helper(void **state) {
        char buf[64];
        assert_string_equal(log_truncate("short", 10, buf, sizeof(buf)), "short");
        assert_string_equal(log_truncate("0123456789abc", 10, buf, sizeof(buf)),
                            "0123456789...(+3 bytes)");
        /* Never inside a UTF-8 sequence: "é" is 2 bytes at offset 4..5. */
        assert_string_equal(log_truncate("abcd\xc3\xa9"
                                         "fg",
                                         5, buf, sizeof(buf)),
                            "abcd...(+4 bytes)");
        assert_string_equal(log_truncate(NULL, 5, buf, sizeof(buf)), "");
        /* A buffer smaller than max still gets a marked, terminated result. */
        char small[32];
        log_truncate("0123456789012345678901234567890123456789", 100, small, sizeof(small));
        assert_true(strlen(small) < sizeof(small));
        assert_non_null(strstr(small, "...(+"));
        assert_int_equal(strncmp(small, "0123456789", 10), 0);
}

static void test_no_object_fields(void **state) {
        capture *c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 0);
        log_info(LOG_OBJ(NULL, NULL, NULL), "bare");
        json_object *o = parse_line(c->buf);
        assert_int_equal(json_object_object_length(o), 3);
        json_object_put(o);
        cap_close(c);
}

static void test_many_fields(void **state) {
        capture *c = cap_open(LOG_FORMAT_JSON, LOG_LEVEL_INFO, 0);
        char big[600];
        memset(big, '\x01', sizeof(big) - 1); /* escapes to 6 bytes each */
        big[sizeof(big) - 1] = 0;
        log_info(LOG_COMPONENT("x"), "m", LOG_STR("a", big), LOG_STR("b", big), LOG_STR("c", big),
                 LOG_INT("n", 1));
        json_object *o = parse_line(c->buf);
        json_object *v;
        assert_true(json_object_object_get_ex(o, "n", &v));
        assert_int_equal(strlen(jstr(o, "a")), LOG_VALUE_MAX + strlen("...(+87 bytes)"));
        json_object_put(o);
        cap_close(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_text_golden),
            cmocka_unit_test(test_text_all_types),
            cmocka_unit_test(test_errno_of_api_answer),
            cmocka_unit_test(test_json_roundtrip),
            cmocka_unit_test(test_json_nonfinite_float),
            cmocka_unit_test(test_levels),
            cmocka_unit_test(test_disabled_not_evaluated),
            cmocka_unit_test(test_level_format_strings),
            cmocka_unit_test(test_escaping_keeps_one_line),
            cmocka_unit_test(test_json_utf8),
            cmocka_unit_test(test_redaction),
            cmocka_unit_test(test_value_truncation),
            cmocka_unit_test(test_truncate_helper),
            cmocka_unit_test(test_no_object_fields),
            cmocka_unit_test(test_many_fields),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
