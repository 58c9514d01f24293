/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C client (pkg/kube) as the integration tests of the controller use it: the admin
 * kubeconfig of testenv.h loaded, and a client on a libev loop of its own. testenv.h and
 * kubetest.h stay on kubectl; this is for tests whose subject runs on that client.
 * Test code only: may print diagnostics to stderr.
 */
#ifndef PP_TEST_SUPPORT_KUBECLIENT_H
#define PP_TEST_SUPPORT_KUBECLIENT_H

#include "kube/client.h"
#include "kube/config.h"

struct ev_loop;

/*
 * A new loop, the admin kubeconfig and a client with default options, in *ret_loop,
 * *ret_cfg and *ret_client. 0, or -1 (with a message on stderr) and what was made is left
 * in the out-parameters for kubeclient_close().
 */
int kubeclient_open(struct ev_loop **ret_loop, kube_config **ret_cfg, kube_client **ret_client);

/* Frees what kubeclient_open() made (any of it may be NULL) and sets the three to NULL. */
void kubeclient_close(struct ev_loop **loop, kube_config **cfg, kube_client **client);

#endif
