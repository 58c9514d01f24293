/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML (libyaml) to json-c, for kubeconfig files and any other YAML the
 * controller reads. Plain scalars are resolved with the YAML 1.2 core schema
 * (null/~/empty, true/false, integers, floats; "yes"/"on" stay strings);
 * quoted and block scalars are strings; the standard !!str/!!int/!!float/
 * !!bool/!!null tags are honoured, other tags ignored. Mapping keys must be
 * scalars and must not repeat.
 *
 * Input is untrusted, so everything is bounded (yaml_json_limits): the input
 * size, the nesting depth, and the number of nodes built, where an alias
 * counts as a full copy of its anchor's subtree (so "billion laughs" alias
 * bombs hit the node limit after a bounded amount of work). Aliases can also
 * be refused outright.
 */
#ifndef PP_KUBE_YAML_JSON_H
#define PP_KUBE_YAML_JSON_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;

#define YAML_JSON_DEFAULT_MAX_BYTES (4u * 1024 * 1024)
#define YAML_JSON_DEFAULT_MAX_DEPTH 64u
#define YAML_JSON_DEFAULT_MAX_NODES (1u << 20)

typedef struct yaml_json_limits {
        size_t max_bytes;   /* 0: YAML_JSON_DEFAULT_MAX_BYTES */
        unsigned max_depth; /* 0: YAML_JSON_DEFAULT_MAX_DEPTH */
        size_t max_nodes;   /* 0: YAML_JSON_DEFAULT_MAX_NODES */
        bool allow_aliases; /* false: any anchor (&x) or alias (*x) is an error */
} yaml_json_limits;

/*
 * Parses a single-document YAML stream. lim may be NULL (defaults, aliases
 * refused). Returns 0 and *ret (NULL for an empty stream or a null
 * document; release with json_object_put). Errors: -EBADMSG for a syntax or
 * structure error (several documents, a non-scalar key, a duplicate key, an
 * undefined or refused alias), -E2BIG when a limit is exceeded, -ENOMEM.
 * On error, if ret_error is non-NULL, *ret_error is a newly allocated one-line
 * message such as "line 3 column 5: did not find expected key".
 */
int yaml_json_parse(const char *data, size_t len, const yaml_json_limits *lim,
                    struct json_object **ret, char **ret_error);

/*
 * The same for a stream of any number of documents ("---" separated):
 * *ret is a JSON array with one element per document (null documents
 * included as JSON null). The limits apply to the stream as a whole.
 */
int yaml_json_parse_all(const char *data, size_t len, const yaml_json_limits *lim,
                        struct json_object **ret, char **ret_error);

#endif
