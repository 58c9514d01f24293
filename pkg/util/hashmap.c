/* SPDX-License-Identifier: Apache-2.0 */
#include "util/hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/macro.h"

#define MIN_CAPACITY 8

typedef struct slot {
        const char *key; /* NULL: empty */
        void *value;
        uint64_t hash;
} slot;

struct hashmap {
        slot *slots;
        size_t cap; /* 0 or a power of two */
        size_t size;
};

static uint8_t hash_key[16];
static bool hash_key_set;

static void hash_key_init(void) {
        if (hash_key_set) return;
        if (getrandom(hash_key, sizeof hash_key, GRND_NONBLOCK) != (ssize_t)sizeof hash_key) {
                /* No entropy yet (early boot): weaker, but still differs per process. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
                uint64_t b = (uint64_t)(uintptr_t)&ts ^ 0x9e3779b97f4a7c15ull;
                memcpy(hash_key, &a, 8);
                memcpy(hash_key + 8, &b, 8);
        }
        hash_key_set = true;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
        do {                                                                                       \
                v0 += v1;                                                                          \
                v1 = ROTL(v1, 13);                                                                 \
                v1 ^= v0;                                                                          \
                v0 = ROTL(v0, 32);                                                                 \
                v2 += v3;                                                                          \
                v3 = ROTL(v3, 16);                                                                 \
                v3 ^= v2;                                                                          \
                v0 += v3;                                                                          \
                v3 = ROTL(v3, 21);                                                                 \
                v3 ^= v0;                                                                          \
                v2 += v1;                                                                          \
                v1 = ROTL(v1, 17);                                                                 \
                v1 ^= v2;                                                                          \
                v2 = ROTL(v2, 32);                                                                 \
        } while (0)

static uint64_t load_le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
        return v;
}

uint64_t hashmap_siphash24(const void *data, size_t len, const uint8_t key[16]) {
        const uint8_t *in = data;
        uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
        uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
        uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
        uint64_t v3 = k1 ^ 0x7465646279746573ull;
        size_t full = len - len % 8;

        for (size_t i = 0; i < full; i += 8) {
                uint64_t m = load_le64(in + i);
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
        }
        uint64_t b = (uint64_t)len << 56;
        for (size_t i = 0; i < len % 8; i++) b |= (uint64_t)in[full + i] << (8 * i);
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash_str(const char *s) {
        return hashmap_siphash24(s, strlen(s), hash_key);
}

int hashmap_new(hashmap **ret) {
        if (!ret) return -EINVAL;
        hash_key_init();
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
                        slots[i] = (slot){key, value, hash};
                        return;
                }
}

static int rehash(hashmap *h, size_t ncap) {
        slot *n = calloc(ncap, sizeof(slot));
        if (!n) return -ENOMEM;
        for (size_t i = 0; i < h->cap; i++)
                if (h->slots[i].key)
                        insert_slot(n, ncap, h->slots[i].key, h->slots[i].value, h->slots[i].hash);
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
                if (s->hash == hash && streq(s->key, key)) return s;
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
                size_t home = h->slots[j].hash & mask;
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
