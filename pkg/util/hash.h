/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hashes. FNV-1a is plain and stable across processes: for derived names and
 * for noticing repeats, never where input could be chosen to collide. The keyed
 * hash is SipHash-2-4 under a random key made once per process: for hash tables
 * and in-process comparisons of content; its values mean nothing elsewhere, so
 * they are never stored or sent.
 */
#ifndef PP_UTIL_HASH_H
#define PP_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A64_INIT 0xcbf29ce484222325ULL /* the FNV-1a 64-bit offset basis */

/* FNV-1a (64-bit) of len bytes, continuing from h (HASH_FNV1A64_INIT to start). */
uint64_t hash_fnv1a64(uint64_t h, const void *data, size_t len);

/* SipHash-2-4 of data under a 16-byte key. */
uint64_t hash_siphash24(const void *data, size_t len, const uint8_t key[16]);

/*
 * SipHash-2-4 under this process's key, made on first use from getrandom()
 * without blocking; before the kernel's pool is ready it falls back to a weaker
 * key from the clock and the stack address, which still differs per process.
 */
uint64_t hash_keyed(const void *data, size_t len);

#endif
