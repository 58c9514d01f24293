/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/watch.h"
#include "util/macro.h"

/* What the callback saw, flattened to "TYPE name rv" (or "ERROR code reason gone"). */
typedef struct recorder {
        char lines[64][128];
        size_t n;
        int fail_at;       /* return -ECANCELED on this event (1-based); 0: never */
        json_object *kept; /* a reference taken on the first event */
} recorder;

static int record(const kube_watch_event *ev, void *ud) {
        recorder *rec = ud;
        char *out;

        assert_true(rec->n < ARRAY_SIZE(rec->lines));
        out = rec->lines[rec->n++];
        if (ev->type == KUBE_EVENT_ERROR) {
                snprintf(out, 128, "ERROR %d %s %s", ev->status_code,
                         ev->status_reason ? ev->status_reason : "-",
                         kube_watch_event_is_gone(ev) ? "gone" : "not-gone");
        } else {
                json_object *meta, *name;
                const char *nm = "-";
                if (json_object_object_get_ex(ev->object, "metadata", &meta) &&
                    json_object_object_get_ex(meta, "name", &name))
                        nm = json_object_get_string(name);
                const char *rv = kube_watch_object_resource_version(ev->object);
                snprintf(out, 128, "%s %s %s", kube_event_type_to_string(ev->type), nm,
                         rv ? rv : "-");
                assert_false(kube_watch_event_is_gone(ev));
        }
        if (!rec->kept) rec->kept = json_object_get(ev->object);
        if (rec->fail_at > 0 && (size_t)rec->fail_at == rec->n) return -ECANCELED;
        return 0;
}

static void recorder_done(recorder *rec) {
        json_object_put(rec->kept);
        rec->kept = NULL;
}

static kube_watch_framer *new_framer(recorder *rec, size_t max_event) {
        kube_watch_framer *f = NULL;
        kube_watch_framer_opts o = {.max_event = max_event};
        assert_int_equal(kube_watch_framer_new(&o, record, rec, &f), 0);
        assert_non_null(f);
        return f;
}

