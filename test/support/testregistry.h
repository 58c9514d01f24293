/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A registry for tests (hack/test-registry.sh): Debian's docker-registry on 127.0.0.1 with
 * TLS (a CA made for the run) and htpasswd authentication, its state in
 * <root>/.registry/<name>/ (ignored by git).
 */
#ifndef PP_TEST_TESTREGISTRY_H
#define PP_TEST_TESTREGISTRY_H

typedef struct treg {
        char *dir;      /* state folder */
        char *host;     /* "127.0.0.1:PORT" */
        char *ca_file;  /* the CA's PEM */
        char *cert_dir; /* for skopeo --cert-dir */
        char *user, *password;
} treg;

/* Starts (or restarts, keeping CA and password) the registry `name`: 0 or -1 (with a message). */
int treg_start(treg *r, const char *name);
/* Stops it; the state stays, so treg_start() again serves the same content. */
int treg_stop(treg *r);
/* Stops it if running and frees the strings. */
void treg_done(treg *r);

#endif
