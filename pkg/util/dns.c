/* SPDX-License-Identifier: Apache-2.0 */
#include "util/dns.h"

static bool lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..len), without the length limit */
static bool label_chars_ok(const char *s, size_t len) {
        if (len == 0 || !lower_alnum(s[0]) || !lower_alnum(s[len - 1])) return false;
        for (size_t i = 1; i + 1 < len; i++)
                if (!lower_alnum(s[i]) && s[i] != '-') return false;
        return true;
}

bool dns_label_ok(const char *s, size_t len) {
        return len <= DNS_LABEL_MAX && label_chars_ok(s, len);
}

bool dns_subdomain_ok(const char *s, size_t len) {
        if (len == 0 || len > DNS_SUBDOMAIN_MAX) return false;
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && s[i] != '.') continue;
                if (!label_chars_ok(s + start, i - start)) return false;
                start = i + 1;
        }
        return true;
}
