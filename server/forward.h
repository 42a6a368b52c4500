/* forward.h - `vvd forward`: a model's outputs on an array of inputs. */
#ifndef VV_FORWARD_H
#define VV_FORWARD_H

#include <stdio.h>

/* The usage lines of `vvd forward`, for `vvd --help` and `vvd forward
 * --help`. */
void vvd_forward_usage(FILE *f);

/* Runs `vvd forward` with the arguments after the command's name: the
 * model (an architecture spec file such as a compress run's model.json, and
 * its .safetensors weights) on the inputs of a .npy file, in batches, with
 * the forward pass the daemon uses, on the CPU or the device --device
 * names; writes the outputs (N x outputs float32) to a .npy file and prints
 * one JSON line: the result, or the error as `vvd run` prints it (state
 * FAILED, error_code, detail, field).  Returns the exit status: 0 written,
 * 1 a failure of the machine (memory, I/O, device), 2 bad usage or bad
 * input (a missing or malformed file, inputs of the wrong shape or dtype). */
int vvd_forward(int argc, char **argv);

#endif
