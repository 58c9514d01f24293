/* SPDX-License-Identifier: Apache-2.0 */
#include "registry/authfile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "util/base64.h"
#include "util/macro.h"
#include "util/strbuf.h"

static void wipe_free(char *s) {
        if (!s) return;
        explicit_bzero(s, strlen(s));
        free(s);
}

static void auth_done(registry_auth *a) {
        free(a->registry);
        wipe_free(a->username);
        wipe_free(a->password);
        free(a->secret);
        *a = (registry_auth){0};
}

int registry_key_normalize(const char *key, char **ret) {
        if (!key || !ret) return -EINVAL;
        size_t len = strlen(key);
        if (len == 0 || len > REGISTRY_KEY_MAX) return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)key[i];
                if (c <= 0x20 || c >= 0x7f) return -EINVAL;
        }
        const char *s = key;
        if (strncasecmp(s, "https://", 8) == 0)
                s += 8;
        else if (strncasecmp(s, "http://", 7) == 0)
                s += 7;
        /* one scheme at most, and only in front: the normal form must be a fixed point */
        if (strstr(s, "://")) return -EINVAL;
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '/') n--;
        if (n == 0 || s[0] == '/') return -EINVAL;

        /* Docker Hub answers to several names; the kubelet and skopeo call it docker.io */
        static const char *const hub[] = {"index.docker.io", "index.docker.io/v1",
                                          "registry-1.docker.io", "docker.io"};
        for (size_t i = 0; i < ARRAY_SIZE(hub); i++)
                if (strlen(hub[i]) == n && strncasecmp(s, hub[i], n) == 0) {
                        char *h = strdup("docker.io");
                        if (!h) return -ENOMEM;
                        *ret = h;
                        return 0;
                }
        char *k = strndup(s, n);
        if (!k) return -ENOMEM;
        *ret = k;
        return 0;
}

int registry_key_api_base(const char *key, char **ret) {
        _cleanup_free_ char *k = NULL;
        int r = registry_key_normalize(key, &k);
        if (r < 0) return r;
        if (!ret) return -EINVAL;
        const char *host = k;
        if (streq(k, "docker.io")) host = "registry-1.docker.io";
        size_t hlen = strcspn(host, "/");
        if (hlen == 0) return -EINVAL;
        char *b = malloc(8 + hlen + 1);
        if (!b) return -ENOMEM;
        memcpy(b, "https://", 8);
        memcpy(b + 8, host, hlen);
        b[8 + hlen] = 0;
        *ret = b;
        return 0;
}

const registry_auth *registry_authfile_find(const registry_authfile *f, const char *key) {
        if (!f || !key) return NULL;
        for (size_t i = 0; i < f->n; i++)
                if (streq(f->v[i].registry, key)) return &f->v[i];
        return NULL;
}

static int get_str(json_object *entry, const char *field, char **ret) {
        json_object *v;
        if (!json_object_object_get_ex(entry, field, &v) ||
            json_object_is_type(v, json_type_null)) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string)) return -EINVAL;
        int len = json_object_get_string_len(v);
        const char *s = json_object_get_string(v);
        if (strlen(s) != (size_t)len) return -EINVAL; /* a NUL inside */
        if ((size_t)len > REGISTRY_CRED_MAX) return -E2BIG;
        char *d = strdup(s);
        if (!d) return -ENOMEM;
        *ret = d;
        return 0;
}

/* One ENTRY into a (registry already set). */
static int parse_entry(json_object *entry, registry_auth *a) {
        if (!json_object_is_type(entry, json_type_object)) return -EINVAL;
        char *user = NULL, *pass = NULL, *auth = NULL;
        int r = get_str(entry, "username", &user);
        if (r >= 0) r = get_str(entry, "password", &pass);
        if (r >= 0) r = get_str(entry, "auth", &auth);
        if (r >= 0 && auth && *auth) {
                void *dec = NULL;
                size_t dlen = 0;
                r = base64_decode(auth, strlen(auth), 0, 2 * REGISTRY_CRED_MAX + 1, &dec, &dlen);
                if (r == -E2BIG) r = -EINVAL;
                if (r >= 0) {
                        char *colon = strlen(dec) == dlen ? memchr(dec, ':', dlen) : NULL;
                        if (!colon)
                                r = -EINVAL;
                        else {
                                wipe_free(user);
                                wipe_free(pass);
                                user = strndup(dec, (size_t)(colon - (char *)dec));
                                pass = strdup(colon + 1);
                                if (!user || !pass) r = -ENOMEM;
                        }
                        base64_free_wiped(dec, dlen);
                }
        }
        if (r >= 0 && !user) r = (user = strdup("")) ? 0 : -ENOMEM;
        if (r >= 0 && !pass) r = (pass = strdup("")) ? 0 : -ENOMEM;
        wipe_free(auth);
        if (r < 0) {
                wipe_free(user);
                wipe_free(pass);
                return r;
        }
        a->username = user;
        a->password = pass;
        return 0;
}

