/* SPDX-License-Identifier: Apache-2.0 */
#include "verifier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kube/types.h"
#include "log.h"
#include "model.h"
#include "plan.h"
#include "policy_spec.h"
#include "util/base64.h"
#include "util/hashmap.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/strbuf.h"

typedef struct vpol vpol;

typedef struct slot {
        vpol *pol;
        kube_request *req;
        char *name;
        char *type;
        char *payload; /* decoded; wiped */
        size_t len;
} slot;

struct vpol {
        pp_verifier *v;
        char *key, *ns, *name;
        char *version; /* the pull secrets' names and resourceVersions at the last read */
        bool seen, due;
        slot *slots;
        size_t n_slots, pending;
        kube_request *write;
        char *written_rv;   /* the policy's resourceVersion after our last write */
        char *written_cond; /* status\nreason\nmessage we last wrote */
};

struct pp_verifier {
        pp_verifier_opts o;
        pp_creds *creds;
        hashmap *pols;
        ev_timer tick;
};

static void wipe_free(char *s, size_t len) {
        if (!s) return;
        explicit_bzero(s, len);
        free(s);
}

static void slots_free(vpol *p) {
        for (size_t i = 0; i < p->n_slots; i++) {
                kube_request_cancel(p->slots[i].req);
                free(p->slots[i].name);
                free(p->slots[i].type);
                wipe_free(p->slots[i].payload, p->slots[i].len);
        }
        free(p->slots);
        p->slots = NULL;
        p->n_slots = p->pending = 0;
}

static void vpol_free(vpol *p) {
        if (!p) return;
        slots_free(p);
        kube_request_cancel(p->write);
        free(p->key);
        free(p->ns);
        free(p->name);
        free(p->version);
        free(p->written_rv);
        free(p->written_cond);
        free(p);
}

static void on_result(void *ud, const char *key) {
        pp_verifier *v = ud;
        vpol *p = hashmap_get(v->pols, key);
        if (p) p->due = true;
}

/* All GETs of p ended: the merge, in pullSecrets order, to the verifier. */
static void fetched(vpol *p) {
        registry_authfile f = {0};
        for (size_t i = 0; i < p->n_slots; i++) {
                slot *s = &p->slots[i];
                if (!s->payload) continue;
                char who[512];
                snprintf(who, sizeof(who), "%s/%s", p->ns, s->name);
                int r = registry_authfile_add(&f, s->type, s->payload, s->len, who);
                if (r < 0)
                        log_warn(LOG_POLICY(p->ns, p->name),
                                 "pull secret not usable for verification",
                                 LOG_STR("secret", s->name), LOG_ERRNO(r));
        }
        slots_free(p);
        int r = pp_creds_check(p->v->creds, p->key, &f);
        if (r < 0) log_warn(LOG_POLICY(p->ns, p->name), "cannot verify", LOG_ERRNO(r));
        registry_authfile_done(&f);
}

static void on_secret(kube_client *c, const kube_response *resp, void *ud) {
        slot *s = ud;
        vpol *p = s->pol;
        s->req = NULL;
        if (resp->error == 0 && resp->body) {
                json_object *o = jsonutil_parse(resp->body, resp->body_len, 16);
                const char *type = jsonutil_member_str(o, "type");
                const char *k = type && streq(type, "kubernetes.io/dockercfg")
                                    ? ".dockercfg"
                                    : ".dockerconfigjson";
                const char *b64 = jsonutil_member_str(jsonutil_member(o, "data"), k);
                void *dec = NULL;
                size_t len = 0;
                if (type && b64 &&
                    base64_decode(b64, strlen(b64), 0, REGISTRY_AUTHFILE_MAX_BYTES, &dec, &len) ==
                        0) {
                        s->type = strdup(type);
                        if (s->type) {
                                s->payload = dec;
                                s->len = len;
                        } else
                                base64_free_wiped(dec, len);
                }
                /* json-c holds the payload's base64 too: wipe it before letting go */
                if (b64) explicit_bzero((char *)b64, strlen(b64));
                json_object_put(o);
        }
        if (--p->pending == 0) fetched(p);
}

