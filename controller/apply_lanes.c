/* SPDX-License-Identifier: Apache-2.0 */
/* Parallel lanes of a large apply, and the apply's source cache (apply_internal.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apply_internal.h"
#include "kube/types.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/str.h"

/* ---- the source cache ------------------------------------------------------------------ */

struct apply_sources {
        unsigned refs;
        struct {
                char *ns, *name;
                json_object *obj;
        } e[PP_APPLY_SOURCES_MAX];
        size_t n;
};

apply_sources *apply_sources_new(void) {
        apply_sources *s = calloc(1, sizeof(*s));
        if (s) s->refs = 1;
        return s;
}

apply_sources *apply_sources_ref(apply_sources *s) {
        if (s) s->refs++;
        return s;
}

apply_sources *apply_sources_unref(apply_sources *s) {
        if (!s || --s->refs > 0) return NULL;
        for (size_t i = 0; i < s->n; i++) {
                free(s->e[i].ns);
                free(s->e[i].name);
                json_object_put(s->e[i].obj);
        }
        free(s);
        return NULL;
}

json_object *apply_sources_get(apply_sources *s, const char *ns, const char *name) {
        if (!s || !ns || !name) return NULL;
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->e[i].ns, ns) && streq(s->e[i].name, name))
                        return json_object_get(s->e[i].obj);
        return NULL;
}

void apply_sources_put(apply_sources *s, const char *ns, const char *name, json_object *obj) {
        if (!s || !ns || !name || !obj || s->n >= PP_APPLY_SOURCES_MAX) return;
        json_object *had = apply_sources_get(s, ns, name);
        if (had) {
                json_object_put(had);
                return;
        }
        char *n1 = strdup(ns), *n2 = strdup(name);
        if (!n1 || !n2) {
                free(n1);
                free(n2);
                return;
        }
        s->e[s->n].ns = n1;
        s->e[s->n].name = n2;
        s->e[s->n].obj = json_object_get(obj);
        s->n++;
}

/* ---- lanes ------------------------------------------------------------------------------- */

typedef struct lane {
        apply_lanes *g;
        pp_apply *a; /* running; NULL when done */
        plan sub;    /* shallow copies of the plan's writes */
        size_t *map; /* sub.writes[i] is the plan's writes[map[i]] */
} lane;

enum phase {
        PHASE_SOURCES,
        PHASE_ADD_FINALIZER,
        PHASE_LANES,
        PHASE_REMOVE_FINALIZER,
        PHASE_STATUS
};

struct apply_lanes {
        pp_apply *shell;
        pp_apply_ctx ctx;      /* the caller's */
        pp_apply_ctx lane_ctx; /* its on_write_failed goes through the lane */
        const model_policy *policy;
        const plan *plan;
        pp_apply_done_fn done;
        void *ud;
        apply_sources *srcs;
        lane *lanes; /* [0]: ADD_FINALIZER writes, [1]: REMOVE_FINALIZER, [2..]: the lanes */
        size_t n_lanes, running;
        pp_apply *status_apply;
        /* the sources of the plan's copies, read once before the lanes start (lanes starting
         * together would each miss the cache and read the same source) */
        const plan_write **to_read;
        size_t n_to_read, read_idx;
        kube_request *src_req;
        enum phase phase;
        size_t n_done;
        int first_error;
        char *first_what;
};

static bool is_finalizer(const plan_write *w) {
        return w->kind == PLAN_ADD_FINALIZER || w->kind == PLAN_REMOVE_FINALIZER;
}

bool apply_lanes_wanted(const plan *p) {
        if (!p || p->n_writes < PP_APPLY_LANES_MIN_WRITES) return false;
        /* ADD_FINALIZERs only first, REMOVE_FINALIZERs only last; bindings know their
         * subject namespace (the key that keeps a replacement with its creation) */
        size_t i = 0;
        while (i < p->n_writes && p->writes[i].kind == PLAN_ADD_FINALIZER) i++;
        for (; i < p->n_writes && !is_finalizer(&p->writes[i]); i++) {
                const plan_write *w = &p->writes[i];
                bool rb = w->kind == PLAN_RB_CREATE || w->kind == PLAN_RB_UPDATE ||
                          w->kind == PLAN_RB_DELETE;
                if (rb ? !w->rb.subject_namespace : !w->namespace) return false;
        }
        while (i < p->n_writes && p->writes[i].kind == PLAN_REMOVE_FINALIZER) i++;
        return i == p->n_writes;
}

/* The namespace a write's dependencies are confined to (see pp_apply_write_depends()). */
static const char *lane_key(const plan_write *w) {
        if (w->kind == PLAN_RB_CREATE || w->kind == PLAN_RB_UPDATE || w->kind == PLAN_RB_DELETE)
                return w->rb.subject_namespace;
        return w->namespace;
}