/* Five events with a blank line and a whitespace-only line between them. */
static const char stream[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
    "\"resourceVersion\":\"10\"},\"data\":{\"k\":\"line\\nbreak {}\"}}}\n"
    "\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"11\"}}}"
    "\n"
    "   \t \n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":"
    "{\"resourceVersion\":\"12\"}}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"13\"}}}\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
    "\"Failure\",\"message\":\"too old resource version: 1 (13)\",\"reason\":\"Expired\","
    "\"code\":410}}\n";

static const char *const stream_expected[] = {
    "ADDED a 10", "MODIFIED b 11", "BOOKMARK - 12", "DELETED a 13", "ERROR 410 Expired gone",
};

static void assert_expected(const recorder *rec) {
        assert_int_equal(rec->n, ARRAY_SIZE(stream_expected));
        for (size_t i = 0; i < rec->n; i++) assert_string_equal(rec->lines[i], stream_expected[i]);
}

static void test_whole_stream(void **state) {
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        assert_int_equal(kube_watch_framer_feed(f, stream, strlen(stream)), 0);
        assert_int_equal(kube_watch_framer_pending(f), 0);
        assert_int_equal(kube_watch_framer_finish(f), 0);
        assert_expected(&rec);
        /* The reference taken in the callback outlives the parse. */
        assert_non_null(rec.kept);
        assert_non_null(kube_watch_object_resource_version(rec.kept));
        assert_string_equal(kube_watch_object_resource_version(rec.kept), "10");
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

/* Every way of cutting the stream into three chunks gives the same events. */
static void test_every_split(void **state) {
        size_t len = strlen(stream);
        kube_watch_framer *f;
        recorder rec = {0};

        f = new_framer(&rec, 0);
        for (size_t i = 0; i <= len; i++) {
                for (size_t j = i; j <= len; j++) {
                        memset(&rec, 0, sizeof(rec));
                        kube_watch_framer_reset(f);
                        assert_int_equal(kube_watch_framer_feed(f, stream, i), 0);
                        assert_int_equal(kube_watch_framer_feed(f, stream + i, j - i), 0);
                        assert_int_equal(kube_watch_framer_feed(f, stream + j, len - j), 0);
                        assert_int_equal(kube_watch_framer_pending(f), 0);
                        assert_expected(&rec);
                        recorder_done(&rec);
                }
        }
        kube_watch_framer_free(f);
}

static void test_byte_by_byte(void **state) {
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        size_t len = strlen(stream);
        for (size_t i = 0; i < len; i++) {
                assert_int_equal(kube_watch_framer_feed(f, stream + i, 1), 0);
                /* Events come out as soon as their '\n' arrives, not later. */
                if (stream[i] == '\n') assert_int_equal(kube_watch_framer_pending(f), 0);
        }
        assert_expected(&rec);
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

static void test_crlf(void **state) {
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        const char s[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\","
                         "\"resourceVersion\":\"5\"}}}\r\n\r\n"
                         "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"x\","
                         "\"resourceVersion\":\"6\"}}}  \r\n";
        /* Split between '\r' and '\n' too. */
        size_t cut = strchr(s, '\r') - s + 1;
        assert_int_equal(kube_watch_framer_feed(f, s, cut), 0);
        assert_int_equal(kube_watch_framer_feed(f, s + cut, strlen(s) - cut), 0);
        assert_int_equal(rec.n, 2);
        assert_string_equal(rec.lines[0], "ADDED x 5");
        assert_string_equal(rec.lines[1], "DELETED x 6");
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

/* Builds {"type":"ADDED","object":{"metadata":{"name":"big"},"pad":"xxx..."}} of exactly n bytes.
 */
static char *event_of_size(size_t n) {
        const char head[] =
            "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"big\"},\"pad\":\"";
        const char tail[] = "\"}}";
        assert_true(n >= strlen(head) + strlen(tail));
        char *s = malloc(n + 2);
        assert_non_null(s);
        memcpy(s, head, strlen(head));
        memset(s + strlen(head), 'x', n - strlen(head) - strlen(tail));
        memcpy(s + n - strlen(tail), tail, strlen(tail));
        s[n] = '\n';
        s[n + 1] = 0;
        return s;
}

static void test_size_cap(void **state) {
        const size_t cap = 200;
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, cap);
        char *ok = event_of_size(cap), *big = event_of_size(cap + 1);

        /* Exactly at the cap: accepted, in one chunk and byte by byte. */
        assert_int_equal(kube_watch_framer_feed(f, ok, cap + 1), 0);
        for (size_t i = 0; i <= cap; i++) assert_int_equal(kube_watch_framer_feed(f, ok + i, 1), 0);
        assert_int_equal(rec.n, 2);
        assert_string_equal(rec.lines[1], "ADDED big -");

        /* One byte more, whole: refused, and the error sticks. */
        assert_int_equal(kube_watch_framer_feed(f, big, cap + 2), -EMSGSIZE);
        assert_int_equal(kube_watch_framer_feed(f, ok, cap + 1), -EMSGSIZE);
        assert_int_equal(kube_watch_framer_finish(f), -EMSGSIZE);
        assert_int_equal(rec.n, 2);

        /* Byte by byte: refused as soon as the held head passes the cap, before the '\n'. */
        kube_watch_framer_reset(f);
        for (size_t i = 0; i < cap; i++) assert_int_equal(kube_watch_framer_feed(f, big + i, 1), 0);
        assert_int_equal(kube_watch_framer_pending(f), cap);
        assert_int_equal(kube_watch_framer_feed(f, big + cap, 1), -EMSGSIZE);
        assert_int_equal(kube_watch_framer_pending(f), 0);

        /* After a reset the framer works again. */
        kube_watch_framer_reset(f);
        assert_int_equal(kube_watch_framer_feed(f, ok, cap + 1), 0);
        assert_int_equal(rec.n, 3);

        free(ok);
        free(big);
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

static void test_default_cap_large_event(void **state) {
        /* A 2 MiB event fed a byte at a time: linear work (a rescan per byte
         * would take hours), and the big buffer is let go afterwards. */
        const size_t n = 2 * 1024 * 1024;
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        char *s = event_of_size(n);
        for (size_t i = 0; i <= n; i++) assert_int_equal(kube_watch_framer_feed(f, s + i, 1), 0);
        assert_int_equal(rec.n, 1);
        assert_string_equal(rec.lines[0], "ADDED big -");
        assert_int_equal(kube_watch_framer_pending(f), 0);
        free(s);
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

static int feed_one(const char *line) {
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        int r = kube_watch_framer_feed(f, line, strlen(line));
        if (r < 0) assert_int_equal(rec.n, 0);
        /* Sticky: even a good event is refused afterwards. */
        if (r < 0)
                assert_int_equal(
                    kube_watch_framer_feed(f, "{\"type\":\"ADDED\",\"object\":{}}\n", 29), r);
        recorder_done(&rec);
        kube_watch_framer_free(f);
        return r;
}

static void test_malformed(void **state) {
        assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":{}}\n"), 0);
        assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":{\n"), -EBADMSG); /* cut */
        assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":{}} x\n"), -EBADMSG);
        assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":{}}{}\n"), -EBADMSG);
        assert_int_equal(feed_one("not json\n"), -EBADMSG);
        assert_int_equal(feed_one("[1,2]\n"), -EBADMSG);
        assert_int_equal(feed_one("42\n"), -EBADMSG);
        assert_int_equal(feed_one("{'type':'ADDED','object':{}}\n"),
                         -EBADMSG);                                /* not strict JSON */
        assert_int_equal(feed_one("{\"object\":{}}\n"), -EBADMSG); /* no type */
        assert_int_equal(feed_one("{\"type\":7,\"object\":{}}\n"), -EBADMSG);
        assert_int_equal(feed_one("{\"type\":\"ADDED\"}\n"), -EBADMSG); /* no object */
        assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":\"s\"}\n"), -EBADMSG);
        assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":null}\n"), -EBADMSG);
        assert_int_equal(feed_one("{\"type\":\"ADDED\",\"object\":{\"s\":\"\xff\"}}\n"), -EBADMSG);
        /* Too deep for the default depth limit. */
        char deep[512] = "{\"type\":\"ADDED\",\"object\":";
        for (int i = 0; i < 100; i++) strcat(deep, "[");
        assert_int_equal(feed_one(deep), 0); /* no '\n' yet: just held */
        strcat(deep, "\n");
        assert_int_equal(feed_one(deep), -EBADMSG);
}

