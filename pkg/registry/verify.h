/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Proves a registry credential with the registry's own handshake (Docker Registry HTTP API
 * V2, the one `docker login` makes):
 *
 *   1. GET BASE/v2/ without credentials. 200: the registry asks for none (Verified: nothing
 *      can be rejected). 401 with a WWW-Authenticate challenge: go on. Anything else:
 *      Unreachable.
 *   2. Basic: GET BASE/v2/ again with the credentials.
 *      Bearer: GET REALM?service=SERVICE&account=USER with the credentials (HTTP Basic), read
 *      the token ("token" or "access_token") from the JSON answer, GET BASE/v2/ with it.
 *   3. 200: Verified. 401/403 (from /v2/ or from the token service): Rejected. Else
 *      Unreachable.
 *
 * Blocking, so meant for a worker thread: every request has a connect and a total timeout.
 * HTTPS only (the realm too: credentials are never sent in clear), peer and host verified
 * against the system's CAs or ca_file. Redirects are never followed, so credentials never
 * travel to a host the secret did not name or the registry's challenge did not give as realm.
 * Answers are read up to REGISTRY_MAX_BODY bytes. The detail text never holds credentials
 * nor tokens.
 */
#ifndef PP_REGISTRY_VERIFY_H
#define PP_REGISTRY_VERIFY_H

#define REGISTRY_MAX_BODY (64 * 1024)

typedef enum registry_outcome {
        REGISTRY_VERIFIED = 0,
        REGISTRY_REJECTED,
        REGISTRY_UNREACHABLE,
} registry_outcome;

typedef struct registry_verify_opts {
        const char *ca_file;     /* PEM bundle; NULL: the system's */
        long connect_timeout_ms; /* <= 0: 5000 */
        long timeout_ms;         /* per request; <= 0: 15000 */
} registry_verify_opts;

/*
 * Verifies username/password for a registry key (as in a pull secret; see
 * registry_key_api_base()). Returns 0 with the outcome in *ret and a new one-line detail in
 * *ret_detail (if non-NULL); -EINVAL for a bad key or arguments, -ENOMEM. Network and
 * protocol failures are an outcome (Unreachable), not an error.
 */
int registry_verify(const registry_verify_opts *opts, const char *key, const char *username,
                    const char *password, registry_outcome *ret, char **ret_detail);

/* "Verified", "CredentialsRejected", "RegistryUnreachable": the condition reasons. */
const char *registry_outcome_reason(registry_outcome o);

#endif
