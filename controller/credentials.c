/* SPDX-License-Identifier: Apache-2.0 */
#include "credentials.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/hash.h"
#include "util/hashmap.h"
#include "util/macro.h"
#include "util/strbuf.h"
#include "util/timefmt.h"

#define THREADS_MAX 16

typedef struct job {
        struct job *next;
        char *policy_key;
        unsigned round;
        size_t index; /* in the round's results */
        char *registry, *username, *password;
        registry_outcome outcome;
        char *detail;
} job;

typedef struct result {
        bool done;
        registry_outcome outcome;
        char *registry, *secret, *detail;
} result;

typedef struct pol {
        char *key;
        uint64_t fp;
        bool has_fp;
        ev_tstamp last_start;
        unsigned round;
        size_t pending; /* handshakes of the round in flight */
        bool rerun;     /* the credentials changed during the round */
        result *results;
        size_t n_results;
        char *status, *reason, *message;
        char ltt[TIMEFMT_RFC3339_MAX];
} pol;

struct pp_creds {
        struct ev_loop *loop;
        ev_async async;
        ev_timer timer;
        pp_creds_opts o;
        pthread_t threads[THREADS_MAX];
        unsigned n_threads;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        job *todo, *todo_tail, *done; /* under mu */
        bool stop;                    /* under mu */
        hashmap *pols;
        unsigned long handshakes;
        unsigned rounds; /* numbers rounds over all policies: a forgotten policy's jobs never
                            match a new one of the same key */
};

static void wipe_free(char *s) {
        if (!s) return;
        explicit_bzero(s, strlen(s));
        free(s);
}

static void job_free(job *j) {
        if (!j) return;
        free(j->policy_key);
        free(j->registry);
        wipe_free(j->username);
        wipe_free(j->password);
        free(j->detail);
        free(j);
}

static void results_free(pol *p) {
        for (size_t i = 0; i < p->n_results; i++) {
                free(p->results[i].registry);
                free(p->results[i].secret);
                free(p->results[i].detail);
        }
        free(p->results);
        p->results = NULL;
        p->n_results = 0;
}

static void pol_free(pol *p) {
        if (!p) return;
        results_free(p);
        free(p->status);
        free(p->reason);
        free(p->message);
        free(p->key);
        free(p);
}

static void *worker(void *ud) {
        pp_creds *c = ud;
        pthread_mutex_lock(&c->mu);
        for (;;) {
                while (!c->stop && !c->todo) pthread_cond_wait(&c->cv, &c->mu);
                if (c->stop) break;
                job *j = c->todo;
                c->todo = j->next;
                if (!c->todo) c->todo_tail = NULL;
                pthread_mutex_unlock(&c->mu);

                pp_creds_verify_fn fn = c->o.verify_fn ? c->o.verify_fn : registry_verify;
                char *detail = NULL;
                registry_outcome out = REGISTRY_UNREACHABLE;
                if (fn(&c->o.verify, j->registry, j->username, j->password, &out, &detail) < 0)
                        out = REGISTRY_UNREACHABLE;
                j->outcome = out;
                j->detail = detail;
                /* done with the secret: it does not wait in the done list */
                wipe_free(j->username);
                wipe_free(j->password);
                j->username = j->password = NULL;

                pthread_mutex_lock(&c->mu);
                j->next = c->done;
                c->done = j;
                ev_async_send(c->loop, &c->async);
        }
        pthread_mutex_unlock(&c->mu);
        return NULL;
}

static int set_str(char **slot, const char *v) {
        char *d = strdup(v);
        if (!d) return -ENOMEM;
        free(*slot);
        *slot = d;
        return 0;
}

static void publish(pol *p, const char *status, const char *reason, const char *message) {
        if (!streq_ptr(p->status, status) &&
            timefmt_rfc3339(time(NULL), p->ltt, sizeof(p->ltt)) < 0)
                p->ltt[0] = 0;
        /* on ENOMEM the old condition stays: the next round tries again */
        (void)(set_str(&p->status, status) >= 0 && set_str(&p->reason, reason) >= 0 &&
               set_str(&p->message, message) >= 0);
}

static int outcome_rank(registry_outcome o) {
        return o == REGISTRY_REJECTED ? 2 : o == REGISTRY_UNREACHABLE ? 1 : 0;
}

