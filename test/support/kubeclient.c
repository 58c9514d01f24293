/* SPDX-License-Identifier: Apache-2.0 */
#include "kubeclient.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

#include "testenv.h"

int kubeclient_open(struct ev_loop **ret_loop, kube_config **ret_cfg, kube_client **ret_client) {
        char *err = NULL;
        if (kube_config_load_kubeconfig(testenv_kubeconfig(), NULL, ret_cfg, &err) < 0) {
                fprintf(stderr, "kubeconfig: %s\n", err ? err : "?");
                free(err);
                return -1;
        }
        *ret_loop = ev_loop_new(EVFLAG_AUTO);
        if (!*ret_loop || kube_client_new(*ret_loop, *ret_cfg, NULL, ret_client) < 0) {
                fprintf(stderr, "cannot make a client\n");
                return -1;
        }
        return 0;
}

void kubeclient_close(struct ev_loop **loop, kube_config **cfg, kube_client **client) {
        *client = kube_client_free(*client);
        *cfg = kube_config_free(*cfg);
        if (*loop) ev_loop_destroy(*loop);
        *loop = NULL;
}
