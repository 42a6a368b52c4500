/* model_check.h - a compress spec checked against its model before it runs:
 * the layers it names, and the header of the model's weights file.
 *
 * A layer can be compressed when it is linear and hidden neurons lie before
 * it (a conv2d or linear layer): the lasso then chooses which of its inputs
 * to keep.  A linear layer fed by the input alone has no hidden neurons to
 * delete and is refused.  The daemon checks this when a run is submitted
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

/* 1 when layer i of m can be compressed (linear, with a conv2d or linear
 * layer before it), else 0. */
int model_layer_compressible(const vv_model *m, int i);

/* Checks the layers a compress spec names against m.  Fails with VV_EINVAL
 * and field "/layers/<i>" when name i is not a layer of m, names a layer that
 * is not linear, or a linear layer fed by the input ("fed by the input: it
 * has no hidden neurons to delete"); each detail lists the layers of m that
 * can be compressed.  With "all_linear", fails with VV_EINVAL at "/layers"
 * when no linear layer of m is fed by a linear layer (what all_linear
 * compresses). */
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
