/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 3339 timestamps as the Kubernetes API writes and reads them. */
#ifndef PP_UTIL_TIMEFMT_H
#define PP_UTIL_TIMEFMT_H

#include <stddef.h>
#include <time.h>

#define TIMEFMT_RFC3339_MAX 40

/* "2026-11-29T03:00:00Z" (whole seconds, UTC, as metav1.Time). 0 or -EINVAL. */
int timefmt_rfc3339(time_t t, char *buf, size_t n);
/* "2026-11-29T03:00:00.123456Z" (metav1.MicroTime, used by events and leases). */
int timefmt_rfc3339_micro(const struct timespec *ts, char *buf, size_t n);
/* Parses either form (and numeric offsets); 0 and *ret, or -EINVAL. */
int timefmt_parse_rfc3339(const char *s, struct timespec *ret);

#endif
