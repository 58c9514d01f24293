/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/config.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/ratelimit.h"
#include "kube/yaml_json.h"
#include "util/base64.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/str.h"

#define SA_DIR         "var/run/secrets/kubernetes.io/serviceaccount"
#define MAX_SERVER_URL 2048

typedef struct blob {
        unsigned char *data;
        size_t len;
} blob;

struct kube_config {
        char *source;
        char *context;
        char *server;
        char *namespace;
        char *tls_server_name;
        char *proxy_url;
        bool insecure;
        bool allow_insecure_http_token;
        blob ca, cert, key;

        char *token;      /* a static token, or the last one read from token_file */
        char *token_file; /* absolute or relative to the process cwd; NULL: static */
        struct {
                dev_t dev;
                ino_t ino;
                off_t size;
                struct timespec mtime;
                double read_at;
        } token_stamp;
};

static void _printf_(2, 3) set_msg(char **ret_error, const char *fmt, ...) {
        if (!ret_error) return;
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0) m = NULL;
        va_end(ap);
        /* one line, as promised: names and paths from the file may hold control characters */
        for (char *p = m; p && *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
        free(*ret_error);
        *ret_error = m;
}

static void blob_free(blob *b) {
        if (b->data) explicit_bzero(b->data, b->len);
        free(b->data);
        b->data = NULL;
        b->len = 0;
}

static void free_secret(char *s) {
        if (s) explicit_bzero(s, strlen(s));
        free(s);
}

kube_config *kube_config_free(kube_config *c) {
        if (!c) return NULL;
        free(c->source);
        free(c->context);
        free(c->server);
        free(c->namespace);
        free(c->tls_server_name);
        free(c->proxy_url);
        blob_free(&c->ca);
        blob_free(&c->cert);
        blob_free(&c->key);
        free_secret(c->token);
        free(c->token_file);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(kube_config *, kube_config_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put);

/*
 * Reads a whole regular file of at most max bytes. Returns 0, -E2BIG, or a
 * negative errno from open/read. The buffer is NUL-terminated (not counted).
 */
static int read_file(const char *path, size_t max, char **ret, size_t *ret_len,
                     struct stat *ret_st) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (S_ISDIR(st.st_mode)) {
                close(fd);
                return -EISDIR;
        }
        if (st.st_size > (off_t)max) {
                close(fd);
                return -E2BIG;
        }
        size_t cap = (size_t)st.st_size + 1, len = 0;
        if (cap < 4096) cap = 4096;
        if (cap > max + 1) cap = max + 1;
        char *buf = malloc(cap + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                /* Read one byte past max so that a growing file is caught too. */
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR) continue;
                        int r = -errno;
                        free(buf);
                        close(fd);
                        return r;
                }
                if (n == 0) break;
                len += (size_t)n;
                if (len > max) {
                        free(buf);
                        close(fd);
                        return -E2BIG;
                }
                if (len == cap) {
                        size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
                        char *nb = realloc(buf, ncap + 1);
                        if (!nb) {
                                free(buf);
                                close(fd);
                                return -ENOMEM;
                        }
                        buf = nb;
                        cap = ncap;
                }
        }
        close(fd);
        buf[len] = 0;
        *ret = buf;
        *ret_len = len;
        if (ret_st) *ret_st = st;
        return 0;
}

static const char *file_error(int r) {
        if (r == -E2BIG) return "file too large";
        return strerror(-r);
}

/*
 * Kubeconfig "*-data" fields are written by people as well as tools: whitespace
 * (space, tab, CR, LF) may stand anywhere and the '=' padding may be left out, but
 * a partial last group must carry no stray low bits (Go's Strict decoding). The
 * shared decoder accepts a little more, so the rest is refused here.
 */