/* All handshakes of p's round are in: the condition, in the order of the secrets. */
static void finish_round(pol *p) {
        int worst = 0;
        for (size_t i = 0; i < p->n_results; i++)
                worst = MAX(worst, outcome_rank(p->results[i].outcome));
        strbuf b = {0};
        size_t shown = 0;
        for (size_t i = 0; i < p->n_results; i++) {
                const result *r = &p->results[i];
                if (outcome_rank(r->outcome) != worst) continue;
                if (b.len > PP_CREDS_MESSAGE_MAX / 2) {
                        strbuf_add(&b, "; ...");
                        break;
                }
                strbuf_add(&b, shown++ ? "; " : "");
                strbuf_add(&b, "secret ");
                strbuf_add(&b, r->secret ? r->secret : "?");
                strbuf_add(&b, " at registry ");
                strbuf_add(&b, r->registry);
                if (worst && r->detail) {
                        strbuf_add(&b, ": ");
                        strbuf_add(&b, r->detail);
                }
        }
        if (p->n_results == 0) {
                /* nothing proven either way (a secret missing or without credentials: Ready
                 * says why): not a verdict that should turn anything green or red */
                publish(p, "Unknown", "NoCredentials", "no registry credentials to verify");
                free(b.s);
                return;
        }
        char *msg = NULL;
        if (strbuf_finish(&b, &msg, NULL) < 0) return;
        if (strlen(msg) > PP_CREDS_MESSAGE_MAX) msg[PP_CREDS_MESSAGE_MAX] = 0;
        publish(p, worst ? "False" : "True",
                worst == 2   ? "CredentialsRejected"
                : worst == 1 ? "RegistryUnreachable"
                             : "Verified",
                msg);
        free(msg);
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents) {
        pp_creds *c = w->data;
        pthread_mutex_lock(&c->mu);
        job *list = c->done;
        c->done = NULL;
        pthread_mutex_unlock(&c->mu);
        while (list) {
                job *j = list;
                list = j->next;
                pol *p = hashmap_get(c->pols, j->policy_key);
                if (p && j->round == p->round && j->index < p->n_results &&
                    !p->results[j->index].done) {
                        result *r = &p->results[j->index];
                        r->done = true;
                        r->outcome = j->outcome;
                        r->detail = TAKE_PTR(j->detail);
                        if (--p->pending == 0) {
                                finish_round(p);
                                /* also when rerun: the reconciler then checks the new secrets */
                                if (c->o.on_result) c->o.on_result(c->o.ud, p->key);
                        }
                }
                job_free(j);
        }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
        pp_creds *c = w->data;
        ev_tstamp now = ev_now(loop);
        size_t st = 0;
        const char *k;
        void *v;
        while (hashmap_iterate(c->pols, &st, &k, &v)) {
                pol *p = v;
                if (p->pending == 0 && now - p->last_start >= c->o.interval && c->o.on_result)
                        c->o.on_result(c->o.ud, p->key);
        }
}

int pp_creds_new(struct ev_loop *loop, const pp_creds_opts *opts, pp_creds **ret) {
        if (!loop || !opts || !ret || opts->concurrency > THREADS_MAX) return -EINVAL;
        pp_creds *c = calloc(1, sizeof(*c));
        if (!c) return -ENOMEM;
        c->loop = loop;
        c->o = *opts;
        if (c->o.concurrency == 0) c->o.concurrency = 2;
        if (c->o.interval <= 0) c->o.interval = 3600;
        if (hashmap_new(&c->pols) < 0) {
                free(c);
                return -ENOMEM;
        }
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        ev_async_init(&c->async, on_async);
        c->async.data = c;
        ev_async_start(loop, &c->async);
        double tick = MAX(1.0, MIN(c->o.interval / 4, 60.0));
        ev_timer_init(&c->timer, on_timer, tick, tick);
        c->timer.data = c;
        ev_timer_start(loop, &c->timer);
        /* the loop's own work goes on without these: keep it from counting them as active */
        ev_unref(loop);
        ev_unref(loop);
        for (unsigned i = 0; i < c->o.concurrency; i++) {
                if (pthread_create(&c->threads[i], NULL, worker, c) != 0) {
                        pp_creds_free(c);
                        return -ENOMEM;
                }
                c->n_threads++;
        }
        *ret = c;
        return 0;
}

pp_creds *pp_creds_free(pp_creds *c) {
        if (!c) return NULL;
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        for (unsigned i = 0; i < c->n_threads; i++) pthread_join(c->threads[i], NULL);
        ev_ref(c->loop);
        ev_ref(c->loop);
        ev_async_stop(c->loop, &c->async);
        ev_timer_stop(c->loop, &c->timer);
        for (job *l = c->todo; l;) {
                job *n = l->next;
                job_free(l);
                l = n;
        }
        for (job *l = c->done; l;) {
                job *n = l->next;
                job_free(l);
                l = n;
        }
        size_t st = 0;
        const char *k;
        void *v;
        while (hashmap_iterate(c->pols, &st, &k, &v)) pol_free(v);
        hashmap_free(c->pols);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
}

