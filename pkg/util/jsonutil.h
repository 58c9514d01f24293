/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small json-c helpers for reading API objects. json-c represents JSON null as
 * a NULL json_object, so "absent" and "null" look the same here, as they do to
 * the apiserver for optional fields. References are borrowed unless said.
 */
#ifndef PP_UTIL_JSONUTIL_H
#define PP_UTIL_JSONUTIL_H

#include <json-c/json.h>
#include <stddef.h>

/* obj[key]; NULL when obj is NULL or not an object, or key is absent or null. */
json_object *jsonutil_member(json_object *obj, const char *key);

/*
 * The string obj[key], or NULL when it is absent, not a string, or holds a NUL
 * byte ("\u0000", which C would silently cut the string at).
 */
const char *jsonutil_member_str(json_object *obj, const char *key);

/*
 * Adds v under key, taking the caller's reference to v: on failure (also when v
 * is NULL, as from a failed json_object_new_*()) v is released and -ENOMEM
 * returned. 0 on success.
 */
int jsonutil_add(json_object *obj, const char *key, json_object *v);

/*
 * Parses the len bytes of text as exactly one JSON value nested at most depth
 * deep (as json_tokener_new_ex() counts it: a scalar inside a container takes a
 * level too); only whitespace (space, tab, CR, LF) may follow the value. Returns a new
 * reference, or NULL when the text is malformed, has anything else after the
 * value, is deeper than depth, or is longer than INT_MAX (or on ENOMEM).
 * json-c's tokener takes a bare top-level number or true/false that ends the
 * text as unfinished (NULL); the API objects parsed here are objects.
 */
json_object *jsonutil_parse(const char *text, size_t len, int depth);

#endif
