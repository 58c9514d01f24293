/* SPDX-License-Identifier: Apache-2.0 */
#include "util/timefmt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * RFC 3339 years have exactly four digits (strftime's %Y prints "5" or "10000"),
 * so times outside years 0000..9999 are refused, as Go's time.MarshalJSON does.
 */
static int format_head(time_t t, char head[32]) {
        struct tm tm;
        if (!gmtime_r(&t, &tm)) return -EINVAL;
        if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) return -EINVAL;
        snprintf(head, 32, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        return 0;
}

int timefmt_rfc3339(time_t t, char *buf, size_t n) {
        char head[32];
        if (format_head(t, head) < 0) return -EINVAL;
        int r = snprintf(buf, n, "%sZ", head);
        if (r < 0 || (size_t)r >= n) return -EINVAL;
        return 0;
}

int timefmt_rfc3339_micro(const struct timespec *ts, char *buf, size_t n) {
        char head[32];
        if (format_head(ts->tv_sec, head) < 0) return -EINVAL;
        int r = snprintf(buf, n, "%s.%06ldZ", head, (long)(ts->tv_nsec / 1000));
        if (r < 0 || (size_t)r >= n) return -EINVAL;
        return 0;
}

static int digits(const char **p, int count, int *ret) {
        int v = 0;
        for (int i = 0; i < count; i++) {
                if (!isdigit((unsigned char)**p)) return -EINVAL;
                v = v * 10 + (**p - '0');
                (*p)++;
        }
        *ret = v;
        return 0;
}

int timefmt_parse_rfc3339(const char *s, struct timespec *ret) {
        if (!s) return -EINVAL;
        const char *p = s;
        int Y, M, D, h, m, sec;
        if (digits(&p, 4, &Y) < 0 || *p++ != '-' || digits(&p, 2, &M) < 0 || *p++ != '-' ||
            digits(&p, 2, &D) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
                return -EINVAL;
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &m) < 0 || *p++ != ':' ||
            digits(&p, 2, &sec) < 0)
                return -EINVAL;
        if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -EINVAL;
        long nsec = 0;
        if (*p == '.') {
                p++;
                long scale = 100000000;
                if (!isdigit((unsigned char)*p)) return -EINVAL;
                while (isdigit((unsigned char)*p)) {
                        nsec += (*p - '0') * scale;
                        scale /= 10;
                        p++;
                }
        }
        long offset = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1, oh, om;
                p++;
                if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0) return -EINVAL;
                offset = sign * (oh * 3600L + om * 60L);
        } else
                return -EINVAL;
        if (*p) return -EINVAL;
        struct tm tm = {.tm_year = Y - 1900,
                        .tm_mon = M - 1,
                        .tm_mday = D,
                        .tm_hour = h,
                        .tm_min = m,
                        .tm_sec = sec};
        time_t t = timegm(&tm);
        /* -1 is also 1969-12-31T23:59:59, a valid time: timegm() normalised tm to it */
        if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_yday == 364 && tm.tm_hour == 23 &&
                                 tm.tm_min == 59 && tm.tm_sec == 59))
                return -EINVAL;
        ret->tv_sec = t - offset;
        ret->tv_nsec = nsec;
        return 0;
}
