/* SPDX-License-Identifier: Apache-2.0 */
/*
 * R4 Auto: whether OpenShift provisions per-account dockercfg secrets at all.
 *
 * cluster-openshift-controller-manager-operator turns the pull-secret controllers of
 * openshift-controller-manager off (and has its clean-up controller delete their secrets)
 * when its ImageRegistryIsEnabled() is false, which reads exactly two objects:
 *   - clusterversions.config.openshift.io `version`: the ImageRegistry capability is
 *     disabled when status.capabilities.enabledCapabilities lacks "ImageRegistry";
 *   - clusteroperators.config.openshift.io `image-registry`: the registry is Removed when
 *     the reason of its first status condition is "Removed" (the registry operator sets
 *     every condition's reason so when its config's spec.managementState is Removed).
 * The controller follows the same two objects, each with its own list+watch selected by
 * name (metadata.name field selector: one small object each, and RBAC can name it). An
 * object that is absent, not served (404) or forbidden (403) tells nothing: the state stays
 * unknown and Auto keeps waiting as it did before, when image.openshift.io is served.
 */
#ifndef PP_CONTROLLER_OPENSHIFT_H
#define PP_CONTROLLER_OPENSHIFT_H

#include <stdbool.h>

#include <json-c/json.h>

#include "kube/client.h"

typedef enum openshift_registry_state {
        OPENSHIFT_REGISTRY_UNKNOWN, /* the object is absent or says nothing */
        OPENSHIFT_REGISTRY_ENABLED,
        OPENSHIFT_REGISTRY_REMOVED,
} openshift_registry_state;

/* What ClusterVersion cv says of the ImageRegistry capability. */
openshift_registry_state openshift_capability_state(json_object *cv);
/* What the image-registry ClusterOperator co says of the registry. */
openshift_registry_state openshift_registry_operator_state(json_object *co);

typedef struct pp_openshift_watch pp_openshift_watch;

/* Called on the loop whenever the verdict (registry removed or not) changes. */
typedef void (*pp_openshift_changed_fn)(void *ud, bool registry_removed);

/* A stopped watch. 0, -EINVAL or -ENOMEM. */
int pp_openshift_watch_new(kube_client *client, pp_openshift_changed_fn changed, void *ud,
                           pp_openshift_watch **ret);
/* Starts following both objects (idempotent). 0 or a negative errno. */
int pp_openshift_watch_start(pp_openshift_watch *w);
/* Stops and forgets what was seen (the verdict goes back to false, with a call). */
void pp_openshift_watch_stop(pp_openshift_watch *w);
bool pp_openshift_watch_registry_removed(const pp_openshift_watch *w);
pp_openshift_watch *pp_openshift_watch_free(pp_openshift_watch *w);

#endif