static int b64_decode(const char *s, size_t len, blob *ret) {
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        if (memchr(s, '\v', len) || memchr(s, '\f', len)) return -EBADMSG;
        void *out;
        size_t n;
        int r = base64_decode(s, len, BASE64_IGNORE_SPACE | BASE64_PADDING_OPTIONAL, 0, &out, &n);
        if (r == -ENOMEM) return r;
        if (r < 0) return -EBADMSG;
        if (n % 3) {
                /* n % 3 == 1: the last character carries 4 unused bits; == 2: 2 bits */
                size_t i = len;
                while (i > 0 && (s[i - 1] == '=' || strchr(" \t\r\n", s[i - 1]))) i--;
                size_t v = (size_t)(strchr(alphabet, s[i - 1]) - alphabet);
                if (v & (n % 3 == 1 ? 0xF : 0x3)) {
                        base64_free_wiped(out, n);
                        return -EBADMSG;
                }
        }
        ret->data = out;
        ret->len = n;
        return 0;
}

static bool looks_like_pem(const blob *b) {
        return b->len > 0 && memmem(b->data, b->len, "-----BEGIN ", 11);
}

/*
 * The directory part of path, made absolute so that a token file named
 * relative to it can be re-read after the process changed directory.
 */
static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *d = NULL;
        if (!slash)
                d = strdup(".");
        else if (slash == path)
                return strdup("/");
        else
                d = strndup(path, (size_t)(slash - path));
        if (!d) return NULL;
        if (d[0] == '/') return TAKE_PTR(d);
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd) return TAKE_PTR(d);
        char *r;
        /* TAKE_PTR(d) above returns: cppcheck misreads it as falling through. */
        // cppcheck-suppress nullPointer
        if (streq(d, ".")) return TAKE_PTR(cwd);
        if (asprintf(&r, "%s/%s", cwd, d) < 0) return NULL;
        return r;
}

static char *resolve_path(const char *dir, const char *p) {
        char *r;
        if (p[0] == '/' || !dir) return strdup(p);
        if (asprintf(&r, "%s/%s", dir, p) < 0) return NULL;
        return r;
}

/* One kubeconfig file being merged. */
typedef struct kfile {
        char *path;
        char *dir;
        struct json_object *root;
} kfile;

/* A named entry of clusters/users/contexts, from the first file that has it. */
typedef struct entry {
        const char *name;
        struct json_object *obj; /* the inner "cluster"/"user"/"context" mapping */
        size_t file;
        size_t index;
} entry;

typedef struct loader {
        kfile *files;
        size_t n_files, cap_files;
        entry *lists[3];
        size_t n[3], cap[3];
        const char *current_context; /* borrowed from a file's root */
        size_t current_context_file;
        char **error;
} loader;

enum { L_CLUSTERS, L_USERS, L_CONTEXTS };
static const char *const list_key[3] = {"clusters", "users", "contexts"};
static const char *const item_key[3] = {"cluster", "user", "context"};

static void loader_done(loader *l) {
        for (size_t i = 0; i < l->n_files; i++) {
                free(l->files[i].path);
                free(l->files[i].dir);
                json_object_put(l->files[i].root);
        }
        free(l->files);
        for (size_t i = 0; i < 3; i++) free(l->lists[i]);
}

static const char *type_name(struct json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "a boolean";
        case json_type_double:
        case json_type_int:
                return "a number";
        case json_type_object:
                return "a mapping";
        case json_type_array:
                return "a list";
        case json_type_string:
                return "a string";
        }
        return "?";
}

