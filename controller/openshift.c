/* SPDX-License-Identifier: Apache-2.0 */
#include "openshift.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kube/reflector.h"
#include "kube/types.h"
#include "util/jsonutil.h"
#include "util/macro.h"

static const kube_resource RES_CLUSTERVERSIONS = {"config.openshift.io", "v1", "clusterversions",
                                                  false};
static const kube_resource RES_CLUSTEROPERATORS = {"config.openshift.io", "v1", "clusteroperators",
                                                   false};

openshift_registry_state openshift_capability_state(json_object *cv) {
        json_object *caps = jsonutil_member(jsonutil_member(cv, "status"), "capabilities");
        json_object *enabled = jsonutil_member(caps, "enabledCapabilities");
        /* Clusters from before capabilities (4.10 and older) have no list: all is enabled.
         * Without a list we cannot tell, and waiting is the safe side. */
        if (!enabled || !json_object_is_type(enabled, json_type_array))
                return OPENSHIFT_REGISTRY_UNKNOWN;
        size_t n = json_object_array_length(enabled);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(enabled, i);
                if (json_object_is_type(e, json_type_string) &&
                    streq(json_object_get_string(e), "ImageRegistry"))
                        return OPENSHIFT_REGISTRY_ENABLED;
        }
        return OPENSHIFT_REGISTRY_REMOVED;
}

openshift_registry_state openshift_registry_operator_state(json_object *co) {
        json_object *conds = jsonutil_member(jsonutil_member(co, "status"), "conditions");
        if (!conds || !json_object_is_type(conds, json_type_array) ||
            json_object_array_length(conds) == 0)
                return OPENSHIFT_REGISTRY_UNKNOWN;
        /* As the operator that disables the controllers: the first condition decides. */
        const char *reason = jsonutil_member_str(json_object_array_get_idx(conds, 0), "reason");
        return streq_ptr(reason, "Removed") ? OPENSHIFT_REGISTRY_REMOVED
                                            : OPENSHIFT_REGISTRY_ENABLED;
}

typedef struct source {
        pp_openshift_watch *w;
        const char *name;
        openshift_registry_state (*judge)(json_object *obj);
        openshift_registry_state state;
        kube_reflector *reflector;
} source;

struct pp_openshift_watch {
        source src[2];
        pp_openshift_changed_fn changed;
        void *ud;
        bool removed;
        bool running;
};

static void update(pp_openshift_watch *w) {
        bool removed = w->src[0].state == OPENSHIFT_REGISTRY_REMOVED ||
                       w->src[1].state == OPENSHIFT_REGISTRY_REMOVED;
        if (removed == w->removed) return;
        w->removed = removed;
        if (w->changed) w->changed(w->ud, removed);
}

static void judge(source *s, json_object *obj) {
        /* the field selector names it; a server that ignored the selector gets no say */
        if (obj &&
            !streq_ptr(jsonutil_member_str(jsonutil_member(obj, "metadata"), "name"), s->name))
                return;
        s->state = obj ? s->judge(obj) : OPENSHIFT_REGISTRY_UNKNOWN;
        update(s->w);
}

static int on_replace(void *ud, json_object *items, const char *rv) {
        source *s = ud;
        size_t n = items && json_object_is_type(items, json_type_array)
                       ? json_object_array_length(items)
                       : 0;
        json_object *found = NULL;
        for (size_t i = 0; i < n && !found; i++) {
                json_object *o = json_object_array_get_idx(items, i);
                if (streq_ptr(jsonutil_member_str(jsonutil_member(o, "metadata"), "name"), s->name))
                        found = o;
        }
        if (found)
                judge(s, found);
        else {
                s->state = OPENSHIFT_REGISTRY_UNKNOWN;
                update(s->w);
        }
        return 0;
}

static int on_event(void *ud, kube_event_type type, json_object *obj) {
        source *s = ud;
        if (type == KUBE_EVENT_DELETED) {
                if (streq_ptr(jsonutil_member_str(jsonutil_member(obj, "metadata"), "name"),
                              s->name)) {
                        s->state = OPENSHIFT_REGISTRY_UNKNOWN;
                        update(s->w);
                }
                return 0;
        }
        judge(s, obj);
        return 0;
}

static const kube_reflector_handlers handlers = {
    .on_replace = on_replace,
    .on_event = on_event,
};

int pp_openshift_watch_new(kube_client *client, pp_openshift_changed_fn changed, void *ud,
                           pp_openshift_watch **ret) {
        if (!client || !ret) return -EINVAL;
        pp_openshift_watch *w = calloc(1, sizeof(*w));
        if (!w) return -ENOMEM;
        w->changed = changed;
        w->ud = ud;
        static const struct {
                const kube_resource *res;
                const char *name, *selector;
                openshift_registry_state (*judge)(json_object *obj);
        } def[2] = {
            {&RES_CLUSTERVERSIONS, "version", "metadata.name=version", openshift_capability_state},
            {&RES_CLUSTEROPERATORS, "image-registry", "metadata.name=image-registry",
             openshift_registry_operator_state},
        };
        for (size_t i = 0; i < ARRAY_SIZE(def); i++) {
                source *s = &w->src[i];
                s->w = w;
                s->name = def[i].name;
                s->judge = def[i].judge;
                kube_reflector_opts o = {
                    .resource = def[i].res,
                    .field_selector = def[i].selector,
                    /* absent (404) or forbidden (403) keeps failing: retry, but rarely */
                    .backoff_max = 60,
                };
                int r = kube_reflector_new(client, &o, &handlers, s, &s->reflector);
                if (r < 0) {
                        pp_openshift_watch_free(w);
                        return r;
                }
        }
        *ret = w;
        return 0;
}

int pp_openshift_watch_start(pp_openshift_watch *w) {
        if (!w) return -EINVAL;
        if (w->running) return 0;
        for (size_t i = 0; i < ARRAY_SIZE(w->src); i++) {
                int r = kube_reflector_start(w->src[i].reflector);
                if (r < 0 && r != -EALREADY) {
                        pp_openshift_watch_stop(w);
                        return r;
                }
        }
        w->running = true;
        return 0;
}

void pp_openshift_watch_stop(pp_openshift_watch *w) {
        if (!w) return;
        for (size_t i = 0; i < ARRAY_SIZE(w->src); i++) {
                kube_reflector_stop(w->src[i].reflector);
                w->src[i].state = OPENSHIFT_REGISTRY_UNKNOWN;
        }
        w->running = false;
        update(w);
}

bool pp_openshift_watch_registry_removed(const pp_openshift_watch *w) {
        return w && w->removed;
}

pp_openshift_watch *pp_openshift_watch_free(pp_openshift_watch *w) {
        if (!w) return NULL;
        for (size_t i = 0; i < ARRAY_SIZE(w->src); i++)
                w->src[i].reflector = kube_reflector_free(w->src[i].reflector);
        free(w);
        return NULL;
}
