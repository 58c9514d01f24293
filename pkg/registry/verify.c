/* SPDX-License-Identifier: Apache-2.0 */
#include "registry/verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "registry/authfile.h"
#include "registry/challenge.h"
#include "util/macro.h"

#define DETAIL_MAX 400

typedef struct answer {
        long status;
        char *body;
        size_t body_len;
        bool body_too_big;
        char *challenge; /* the first WWW-Authenticate value */
        bool challenge_too_big;
        char errbuf[CURL_ERROR_SIZE];
} answer;

static void answer_done(answer *a) {
        if (a->body) explicit_bzero(a->body, a->body_len);
        free(a->body);
        free(a->challenge);
        *a = (answer){0};
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
        answer *a = ud;
        size_t n = size * nmemb;
        if (a->body_len + n > REGISTRY_MAX_BODY) {
                a->body_too_big = true;
                return 0; /* aborts the transfer */
        }
        char *b = realloc(a->body, a->body_len + n + 1);
        if (!b) return 0;
        memcpy(b + a->body_len, ptr, n);
        a->body = b;
        a->body_len += n;
        a->body[a->body_len] = 0;
        return n;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *ud) {
        answer *a = ud;
        size_t n = size * nitems;
        static const char name[] = "www-authenticate:";
        /* a new status line (there is none with redirects off, but 100-continue) resets */
        if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
                free(a->challenge);
                a->challenge = NULL;
                return n;
        }
        if (a->challenge || n < sizeof(name) - 1 || strncasecmp(ptr, name, sizeof(name) - 1) != 0)
                return n;
        const char *v = ptr + sizeof(name) - 1, *end = ptr + n;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
        if ((size_t)(end - v) > REGISTRY_CHALLENGE_MAX) {
                a->challenge_too_big = true;
                return n;
        }
        a->challenge = strndup(v, (size_t)(end - v));
        return n;
}

/* One GET; returns 0 (a->status set) or a curl error code (a->errbuf says what). */
static CURLcode get(const registry_verify_opts *o, const char *url, const char *user,
                    const char *pass, const char *bearer, answer *a) {
        CURL *e = curl_easy_init();
        if (!e) return CURLE_OUT_OF_MEMORY;
        struct curl_slist *hdrs = NULL;
        char *authz = NULL;
        CURLcode c = CURLE_OK;
#define SET(opt, val)                                                                              \
        do {                                                                                       \
                if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val);                              \
        } while (0)
        SET(CURLOPT_URL, url);
        SET(CURLOPT_PROTOCOLS_STR, "https");
        SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        if (o->ca_file) SET(CURLOPT_CAINFO, o->ca_file);
        SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000L);
        SET(CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 15000L);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_USERAGENT, "pullpolicy-credential-check");
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, a);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, a);
        SET(CURLOPT_ERRORBUFFER, a->errbuf);
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)REGISTRY_MAX_BODY);
        if (user) {
                SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                SET(CURLOPT_USERNAME, user);
                SET(CURLOPT_PASSWORD, pass ? pass : "");
        }
        if (bearer && c == CURLE_OK) {
                size_t n = strlen(bearer) + sizeof("Authorization: Bearer ");
                authz = malloc(n);
                if (!authz)
                        c = CURLE_OUT_OF_MEMORY;
                else {
                        snprintf(authz, n, "Authorization: Bearer %s", bearer);
                        hdrs = curl_slist_append(NULL, authz);
                        if (!hdrs) c = CURLE_OUT_OF_MEMORY;
                }
                SET(CURLOPT_HTTPHEADER, hdrs);
        }
#undef SET
        if (c == CURLE_OK) c = curl_easy_perform(e);
        if (c == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a->status);
        curl_slist_free_all(hdrs);
        if (authz) {
                explicit_bzero(authz, strlen(authz));
                free(authz);
        }
        curl_easy_cleanup(e);
        return c;
}

static char *fmt(const char *f, ...) _printf_(1, 2);
static char *fmt(const char *f, ...) {
        char *s = malloc(DETAIL_MAX);
        if (!s) return NULL;
        va_list ap;
        va_start(ap, f);
        vsnprintf(s, DETAIL_MAX, f, ap);
        va_end(ap);
        /* server-given text (realm, curl's message) may hold anything: one printable line */
        for (char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) *p = ' ';
        return s;
}

static bool realm_ok(const char *realm) {
        if (strncasecmp(realm, "https://", 8) != 0 || strlen(realm) > REGISTRY_CHALLENGE_MAX_VALUE)
                return false;
        for (const char *p = realm; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
                        return false;
        return true;
}

/* The token of a token service's JSON answer: a new string or NULL. */
static char *token_of(const answer *a) {
        if (!a->body) return NULL;
        json_object *o = json_tokener_parse(a->body), *t = NULL;
        char *tok = NULL;
        if (o && json_object_is_type(o, json_type_object) &&
            ((json_object_object_get_ex(o, "token", &t) &&
              json_object_is_type(t, json_type_string) && json_object_get_string_len(t) > 0) ||
             (json_object_object_get_ex(o, "access_token", &t) &&
              json_object_is_type(t, json_type_string) && json_object_get_string_len(t) > 0))) {
                const char *s = json_object_get_string(t);
                bool clean = true;
                for (const char *p = s; *p; p++)
                        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) clean = false;
                if (clean) tok = strdup(s);
        }
        json_object_put(o);
        return tok;
}