static int add_file(loader *l, const char *path, bool must_exist) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file(path, KUBE_CONFIG_MAX_FILE, &data, &len, NULL);
        if (r == -ENOENT && !must_exist) return 0;
        if (r < 0) {
                set_msg(l->error, "%s: %s", path, file_error(r));
                return r;
        }

        yaml_json_limits lim = {.max_bytes = KUBE_CONFIG_MAX_FILE, .max_depth = 32};
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        _cleanup_free_ char *yerr = NULL;
        r = yaml_json_parse(data, len, &lim, &root, &yerr);
        if (r < 0) {
                set_msg(l->error, "%s: %s", path, yerr ? yerr : "invalid YAML");
                return r;
        }
        if (root && !json_object_is_type(root, json_type_object)) {
                set_msg(l->error, "%s: expected a mapping at the top, found %s", path,
                        type_name(root));
                return -EBADMSG;
        }
        if (l->n_files >= KUBE_CONFIG_MAX_FILES) {
                set_msg(l->error, "%s: more than %u kubeconfig files", path, KUBE_CONFIG_MAX_FILES);
                return -E2BIG;
        }
        if (GROW(l->files, l->cap_files, l->n_files + 1) < 0) return -ENOMEM;
        kfile *f = &l->files[l->n_files];
        *f = (kfile){strdup(path), dir_of(path), NULL};
        l->n_files++;
        if (!f->path || !f->dir) return -ENOMEM;
        f->root = TAKE_PTR(root);
        if (!f->root) return 0; /* an empty file is an empty config */

        struct json_object *cc = jsonutil_member(f->root, "current-context");
        if (cc) {
                if (!json_object_is_type(cc, json_type_string)) {
                        set_msg(l->error, "%s: current-context: expected a string, found %s", path,
                                type_name(cc));
                        return -EBADMSG;
                }
                if (!l->current_context && json_object_get_string_len(cc) > 0) {
                        l->current_context = json_object_get_string(cc);
                        l->current_context_file = l->n_files - 1;
                }
        }

        for (size_t k = 0; k < 3; k++) {
                struct json_object *list = jsonutil_member(f->root, list_key[k]);
                if (!list) continue;
                if (!json_object_is_type(list, json_type_array)) {
                        set_msg(l->error, "%s: %s: expected a list, found %s", path, list_key[k],
                                type_name(list));
                        return -EBADMSG;
                }
                size_t n = json_object_array_length(list);
                for (size_t i = 0; i < n; i++) {
                        struct json_object *e = json_object_array_get_idx(list, i), *name,
                                           *inner = NULL;
                        if (!json_object_is_type(e, json_type_object)) {
                                set_msg(l->error, "%s: %s[%zu]: expected a mapping, found %s", path,
                                        list_key[k], i, type_name(e));
                                return -EBADMSG;
                        }
                        if (!json_object_object_get_ex(e, "name", &name) ||
                            !json_object_is_type(name, json_type_string) ||
                            json_object_get_string_len(name) == 0) {
                                set_msg(l->error, "%s: %s[%zu].name: missing or not a string", path,
                                        list_key[k], i);
                                return -EBADMSG;
                        }
                        json_object_object_get_ex(e, item_key[k], &inner);
                        if (inner && !json_object_is_type(inner, json_type_object) &&
                            !json_object_is_type(inner, json_type_null)) {
                                set_msg(l->error, "%s: %s[%zu].%s: expected a mapping, found %s",
                                        path, list_key[k], i, item_key[k], type_name(inner));
                                return -EBADMSG;
                        }
                        const char *nm = json_object_get_string(name);
                        bool seen = false;
                        for (size_t j = 0; j < l->n[k] && !seen; j++)
                                seen = streq(l->lists[k][j].name, nm);
                        if (seen) continue; /* the first file to define a name wins */
                        if (GROW(l->lists[k], l->cap[k], l->n[k] + 1) < 0) return -ENOMEM;
                        l->lists[k][l->n[k]++] = (entry){nm, inner, l->n_files - 1, i};
                }
        }
        return 0;
}

static const entry *find_entry(const loader *l, int k, const char *name) {
        for (size_t i = 0; i < l->n[k]; i++)
                if (streq(l->lists[k][i].name, name)) return &l->lists[k][i];
        return NULL;
}

/* Field access on one entry, with the "file: list[i].item.field" error prefix. */
typedef struct field_ctx {
        const loader *l;
        const entry *e;
        int kind;
} field_ctx;

static void _printf_(3, 4)
    field_error(const field_ctx *f, const char *field, const char *fmt, ...) {
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0) m = NULL;
        va_end(ap);
        set_msg(f->l->error, "%s: %s[%zu].%s.%s: %s", f->l->files[f->e->file].path,
                list_key[f->kind], f->e->index, item_key[f->kind], field, m ? m : "invalid");
        free(m);
}

