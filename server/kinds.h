/* kinds.h - the job kinds: one row of one table each.
 *
 * A row names the kind, its top-level fields (the schema test checks them
 * against schema/), its parser, its free function, the list of every path
 * its spec names, and its run function.  Path confinement (kinds_confine),
 * parsing and dispatch all go through the table, so a new kind is one row
 * and its files.
 */
#ifndef VV_KINDS_H
#define VV_KINDS_H

#include "run.h"
#include "spec.h"

#include <stdatomic.h>

/* A path a spec names: the spec's own member (rewritten by kinds_confine to
 * the absolute real path it resolved to), its JSON pointer, and whether it
 * is a data set file (the built-in Fashion-MNIST folder is allowed then). */
typedef struct spec_path {
    char **path;
    char ptr[96];
    int dataset;
} spec_path;

enum { SPEC_MAX_PATHS = 16 + 2 * SPEC_MAX_SHARDS }; /* a lasso's shards count too */

typedef struct kind_def {
    job_kind kind;
    const char *name;
    const char *const *fields; /* top-level fields, NULL-ended */
    int (*parse)(const cJSON *root, job_spec *s, char *field, size_t fsz);
    void (*free)(job_spec *s);
    /* Writes the paths the spec names (at most SPEC_MAX_PATHS); returns
     * their count. */
    int (*paths)(job_spec *s, spec_path *out);
    int (*run)(job_spec *s, const char *out_dir, const run_sink *sink, const atomic_int *stop,
               run_cache *cache, cJSON **result, char *field, size_t fsz);
} kind_def;

/* The row of kind k (never NULL for a valid k). */
const kind_def *kind_of(job_kind k);
/* The row of the kind named name, or NULL. */
const kind_def *kind_named(const char *name);

/* Confines every path the spec names inside the data root root (an
 * absolute real path), each resolved by data_resolve_input (paths.h) and
 * rewritten in the spec to its absolute real path.  A data set file may
 * also lie in the built-in Fashion-MNIST folder.  On failure returns the
 * vv_err (VV_EPATH 403 for a path leading out, VV_ENOFILE for a missing
 * file) with field set to the path's JSON pointer. */
int kinds_confine(job_spec *s, const char *root, char *field, size_t fsz);

/* The same for a model reference alone (its weights and spec file), at
 * JSON pointer ptr (POST /v1/models). */
int kinds_confine_model(model_ref *m, const char *root, const char *ptr, char *field, size_t fsz);

#endif
