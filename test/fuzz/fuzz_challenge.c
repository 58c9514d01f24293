/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry/challenge (WWW-Authenticate from any registry a secret names) and
 * registry/authfile (pull-secret payloads) on arbitrary bytes. The first byte picks the
 * parser: even, the challenge parser on the rest; odd, the auth-file parser (bit 1: dockercfg
 * or dockerconfigjson). Checks:
 *   - challenge: the only errors are -EINVAL, -ENOTSUP, -E2BIG; the output is untouched on
 *     failure; on success the scheme is Basic or Bearer, a Bearer has a non-empty realm,
 *     every value is within its limit and holds no control character; parsing is
 *     deterministic;
 *   - authfile: the only errors are -EINVAL, -E2BIG; the file is untouched on failure; every
 *     entry has a normalised key (normalising it again gives itself) and non-NULL
 *     credentials; adding the same payload again adds nothing (first secret wins); the JSON
 *     written reads back with one entry per key.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "registry/authfile.h"
#include "registry/challenge.h"
#include "util/macro.h"

static void check_value(const char *v) {
        if (!v) return;
        FUZZ_CHECK(strlen(v) <= REGISTRY_CHALLENGE_MAX_VALUE);
        for (const char *p = v; *p; p++)
                FUZZ_CHECK(((unsigned char)*p >= 0x20 || *p == '\t') && *p != 0x7f);
}

static void fuzz_challenge(const uint8_t *data, size_t size) {
        registry_challenge c = {.scheme = 42};
        int r = registry_challenge_parse((const char *)data, size, &c);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ENOTSUP || r == -E2BIG);
                FUZZ_CHECK(c.scheme == 42 && !c.realm && !c.service && !c.scope);
                return;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(c.scheme == REGISTRY_SCHEME_BASIC || c.scheme == REGISTRY_SCHEME_BEARER);
        if (c.scheme == REGISTRY_SCHEME_BEARER) FUZZ_CHECK(c.realm && *c.realm);
        check_value(c.realm);
        check_value(c.service);
        check_value(c.scope);
        registry_challenge d = {0};
        FUZZ_CHECK(registry_challenge_parse((const char *)data, size, &d) == 0);
        FUZZ_CHECK(d.scheme == c.scheme && streq_ptr(d.realm, c.realm) &&
                   streq_ptr(d.service, c.service) && streq_ptr(d.scope, c.scope));
        registry_challenge_done(&d);
        registry_challenge_done(&c);
        FUZZ_CHECK(!c.realm && c.scheme == REGISTRY_SCHEME_NONE);
}

static void fuzz_authfile(uint8_t sel, const uint8_t *data, size_t size) {
        const char *type = sel & 2 ? "kubernetes.io/dockercfg" : "kubernetes.io/dockerconfigjson";
        registry_authfile f = {0};
        int r = registry_authfile_add(&f, type, (const char *)data, size, "ns/s");
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG);
                FUZZ_CHECK(f.n == 0 && !f.v);
                return;
        }
        FUZZ_CHECK((size_t)r == f.n && f.n <= REGISTRY_AUTHFILE_MAX_ENTRIES);
        for (size_t i = 0; i < f.n; i++) {
                const registry_auth *a = &f.v[i];
                FUZZ_CHECK(a->registry && a->username && a->password);
                char *k = NULL;
                FUZZ_CHECK(registry_key_normalize(a->registry, &k) == 0);
                FUZZ_CHECK(streq(k, a->registry));
                free(k);
                FUZZ_CHECK(registry_authfile_find(&f, a->registry) == a);
        }
        FUZZ_CHECK(registry_authfile_add(&f, type, (const char *)data, size, "ns/t") == 0);
        char *json = NULL;
        FUZZ_CHECK(registry_authfile_to_json(&f, &json) == 0);
        registry_authfile g = {0};
        FUZZ_CHECK(registry_authfile_add(&g, "kubernetes.io/dockerconfigjson", json, strlen(json),
                                         NULL) == (int)f.n);
        for (size_t i = 0; i < f.n; i++) {
                const registry_auth *b = registry_authfile_find(&g, f.v[i].registry);
                FUZZ_CHECK(b);
                /* a username with ':' cannot round-trip through "auth"; the rest must */
                if (!strchr(f.v[i].username, ':'))
                        FUZZ_CHECK(streq(b->username, f.v[i].username) &&
                                   streq(b->password, f.v[i].password));
        }
        free(json);
        registry_authfile_done(&g);
        registry_authfile_done(&f);
}

int fuzz_challenge_one(const uint8_t *data, size_t size) {
        if (size < 1) return 0;
        if (data[0] & 1)
                fuzz_authfile(data[0], data + 1, size - 1);
        else
                fuzz_challenge(data + 1, size - 1);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_challenge_one(data, size);
}
#endif
