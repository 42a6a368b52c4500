/* vv/cpu.h - the CPU and the BLAS kernels in use.
 *
 * Debian's OpenBLAS 0.3.21 chooses its kernels when the library is loaded
 * (before main) and does not recognise every recent CPU; unrecognised ones
 * get slow generic kernels.  It honours OPENBLAS_CORETYPE, read at load
 * time: vv_blas_wanted_coretype() says which value fits this CPU, and
 * vv_blas_preinit (vv/blas.h) sets it, before OpenBLAS starts, when the user
 * has not set one.
 */
#ifndef VV_CPU_H
#define VV_CPU_H

/* The OPENBLAS_CORETYPE this CPU should use ("SkylakeX" with AVX-512
 * F/BW/DQ/VL, "Haswell" with AVX2+FMA), or NULL when OpenBLAS's own choice
 * is right.  Pure function of the CPU. */
const char *vv_blas_wanted_coretype(void);

/* The kernel set OpenBLAS is using (e.g. "SkylakeX", "Haswell",
 * "Prescott"), a static string. */
const char *vv_blas_corename(void);

/* OpenBLAS's configuration string (version, build options). */
const char *vv_blas_config(void);

/* A one-line description of the CPU (model name, cores). Static storage. */
const char *vv_cpu_description(void);

/* Monotonic wall clock in seconds. */
double vv_now(void);

#endif
