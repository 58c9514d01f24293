/* SPDX-License-Identifier: Apache-2.0 */
#include "names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dns.h"
#include "util/hash.h"
#include "util/macro.h"

uint64_t names_fnv1a64(const void *data, size_t len) {
        return hash_fnv1a64(HASH_FNV1A64_INIT, data, len);
}

/* Cuts full (of length len) to fit NAMES_OBJECT_MAX with "-" and hex digits of h at its end,
 * or appends them when add_always. */
static int end_with_hash(char *full, size_t len, uint64_t h, bool add_always, char **ret) {
        if (!add_always && len <= NAMES_OBJECT_MAX) {
                *ret = full;
                return 0;
        }
        size_t keep = MIN(len, (size_t)NAMES_OBJECT_MAX - 1 - NAMES_HASH_DIGITS);
        /* "x.-hash" or "x--hash" would be ugly and "x.-" is no valid DNS name */
        while (keep > 0 && (full[keep - 1] == '-' || full[keep - 1] == '.')) keep--;
        char *s = realloc(full, keep + 1 + NAMES_HASH_DIGITS + 1);
        if (!s) {
                free(full);
                return -ENOMEM;
        }
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)h);
        s[keep] = '-';
        memcpy(s + keep + 1, hex, NAMES_HASH_DIGITS);
        s[keep + 1 + NAMES_HASH_DIGITS] = 0;
        *ret = s;
        return 0;
}

void names_dockercfg_prefix(const char *sa, char ret[NAMES_DOCKERCFG_PREFIX_MAX + 1]) {
        static const char suffix[] = "dockercfg-";
        size_t n = strlen(sa);
        if (n + 1 + (sizeof(suffix) - 1) <= NAMES_DOCKERCFG_PREFIX_MAX) {
                snprintf(ret, NAMES_DOCKERCFG_PREFIX_MAX + 1, "%s-%s", sa, suffix);
                return;
        }
        /* 32-bit FNV-1a, as Go's hash/fnv New32a: the name depends on these exact bits */
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)sa[i];
                h *= 16777619u;
        }
        /* "-" + 8 hex digits + "-" = 10 characters besides the kept part and the suffix */
        int keep = NAMES_DOCKERCFG_PREFIX_MAX - 10 - (int)(sizeof(suffix) - 1);
        snprintf(ret, NAMES_DOCKERCFG_PREFIX_MAX + 1, "%.*s-%08x-%s", keep, sa, (unsigned)h,
                 suffix);
}

int names_role_binding(const char *policy, const char *ns, char **ret) {
        if (!policy || !*policy || !ns || !*ns || !ret) return -EINVAL;
        char *full = NULL;
        if (asprintf(&full, "ppol-%s-%s", policy, ns) < 0) return -ENOMEM;
        /* '/' occurs in neither a policy nor a namespace name: the pair hashes unambiguously */
        uint64_t h = names_fnv1a64(policy, strlen(policy));
        h = hash_fnv1a64(h, "/", 1);
        h = hash_fnv1a64(h, ns, strlen(ns));
        return end_with_hash(full, strlen(full), h, true, ret);
}

int names_role_binding_legacy(const char *policy, const char *ns, char **ret) {
        if (!policy || !*policy || !ns || !*ns || !ret) return -EINVAL;
        char *full = NULL;
        if (asprintf(&full, "ppol-%s-%s", policy, ns) < 0) return -ENOMEM;
        size_t len = strlen(full);
        return end_with_hash(full, len, names_fnv1a64(full, len), false, ret);
}

void names_policy_label(const char *name, char ret[NAMES_LABEL_VALUE_MAX + 1]) {
        size_t len = name ? strlen(name) : 0;
        if (len <= NAMES_LABEL_VALUE_MAX) {
                memcpy(ret, name ? name : "", len + 1);
                return;
        }
        size_t keep = NAMES_LABEL_VALUE_MAX - 1 - NAMES_HASH_DIGITS;
        /* a label value must end alphanumeric before the "-" */
        while (keep > 0 && (name[keep - 1] == '-' || name[keep - 1] == '.')) keep--;
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)names_fnv1a64(name, len));
        memcpy(ret, name, keep);
        ret[keep] = '-';
        memcpy(ret + keep + 1, hex, NAMES_HASH_DIGITS);
        ret[keep + 1 + NAMES_HASH_DIGITS] = 0;
}

int names_marked_key(const char *ns, const char *name, char **ret) {
        if (!name || !*name) return -EINVAL;
        char label[NAMES_LABEL_VALUE_MAX + 1];
        names_policy_label(name, label);
        return names_policy_key(ns, label, ret);
}

int names_policy_key(const char *ns, const char *name, char **ret) {
        if (!ns || !*ns || !name || !*name || !ret) return -EINVAL;
        char *k = NULL;
        if (asprintf(&k, "%s/%s", ns, name) < 0) return -ENOMEM;
        *ret = k;
        return 0;
}

bool names_marked_by_home(const kube_meta *meta, const char *policy_ns) {
        if (!meta || !policy_ns) return false;
        return streq_ptr(kube_kvs_get(&meta->labels, NAMES_LABEL_MANAGED_BY),
                         NAMES_MANAGED_BY_VALUE) &&
               streq_ptr(kube_kvs_get(&meta->labels, NAMES_LABEL_POLICY_NAMESPACE), policy_ns);
}

bool names_marked_by(const kube_meta *meta, const char *policy_ns, const char *policy_name) {
        if (!policy_name || !names_marked_by_home(meta, policy_ns)) return false;
        char label[NAMES_LABEL_VALUE_MAX + 1];
        names_policy_label(policy_name, label);
        return streq_ptr(kube_kvs_get(&meta->labels, NAMES_LABEL_POLICY), label);
}

bool names_is_dns1123_label(const char *s) {
        return s && dns_label_ok(s, strlen(s));
}

_Static_assert(NAMES_OBJECT_MAX == DNS_SUBDOMAIN_MAX, "object names are DNS-1123 subdomains");

bool names_is_dns1123_subdomain(const char *s) {
        return s && dns_subdomain_ok(s, strlen(s));
}
