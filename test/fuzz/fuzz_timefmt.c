/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util/timefmt on arbitrary text and times.
 *
 * The input is parsed as an RFC 3339 timestamp; a timestamp that parses is
 * formatted both ways (whole seconds, microseconds) and must parse back to the
 * same instant (truncated to the format's precision), with the same text on a
 * second round. Inputs of 8 or 12 bytes are also read as a time_t (and
 * nanoseconds): whatever the formatters accept must parse back the same way.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "util/timefmt.h"

static void tf_roundtrip(const struct timespec *ts) {
        char buf[TIMEFMT_RFC3339_MAX], buf2[TIMEFMT_RFC3339_MAX];
        struct timespec back;

        if (timefmt_rfc3339(ts->tv_sec, buf, sizeof(buf)) == 0) {
                int r = timefmt_parse_rfc3339(buf, &back);
                if (r != 0)
                        fprintf(stderr, "formatted %lld as \"%s\", which does not parse\n",
                                (long long)ts->tv_sec, buf);
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(back.tv_sec == ts->tv_sec && back.tv_nsec == 0);
                FUZZ_CHECK(timefmt_rfc3339(back.tv_sec, buf2, sizeof(buf2)) == 0);
                FUZZ_CHECK(strcmp(buf, buf2) == 0);
                FUZZ_CHECK(buf[strlen(buf) - 1] == 'Z');
        }
        if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L) return;
        if (timefmt_rfc3339_micro(ts, buf, sizeof(buf)) == 0) {
                int r = timefmt_parse_rfc3339(buf, &back);
                if (r != 0)
                        fprintf(stderr, "formatted %lld.%09ld as \"%s\", which does not parse\n",
                                (long long)ts->tv_sec, (long)ts->tv_nsec, buf);
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(back.tv_sec == ts->tv_sec);
                FUZZ_CHECK(back.tv_nsec == ts->tv_nsec / 1000 * 1000);
                FUZZ_CHECK(timefmt_rfc3339_micro(&back, buf2, sizeof(buf2)) == 0);
                FUZZ_CHECK(strcmp(buf, buf2) == 0);
        }
        /* a buffer too small is an error, never a cut string */
        char tiny[8];
        FUZZ_CHECK(timefmt_rfc3339(ts->tv_sec, tiny, sizeof(tiny)) == -EINVAL);
        FUZZ_CHECK(timefmt_rfc3339_micro(ts, tiny, sizeof(tiny)) == -EINVAL);
}

int fuzz_timefmt_one(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size);
        struct timespec ts = {.tv_sec = 12345, .tv_nsec = 678};
        int r = timefmt_parse_rfc3339(s, &ts);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(ts.tv_sec == 12345 && ts.tv_nsec == 678);
        } else {
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
                /* nothing but the formats of the header parses */
                FUZZ_CHECK(strlen(s) >= 20);
                tf_roundtrip(&ts);
        }
        free(s);

        if (size == 8 || size == 12) {
                int64_t sec;
                int32_t nsec = 0;
                memcpy(&sec, data, 8);
                if (size == 12) memcpy(&nsec, data + 8, 4);
                struct timespec t = {.tv_sec = (time_t)sec, .tv_nsec = nsec};
                tf_roundtrip(&t);
        }
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_timefmt_one(data, size);
}
#endif
