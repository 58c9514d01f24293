/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_config: where the apiserver is and how to authenticate to it, loaded
 * from kubeconfig files or from the in-cluster service account.
 *
 * Credentials stay in memory: base64 "*-data" fields are decoded, and files
 * named by certificate-authority / client-certificate / client-key are read
 * at load time, so the client hands them to curl as blobs and nothing is
 * written to disk. A token file (kubeconfig tokenFile, or the in-cluster
 * projected token) is re-read when it changes; see kube_config_token().
 *
 * TLS verification is never turned off implicitly: only an explicit
 * "insecure-skip-tls-verify: true" on the selected cluster does, and
 * kube_config_insecure() reports it so the caller can warn.
 *
 * Errors are reported as one line in *ret_error naming the file and the
 * field, e.g.
 *     /x/kubeconfig: users[0].user.client-key-data: invalid base64
 *     /x/kubeconfig: context "foo" not found
 *     /x/kubeconfig: clusters[1].cluster.server: missing
 * Only the selected context, cluster and user are checked in depth, as
 * kubectl does: a broken entry that is not used does not stop loading.
 *
 * Limits: a kubeconfig file may hold at most KUBE_CONFIG_MAX_FILE bytes,
 * nest at most 32 levels deep, and use no YAML anchors/aliases; at most
 * KUBE_CONFIG_MAX_FILES files are merged; a CA bundle, certificate, key or
 * token at most KUBE_CONFIG_MAX_CRED bytes.
 *
 * Example:
 *
 *     kube_config *cfg; char *err;
 *     if (kube_config_load_default(flag_kubeconfig, NULL, &cfg, &err) < 0) {
 *             fprintf(stderr, "%s\n", err); free(err); exit(1);
 *     }
 *     if (kube_config_insecure(cfg)) warn("TLS verification is disabled");
 */
#ifndef PP_KUBE_CONFIG_H
#define PP_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define KUBE_CONFIG_MAX_FILE  (4u * 1024 * 1024)
#define KUBE_CONFIG_MAX_FILES 64u
#define KUBE_CONFIG_MAX_CRED  (1u * 1024 * 1024)
/* A token file is re-read at least this often even if it looks unchanged. */
#define KUBE_CONFIG_TOKEN_REFRESH_SEC 60.0

typedef struct kube_config kube_config;

/*
 * Loads a kubeconfig. paths is a colon-separated list of files (NULL:
 * $KUBECONFIG if set and non-empty, else ~/.kube/config). With several
 * files they are merged as kubectl does: for clusters, users and contexts
 * the first file that defines a name wins; current-context comes from the
 * first file that sets it. Files named in $KUBECONFIG that do not exist are
 * skipped (at least one must exist); files given in paths must exist.
 * context NULL selects current-context. Relative paths inside a file are
 * resolved against that file's directory.
 *
 * Returns 0 and *ret, or a negative errno with *ret_error set (if
 * ret_error is non-NULL; free it): -ENOENT (no file / no such context,
 * cluster or user), -EBADMSG (malformed), -E2BIG (over a limit),
 * -EOPNOTSUPP (exec / auth-provider credentials, basic auth), -ENOMEM.
 */
int kube_config_load_kubeconfig(const char *paths, const char *context, kube_config **ret,
                                char **ret_error);

/*
 * Loads the in-cluster configuration: $KUBERNETES_SERVICE_HOST and
 * $KUBERNETES_SERVICE_PORT (an IPv6 host is bracketed), and
 * <root>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}.
 * root NULL means "/"; tests pass a temporary directory. The token file is
 * kept as a path and re-read when it rotates; the namespace file is
 * optional. Errors as above; -ENXIO when the environment variables are
 * unset (not running in a cluster).
 */
int kube_config_load_incluster(const char *root, kube_config **ret, char **ret_error);

/*
 * The usual precedence: an explicit kubeconfig (the --kubeconfig flag, may
 * be a colon-separated list), else $KUBECONFIG, else in-cluster when
 * $KUBERNETES_SERVICE_HOST is set, else ~/.kube/config. context applies to
 * kubeconfigs only (ignored in-cluster).
 */
int kube_config_load_default(const char *kubeconfig, const char *context, kube_config **ret,
                             char **ret_error);

/* A deep copy with its own token cache (the client keeps one). */
int kube_config_copy(const kube_config *c, kube_config **ret);

kube_config *kube_config_free(kube_config *c);

/* "https://host:port" or with a path prefix; never ends in '/'. */
const char *kube_config_server(const kube_config *c);
/* The context's namespace, or the in-cluster namespace file; "default" if unset. */
const char *kube_config_namespace(const kube_config *c);
/* Whether the namespace came from the config rather than the "default" fallback. */
bool kube_config_namespace_explicit(const kube_config *c);
/* True only for an explicit insecure-skip-tls-verify: true. */
bool kube_config_insecure(const kube_config *c);
/*
 * True when the server is http://: nothing is encrypted, so a bearer token
 * would travel in clear text. The client then refuses to send one (requests
 * fail with -EACCES) unless kube_config_set_allow_insecure_http_token() said
 * otherwise; over http:// a client certificate is never used and basic auth
 * is not supported at all.
 */
bool kube_config_plain_http(const kube_config *c);
/* Whether requests would carry a bearer token (static or from a file). */
bool kube_config_has_token(const kube_config *c);
/* Off unless set; kube_config_copy() keeps it. */
void kube_config_set_allow_insecure_http_token(kube_config *c, bool allow);
bool kube_config_allow_insecure_http_token(const kube_config *c);
/* The file(s) the config came from, or "in-cluster"; for messages. */
const char *kube_config_source(const kube_config *c);
/* The selected context's name; NULL in-cluster. */
const char *kube_config_context(const kube_config *c);
/* A name that the server's certificate must match instead of the URL's host; or NULL. */
const char *kube_config_tls_server_name(const kube_config *c);
/* The cluster's proxy-url, or NULL (curl then follows the usual proxy variables). */
const char *kube_config_proxy_url(const kube_config *c);

/*
 * PEM data held in memory (CA bundle, client certificate, client key);
 * *ret_len 0 and NULL when absent. Pointers stay valid until the config is
 * freed.
 */
const void *kube_config_ca(const kube_config *c, size_t *ret_len);
const void *kube_config_client_cert(const kube_config *c, size_t *ret_len);
const void *kube_config_client_key(const kube_config *c, size_t *ret_len);

/*
 * The bearer token to send now, or NULL in *ret when the config has none
 * (client certificates only). A token file is re-read when its inode, size
 * or mtime changed, and at least every KUBE_CONFIG_TOKEN_REFRESH_SEC
 * seconds; if re-reading fails the previous token is kept (kubelet swaps
 * the file by renaming a symlink, so a reader may race it) and the error is
 * returned only when no token was ever read. *ret points into c and is valid
 * until the next call or kube_config_free(). Returns 0, or a negative errno
 * (-ENOENT, -EBADMSG for an empty/oversized file, -EACCES).
 */
int kube_config_token(kube_config *c, const char **ret);

#endif