static int start_fetch(vpol *p, const policy_spec *spec) {
        slots_free(p);
        p->slots = calloc(spec->n_pull_secrets ? spec->n_pull_secrets : 1, sizeof(slot));
        if (!p->slots) return -ENOMEM;
        p->n_slots = spec->n_pull_secrets;
        for (size_t i = 0; i < p->n_slots; i++) {
                p->slots[i].pol = p;
                if (!(p->slots[i].name = strdup(spec->pull_secrets[i].name))) return -ENOMEM;
        }
        if (p->n_slots == 0) {
                fetched(p);
                return 0;
        }
        for (size_t i = 0; i < p->n_slots; i++) {
                _cleanup_free_ char *path = NULL;
                int r = kube_resource_path(&KUBE_RES_SECRETS, p->ns, p->slots[i].name, NULL, &path);
                if (r < 0) return r;
                kube_request_opts o = {.method = KUBE_GET,
                                       .path = path,
                                       .timeout_ms = 30000,
                                       .on_done = on_secret,
                                       .userdata = &p->slots[i]};
                r = kube_client_request(p->v->o.client, &o, &p->slots[i].req);
                if (r < 0) return r;
                p->pending++;
        }
        return 0;
}

static void on_written(kube_client *c, const kube_response *resp, void *ud) {
        vpol *p = ud;
        p->write = NULL;
        if (resp->error != 0) {
                /* 409: the policy changed under us; the next tick writes again */
                free(p->written_cond);
                p->written_cond = NULL;
                return;
        }
        json_object *o = jsonutil_parse(resp->body, resp->body_len, 64);
        const char *rv = jsonutil_member_str(jsonutil_member(o, "metadata"), "resourceVersion");
        free(p->written_rv);
        p->written_rv = strdup_or_null(rv);
        json_object_put(o);
}

static json_object *cond_json(const char *type, const char *status, const char *reason,
                              const char *message, long long gen, const char *ltt) {
        json_object *c = json_object_new_object();
        if (!c) return NULL;
        jsonutil_add(c, "type", json_object_new_string(type));
        jsonutil_add(c, "status", json_object_new_string(status));
        jsonutil_add(c, "reason", json_object_new_string(reason));
        jsonutil_add(c, "message", json_object_new_string(message ? message : ""));
        jsonutil_add(c, "observedGeneration", json_object_new_int64(gen < 0 ? 0 : gen));
        jsonutil_add(c, "lastTransitionTime", json_object_new_string(ltt));
        return c;
}

static void write_status(vpol *p, const model_policy *mp, const pp_creds_condition *cc,
                         const char *cond_key) {
        const model_policy_status *st = &mp->status;
        if (!st->has_ready || !st->ready_last_transition || !mp->meta.resource_version) return;
        json_object *body = json_object_new_object(), *meta = json_object_new_object(),
                    *status = json_object_new_object(), *conds = json_object_new_array();
        if (!body || !meta || !status || !conds) {
                json_object_put(body);
                json_object_put(meta);
                json_object_put(status);
                json_object_put(conds);
                return;
        }
        jsonutil_add(meta, "resourceVersion", json_object_new_string(mp->meta.resource_version));
        jsonutil_add(body, "metadata", meta);
        json_object_array_add(conds, cond_json("Ready", st->ready_status, st->ready_reason,
                                               st->ready_message, st->ready_observed_generation,
                                               st->ready_last_transition));
        json_object_array_add(conds, cond_json("CredentialsVerified", cc->status, cc->reason,
                                               cc->message, mp->meta.generation,
                                               cc->last_transition[0] ? cc->last_transition
                                                                      : st->ready_last_transition));
        jsonutil_add(status, "conditions", conds);
        jsonutil_add(body, "status", status);
        const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
        _cleanup_free_ char *path = NULL;
        if (text &&
            kube_resource_path(&KUBE_RES_PULLPOLICIES, p->ns, p->name, "status", &path) == 0) {
                kube_request_opts o = {.method = KUBE_PATCH,
                                       .path = path,
                                       .body = text,
                                       .body_len = strlen(text),
                                       .patch_type = KUBE_PATCH_MERGE,
                                       .timeout_ms = 30000,
                                       .on_done = on_written,
                                       .userdata = p};
                if (kube_client_request(p->v->o.client, &o, &p->write) == 0) {
                        free(p->written_cond);
                        p->written_cond = strdup(cond_key);
                        log_info(LOG_POLICY(p->ns, p->name), "credentials verification",
                                 LOG_STR("reason", cc->reason), LOG_STR("message", cc->message));
                }
        }
        json_object_put(body);
}

/* The pull secrets' names and resourceVersions, as the metadata watch has them. */
static char *secrets_version(pp_verifier *v, const model_policy *mp) {
        plan_snapshot snap = pp_cache_snapshot(v->o.cache);
        strbuf b = {0};
        strbuf_add(&b, "v:");
        for (size_t i = 0; i < mp->spec->n_pull_secrets; i++) {
                const char *n = mp->spec->pull_secrets[i].name;
                const model_secret *s = snap.ops->secret_get(snap.ud, mp->meta.namespace, n);
                strbuf_add(&b, n);
                strbuf_add(&b, "=");
                strbuf_add(&b, s && s->meta.resource_version ? s->meta.resource_version : "-");
                strbuf_add(&b, ";");
        }
        char *out = NULL;
        return strbuf_finish(&b, &out, NULL) < 0 ? NULL : out;
}

