/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WWW-Authenticate challenge of a container registry (RFC 7235 section 4.1, as the
 * Docker Registry HTTP API V2 uses it): the scheme the registry wants and, for Bearer, where
 * to get a token (realm), for which service and scope.
 *
 * The header comes from any server a secret names, so it is hostile input: it is at most
 * REGISTRY_CHALLENGE_MAX bytes, holds at most REGISTRY_CHALLENGE_MAX_PARAMS parameters, each
 * value at most REGISTRY_CHALLENGE_MAX_VALUE bytes once unquoted, and no control character
 * or NUL anywhere. A header may list several challenges; the first Basic or Bearer one is
 * taken (schemes are case-insensitive), others (Negotiate, Digest, ...) are skipped.
 */
#ifndef PP_REGISTRY_CHALLENGE_H
#define PP_REGISTRY_CHALLENGE_H

#include <stddef.h>

#define REGISTRY_CHALLENGE_MAX        8192
#define REGISTRY_CHALLENGE_MAX_PARAMS 64
#define REGISTRY_CHALLENGE_MAX_VALUE  2048

typedef enum registry_scheme {
        REGISTRY_SCHEME_NONE = 0,
        REGISTRY_SCHEME_BASIC,
        REGISTRY_SCHEME_BEARER,
} registry_scheme;

typedef struct registry_challenge {
        registry_scheme scheme;
        char *realm;   /* Basic: may be NULL; Bearer: never NULL */
        char *service; /* NULL when absent */
        char *scope;   /* NULL when absent */
} registry_challenge;

/*
 * Parses len bytes of a WWW-Authenticate value. Returns 0 and fills *ret (free with
 * registry_challenge_done()); -EINVAL for a malformed header or a Bearer challenge without a
 * realm; -ENOTSUP when it is well formed but offers neither Basic nor Bearer; -E2BIG past a
 * limit; -ENOMEM. *ret is untouched on failure.
 */
int registry_challenge_parse(const char *header, size_t len, registry_challenge *ret);

/* Frees the strings and zeroes *c; NULL and a zeroed challenge are fine. */
void registry_challenge_done(registry_challenge *c);

const char *registry_scheme_name(registry_scheme s);

#endif