static size_t lane_of(const plan_write *w, size_t n) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (const char *s = lane_key(w); s && *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
        return h % n;
}

static int lane_add(lane *l, const plan *p, size_t i) {
        if (l->sub.n_writes % 64 == 0) {
                size_t cap = l->sub.n_writes + 64;
                plan_write *w = realloc(l->sub.writes, cap * sizeof(*w));
                if (!w) return -ENOMEM;
                l->sub.writes = w;
                size_t *m = realloc(l->map, cap * sizeof(*m));
                if (!m) return -ENOMEM;
                l->map = m;
        }
        l->sub.writes[l->sub.n_writes] = p->writes[i];
        l->map[l->sub.n_writes++] = i;
        return 0;
}

void apply_lanes_free(apply_lanes *g) {
        if (!g) return;
        for (size_t i = 0; i < g->n_lanes; i++) {
                pp_apply_cancel(g->lanes[i].a);
                free(g->lanes[i].sub.writes);
                free(g->lanes[i].map);
        }
        free(g->lanes);
        pp_apply_cancel(g->status_apply);
        kube_request_cancel(g->src_req);
        free(g->to_read);
        apply_sources_unref(g->srcs);
        free(g->first_what);
        free(g);
}

static void next_phase(apply_lanes *g);

/* The end: the shell (and with it the group) is freed before done, as apply.h says. */
static void group_finish(apply_lanes *g, int result, const char *what) {
        pp_apply_done_fn done = g->done;
        void *ud = g->ud;
        size_t n_done = g->n_done;
        char *w = NULL;
        if (result == 0 && g->first_error < 0) {
                result = g->first_error;
                w = TAKE_PTR(g->first_what);
        } else if (what)
                w = strdup(what);
        apply_shell_free(g->shell); /* frees g */
        done(ud, result, n_done, w);
        free(w);
}

static void lane_write_failed(void *ud, const pp_apply_failure *f) {
        lane *l = ud;
        pp_apply_failure m = *f;
        if (f->write_index < l->sub.n_writes) m.write_index = l->map[f->write_index];
        if (l->g->ctx.on_write_failed) l->g->ctx.on_write_failed(l->g->ud, &m);
}

static void lane_done(void *ud, int result, size_t n_done, const char *what) {
        lane *l = ud;
        apply_lanes *g = l->g;
        l->a = NULL;
        g->n_done += n_done;
        if (result < 0 && g->first_error == 0) {
                g->first_error = result;
                g->first_what = what ? strdup(what) : NULL;
        }
        if (--g->running == 0) next_phase(g);
}

static void status_done(void *ud, int result, size_t n_done, const char *what) {
        apply_lanes *g = ud;
        g->status_apply = NULL;
        group_finish(g, result, what);
}

static int start_lane(apply_lanes *g, lane *l) {
        if (l->sub.n_writes == 0) return 0;
        int r = apply_plan_sequential(&g->lane_ctx, g->policy, &l->sub, lane_done, l, &l->a);
        if (r < 0) return r;
        apply_set_sources(l->a, g->srcs);
        g->running++;
        return 0;
}

static void read_next_source(apply_lanes *g);

static void source_read(kube_client *c, const kube_response *resp, void *ud) {
        apply_lanes *g = ud;
        g->src_req = NULL;
        const plan_write *w = g->to_read[g->read_idx++];
        if (resp->error == 0 && resp->body) {
                /* as apply.c reads it; a failure leaves the read (and its report) to the copy */
                json_object *o = jsonutil_parse(resp->body, resp->body_len, 64);
                if (o && json_object_is_type(o, json_type_object))
                        apply_sources_put(g->srcs, w->copy.source_namespace, w->copy.source_name,
                                          o);
                json_object_put(o);
        }
        read_next_source(g);
}

/* Starts the GET of the source at read_idx (into g->src_req). A source whose read cannot
 * start is skipped: its copies read it themselves, and report. */
static int start_source_read(apply_lanes *g) {
        const plan_write *w = g->to_read[g->read_idx];
        _cleanup_free_ char *path = NULL;
        int r = kube_resource_path(&KUBE_RES_SECRETS, w->copy.source_namespace, w->copy.source_name,
                                   NULL, &path);
        kube_request_opts o = {.method = KUBE_GET,
                               .path = path,
                               .timeout_ms = PP_APPLY_TIMEOUT_MS,
                               .max_body = PP_APPLY_SECRET_BODY_MAX,
                               .on_done = source_read,
                               .userdata = g};
        if (r >= 0) r = kube_client_request(g->ctx.client, &o, &g->src_req);
        if (r < 0) g->read_idx++;
        return r;
}

