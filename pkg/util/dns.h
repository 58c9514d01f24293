/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS-1123 names as the Kubernetes apiserver checks them (k8s.io/apimachinery
 * validation): a label is [a-z0-9]([-a-z0-9]*[a-z0-9])? of at most 63 bytes
 * (namespace names); a subdomain is dot-separated labels of that form, at most
 * 253 bytes overall (most object names, label key prefixes). As there, the parts
 * of a subdomain are not held to 63 bytes each.
 */
#ifndef PP_UTIL_DNS_H
#define PP_UTIL_DNS_H

#include <stdbool.h>
#include <stddef.h>

#define DNS_LABEL_MAX     63
#define DNS_SUBDOMAIN_MAX 253

/* Whether the len bytes at s are a DNS-1123 label / subdomain. s may hold no NUL. */
bool dns_label_ok(const char *s, size_t len);
bool dns_subdomain_ok(const char *s, size_t len);

#endif
