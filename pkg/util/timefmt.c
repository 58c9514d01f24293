/* SPDX-License-Identifier: Apache-2.0 */
#include "util/timefmt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int timefmt_rfc3339(time_t t, char *buf, size_t n) {
        struct tm tm;
        if (!gmtime_r(&t, &tm)) return -EINVAL;
        if (strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return -EINVAL;
        return 0;
}

int timefmt_rfc3339_micro(const struct timespec *ts, char *buf, size_t n) {
        struct tm tm;
        char head[32];
        if (!gmtime_r(&ts->tv_sec, &tm)) return -EINVAL;
        if (strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm) == 0) return -EINVAL;
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
                if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0)
                        return -EINVAL;
                offset = sign * (oh * 3600L + om * 60L);
        } else
                return -EINVAL;
        if (*p) return -EINVAL;
        struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                        .tm_hour = h, .tm_min = m, .tm_sec = sec};
        time_t t = timegm(&tm);
        if (t == (time_t)-1) return -EINVAL;
        ret->tv_sec = t - offset;
        ret->tv_nsec = nsec;
        return 0;
}
