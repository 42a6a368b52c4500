/* device.h - the compute devices of the process (--device, a job's "device").
 *
 * The CPU is always there.  Besides it at most one device is open: the one
 * --device chose (cuda:N, or sim:N, the simulated device of vv/backend.h),
 * opened once and kept for the process's life, so its context, cuBLAS
 * handle and kernels are made once and jobs find it ready.  Jobs run one at
 * a time, so the device has one user; /health only reads its memory.
 */
#ifndef VV_DEVICE_H
#define VV_DEVICE_H

#include "vv/backend.h"

#include <cjson/cJSON.h>

/* 1 when name is a device name: cpu, auto, cuda:N or sim:N (N < 64). */
int device_name_ok(const char *name);

/* The names this build knows, for messages ("cpu, auto, cuda:N, sim:N"). */
const char *device_names(void);

/* Opens the process's device and checks it (device_self_test).  "auto":
 * cuda:0 when it opens and passes, else the CPU (the reason is logged);
 * "cpu"; "cuda:N"; "sim:N" (a simulated device of VVD_SIM_MEMORY bytes,
 * default 1 GiB, failing for good after VVD_SIM_FAIL_AFTER operations of
 * the jobs when set).  Fails with VV_EDEVICE (or the device's error) and
 * the reason when the device named cannot be opened or fails its
 * self-test.  Call once. */
int devices_open(const char *name);
void devices_close(void);

/* The name of the process's device: "cpu", "cuda:0", "sim:0". */
const char *devices_default(void);

/* The backend for a job's device: NULL, "" or "auto" is the process's
 * device.  Fails with VV_EDEVICE, naming what this process has, when the
 * job names another one. */
int devices_get(const char *name, vv_backend **be);

/* A short check of a device before it is trusted: a small lasso (its
 * statistics and FISTA) and a narrow VGG-19's forward pass on be and on the
 * CPU must agree (G to 1e-12, the objective to 1e-9, the logits to 1e-4).
 * VV_EDEVICE saying what disagreed, or the device's own error.  About 1 s on
 * the CPU side. */
int device_self_test(vv_backend *be);

/* 1 once the process's device suffered a sticky error: it cannot run
 * anything more, and the daemon must be restarted. */
int devices_lost(void);

/* A JSON description of the process's device: name, kind, model, memory
 * (total, free, in bytes) and lost. */
cJSON *devices_describe(void);

#endif
