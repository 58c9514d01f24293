/* SPDX-License-Identifier: Apache-2.0 */
#include "testregistry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubetest.h"

static char *slurp_line(const char *dir, const char *file) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        FILE *f = fopen(path, "re");
        if (!f) return NULL;
        char buf[512] = "";
        char *s = fgets(buf, sizeof(buf), f) ? strdup(buf) : NULL;
        fclose(f);
        if (s) s[strcspn(s, "\r\n")] = 0;
        return s;
}

static void clear(treg *r) {
        free(r->host);
        free(r->ca_file);
        free(r->cert_dir);
        free(r->user);
        free(r->password);
        r->host = r->ca_file = r->cert_dir = r->user = r->password = NULL;
}

int treg_start(treg *r, const char *name) {
        if (!r->dir && asprintf(&r->dir, "%s/.registry/%s", kt_root(), name) < 0) return -1;
        char *cmd = NULL;
        if (asprintf(&cmd, "bash '%s/hack/test-registry.sh' start '%s'", kt_root(), r->dir) < 0)
                return -1;
        int rc = system(cmd);
        free(cmd);
        if (rc != 0) {
                fprintf(stderr, "treg: hack/test-registry.sh start failed (%d)\n", rc);
                return -1;
        }
        clear(r);
        char *port = slurp_line(r->dir, "port");
        r->user = slurp_line(r->dir, "user");
        r->password = slurp_line(r->dir, "password");
        if (!port || !r->user || !r->password || asprintf(&r->host, "127.0.0.1:%s", port) < 0 ||
            asprintf(&r->ca_file, "%s/ca.pem", r->dir) < 0 ||
            asprintf(&r->cert_dir, "%s/certs.d/127.0.0.1:%s", r->dir, port) < 0) {
                free(port);
                fprintf(stderr, "treg: %s holds no port/user/password\n", r->dir);
                return -1;
        }
        free(port);
        return 0;
}

int treg_stop(treg *r) {
        if (!r->dir) return 0;
        char *cmd = NULL;
        if (asprintf(&cmd, "bash '%s/hack/test-registry.sh' stop '%s'", kt_root(), r->dir) < 0)
                return -1;
        int rc = system(cmd);
        free(cmd);
        return rc == 0 ? 0 : -1;
}

void treg_done(treg *r) {
        if (!r) return;
        treg_stop(r);
        clear(r);
        free(r->dir);
        r->dir = NULL;
}