/* Reads the next source, or goes on with the writes when all are read. */
static void read_next_source(apply_lanes *g) {
        while (g->read_idx < g->n_to_read)
                if (start_source_read(g) >= 0) return;
        next_phase(g);
}

static void next_phase(apply_lanes *g) {
        while (g->running == 0 && !g->src_req) {
                /* after a failure nothing more: no lanes without the finalizer (R7), no
                 * finalizer removal before everything else is undone, no status */
                if (g->first_error < 0 || g->phase == PHASE_STATUS) {
                        group_finish(g, 0, NULL);
                        return;
                }
                int r = 0;
                g->phase++;
                switch (g->phase) {
                case PHASE_ADD_FINALIZER:
                        r = start_lane(g, &g->lanes[0]);
                        break;
                case PHASE_LANES:
                        for (size_t i = 2; i < g->n_lanes && r >= 0; i++)
                                r = start_lane(g, &g->lanes[i]);
                        break;
                case PHASE_REMOVE_FINALIZER:
                        r = start_lane(g, &g->lanes[1]);
                        break;
                case PHASE_STATUS:
                        if (g->plan->has_status && g->plan->status_changed) {
                                r = pp_apply_status(&g->ctx, g->policy, &g->plan->status,
                                                    status_done, g, &g->status_apply);
                                if (r >= 0) return;
                        }
                        break;
                default:
                        break;
                }
                if (r < 0 && g->first_error == 0) g->first_error = r;
        }
}

int apply_lanes_start(pp_apply *a, const pp_apply_ctx *ctx, const model_policy *policy,
                      const plan *p, pp_apply_done_fn done, void *ud, apply_lanes **ret) {
        apply_lanes *g = calloc(1, sizeof(*g));
        if (!g) return -ENOMEM;
        g->shell = a;
        g->ctx = *ctx;
        g->lane_ctx = *ctx;
        g->lane_ctx.on_write_failed = lane_write_failed;
        g->policy = policy;
        g->plan = p;
        g->done = done;
        g->ud = ud;
        g->n_lanes = 2 + PP_APPLY_LANES;
        g->lanes = calloc(g->n_lanes, sizeof(lane));
        g->srcs = apply_sources_new();
        int r = -ENOMEM;
        if (!g->lanes || !g->srcs) goto fail;
        for (size_t i = 0; i < g->n_lanes; i++) g->lanes[i].g = g;
        for (size_t i = 0; i < p->n_writes; i++) {
                const plan_write *w = &p->writes[i];
                lane *l = w->kind == PLAN_ADD_FINALIZER ? &g->lanes[0]
                          : w->kind == PLAN_REMOVE_FINALIZER
                              ? &g->lanes[1]
                              : &g->lanes[2 + lane_of(w, PP_APPLY_LANES)];
                r = lane_add(l, p, i);
                if (r < 0) goto fail;
        }
        /* the distinct sources of the copies (as many as the cache holds) */
        g->to_read = calloc(PP_APPLY_SOURCES_MAX, sizeof(*g->to_read));
        if (!g->to_read) goto fail;
        for (size_t i = 0; i < p->n_writes && g->n_to_read < PP_APPLY_SOURCES_MAX; i++) {
                const plan_write *w = &p->writes[i];
                if ((w->kind != PLAN_COPY_CREATE && w->kind != PLAN_COPY_UPDATE) ||
                    !w->copy.source_namespace || !w->copy.source_name)
                        continue;
                bool seen = false;
                for (size_t j = 0; j < g->n_to_read && !seen; j++)
                        seen =
                            streq(g->to_read[j]->copy.source_namespace, w->copy.source_namespace) &&
                            streq(g->to_read[j]->copy.source_name, w->copy.source_name);
                if (!seen) g->to_read[g->n_to_read++] = w;
        }
        /* the sources' reads, and then the lanes, start from the loop: done is never
         * called from in here */
        g->phase = PHASE_SOURCES;
        while (g->read_idx < g->n_to_read && !g->src_req) (void)start_source_read(g);
        if (!g->src_req) {
                /* nothing to read: the first writes start now (from the loop, as lanes do) */
                g->phase = PHASE_ADD_FINALIZER;
                r = start_lane(g, &g->lanes[0]);
                if (r < 0) goto fail;
                if (g->running == 0) {
                        g->phase = PHASE_LANES;
                        for (size_t i = 2; i < g->n_lanes && r >= 0; i++)
                                r = start_lane(g, &g->lanes[i]);
                        if (r < 0 && g->running == 0) goto fail;
                        if (r < 0) g->first_error = r; /* reported once the lanes started end */
                }
        }
        *ret = g;
        return 0;
fail:
        apply_lanes_free(g);
        return r;
}