/* *ret borrowed; NULL when absent, null or "". */
static int get_str(const field_ctx *f, const char *field, const char **ret) {
        struct json_object *v = jsonutil_member(f->e->obj, field);
        *ret = NULL;
        if (!v) return 0;
        if (!json_object_is_type(v, json_type_string)) {
                field_error(f, field, "expected a string, found %s", type_name(v));
                return -EBADMSG;
        }
        if ((size_t)json_object_get_string_len(v) != strlen(json_object_get_string(v))) {
                field_error(f, field, "contains a NUL byte");
                return -EBADMSG;
        }
        if (json_object_get_string_len(v) > 0) *ret = json_object_get_string(v);
        return 0;
}

static int get_bool(const field_ctx *f, const char *field, bool *ret) {
        struct json_object *v = jsonutil_member(f->e->obj, field);
        *ret = false;
        if (!v) return 0;
        if (!json_object_is_type(v, json_type_boolean)) {
                field_error(f, field, "expected true or false, found %s", type_name(v));
                return -EBADMSG;
        }
        *ret = json_object_get_boolean(v);
        return 0;
}

static bool has_key(const field_ctx *f, const char *field) {
        return jsonutil_member(f->e->obj, field) != NULL;
}

/*
 * Loads PEM from "<field>-data" (base64) or else from the file "<field>",
 * resolved against the kubeconfig's directory.
 */
static int get_pem(const field_ctx *f, const char *field, blob *ret) {
        _cleanup_free_ char *data_field = NULL;
        const char *data, *file;
        int r;
        if (asprintf(&data_field, "%s-data", field) < 0) return -ENOMEM;
        if ((r = get_str(f, data_field, &data)) < 0) return r;
        if ((r = get_str(f, field, &file)) < 0) return r;
        if (data) {
                if (strlen(data) > KUBE_CONFIG_MAX_CRED / 3 * 4 + 16) {
                        field_error(f, data_field, "longer than %u bytes", KUBE_CONFIG_MAX_CRED);
                        return -E2BIG;
                }
                r = b64_decode(data, strlen(data), ret);
                if (r == -ENOMEM) return r;
                if (r < 0) {
                        field_error(f, data_field, "invalid base64");
                        return r;
                }
                if (!looks_like_pem(ret)) {
                        blob_free(ret);
                        field_error(f, data_field, "not PEM data");
                        return -EBADMSG;
                }
                return 0;
        }
        if (!file) return 0;
        _cleanup_free_ char *p = resolve_path(f->l->files[f->e->file].dir, file);
        if (!p) return -ENOMEM;
        char *buf;
        size_t len;
        r = read_file(p, KUBE_CONFIG_MAX_CRED, &buf, &len, NULL);
        if (r < 0) {
                field_error(f, field, "%s: %s", p, file_error(r));
                return r;
        }
        ret->data = (unsigned char *)buf;
        ret->len = len;
        if (!looks_like_pem(ret)) {
                blob_free(ret);
                field_error(f, field, "%s: not PEM data", p);
                return -EBADMSG;
        }
        return 0;
}

/* Accepts "https://h[:p][/prefix]", "http://...", or "h:p" (https implied). */
static int normalize_server(const char *s, char **ret) {
        size_t len = strlen(s);
        if (len > MAX_SERVER_URL) return -E2BIG;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) return -EBADMSG;
        char *u;
        const char *sep = strstr(s, "://");
        if (!sep) {
                if (asprintf(&u, "https://%s", s) < 0) return -ENOMEM;
        } else if (!strncasecmp(s, "https://", 8) || !strncasecmp(s, "http://", 7)) {
                u = strdup(s);
                if (!u) return -ENOMEM;
        } else {
                return -EPROTONOSUPPORT;
        }
        size_t ul = strlen(u);
        while (ul > 0 && u[ul - 1] == '/') u[--ul] = 0;
        const char *host = strstr(u, "://") + 3;
        if (!*host || *host == '/') {
                free(u);
                return -EBADMSG;
        }
        *ret = u;
        return 0;
}