static uint64_t fingerprint(const registry_authfile *f) {
        uint64_t h = HASH_FNV1A64_INIT;
        for (size_t i = 0; i < f->n; i++) {
                const registry_auth *a = &f->v[i];
                const char *parts[] = {a->registry, a->secret ? a->secret : "", a->username,
                                       a->password};
                for (size_t k = 0; k < ARRAY_SIZE(parts); k++) {
                        uint64_t x = hash_keyed(parts[k], strlen(parts[k]) + 1);
                        h = hash_fnv1a64(h, &x, sizeof(x));
                }
        }
        return h;
}

static bool has_creds(const registry_auth *a) {
        return *a->username || *a->password;
}

int pp_creds_check(pp_creds *c, const char *policy_key, const registry_authfile *creds) {
        if (!c || !policy_key || !creds) return -EINVAL;
        pol *p = hashmap_get(c->pols, policy_key);
        if (!p) {
                p = calloc(1, sizeof(*p));
                if (!p || !(p->key = strdup(policy_key)) ||
                    hashmap_put(c->pols, p->key, p, NULL) < 0) {
                        pol_free(p);
                        return -ENOMEM;
                }
        }
        uint64_t fp = fingerprint(creds);
        ev_tstamp now = ev_now(c->loop);
        if (p->pending) {
                if (fp != p->fp) p->rerun = true;
                return 0;
        }
        if (p->has_fp && fp == p->fp && !p->rerun && now - p->last_start < c->o.interval) return 0;

        /* the round's jobs, all made before any is queued: all or nothing */
        size_t n = 0;
        for (size_t i = 0; i < creds->n; i++) n += has_creds(&creds->v[i]);
        result *res = n ? calloc(n, sizeof(*res)) : NULL;
        job *head = NULL, **tail = &head;
        int r = n && !res ? -ENOMEM : 0;
        for (size_t i = 0, k = 0; r >= 0 && i < creds->n; i++) {
                const registry_auth *a = &creds->v[i];
                if (!has_creds(a)) continue;
                job *j = calloc(1, sizeof(*j));
                if (!j) {
                        r = -ENOMEM;
                        break;
                }
                *tail = j;
                tail = &j->next;
                j->round = c->rounds + 1;
                j->index = k;
                j->policy_key = strdup(policy_key);
                j->registry = strdup(a->registry);
                j->username = strdup(a->username);
                j->password = strdup(a->password);
                res[k].registry = strdup(a->registry);
                res[k].secret = a->secret ? strdup(a->secret) : NULL;
                if (!j->policy_key || !j->registry || !j->username || !j->password ||
                    !res[k].registry || (a->secret && !res[k].secret))
                        r = -ENOMEM;
                k++;
        }
        if (r < 0) {
                for (job *l = head; l;) {
                        job *nx = l->next;
                        job_free(l);
                        l = nx;
                }
                pol tmp = {.results = res, .n_results = n};
                results_free(&tmp);
                return r;
        }
        results_free(p);
        p->results = res;
        p->n_results = n;
        p->round = ++c->rounds;
        p->fp = fp;
        p->has_fp = true;
        p->rerun = false;
        p->last_start = now;
        p->pending = n;
        if (n == 0) {
                finish_round(p);
                return 1;
        }
        if (!p->status) publish(p, "Unknown", "Verifying", "the registries are being asked");
        c->handshakes += n;
        pthread_mutex_lock(&c->mu);
        if (c->todo_tail)
                c->todo_tail->next = head;
        else
                c->todo = head;
        for (job *l = head; l; l = l->next) c->todo_tail = l;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return 1;
}

bool pp_creds_get(const pp_creds *c, const char *policy_key, pp_creds_condition *ret) {
        pol *p = c && policy_key ? hashmap_get(c->pols, policy_key) : NULL;
        if (!p || !p->status || !ret) return false;
        *ret = (pp_creds_condition){.status = p->status,
                                    .reason = p->reason,
                                    .message = p->message ? p->message : "",
                                    .last_transition = p->ltt};
        return true;
}

void pp_creds_forget(pp_creds *c, const char *policy_key) {
        if (!c || !policy_key) return;
        /* jobs in flight find no policy (or a new one with another round) and are dropped */
        pol_free(hashmap_remove(c->pols, policy_key));
}

unsigned long pp_creds_handshakes(const pp_creds *c) {
        return c ? c->handshakes : 0;
}