static int token_url(const char *realm, const char *service, const char *user, char **ret) {
        CURL *e = curl_easy_init();
        if (!e) return -ENOMEM;
        char *sv = service ? curl_easy_escape(e, service, 0) : NULL;
        char *us = user && *user ? curl_easy_escape(e, user, 0) : NULL;
        size_t n = strlen(realm) + (sv ? strlen(sv) : 0) + (us ? strlen(us) : 0) + 32;
        char *u = malloc(n);
        int r = u && (!service || sv) && (!(user && *user) || us) ? 0 : -ENOMEM;
        if (r == 0) {
                char sep = strchr(realm, '?') ? '&' : '?';
                int k = snprintf(u, n, "%s", realm);
                if (sv) {
                        k += snprintf(u + k, n - (size_t)k, "%cservice=%s", sep, sv);
                        sep = '&';
                }
                if (us) snprintf(u + k, n - (size_t)k, "%caccount=%s", sep, us);
                *ret = TAKE_PTR(u);
        }
        free(u);
        curl_free(sv);
        curl_free(us);
        curl_easy_cleanup(e);
        return r;
}

int registry_verify(const registry_verify_opts *opts, const char *key, const char *username,
                    const char *password, registry_outcome *ret, char **ret_detail) {
        if (!opts || !key || !username || !password || !ret) return -EINVAL;
        _cleanup_free_ char *base = NULL;
        int r = registry_key_api_base(key, &base);
        if (r < 0) return r;
        size_t ulen = strlen(base) + 5;
        _cleanup_free_ char *v2 = malloc(ulen);
        if (!v2) return -ENOMEM;
        snprintf(v2, ulen, "%s/v2/", base);

        registry_outcome out = REGISTRY_UNREACHABLE;
        char *detail = NULL;
        answer a = {0};
        registry_challenge ch = {0};
        char *token = NULL, *turl = NULL;

        CURLcode c = get(opts, v2, NULL, NULL, NULL, &a);
        if (c != CURLE_OK) {
                detail = fmt("GET %s: %s", v2, a.errbuf[0] ? a.errbuf : curl_easy_strerror(c));
                goto done;
        }
        if (a.status == 200) {
                out = REGISTRY_VERIFIED;
                detail = fmt("%s asks for no credentials", base);
                goto done;
        }
        if (a.status != 401) {
                detail = fmt("GET %s: HTTP %ld (want 401 or 200)", v2, a.status);
                goto done;
        }
        r = a.challenge_too_big || !a.challenge
                ? -EINVAL
                : registry_challenge_parse(a.challenge, strlen(a.challenge), &ch);
        if (r == -ENOMEM) goto fail;
        if (r < 0) {
                detail = fmt("GET %s: HTTP 401 without a usable Basic or Bearer challenge", v2);
                goto done;
        }
        answer_done(&a);

        if (ch.scheme == REGISTRY_SCHEME_BASIC) {
                c = get(opts, v2, username, password, NULL, &a);
        } else {
                if (!realm_ok(ch.realm)) {
                        detail = fmt(
                            "%s: the token realm is not an https URL; credentials not sent", base);
                        goto done;
                }
                r = token_url(ch.realm, ch.service, username, &turl);
                if (r < 0) goto fail;
                c = get(opts, turl, username, password, NULL, &a);
                if (c != CURLE_OK) {
                        detail = fmt("token request to %s: %s", ch.realm,
                                     a.errbuf[0] ? a.errbuf : curl_easy_strerror(c));
                        goto done;
                }
                if (a.status == 401 || a.status == 403) {
                        out = REGISTRY_REJECTED;
                        detail = fmt("token service %s refused the credentials (HTTP %ld)",
                                     ch.realm, a.status);
                        goto done;
                }
                token = a.status == 200 ? token_of(&a) : NULL;
                if (!token) {
                        detail = fmt("token request to %s: HTTP %ld without a token", ch.realm,
                                     a.status);
                        goto done;
                }
                answer_done(&a);
                c = get(opts, v2, NULL, NULL, token, &a);
        }
        if (c != CURLE_OK) {
                detail = fmt("GET %s: %s", v2, a.errbuf[0] ? a.errbuf : curl_easy_strerror(c));
                goto done;
        }
        if (a.status == 200) {
                out = REGISTRY_VERIFIED;
                detail =
                    fmt("%s accepted the credentials (%s)", base, registry_scheme_name(ch.scheme));
        } else if (a.status == 401 || a.status == 403) {
                out = REGISTRY_REJECTED;
                detail = fmt("%s refused the credentials (%s, HTTP %ld)", base,
                             registry_scheme_name(ch.scheme), a.status);
        } else
                detail = fmt("GET %s with credentials: HTTP %ld", v2, a.status);
done:
        r = detail || !ret_detail ? 0 : -ENOMEM;
fail:
        if (token) {
                explicit_bzero(token, strlen(token));
                free(token);
        }
        free(turl);
        registry_challenge_done(&ch);
        answer_done(&a);
        if (r < 0) {
                free(detail);
                return r;
        }
        *ret = out;
        if (ret_detail)
                *ret_detail = detail;
        else
                free(detail);
        return 0;
}

const char *registry_outcome_reason(registry_outcome o) {
        switch (o) {
        case REGISTRY_VERIFIED:
                return "Verified";
        case REGISTRY_REJECTED:
                return "CredentialsRejected";
        default:
                return "RegistryUnreachable";
        }
}