int registry_authfile_add(registry_authfile *f, const char *type, const char *payload, size_t len,
                          const char *secret_name) {
        if (!f || !type || (!payload && len)) return -EINVAL;
        bool cj = streq(type, "kubernetes.io/dockerconfigjson");
        if (!cj && !streq(type, "kubernetes.io/dockercfg")) return -EINVAL;
        if (len > REGISTRY_AUTHFILE_MAX_BYTES) return -E2BIG;
        if (len == 0 || memchr(payload, 0, len)) return -EINVAL;

        json_tokener *tok = json_tokener_new();
        if (!tok) return -ENOMEM;
        json_object *root = json_tokener_parse_ex(tok, payload, (int)len);
        bool whole = json_tokener_get_error(tok) == json_tokener_success;
        if (whole) {
                /* only whitespace may follow the value */
                for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                        if (!strchr(" \t\r\n", payload[i])) whole = false;
        }
        json_tokener_free(tok);
        if (!whole || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return -EINVAL;
        }
        json_object *auths = root;
        if (cj && (!json_object_object_get_ex(root, "auths", &auths) ||
                   !json_object_is_type(auths, json_type_object))) {
                json_object_put(root);
                return -EINVAL;
        }

        size_t old_n = f->n;
        int r = 0;
        json_object_object_foreach(auths, key, entry) {
                char *norm = NULL;
                r = registry_key_normalize(key, &norm);
                if (r < 0) break;
                /* the kubelet ignores nothing silently; neither do we: a bad entry fails all */
                registry_auth a = {.registry = norm};
                r = parse_entry(entry, &a);
                if (r < 0) {
                        auth_done(&a);
                        break;
                }
                if (registry_authfile_find(f, norm)) {
                        auth_done(&a);
                        continue;
                }
                if (f->n >= REGISTRY_AUTHFILE_MAX_ENTRIES) {
                        auth_done(&a);
                        r = -E2BIG;
                        break;
                }
                if (secret_name && !(a.secret = strdup(secret_name))) r = -ENOMEM;
                if (r >= 0) r = GROW(f->v, f->cap, f->n + 1);
                if (r < 0) {
                        auth_done(&a);
                        break;
                }
                f->v[f->n++] = a;
        }
        json_object_put(root);
        if (r < 0) {
                while (f->n > old_n) auth_done(&f->v[--f->n]);
                if (f->n == 0) {
                        /* "as before" includes not holding an array an empty file had not */
                        free(f->v);
                        f->v = NULL;
                        f->cap = 0;
                }
                return r;
        }
        return (int)(f->n - old_n);
}

int registry_authfile_to_json(const registry_authfile *f, char **ret) {
        if (!f || !ret) return -EINVAL;
        json_object *root = json_object_new_object(), *auths = json_object_new_object();
        int r = root && auths ? 0 : -ENOMEM;
        if (r >= 0) {
                json_object_object_add(root, "auths", auths);
                auths = NULL;
        }
        json_object *ra = NULL;
        if (r >= 0) json_object_object_get_ex(root, "auths", &ra);
        for (size_t i = 0; r >= 0 && i < f->n; i++) {
                const registry_auth *a = &f->v[i];
                size_t ul = strlen(a->username), pl = strlen(a->password);
                char *plain = malloc(ul + pl + 2);
                if (!plain) {
                        r = -ENOMEM;
                        break;
                }
                memcpy(plain, a->username, ul);
                plain[ul] = ':';
                memcpy(plain + ul + 1, a->password, pl + 1);
                char *enc = NULL;
                r = base64_encode(plain, ul + pl + 1, 0, &enc, NULL);
                wipe_free(plain);
                if (r < 0) break;
                json_object *e = json_object_new_object(), *s = json_object_new_string(enc);
                wipe_free(enc);
                if (!e || !s || json_object_object_add(e, "auth", s) < 0) {
                        json_object_put(e);
                        json_object_put(s);
                        r = -ENOMEM;
                        break;
                }
                if (json_object_object_add(ra, a->registry, e) < 0) {
                        json_object_put(e);
                        r = -ENOMEM;
                }
        }
        char *out = NULL;
        if (r >= 0) {
                const char *t = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
                out = t ? strdup(t) : NULL;
                if (!out) r = -ENOMEM;
        }
        /* json-c keeps the serialisation in root: wipe it with the tree */
        if (root) {
                const char *t = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
                if (t) explicit_bzero((char *)t, strlen(t));
        }
        json_object_put(root);
        json_object_put(auths);
        if (r < 0) return r;
        *ret = out;
        return 0;
}

void registry_authfile_done(registry_authfile *f) {
        if (!f) return;
        for (size_t i = 0; i < f->n; i++) auth_done(&f->v[i]);
        free(f->v);
        *f = (registry_authfile){0};
}
