/* socp_driver.c - command-line driver for vvd's exact multi-task lasso
 * (vv/socp.h), used by bench/bench_socp.sh until a `vvd socp` sub-command
 * exists.  Build:
 *
 *   gcc -O2 -std=gnu11 -D_GNU_SOURCE -Icore/include bench/socp_driver.c \
 *       build/libvv.a -lcjson -lopenblas -lm -lpthread -o build/socp_driver
 *
 * (core/socp.c and core/socp_brute.c must be in libvv.a, or be added to
 * the command line.)  Commands, each printing one JSON line:
 *
 *   gen gaussian N D K SEED DIR    writes DIR/phi.npy (N x K), DIR/psi.npy (N x D)
 *   gen lowrank N R K SEED DIR     the Fig. 4 data (psi is N x R)
 *   solve PHI PSI [REPS] [V.npy]   solves; seconds = median of REPS solves
 *   fig3 N D K COUNT SEED0         COUNT Gaussian instances: active counts
 *   fig4 N R K COUNT SEED0         COUNT rank-R instances: active counts
 *   brute N D K COUNT SEED0        COUNT Gaussian instances: sparsest counts
 */
#include "vv/array.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/socp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The OpenBLAS kernels vvd chooses for this CPU (vv/blas.h). */
VV_BLAS_PREINIT;

