/* SPDX-License-Identifier: Apache-2.0 */
#include "util/hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/macro.h"

#define MIN_CAPACITY 8

/*
 * Two pointers, no stored hash: the store keeps one slot per cached object in
 * several tables, and hashing a key again when the table grows or a deletion
 * shifts it is cheaper than 8 more bytes per slot for the whole process's life.
 */
typedef struct slot {
        const char *key; /* NULL: empty */
        void *value;
} slot;

struct hashmap {
        slot *slots;
        size_t cap; /* 0 or a power of two */
        size_t size;
};

/* hashmap.h exposes the hash for its tests; util/hash.h has it now. */
uint64_t hashmap_siphash24(const void *data, size_t len, const uint8_t key[16]) {
        return hash_siphash24(data, len, key);
}

static uint64_t hash_str(const char *s) {
        return hash_keyed(s, strlen(s));
}

int hashmap_new(hashmap **ret) {
        if (!ret) return -EINVAL;
        hashmap *h = calloc(1, sizeof(hashmap));
        if (!h) return -ENOMEM;
        *ret = h;
        return 0;
}

hashmap *hashmap_free(hashmap *h) {
        if (!h) return NULL;
        free(h->slots);
        free(h);
        return NULL;
}

/* Places an entry known to be absent into a table known to have room. */
static void insert_slot(slot *slots, size_t cap, const char *key, void *value, uint64_t hash) {
        size_t mask = cap - 1;
        for (size_t i = hash & mask;; i = (i + 1) & mask)
                if (!slots[i].key) {
                        slots[i] = (slot){key, value};
                        return;
                }
}

static int rehash(hashmap *h, size_t ncap) {
        slot *n = calloc(ncap, sizeof(slot));
        if (!n) return -ENOMEM;
        for (size_t i = 0; i < h->cap; i++)
                if (h->slots[i].key)
                        insert_slot(n, ncap, h->slots[i].key, h->slots[i].value,
                                    hash_str(h->slots[i].key));
        free(h->slots);
        h->slots = n;
        h->cap = ncap;
        return 0;
}

/* The capacity that keeps need entries at a load of at most 3/4. */
static size_t capacity_for(size_t need) {
        size_t cap = MIN_CAPACITY;
        while (need > cap / 4 * 3) cap *= 2;
        return cap;
}

int hashmap_reserve(hashmap *h, size_t n) {
        if (!h) return -EINVAL;
        if (n > HASHMAP_MAX_ENTRIES || h->size > HASHMAP_MAX_ENTRIES - n) return -E2BIG;
        size_t need = h->size + n;
        if (h->cap > 0 && need <= h->cap / 4 * 3) return 0;
        return rehash(h, capacity_for(need));
}

static slot *find(const hashmap *h, const char *key, uint64_t hash) {
        if (h->cap == 0) return NULL;
        size_t mask = h->cap - 1;
        for (size_t i = hash & mask;; i = (i + 1) & mask) {
                slot *s = &h->slots[i];
                if (!s->key) return NULL;
                if (streq(s->key, key)) return s;
        }
}

int hashmap_put(hashmap *h, const char *key, void *value, void **ret_old) {
        if (!h || !key) return -EINVAL;
        uint64_t hash = hash_str(key);
        slot *s = find(h, key, hash);
        if (s) {
                if (ret_old) *ret_old = s->value;
                s->key = key;
                s->value = value;
                return 0;
        }
        int r = hashmap_reserve(h, 1);
        if (r < 0) return r;
        insert_slot(h->slots, h->cap, key, value, hash);
        h->size++;
        if (ret_old) *ret_old = NULL;
        return 1;
}

void *hashmap_get(const hashmap *h, const char *key) {
        if (!h || !key) return NULL;
        slot *s = find(h, key, hash_str(key));
        return s ? s->value : NULL;
}

bool hashmap_contains(const hashmap *h, const char *key) {
        if (!h || !key) return false;
        return find(h, key, hash_str(key)) != NULL;
}

void *hashmap_remove(hashmap *h, const char *key) {
        if (!h || !key) return NULL;
        slot *s = find(h, key, hash_str(key));
        if (!s) return NULL;
        void *value = s->value;
        size_t mask = h->cap - 1;
        size_t hole = (size_t)(s - h->slots);

        /* Backward shift: pull later members of the probe run into the hole as
         * long as that does not move them before their home slot. */
        for (size_t j = (hole + 1) & mask; h->slots[j].key; j = (j + 1) & mask) {
                size_t home = hash_str(h->slots[j].key) & mask;
                /* Is home cyclically outside (hole, j]? Then j may move to hole. */
                bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
                if (movable) {
                        h->slots[hole] = h->slots[j];
                        hole = j;
                }
        }
        h->slots[hole] = (slot){};
        h->size--;
        return value;
}

void hashmap_trim(hashmap *h) {
        if (!h) return;
        if (h->size == 0) {
                free(h->slots);
                h->slots = NULL;
                h->cap = 0;
                return;
        }
        size_t ncap = capacity_for(h->size);
        if (ncap < h->cap) (void)rehash(h, ncap); /* keeping the larger table is fine */
}

size_t hashmap_size(const hashmap *h) {
        return h ? h->size : 0;
}

size_t hashmap_mem(const hashmap *h) {
        return h ? sizeof(*h) + h->cap * sizeof(slot) : 0;
}

bool hashmap_iterate(const hashmap *h, size_t *state, const char **ret_key, void **ret_value) {
        if (!h || !state) return false;
        for (size_t i = *state; i < h->cap; i++)
                if (h->slots[i].key) {
                        if (ret_key) *ret_key = h->slots[i].key;
                        if (ret_value) *ret_value = h->slots[i].value;
                        *state = i + 1;
                        return true;
                }
        *state = h->cap;
        return false;
}
