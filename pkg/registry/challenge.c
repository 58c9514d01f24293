/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small recursive-descent reader of RFC 7235's grammar:
 *
 *   challenges = 1#challenge
 *   challenge  = scheme [ 1*SP ( token68 / #( token BWS "=" BWS ( token / quoted-string ) ) ) ]
 *
 * Commas separate both challenges and parameters; after a comma, "token =" starts a
 * parameter of the current challenge and a lone token starts the next challenge.
 */
#include "registry/challenge.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/macro.h"

typedef struct reader {
        const char *p, *end;
        unsigned params;
} reader;

static bool is_tchar(unsigned char c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
        return c && strchr("!#$%&'*+-.^_`|~", c);
}

static bool is_token68_char(unsigned char c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
        return c && strchr("-._~+/", c);
}

static void skip_ws(reader *r) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\t')) r->p++;
}

/* A token: returns its length (0: none) and leaves r->p after it. */
static size_t read_token(reader *r, const char **ret) {
        const char *s = r->p;
        while (r->p < r->end && is_tchar((unsigned char)*r->p)) r->p++;
        *ret = s;
        return (size_t)(r->p - s);
}

/* A token or quoted-string as a new string, unquoted; r->p is after it. */
static int read_value(reader *r, char **ret) {
        if (r->p < r->end && *r->p == '"') {
                r->p++;
                size_t cap = MIN((size_t)(r->end - r->p), (size_t)REGISTRY_CHALLENGE_MAX_VALUE) + 1;
                char *v = malloc(cap);
                if (!v) return -ENOMEM;
                size_t n = 0;
                for (;;) {
                        if (r->p >= r->end) {
                                free(v);
                                return -EINVAL;
                        }
                        unsigned char c = (unsigned char)*r->p++;
                        if (c == '"') break;
                        if (c == '\\') {
                                if (r->p >= r->end) {
                                        free(v);
                                        return -EINVAL;
                                }
                                c = (unsigned char)*r->p++;
                                /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
                                if (c < 0x20 && c != '\t') {
                                        free(v);
                                        return -EINVAL;
                                }
                        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
                                free(v);
                                return -EINVAL;
                        }
                        if (c == 0x7f) {
                                free(v);
                                return -EINVAL;
                        }
                        if (n >= REGISTRY_CHALLENGE_MAX_VALUE) {
                                free(v);
                                return -E2BIG;
                        }
                        v[n++] = (char)c;
                }
                v[n] = 0;
                *ret = v;
                return 0;
        }
        const char *t;
        size_t n = read_token(r, &t);
        if (n == 0) return -EINVAL;
        if (n > REGISTRY_CHALLENGE_MAX_VALUE) return -E2BIG;
        char *v = strndup(t, n);
        if (!v) return -ENOMEM;
        *ret = v;
        return 0;
}

/* Is "token BWS =" (but not a token68's "==" padding) at r->p? */
static bool param_ahead(const reader *r) {
        reader q = *r;
        const char *t;
        if (read_token(&q, &t) == 0) return false;
        skip_ws(&q);
        if (q.p >= q.end || *q.p != '=') return false;
        q.p++;
        /* "abc==" or "abc=" then end/comma is a token68, not a parameter */
        if (q.p < q.end && *q.p == '=') return false;
        skip_ws(&q);
        return q.p < q.end && *q.p != ',';
}

static int set_once(char **slot, char *v) {
        if (*slot) {
                free(v);
                return -EINVAL;
        }
        *slot = v;
        return 0;
}

/* Parameters of one challenge; fills c when keep (a supported scheme), else drops them. */
static int read_params(reader *r, registry_challenge *c, bool keep) {
        bool first = true;
        for (;;) {
                skip_ws(r);
                if (!first) {
                        /* after a parameter: end, or a comma then a parameter or next challenge */
                        if (r->p >= r->end) return 0;
                        if (*r->p != ',') return -EINVAL;
                        while (r->p < r->end && (*r->p == ',' || *r->p == ' ' || *r->p == '\t'))
                                r->p++;
                        if (r->p >= r->end) return 0;
                }
                if (!param_ahead(r)) return first && r->p < r->end && *r->p != ',' ? -EINVAL : 0;
                if (++r->params > REGISTRY_CHALLENGE_MAX_PARAMS) return -E2BIG;
                const char *name;
                size_t nlen = read_token(r, &name);
                skip_ws(r);
                r->p++; /* '=' */
                skip_ws(r);
                char *v = NULL;
                int k = read_value(r, &v);
                if (k < 0) return k;
                if (!keep)
                        free(v);
                else if (nlen == 5 && strncasecmp(name, "realm", 5) == 0)
                        k = set_once(&c->realm, v);
                else if (nlen == 7 && strncasecmp(name, "service", 7) == 0)
                        k = set_once(&c->service, v);
                else if (nlen == 5 && strncasecmp(name, "scope", 5) == 0)
                        k = set_once(&c->scope, v);
                else
                        free(v);
                if (k < 0) return k;
                first = false;
        }
}

int registry_challenge_parse(const char *header, size_t len, registry_challenge *ret) {
        if (!header || !ret) return -EINVAL;
        if (len > REGISTRY_CHALLENGE_MAX) return -E2BIG;
        if (memchr(header, 0, len)) return -EINVAL;

        reader r = {.p = header, .end = header + len};
        registry_challenge found = {0};
        bool any = false;
        int k;
        for (;;) {
                while (r.p < r.end && (*r.p == ',' || *r.p == ' ' || *r.p == '\t')) r.p++;
                if (r.p >= r.end) break;
                const char *scheme;
                size_t slen = read_token(&r, &scheme);
                if (slen == 0) {
                        k = -EINVAL;
                        goto fail;
                }
                any = true;
                registry_scheme s = REGISTRY_SCHEME_NONE;
                if (slen == 5 && strncasecmp(scheme, "basic", 5) == 0)
                        s = REGISTRY_SCHEME_BASIC;
                else if (slen == 6 && strncasecmp(scheme, "bearer", 6) == 0)
                        s = REGISTRY_SCHEME_BEARER;
                bool keep = s != REGISTRY_SCHEME_NONE && found.scheme == REGISTRY_SCHEME_NONE;
                if (keep) found.scheme = s;

                if (r.p < r.end && *r.p != ',') {
                        if (*r.p != ' ' && *r.p != '\t') {
                                k = -EINVAL;
                                goto fail;
                        }
                        skip_ws(&r);
                        if (r.p < r.end && *r.p != ',' && !param_ahead(&r)) {
                                /* token68 (Negotiate's blob, say): only before end or a comma */
                                while (r.p < r.end && is_token68_char((unsigned char)*r.p)) r.p++;
                                while (r.p < r.end && *r.p == '=') r.p++;
                                skip_ws(&r);
                                if (r.p < r.end && *r.p != ',') {
                                        k = -EINVAL;
                                        goto fail;
                                }
                                continue;
                        }
                }
                k = read_params(&r, &found, keep);
                if (k < 0) goto fail;
        }
        if (!any) {
                k = -EINVAL;
                goto fail;
        }
        if (found.scheme == REGISTRY_SCHEME_NONE) {
                k = -ENOTSUP;
                goto fail;
        }
        if (found.scheme == REGISTRY_SCHEME_BEARER && (!found.realm || !*found.realm)) {
                k = -EINVAL;
                goto fail;
        }
        *ret = found;
        return 0;
fail:
        registry_challenge_done(&found);
        return k;
}

void registry_challenge_done(registry_challenge *c) {
        if (!c) return;
        free(c->realm);
        free(c->service);
        free(c->scope);
        *c = (registry_challenge){0};
}

const char *registry_scheme_name(registry_scheme s) {
        switch (s) {
        case REGISTRY_SCHEME_BASIC:
                return "Basic";
        case REGISTRY_SCHEME_BEARER:
                return "Bearer";
        default:
                return "none";
        }
}