static void visit(const model_policy *mp, void *ud) {
        pp_verifier *v = ud;
        if (!mp->spec || !mp->spec->verify_credentials || mp->meta.deleting || !mp->meta.namespace)
                return;
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", mp->meta.namespace, mp->meta.name);
        vpol *p = hashmap_get(v->pols, key);
        if (!p) {
                p = calloc(1, sizeof(*p));
                if (!p) return;
                p->v = v;
                p->key = strdup(key);
                p->ns = strdup(mp->meta.namespace);
                p->name = strdup(mp->meta.name);
                if (!p->key || !p->ns || !p->name || hashmap_put(v->pols, p->key, p, NULL) < 0) {
                        vpol_free(p);
                        return;
                }
                p->due = true;
        }
        p->seen = true;
        if (!p->pending) {
                char *ver = secrets_version(v, mp);
                if (ver && (p->due || !streq_ptr(ver, p->version))) {
                        free(p->version);
                        p->version = TAKE_PTR(ver);
                        p->due = false;
                        int r = start_fetch(p, mp->spec);
                        if (r < 0) {
                                log_warn(LOG_POLICY(p->ns, p->name), "cannot read pull secrets",
                                         LOG_ERRNO(r));
                                slots_free(p);
                                free(p->version);
                                p->version = NULL;
                        }
                }
                free(ver);
        }
        pp_creds_condition cc;
        if (!p->write && pp_creds_get(v->creds, key, &cc)) {
                char ck[PP_CREDS_MESSAGE_MAX + 128];
                snprintf(ck, sizeof(ck), "%s\n%s\n%s", cc.status, cc.reason, cc.message);
                if (!streq_ptr(p->written_cond, ck) ||
                    !streq_ptr(p->written_rv, mp->meta.resource_version))
                        write_status(p, mp, &cc, ck);
        }
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
        pp_verifier *v = w->data;
        if (v->o.active && !v->o.active(v->o.ud)) return;
        size_t st = 0;
        const char *k;
        void *val;
        while (hashmap_iterate(v->pols, &st, &k, &val)) ((vpol *)val)->seen = false;
        pp_cache_visit_policies(v->o.cache, visit, v);
        /* policies gone or no longer asking: forget them (collect first, then remove) */
        char **gone = NULL;
        size_t n = 0, cap = 0;
        st = 0;
        while (hashmap_iterate(v->pols, &st, &k, &val))
                if (!((vpol *)val)->seen && GROW(gone, cap, n + 1) == 0) gone[n++] = (char *)k;
        for (size_t i = 0; i < n; i++) {
                vpol *p = hashmap_remove(v->pols, gone[i]);
                if (p) pp_creds_forget(v->creds, p->key);
                vpol_free(p);
        }
        free(gone);
}

int pp_verifier_new(const pp_verifier_opts *o, pp_verifier **ret) {
        if (!o || !o->loop || !o->client || !o->cache || !ret) return -EINVAL;
        pp_verifier *v = calloc(1, sizeof(*v));
        if (!v) return -ENOMEM;
        v->o = *o;
        pp_creds_opts co = {.verify = o->verify,
                            .concurrency = o->concurrency,
                            .interval = o->interval,
                            .on_result = on_result,
                            .ud = v};
        int r = hashmap_new(&v->pols);
        if (r >= 0) r = pp_creds_new(o->loop, &co, &v->creds);
        if (r < 0) {
                hashmap_free(v->pols);
                free(v);
                return r;
        }
        double t = o->tick > 0 ? o->tick : 5.0;
        ev_timer_init(&v->tick, on_tick, t, t);
        v->tick.data = v;
        ev_timer_start(o->loop, &v->tick);
        ev_unref(o->loop);
        *ret = v;
        return 0;
}

pp_verifier *pp_verifier_free(pp_verifier *v) {
        if (!v) return NULL;
        ev_ref(v->o.loop);
        ev_timer_stop(v->o.loop, &v->tick);
        size_t st = 0;
        const char *k;
        void *val;
        while (hashmap_iterate(v->pols, &st, &k, &val)) vpol_free(val);
        hashmap_free(v->pols);
        pp_creds_free(v->creds);
        free(v);
        return NULL;
}
