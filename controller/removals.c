/* SPDX-License-Identifier: Apache-2.0 */
#include "removals.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_spec.h"
#include "util/hashmap.h"
#include "util/macro.h"
#include "util/strv.h"

typedef struct removal {
        char *secret;
        unsigned lists; /* POLICY_FOR_* the controller took it out of */
        double at;
        unsigned undos;
} removal;

typedef struct account {
        char *key; /* "ns/sa" */
        removal r[REMOVALS_PER_ACCOUNT_MAX];
        size_t n;
        double last; /* the newest removal's time */
} account;

struct pp_removals {
        hashmap *accounts;
        size_t max_accounts;
        double ttl;
        unsigned max_undos;
};

static void account_free(account *a) {
        if (!a) return;
        for (size_t i = 0; i < a->n; i++) free(a->r[i].secret);
        free(a->key);
        free(a);
}

static void drop_removal(account *a, size_t i) {
        free(a->r[i].secret);
        a->r[i] = a->r[--a->n];
}

int pp_removals_new(const pp_removals_opts *o, pp_removals **ret) {
        if (!ret) return -EINVAL;
        pp_removals *m = calloc(1, sizeof(*m));
        if (!m) return -ENOMEM;
        m->max_accounts = o && o->max_accounts ? o->max_accounts : 4096;
        m->ttl = o && o->ttl > 0 ? o->ttl : 120;
        m->max_undos = o && o->max_undos ? o->max_undos : 5;
        if (hashmap_new(&m->accounts) < 0) {
                free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

pp_removals *pp_removals_free(pp_removals *m) {
        if (!m) return NULL;
        size_t st = 0;
        void *v;
        while (hashmap_iterate(m->accounts, &st, NULL, &v)) account_free(v);
        hashmap_free(m->accounts);
        free(m);
        return NULL;
}

static char *account_key(const char *ns, const char *sa) {
        char *k = NULL;
        return asprintf(&k, "%s/%s", ns, sa) < 0 ? NULL : k;
}

static void forget(pp_removals *m, account *a) {
        hashmap_remove(m->accounts, a->key);
        account_free(a);
}

/* Makes room for one more account: the expired ones go, then the oldest. */
static void make_room(pp_removals *m, double now) {
        if (hashmap_size(m->accounts) < m->max_accounts) return;
        account *oldest = NULL;
        size_t st = 0;
        void *v;
        /* one pass: expired entries cannot be removed while iterating; remember one */
        while (hashmap_iterate(m->accounts, &st, NULL, &v)) {
                account *a = v;
                if (!oldest || a->last < oldest->last) oldest = a;
        }
        if (oldest) forget(m, oldest);
}

int pp_removals_note_removed(pp_removals *m, const char *ns, const char *sa, const char *secret,
                             unsigned lists, double now) {
        if (!m || !ns || !sa || !secret || !lists) return -EINVAL;
        _cleanup_free_ char *key = account_key(ns, sa);
        if (!key) return -ENOMEM;
        account *a = hashmap_get(m->accounts, key);
        if (!a) {
                make_room(m, now);
                a = calloc(1, sizeof(*a));
                if (!a) return -ENOMEM;
                a->key = TAKE_PTR(key);
                if (hashmap_put(m->accounts, a->key, a, NULL) < 0) {
                        account_free(a);
                        return -ENOMEM;
                }
        }
        a->last = now;
        for (size_t i = 0; i < a->n; i++)
                if (streq(a->r[i].secret, secret)) {
                        a->r[i].lists |= lists;
                        a->r[i].at = now;
                        a->r[i].undos = 0;
                        return 0;
                }
        if (a->n == REMOVALS_PER_ACCOUNT_MAX) {
                size_t old = 0;
                for (size_t i = 1; i < a->n; i++)
                        if (a->r[i].at < a->r[old].at) old = i;
                drop_removal(a, old);
        }
        char *s = strdup(secret);
        if (!s) return -ENOMEM;
        a->r[a->n++] = (removal){.secret = s, .lists = lists, .at = now};
        return 0;
}

void pp_removals_note_added(pp_removals *m, const char *ns, const char *sa, const char *secret,
                            unsigned lists) {
        if (!m || !ns || !sa || !secret) return;
        _cleanup_free_ char *key = account_key(ns, sa);
        account *a = key ? hashmap_get(m->accounts, key) : NULL;
        if (!a) return;
        for (size_t i = 0; i < a->n; i++)
                if (streq(a->r[i].secret, secret)) {
                        a->r[i].lists &= ~lists;
                        if (!a->r[i].lists) drop_removal(a, i);
                        break;
                }
        if (a->n == 0) forget(m, a);
}

/* Whether any policy's claim in the record covers secret in list. */
static bool claimed(const model_sa *sa, const char *secret, unsigned list) {
        for (size_t i = 0; i < sa->links.n; i++)
                if (streq(sa->links.items[i].secret, secret) &&
                    (sa->links.items[i].for_mask & list))
                        return true;
        return false;
}

static int keep_except(char *const *names, size_t n, const char *const *drop, size_t n_drop,
                       char ***ret, size_t *ret_n) {
        size_t cap = 0;
        for (size_t i = 0; i < n; i++) {
                bool gone = false;
                for (size_t k = 0; k < n_drop && !gone; k++) gone = streq(names[i], drop[k]);
                if (!gone && strv_push(ret, ret_n, &cap, names[i]) < 0) return -ENOMEM;
        }
        return 0;
}

int pp_removals_check(pp_removals *m, const model_sa *sa, double now, pp_removals_undo *ret) {
        if (!m || !sa || !sa->meta.namespace || !sa->meta.name || !ret) return -EINVAL;
        _cleanup_free_ char *key = account_key(sa->meta.namespace, sa->meta.name);
        if (!key) return -ENOMEM;
        account *a = hashmap_get(m->accounts, key);
        if (!a) return 0;
        /* expired removals are forgotten here, on the way */
        for (size_t i = a->n; i-- > 0;)
                if (now - a->r[i].at > m->ttl) drop_removal(a, i);
        if (a->n == 0) {
                forget(m, a);
                return 0;
        }
        if (!sa->refs_plain || sa->links_error) return 0;

        const char *drop_pull[REMOVALS_PER_ACCOUNT_MAX], *drop_mount[REMOVALS_PER_ACCOUNT_MAX];
        size_t n_pull = 0, n_mount = 0;
        removal *hit[REMOVALS_PER_ACCOUNT_MAX];
        size_t n_hit = 0;
        for (size_t i = 0; i < a->n; i++) {
                removal *r = &a->r[i];
                if (r->undos >= m->max_undos) continue;
                bool any = false;
                if ((r->lists & POLICY_FOR_PULL) && model_sa_has_pull_secret(sa, r->secret) &&
                    !claimed(sa, r->secret, POLICY_FOR_PULL)) {
                        drop_pull[n_pull++] = r->secret;
                        any = true;
                }
                if ((r->lists & POLICY_FOR_MOUNT) && model_sa_has_secret(sa, r->secret) &&
                    !claimed(sa, r->secret, POLICY_FOR_MOUNT)) {
                        drop_mount[n_mount++] = r->secret;
                        any = true;
                }
                if (any) hit[n_hit++] = r;
        }
        if (n_hit == 0) return 0;

        pp_removals_undo u = {0};
        size_t cap = 0;
        int k =
            keep_except(sa->secrets, sa->n_secrets, drop_mount, n_mount, &u.secrets, &u.n_secrets);
        if (k >= 0)
                k = keep_except(sa->pull_secrets, sa->n_pull_secrets, drop_pull, n_pull,
                                &u.pull_secrets, &u.n_pull_secrets);
        for (size_t i = 0; k >= 0 && i < n_hit; i++)
                k = strv_push(&u.undone, &u.n_undone, &cap, hit[i]->secret);
        if (k < 0) {
                pp_removals_undo_done(&u);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_hit; i++) hit[i]->undos++;
        *ret = u;
        return 1;
}

void pp_removals_undo_done(pp_removals_undo *u) {
        if (!u) return;
        strv_free(u->secrets, u->n_secrets);
        strv_free(u->pull_secrets, u->n_pull_secrets);
        strv_free(u->undone, u->n_undone);
        *u = (pp_removals_undo){0};
}

unsigned pp_removals_lists(const pp_removals *m, const char *ns, const char *sa, const char *secret,
                           double now) {
        if (!m || !ns || !sa || !secret) return 0;
        _cleanup_free_ char *key = account_key(ns, sa);
        const account *a = key ? hashmap_get(m->accounts, key) : NULL;
        for (size_t i = 0; a && i < a->n; i++)
                if (streq(a->r[i].secret, secret) && now - a->r[i].at <= m->ttl)
                        return a->r[i].lists;
        return 0;
}

size_t pp_removals_accounts(const pp_removals *m) {
        return m ? hashmap_size(m->accounts) : 0;
}