static void test_unknown_type(void **state) {
        assert_int_equal(feed_one("{\"type\":\"UPSERTED\",\"object\":{}}\n"), -EBADMSG);
        assert_int_equal(feed_one("{\"type\":\"added\",\"object\":{}}\n"), -EBADMSG);
        assert_int_equal(feed_one("{\"type\":\"\",\"object\":{}}\n"), -EBADMSG);
}

static void test_error_events(void **state) {
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        const char s[] =
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
            "\"reason\":\"Gone\"}}\n"
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"reason\":\"Expired\"}}\n"
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n"
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,"
            "\"reason\":\"InternalError\"}}\n"
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":\"410\"}}\n";
        assert_int_equal(kube_watch_framer_feed(f, s, strlen(s)), 0);
        assert_int_equal(rec.n, 5);
        assert_string_equal(rec.lines[0], "ERROR 410 Gone gone");
        assert_string_equal(rec.lines[1], "ERROR 0 Expired gone");
        assert_string_equal(rec.lines[2], "ERROR 410 - gone");
        assert_string_equal(rec.lines[3], "ERROR 500 InternalError not-gone");
        /* A code that is not a number is no code. */
        assert_string_equal(rec.lines[4], "ERROR 0 - not-gone");
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

static void test_bookmark(void **state) {
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        const char s[] =
            "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Secret\",\"apiVersion\":"
            "\"v1\",\"metadata\":{\"resourceVersion\":\"987654\",\"creationTimestamp\":"
            "null,\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}}}\n";
        assert_int_equal(kube_watch_framer_feed(f, s, strlen(s)), 0);
        assert_int_equal(rec.n, 1);
        assert_string_equal(rec.lines[0], "BOOKMARK - 987654");
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

static void test_callback_error(void **state) {
        recorder rec = {.fail_at = 2};
        kube_watch_framer *f = new_framer(&rec, 0);
        /* The third event in the same chunk is not delivered after the callback stops. */
        assert_int_equal(kube_watch_framer_feed(f, stream, strlen(stream)), -ECANCELED);
        assert_int_equal(rec.n, 2);
        assert_int_equal(kube_watch_framer_feed(f, "\n", 1), -ECANCELED);
        kube_watch_framer_reset(f);
        rec.fail_at = 0;
        assert_int_equal(kube_watch_framer_feed(f, stream, strlen(stream)), 0);
        assert_int_equal(rec.n, 2 + ARRAY_SIZE(stream_expected));
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

static void test_finish(void **state) {
        recorder rec = {0};
        kube_watch_framer *f = new_framer(&rec, 0);
        const char ev[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"t\"}}}";

        /* A complete last event without its '\n' still counts. */
        assert_int_equal(kube_watch_framer_feed(f, ev, strlen(ev)), 0);
        assert_int_equal(rec.n, 0);
        assert_int_equal(kube_watch_framer_finish(f), 0);
        assert_int_equal(rec.n, 1);
        assert_string_equal(rec.lines[0], "ADDED t -");
        /* Ready for another stream; trailing whitespace is nothing. */
        assert_int_equal(kube_watch_framer_feed(f, "  ", 2), 0);
        assert_int_equal(kube_watch_framer_finish(f), 0);
        assert_int_equal(rec.n, 1);
        /* A stream cut inside an event. */
        assert_int_equal(kube_watch_framer_feed(f, ev, 10), 0);
        assert_int_equal(kube_watch_framer_finish(f), -EBADMSG);
        recorder_done(&rec);
        kube_watch_framer_free(f);
}

static void test_bad_args(void **state) {
        kube_watch_framer *f = NULL;
        kube_watch_framer_opts o = {.max_event = KUBE_WATCH_MAX_EVENT_LIMIT + 1};
        assert_int_equal(kube_watch_framer_new(&o, record, NULL, &f), -EINVAL);
        assert_null(f);
        assert_int_equal(kube_watch_framer_new(NULL, NULL, NULL, &f), -EINVAL);
        assert_int_equal(kube_watch_framer_new(NULL, record, NULL, &f), 0);
        assert_int_equal(kube_watch_framer_feed(f, NULL, 3), -EINVAL);
        assert_int_equal(kube_watch_framer_feed(f, NULL, 0), 0);
        assert_null(kube_watch_framer_free(f));
        assert_null(kube_watch_framer_free(NULL));
        assert_null(kube_watch_object_resource_version(NULL));
        assert_false(kube_watch_event_is_gone(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_whole_stream),   cmocka_unit_test(test_every_split),
            cmocka_unit_test(test_byte_by_byte),   cmocka_unit_test(test_crlf),
            cmocka_unit_test(test_size_cap),       cmocka_unit_test(test_default_cap_large_event),
            cmocka_unit_test(test_malformed),      cmocka_unit_test(test_unknown_type),
            cmocka_unit_test(test_error_events),   cmocka_unit_test(test_bookmark),
            cmocka_unit_test(test_callback_error), cmocka_unit_test(test_finish),
            cmocka_unit_test(test_bad_args),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
