/* SPDX-License-Identifier: Apache-2.0 */
#include "util/keytab.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/macro.h"

#define MIN_CAPACITY 8

struct keytab {
        void **slots; /* NULL: empty */
        size_t cap;   /* 0 or a power of two */
        size_t size;
        size_t key_offset;
        keytab_key_fn key_fn; /* NULL: the key is at key_offset */
        const void *key_ud;
};

static const char *key_of(const keytab *t, const void *rec, char buf[KEYTAB_KEY_MAX]) {
        return t->key_fn ? t->key_fn(t->key_ud, rec, buf) : (const char *)rec + t->key_offset;
}

static uint64_t hash_str(const char *s) {
        return hash_keyed(s, strlen(s));
}

int keytab_new(size_t key_offset, keytab **ret) {
        if (!ret) return -EINVAL;
        keytab *t = calloc(1, sizeof(keytab));
        if (!t) return -ENOMEM;
        t->key_offset = key_offset;
        *ret = t;
        return 0;
}

int keytab_new_fn(keytab_key_fn key_fn, const void *ud, keytab **ret) {
        if (!key_fn) return -EINVAL;
        int r = keytab_new(0, ret);
        if (r < 0) return r;
        (*ret)->key_fn = key_fn;
        (*ret)->key_ud = ud;
        return 0;
}

keytab *keytab_free(keytab *t) {
        if (!t) return NULL;
        free(t->slots);
        free(t);
        return NULL;
}

static void insert_slot(const keytab *t, void **slots, size_t cap, void *rec) {
        size_t mask = cap - 1;
        char buf[KEYTAB_KEY_MAX];
        for (size_t i = hash_str(key_of(t, rec, buf)) & mask;; i = (i + 1) & mask)
                if (!slots[i]) {
                        slots[i] = rec;
                        return;
                }
}

static int rehash(keytab *t, size_t ncap) {
        void **n = calloc(ncap, sizeof(void *));
        if (!n) return -ENOMEM;
        for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i]) insert_slot(t, n, ncap, t->slots[i]);
        free(t->slots);
        t->slots = n;
        t->cap = ncap;
        return 0;
}

/* The capacity that keeps need records at a load of at most 3/4. */
static size_t capacity_for(size_t need) {
        size_t cap = MIN_CAPACITY;
        while (need > cap / 4 * 3) cap *= 2;
        return cap;
}

int keytab_reserve(keytab *t, size_t n) {
        if (!t) return -EINVAL;
        if (n > KEYTAB_MAX_ENTRIES || t->size > KEYTAB_MAX_ENTRIES - n) return -E2BIG;
        size_t need = t->size + n;
        if (t->cap > 0 && need <= t->cap / 4 * 3) return 0;
        return rehash(t, capacity_for(need));
}

/* The slot holding key, or NULL. */
static void **find(const keytab *t, const char *key) {
        if (t->cap == 0) return NULL;
        size_t mask = t->cap - 1;
        char buf[KEYTAB_KEY_MAX];
        for (size_t i = hash_str(key) & mask;; i = (i + 1) & mask) {
                void **s = &t->slots[i];
                if (!*s) return NULL;
                if (streq(key_of(t, *s, buf), key)) return s;
        }
}

int keytab_put(keytab *t, void *rec, void **ret_old) {
        if (!t || !rec) return -EINVAL;
        char buf[KEYTAB_KEY_MAX];
        void **s = find(t, key_of(t, rec, buf));
        if (s) {
                if (ret_old) *ret_old = *s;
                *s = rec;
                return 0;
        }
        int r = keytab_reserve(t, 1);
        if (r < 0) return r;
        insert_slot(t, t->slots, t->cap, rec);
        t->size++;
        if (ret_old) *ret_old = NULL;
        return 1;
}

void *keytab_get(const keytab *t, const char *key) {
        if (!t || !key) return NULL;
        void **s = find(t, key);
        return s ? *s : NULL;
}

void *keytab_remove(keytab *t, const char *key) {
        if (!t || !key) return NULL;
        void **s = find(t, key);
        if (!s) return NULL;
        void *rec = *s;
        size_t mask = t->cap - 1;
        size_t hole = (size_t)(s - t->slots);
        char buf[KEYTAB_KEY_MAX];
        /* Backward shift, as util/hashmap.c: later members of the probe run move into the
         * hole unless that would put them before their home slot. */
        for (size_t j = (hole + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
                size_t home = hash_str(key_of(t, t->slots[j], buf)) & mask;
                bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
                if (movable) {
                        t->slots[hole] = t->slots[j];
                        hole = j;
                }
        }
        t->slots[hole] = NULL;
        t->size--;
        return rec;
}

void keytab_trim(keytab *t) {
        if (!t) return;
        if (t->size == 0) {
                free(t->slots);
                t->slots = NULL;
                t->cap = 0;
                return;
        }
        size_t ncap = capacity_for(t->size);
        if (ncap < t->cap) (void)rehash(t, ncap); /* keeping the larger table is fine */
}

size_t keytab_size(const keytab *t) {
        return t ? t->size : 0;
}

size_t keytab_mem(const keytab *t) {
        return t ? sizeof(*t) + t->cap * sizeof(void *) : 0;
}

bool keytab_iterate(const keytab *t, size_t *state, void **ret) {
        if (!t || !state) return false;
        for (size_t i = *state; i < t->cap; i++)
                if (t->slots[i]) {
                        if (ret) *ret = t->slots[i];
                        *state = i + 1;
                        return true;
                }
        *state = t->cap;
        return false;
}