static int die(const char *what)
{
    fprintf(stderr, "socp_driver: %s: %s\n", what, vv_err_detail());
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double *load(const char *path, int64_t *rows, int64_t *cols)
{
    vv_array a;
    if (vv_npy_read(path, &a) < 0 || a.dtype != VV_F64) {
        fprintf(stderr, "socp_driver: %s: %s\n", path,
                a.dtype != VV_F64 ? "float64 expected" : vv_err_detail());
        exit(1);
    }
    *rows = a.shape[0];
    *cols = a.ndim == 2 ? a.shape[1] : 1;
    return a.data;
}

static void counts_json(const char *kind, int64_t n, int64_t d, int64_t k, int count,
                        const int64_t *c, const double *secs, int nonopt)
{
    double mean = 0, tsum = 0;
    int64_t mn = c[0], mx = c[0];
    for (int i = 0; i < count; i++) {
        mean += (double)c[i];
        tsum += secs[i];
        mn = c[i] < mn ? c[i] : mn;
        mx = c[i] > mx ? c[i] : mx;
    }
    printf("{\"kind\":\"%s\",\"n\":%lld,\"d\":%lld,\"k\":%lld,\"instances\":%d,\"mean\":%.3f,"
           "\"min\":%lld,\"max\":%lld,\"not_optimal\":%d,\"seconds\":%.3f,\"counts\":[",
           kind, (long long)n, (long long)d, (long long)k, count, mean / count, (long long)mn,
           (long long)mx, nonopt, tsum);
    for (int i = 0; i < count; i++)
        printf("%s%lld", i ? "," : "", (long long)c[i]);
    printf("]}\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: see the comment at the top of bench/socp_driver.c\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "gen") && argc == 8) {
        int64_t n = atoll(argv[3]), d = atoll(argv[4]), k = atoll(argv[5]);
        uint64_t seed = strtoull(argv[6], NULL, 10);
        double *phi = malloc((size_t)(n * k) * sizeof *phi), *psi = malloc((size_t)(n * d) * 8);
        int rc = !strcmp(argv[2], "lowrank") ? vv_socp_gen_lowrank(n, k, d, seed, phi, psi)
                                             : vv_socp_gen_gaussian(n, k, d, seed, phi, psi);
        if (rc < 0)
            return die("gen");
        mkdir(argv[7], 0755);
        char p[4096];
        int64_t s1[2] = {n, k}, s2[2] = {n, d};
        snprintf(p, sizeof p, "%s/phi.npy", argv[7]);
        if (vv_npy_write(p, VV_F64, 2, s1, phi) < 0)
            return die(p);
        snprintf(p, sizeof p, "%s/psi.npy", argv[7]);
        if (vv_npy_write(p, VV_F64, 2, s2, psi) < 0)
            return die(p);
        printf("{\"n\":%lld,\"d\":%lld,\"k\":%lld,\"seed\":%llu}\n", (long long)n, (long long)d,
               (long long)k, (unsigned long long)seed);
        free(phi);
        free(psi);
        return 0;
    }
    if (!strcmp(cmd, "solve") && argc >= 4) {
        int64_t n, k, n2, d;
        double *phi = load(argv[2], &n, &k), *psi = load(argv[3], &n2, &d);
        int reps = argc > 4 ? atoi(argv[4]) : 1;
        if (reps < 1)
            reps = 1;
        double *V = malloc((size_t)(d * k) * sizeof *V), *Y = malloc((size_t)(n * d) * 8);
        double *t = malloc((size_t)reps * sizeof *t);
        vv_socp_result r;
        for (int i = 0; i < reps; i++) {
            if (vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &r) < 0)
                return die("solve");
            t[i] = r.seconds;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        if (argc > 5) {
            int64_t sh[2] = {d, k};
            if (vv_npy_write(argv[5], VV_F64, 2, sh, V) < 0)
                return die(argv[5]);
        }
        printf("{\"status\":\"%s\",\"iterations\":%d,\"seconds\":%.6f,\"seconds_min\":%.6f,"
               "\"primal\":%.17g,\"dual\":%.17g,\"rel_gap\":%.3e,\"pres\":%.3e,\"dres\":%.3e,"
               "\"compl\":%.3e,\"rank\":%lld,\"active\":%lld,\"blas\":\"%s\",\"threads\":%d}\n",
               vv_socp_status_name(r.status), r.iterations, t[reps / 2], t[0], r.primal, r.dual,
               r.rel_gap, r.pres, r.dres, r.complementarity, (long long)r.rank, (long long)r.active,
               vv_blas_corename(), vv_blas_threads());
        return 0;
    }
    if ((!strcmp(cmd, "fig3") || !strcmp(cmd, "fig4") || !strcmp(cmd, "brute")) && argc == 7) {
        int64_t n = atoll(argv[2]), d = atoll(argv[3]), k = atoll(argv[4]);
        int count = atoi(argv[5]);
        uint64_t seed0 = strtoull(argv[6], NULL, 10);
        double *phi = malloc((size_t)(n * k) * sizeof *phi), *psi = malloc((size_t)(n * d) * 8);
        int64_t *c = malloc((size_t)count * sizeof *c);
        double *secs = malloc((size_t)count * sizeof *secs);
        int nonopt = 0;
        for (int i = 0; i < count; i++) {
            int rc = !strcmp(cmd, "fig4")
                         ? vv_socp_gen_lowrank(n, k, d, seed0 + (uint64_t)i, phi, psi)
                         : vv_socp_gen_gaussian(n, k, d, seed0 + (uint64_t)i, phi, psi);
            if (rc < 0)
                return die("gen");
            if (!strcmp(cmd, "brute")) {
                vv_socp_brute_opts o;
                vv_socp_brute_opts_default(&o);
                o.budget = INT64_MAX;
                vv_socp_brute_result br;
                if (vv_socp_brute(n, k, d, phi, psi, &o, NULL, NULL, &br) < 0)
                    return die("brute");
                c[i] = br.sparsest;
                secs[i] = br.seconds;
                nonopt += br.failed > 0;
            } else {
                vv_socp_result r;
                if (vv_socp_solve(n, k, d, phi, psi, NULL, NULL, NULL, &r) < 0)
                    return die("solve");
                c[i] = r.active;
                secs[i] = r.seconds;
                nonopt += r.status != VV_SOCP_OPTIMAL;
            }
        }
        counts_json(cmd, n, d, k, count, c, secs, nonopt);
        return 0;
    }
    fprintf(stderr, "socp_driver: bad command line (see bench/socp_driver.c)\n");
    return 2;
}
