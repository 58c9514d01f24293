/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials of pull secrets, and the merge the kubelet makes of a pod's (or a
 * service account's) pull secrets.
 *
 * A kubernetes.io/dockerconfigjson secret holds {"auths": {KEY: ENTRY}}, a
 * kubernetes.io/dockercfg secret holds {KEY: ENTRY}, where ENTRY has "username" and
 * "password" and/or "auth" (base64 of "username:password", which wins when present, as in
 * the kubelet). KEY names a registry: a host[:port], optionally with a scheme and a path.
 *
 * The merge: the kubelet tries, for an image, the credentials of every secret whose key
 * matches, in the order of imagePullSecrets. An auth file (containers-auth.json, as skopeo
 * and podman read it) holds one entry per key, so the first secret that names a key gives
 * that key's entry: the one the kubelet tries first. Keys are normalised as the kubelet
 * does: the scheme and a trailing "/" dropped, and Docker Hub's names (index.docker.io,
 * index.docker.io/v1, registry-1.docker.io) become docker.io.
 *
 * Limits (the payload is a secret anyone with write access to it controls): at most
 * REGISTRY_AUTHFILE_MAX_BYTES of JSON, REGISTRY_AUTHFILE_MAX_ENTRIES keys in a merge, each
 * key at most 255 bytes and each credential at most 4096 bytes. Credentials are wiped from
 * memory when freed.
 */
#ifndef PP_REGISTRY_AUTHFILE_H
#define PP_REGISTRY_AUTHFILE_H

#include <stddef.h>

#define REGISTRY_AUTHFILE_MAX_BYTES   (1024 * 1024)
#define REGISTRY_AUTHFILE_MAX_ENTRIES 256
#define REGISTRY_KEY_MAX              255
#define REGISTRY_CRED_MAX             4096

typedef struct registry_auth {
        char *registry; /* normalised key */
        char *username; /* never NULL; may be "" */
        char *password; /* never NULL; may be "" */
        char *secret;   /* the secret it came from ("namespace/name"), for messages; may be NULL */
} registry_auth;

typedef struct registry_authfile {
        registry_auth *v;
        size_t n, cap;
} registry_authfile;

/*
 * Adds the entries of one secret (type "kubernetes.io/dockerconfigjson" or
 * "kubernetes.io/dockercfg"; payload the decoded JSON of its .dockerconfigjson or .dockercfg
 * key) after those already in f; a key already present keeps its entry. secret_name (may be
 * NULL) is remembered for messages. Returns the number of entries added, -EINVAL for an
 * unknown type or a payload that is not such JSON, -E2BIG past a limit, -ENOMEM. On failure
 * f is as before.
 */
int registry_authfile_add(registry_authfile *f, const char *type, const char *payload, size_t len,
                          const char *secret_name);

/* The auth file's JSON ({"auths": {KEY: {"auth": base64}}}): a new string, or -ENOMEM. */
int registry_authfile_to_json(const registry_authfile *f, char **ret);

/* The entry for a normalised key, or NULL. */
const registry_auth *registry_authfile_find(const registry_authfile *f, const char *key);

/* Wipes the credentials and frees everything; f is empty again. NULL is fine. */
void registry_authfile_done(registry_authfile *f);

/* The kubelet's normal form of a key (see above): a new string; -EINVAL for an empty, too
 * long or malformed key (control characters, spaces, no host), -ENOMEM. */
int registry_key_normalize(const char *key, char **ret);

/*
 * The base URL of a key's V2 API ("https://HOST[:PORT]"): docker.io's API lives at
 * registry-1.docker.io; a path of the key is dropped (V2 lives at the host's /v2/). A new
 * string, -EINVAL or -ENOMEM.
 */
int registry_key_api_base(const char *key, char **ret);

#endif
