/* model_check.h - a compress spec checked against its model before it runs:
 * the layers it names, and the header of the model's weights file.
 *
 * A layer can be compressed when it is linear and hidden neurons lie before
 * it (a conv2d or linear layer), or when it is a conv2d fed by the channels
 * of another conv2d: the lasso then chooses which of its inputs (neurons,
 * or channels as groups of inputs) to keep.  A layer fed by the input alone
 * has nothing to delete and is refused.  The daemon checks this when a run is submitted
 * (POST /v1/runs, each point of POST /v1/sweeps), whatever names the model
 * (an inline architecture, a spec file, a resident model), so that a bad
 * name is a 400 and never a queued run that fails later; `vvd run` checks an
 * inline architecture when it parses the spec.
 *
 * Errors name the field as a JSON pointer, like spec.h.
 */
#ifndef VV_MODEL_CHECK_H
#define VV_MODEL_CHECK_H

#include "spec.h"
#include "vv/model.h"

#include <stddef.h>

/* What compressing a layer deletes: the neurons of the linear layer that
 * feeds it (groups of one input), the channels of the conv2d that feeds it
 * (groups of the inputs that come from one channel: k x k of a conv, h x w
 * of a linear layer after flatten), or nothing (a linear layer above
 * hidden layers whose inputs are no one layer's outputs: its columns are
 * zeroed). */
typedef enum { UNIT_NONE = 0, UNIT_NEURONS, UNIT_CHANNELS } unit_kind;

typedef struct layer_unit {
    unit_kind kind;
    int producer;      /* the layer whose neurons or channels are deleted; -1: none */
    int conv;          /* the layer is a conv2d: its rows are (image, position) pairs */
    int64_t k, d;      /* features (in_ch x k x k for a conv) and outputs */
    int64_t group;     /* features per deleted unit */
    int64_t units;     /* k / group: the neurons or channels that can go */
    int64_t positions; /* rows per image: sampled output positions of a conv, else 1 */
} layer_unit;

/* 1 when layer i of m can be compressed (a linear layer with a conv2d or
 * linear layer before it, or a conv2d fed by another's channels), else 0. */
int model_layer_compressible(const vv_model *m, int i);

/* Describes what compressing layer i deletes into *u; returns 0 (and a
 * zeroed *u) when it cannot be compressed.  positions: a conv's positions
 * per image (-1: all, 0: the default; at most its output map). */
int model_layer_unit(const vv_model *m, int i, int64_t positions, layer_unit *u);

/* The layers a compress spec selects, ascending, into idx (m->n entries of
 * room; may be NULL); returns how many, or VV_EINVAL with field
 * "/layers/<i>" for a name that is not a layer of m or one that cannot be
 * compressed (a linear layer fed by the input, a conv2d with no channels to
 * delete in front of it: each detail lists the layers that can be), at
 * "/layers" for a set (all_linear, all_conv, all) that is empty in m, and
 * at "/positions_per_image" for more positions than a selected conv
 * layer's output map. */
int model_compress_layers(const vv_model *m, const compress_spec *s, int *idx, char *field,
                          size_t fsz);

/* model_compress_layers without the list: 0 or its error. */
int model_check_layers(const vv_model *m, const compress_spec *s, char *field, size_t fsz);

/* model_check_layers against the spec's own model as the daemon has it
 * when the spec is submitted: a resident model (the architecture of the
 * default model's train preset while it is not trained yet), or the
 * architecture of an inline or a resolved file spec.  Then reads the header
 * of the model's weights file, when it names one: a file that is not a
 * .safetensors one (a torch.save file, say) fails with its reader's error at
 * "/model/weights".  A resident name that no model has passes (the caller
 * reports it).  For a model given by files, call after they were confined
 * and resolved (api_check_model_files); a resident model may be checked
 * before, so that a refused run does not queue the default model's
 * training. */
int model_check_compress(const compress_spec *s, char *field, size_t fsz);

#endif