static int build_from_kubeconfig(loader *l, const char *context, const char *source,
                                 kube_config **ret) {
        const char *ctx_name = context && *context ? context : l->current_context;
        if (!ctx_name) {
                set_msg(l->error, "%s: no context given and current-context is not set", source);
                return -ENOENT;
        }
        const entry *ce = find_entry(l, L_CONTEXTS, ctx_name);
        if (!ce) {
                set_msg(l->error, "%s: context \"%s\" not found", source, ctx_name);
                return -ENOENT;
        }
        field_ctx cf = {l, ce, L_CONTEXTS};
        const char *cluster_name, *user_name, *ns;
        int r;
        if ((r = get_str(&cf, "cluster", &cluster_name)) < 0) return r;
        if ((r = get_str(&cf, "user", &user_name)) < 0) return r;
        if ((r = get_str(&cf, "namespace", &ns)) < 0) return r;
        if (!cluster_name) {
                field_error(&cf, "cluster", "missing");
                return -EBADMSG;
        }
        const entry *cle = find_entry(l, L_CLUSTERS, cluster_name);
        if (!cle) {
                set_msg(l->error, "%s: cluster \"%s\" (of context \"%s\") not found", source,
                        cluster_name, ctx_name);
                return -ENOENT;
        }
        const entry *ue = NULL;
        if (user_name) {
                ue = find_entry(l, L_USERS, user_name);
                if (!ue) {
                        set_msg(l->error, "%s: user \"%s\" (of context \"%s\") not found", source,
                                user_name, ctx_name);
                        return -ENOENT;
                }
        }

        _cleanup_(kube_config_freep) kube_config *c = calloc(1, sizeof(*c));
        if (!c) return -ENOMEM;
        c->source = strdup(source);
        c->context = strdup(ctx_name);
        if (!c->source || !c->context) return -ENOMEM;
        if (ns && !(c->namespace = strdup(ns))) return -ENOMEM;

        /* cluster */
        field_ctx f = {l, cle, L_CLUSTERS};
        const char *server, *tsn, *proxy;
        if ((r = get_str(&f, "server", &server)) < 0) return r;
        if (!server) {
                field_error(&f, "server", "missing");
                return -EBADMSG;
        }
        r = normalize_server(server, &c->server);
        if (r == -ENOMEM) return r;
        if (r < 0) {
                field_error(&f, "server", "%s",
                            r == -EPROTONOSUPPORT ? "scheme must be https:// or http://"
                            : r == -E2BIG         ? "too long"
                                                  : "not a valid URL");
                return r == -E2BIG ? r : -EBADMSG;
        }
        if ((r = get_str(&f, "tls-server-name", &tsn)) < 0) return r;
        if (tsn && !(c->tls_server_name = strdup(tsn))) return -ENOMEM;
        if ((r = get_str(&f, "proxy-url", &proxy)) < 0) return r;
        if (proxy && !(c->proxy_url = strdup(proxy))) return -ENOMEM;
        if ((r = get_bool(&f, "insecure-skip-tls-verify", &c->insecure)) < 0) return r;
        if ((r = get_pem(&f, "certificate-authority", &c->ca)) < 0) return r;
        if (c->insecure && c->ca.len) {
                field_error(&f, "insecure-skip-tls-verify",
                            "a certificate authority cannot be combined with it");
                return -EBADMSG;
        }

        /* user */
        if (ue) {
                field_ctx u = {l, ue, L_USERS};
                const char *token, *token_file;
                if (has_key(&u, "exec")) {
                        field_error(&u, "exec", "exec credential plugins are not supported");
                        return -EOPNOTSUPP;
                }
                if (has_key(&u, "auth-provider")) {
                        field_error(&u, "auth-provider", "auth providers are not supported");
                        return -EOPNOTSUPP;
                }
                if ((r = get_str(&u, "token", &token)) < 0) return r;
                if ((r = get_str(&u, "tokenFile", &token_file)) < 0) return r;
                if ((r = get_pem(&u, "client-certificate", &c->cert)) < 0) return r;
                if ((r = get_pem(&u, "client-key", &c->key)) < 0) return r;
                if (!!c->cert.len != !!c->key.len) {
                        field_error(&u, c->cert.len ? "client-key" : "client-certificate",
                                    "missing (both a client certificate and a key are needed)");
                        return -EBADMSG;
                }
                if (token && strlen(token) > KUBE_CONFIG_MAX_CRED) {
                        field_error(&u, "token", "too long");
                        return -E2BIG;
                }
                if (token && !(c->token = strdup(token))) return -ENOMEM;
                if (token_file) {
                        c->token_file = resolve_path(l->files[ue->file].dir, token_file);
                        if (!c->token_file) return -ENOMEM;
                        /* Read now so that a broken path fails at start-up. */
                        const char *t;
                        r = kube_config_token(c, &t);
                        if (r < 0) {
                                field_error(&u, "tokenFile", "%s: %s", c->token_file,
                                            r == -EBADMSG ? "empty or not a token" : file_error(r));
                                return r;
                        }
                }
                if (!token && !token_file && !c->cert.len &&
                    (has_key(&u, "username") || has_key(&u, "password"))) {
                        field_error(&u, "username", "basic authentication is not supported");
                        return -EOPNOTSUPP;
                }
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static char *home_kubeconfig(void) {
        const char *home = getenv("HOME");
        if (!home || !*home) {
                struct passwd *pw = getpwuid(getuid());
                home = pw ? pw->pw_dir : NULL;
        }
        if (!home) return NULL;
        char *p;
        if (asprintf(&p, "%s/.kube/config", home) < 0) return NULL;
        return p;
}

int kube_config_load_kubeconfig(const char *paths, const char *context, kube_config **ret,
                                char **ret_error) {
        _cleanup_free_ char *list = NULL, *err = NULL;
        bool must_exist = true;
        if (paths && *paths) {
                list = strdup(paths);
        } else {
                const char *env = getenv("KUBECONFIG");
                if (env && *env) {
                        list = strdup(env);
                        must_exist = false;
                } else {
                        list = home_kubeconfig();
                }
        }
        if (!list) return -ENOMEM;

        loader l = {.error = &err};
        _cleanup_free_ char *source = NULL;
        size_t source_len = 0;
        int r = 0;
        char *save = NULL;
        for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
                size_t before = l.n_files;
                r = add_file(&l, p, must_exist);
                if (r < 0) goto out;
                if (l.n_files == before) continue;
                size_t pl = strlen(p);
                char *ns = realloc(source, source_len + pl + 2);
                if (!ns) {
                        r = -ENOMEM;
                        goto out;
                }
                source = ns;
                if (source_len) source[source_len++] = ':';
                memcpy(source + source_len, p, pl + 1);
                source_len += pl;
        }
        if (l.n_files == 0) {
                set_msg(&err, "no kubeconfig file found (%s)",
                        must_exist ? paths && *paths ? paths : "~/.kube/config" : "$KUBECONFIG");
                r = -ENOENT;
                goto out;
        }
        r = build_from_kubeconfig(&l, context, source, ret);
out:
        loader_done(&l);
        if (r < 0 && ret_error) {
                if (!err) err = strdup(strerror(-r));
                *ret_error = TAKE_PTR(err);
        }
        return r;
}

/* The first line of a small file, trimmed; -ENOENT etc. from open. */
static int read_trimmed(const char *path, size_t max, char **ret, struct stat *ret_st) {
        char *buf;
        size_t len;
        int r = read_file(path, max, &buf, &len, ret_st);
        if (r < 0) return r;
        if (strlen(buf) != len) {
                free_secret(buf);
                return -EBADMSG;
        }
        size_t a = 0;
        while (a < len && strchr(" \t\r\n", buf[a])) a++;
        while (len > a && strchr(" \t\r\n", buf[len - 1])) len--;
        memmove(buf, buf + a, len - a);
        buf[len - a] = 0;
        *ret = buf;
        return 0;
}

int kube_config_load_incluster(const char *root, kube_config **ret, char **ret_error) {
        _cleanup_free_ char *err = NULL, *dir = NULL, *ca_path = NULL, *ns_path = NULL;
        _cleanup_(kube_config_freep) kube_config *c = NULL;
        int r;
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");

        if (!host || !*host || !port || !*port) {
                set_msg(&err, "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                              "must be set");
                r = -ENXIO;
                goto out;
        }
        size_t pl = strspn(port, "0123456789");
        if (pl == 0 || pl > 5 || port[pl] || atoi(port) > 65535 || atoi(port) == 0) {
                set_msg(&err, "in-cluster: KUBERNETES_SERVICE_PORT: not a port: \"%.16s\"", port);
                r = -EBADMSG;
                goto out;
        }
        if (strlen(host) > 255 || strpbrk(host, "/@?#[] \t\r\n")) {
                set_msg(&err, "in-cluster: KUBERNETES_SERVICE_HOST: not a host name or address");
                r = -EBADMSG;
                goto out;
        }

        c = calloc(1, sizeof(*c));
        if (!c) goto nomem;
        bool v6 = strchr(host, ':');
        if (asprintf(&c->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) <
            0) {
                c->server = NULL;
                goto nomem;
        }
        c->source = strdup("in-cluster");
        if (!c->source) goto nomem;

        if (asprintf(&dir, "%s/" SA_DIR, root && *root ? root : "") < 0) {
                dir = NULL;
                goto nomem;
        }
        if (asprintf(&c->token_file, "%s/token", dir) < 0 ||
            asprintf(&ca_path, "%s/ca.crt", dir) < 0 ||
            asprintf(&ns_path, "%s/namespace", dir) < 0) {
                c->token_file = ca_path = ns_path = NULL;
                goto nomem;
        }

        const char *t;
        r = kube_config_token(c, &t);
        if (r < 0) {
                set_msg(&err, "in-cluster: %s: %s", c->token_file,
                        r == -EBADMSG ? "empty or not a token" : file_error(r));
                goto out;
        }

        char *ca;
        size_t ca_len;
        r = read_file(ca_path, KUBE_CONFIG_MAX_CRED, &ca, &ca_len, NULL);
        if (r < 0) {
                set_msg(&err, "in-cluster: %s: %s", ca_path, file_error(r));
                goto out;
        }
        c->ca = (blob){(unsigned char *)ca, ca_len};
        if (!looks_like_pem(&c->ca)) {
                set_msg(&err, "in-cluster: %s: not PEM data", ca_path);
                r = -EBADMSG;
                goto out;
        }

        char *ns;
        r = read_trimmed(ns_path, 253 + 2, &ns, NULL);
        if (r == 0 && *ns)
                c->namespace = ns;
        else if (r == 0)
                free(ns);
        else if (r != -ENOENT) {
                set_msg(&err, "in-cluster: %s: %s", ns_path,
                        r == -EBADMSG ? "not a namespace name" : file_error(r));
                goto out;
        }

        *ret = TAKE_PTR(c);
        return 0;
nomem:
        r = -ENOMEM;
out:
        if (ret_error) {
                if (!err) err = strdup(strerror(-r));
                *ret_error = TAKE_PTR(err);
        }
        return r;
}

int kube_config_load_default(const char *kubeconfig, const char *context, kube_config **ret,
                             char **ret_error) {
        if (kubeconfig && *kubeconfig)
                return kube_config_load_kubeconfig(kubeconfig, context, ret, ret_error);
        const char *env = getenv("KUBECONFIG");
        if (env && *env) return kube_config_load_kubeconfig(NULL, context, ret, ret_error);
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        if (host && *host) return kube_config_load_incluster(NULL, ret, ret_error);
        return kube_config_load_kubeconfig(NULL, context, ret, ret_error);
}

static int blob_copy(const blob *src, blob *dst) {
        if (!src->data) return 0;
        dst->data = malloc(src->len + 1);
        if (!dst->data) return -ENOMEM;
        memcpy(dst->data, src->data, src->len);
        dst->data[src->len] = 0;
        dst->len = src->len;
        return 0;
}

int kube_config_copy(const kube_config *src, kube_config **ret) {
        _cleanup_(kube_config_freep) kube_config *c = calloc(1, sizeof(*c));
        if (!c) return -ENOMEM;
        c->insecure = src->insecure;
        c->allow_insecure_http_token = src->allow_insecure_http_token;
        c->token_stamp = src->token_stamp;
        if (str_dup_opt(src->source, &c->source) < 0 ||
            str_dup_opt(src->context, &c->context) < 0 ||
            str_dup_opt(src->server, &c->server) < 0 ||
            str_dup_opt(src->namespace, &c->namespace) < 0 ||
            str_dup_opt(src->tls_server_name, &c->tls_server_name) < 0 ||
            str_dup_opt(src->proxy_url, &c->proxy_url) < 0 ||
            str_dup_opt(src->token, &c->token) < 0 ||
            str_dup_opt(src->token_file, &c->token_file) < 0 || blob_copy(&src->ca, &c->ca) < 0 ||
            blob_copy(&src->cert, &c->cert) < 0 || blob_copy(&src->key, &c->key) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

const char *kube_config_server(const kube_config *c) {
        return c->server;
}
const char *kube_config_namespace(const kube_config *c) {
        return c->namespace ? c->namespace : "default";
}
bool kube_config_namespace_explicit(const kube_config *c) {
        return c->namespace;
}
bool kube_config_insecure(const kube_config *c) {
        return c->insecure;
}
bool kube_config_plain_http(const kube_config *c) {
        return c->server && !strncasecmp(c->server, "http://", 7);
}
bool kube_config_has_token(const kube_config *c) {
        return c->token || c->token_file;
}
void kube_config_set_allow_insecure_http_token(kube_config *c, bool allow) {
        c->allow_insecure_http_token = allow;
}
bool kube_config_allow_insecure_http_token(const kube_config *c) {
        return c->allow_insecure_http_token;
}
const char *kube_config_source(const kube_config *c) {
        return c->source;
}
const char *kube_config_context(const kube_config *c) {
        return c->context;
}
const char *kube_config_tls_server_name(const kube_config *c) {
        return c->tls_server_name;
}
const char *kube_config_proxy_url(const kube_config *c) {
        return c->proxy_url;
}

static const void *blob_get(const blob *b, size_t *ret_len) {
        if (ret_len) *ret_len = b->len;
        return b->len ? b->data : NULL;
}
const void *kube_config_ca(const kube_config *c, size_t *ret_len) {
        return blob_get(&c->ca, ret_len);
}
const void *kube_config_client_cert(const kube_config *c, size_t *ret_len) {
        return blob_get(&c->cert, ret_len);
}
const void *kube_config_client_key(const kube_config *c, size_t *ret_len) {
        return blob_get(&c->key, ret_len);
}

static bool token_chars_ok(const char *t) {
        if (!*t) return false;
        for (; *t; t++)
                if ((unsigned char)*t < 0x21 || (unsigned char)*t > 0x7e) return false;
        return true;
}

int kube_config_token(kube_config *c, const char **ret) {
        if (!c->token_file) {
                *ret = c->token;
                return 0;
        }
        double now = kube_now();
        struct stat st;
        bool have = c->token != NULL;
        if (have && stat(c->token_file, &st) == 0 && st.st_dev == c->token_stamp.dev &&
            st.st_ino == c->token_stamp.ino && st.st_size == c->token_stamp.size &&
            st.st_mtim.tv_sec == c->token_stamp.mtime.tv_sec &&
            st.st_mtim.tv_nsec == c->token_stamp.mtime.tv_nsec &&
            now - c->token_stamp.read_at < KUBE_CONFIG_TOKEN_REFRESH_SEC) {
                *ret = c->token;
                return 0;
        }

        char *t;
        int r = read_trimmed(c->token_file, KUBE_CONFIG_MAX_CRED, &t, &st);
        if (r == 0 && !token_chars_ok(t)) {
                free_secret(t);
                r = -EBADMSG;
        }
        if (r < 0) {
                if (r == -E2BIG) r = -EBADMSG;
                if (!have) return r;
                /* Keep serving the old token; try again on the next call. */
                *ret = c->token;
                return 0;
        }
        free_secret(c->token);
        c->token = t;
        c->token_stamp.dev = st.st_dev;
        c->token_stamp.ino = st.st_ino;
        c->token_stamp.size = st.st_size;
        c->token_stamp.mtime = st.st_mtim;
        c->token_stamp.read_at = now;
        *ret = c->token;
        return 0;
}
