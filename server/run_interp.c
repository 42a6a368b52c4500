/* run_interp.c - the "interpolate" job: min sum_k ||v_k|| s.t. Phi V^T = Psi
 * with a dual certificate. */
#include "run.h"
#include "state.h"

#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/socp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int run_interpolate(const interp_spec *s, const char *out_dir, const run_sink *sink,
                    const atomic_int *stop, cJSON **result, char *field, size_t fsz)
{
    *result = NULL;
    if (field && fsz)
        field[0] = 0;
    double t0 = vv_now();
    double *phi = NULL, *psi = NULL, *V = NULL, *Y = NULL;
    int64_t *support = NULL, *kept = NULL;
    int64_t n, k, d, r2, c2;
    int rc;
    if (s->generate) {
        n = s->gen_n;
        k = s->gen_k;
        d = s->gen_lowrank ? s->gen_rank : s->gen_d;
        phi = malloc((size_t)(n * k) * sizeof *phi);
        psi = malloc((size_t)(n * d) * sizeof *psi);
        rc = !phi || !psi ? vv_fail(VV_ENOMEM, "out of memory for a %lld x %lld instance",
                                    (long long)n, (long long)k)
             : s->gen_lowrank ? vv_socp_gen_lowrank(n, k, s->gen_rank, s->gen_seed, phi, psi)
                              : vv_socp_gen_gaussian(n, k, d, s->gen_seed, phi, psi);
        if (rc < 0 && field && fsz)
            snprintf(field, fsz, "/generate");
    } else {
        rc = run_read_matrix(&s->phi, "/phi", &phi, &n, &k, field, fsz);
        if (rc == 0)
            rc = run_read_matrix(&s->psi, "/psi", &psi, &r2, &d, field, fsz);
        if (rc == 0 && r2 != n) {
            rc = vv_fail(VV_ESHAPE, "phi (%s) has N=%lld rows but psi (%s) has N=%lld",
                         s->phi.path, (long long)n, s->psi.path, (long long)r2);
            snprintf(field, fsz, "/psi");
        }
    }
    if (rc < 0)
        goto done;
    (void)c2;
    if ((rc = run_mkdir_p(out_dir)) < 0)
        goto done;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "start");
    cJSON_AddStringToObject(ev, "kind", "interpolate");
    cJSON_AddNumberToObject(ev, "n", (double)n);
    cJSON_AddNumberToObject(ev, "k", (double)k);
    cJSON_AddNumberToObject(ev, "d", (double)d);
    run_emit_log(sink, ev);

    V = malloc((size_t)(d * k) * sizeof *V);
    Y = malloc((size_t)(n * d) * sizeof *Y);
    kept = malloc((size_t)k * sizeof *kept + 8);
    if (!V || !Y || !kept) {
        rc = vv_fail(VV_ENOMEM, "out of memory");
        goto done;
    }
    vv_socp_opts so;
    vv_socp_opts_default(&so);
    so.tol = s->tol;
    so.max_iter = (int)s->max_iter;
    so.stop = stop;
    vv_socp_result res;
    if ((rc = vv_socp_solve(n, k, d, phi, psi, &so, V, Y, &res)) < 0) {
        if (rc != VV_ESTATE && field && fsz)
            snprintf(field, fsz, "%s", s->generate ? "/generate" : "/phi");
        goto done;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "event", "result");
    int optimal = res.status == VV_SOCP_OPTIMAL;
    cJSON_AddStringToObject(r, "state", run_state_name(RUN_FINISHED));
    cJSON_AddStringToObject(r, "stop_reason", optimal                            ? "converged"
                                              : res.status == VV_SOCP_MAX_ITER   ? "max_iter"
                                                                                 : "numerical");
    cJSON_AddStringToObject(r, "kind", "interpolate");
    if (s->name)
        cJSON_AddStringToObject(r, "name", s->name);
    cJSON_AddStringToObject(r, "status", vv_socp_status_name(res.status));
    cJSON_AddNumberToObject(r, "objective", res.primal);
    cJSON_AddNumberToObject(r, "dual", res.dual);
    cJSON_AddNumberToObject(r, "gap", res.gap);
    cJSON_AddNumberToObject(r, "rel_gap", res.rel_gap);
    cJSON_AddNumberToObject(r, "primal_residual", res.pres);
    cJSON_AddNumberToObject(r, "dual_residual", res.dres);
    cJSON_AddNumberToObject(r, "active", (double)res.active);
    cJSON_AddNumberToObject(r, "rank_phi", (double)res.rank);
    cJSON_AddNumberToObject(r, "iterations", res.iterations);
    cJSON_AddNumberToObject(r, "solve_seconds", res.seconds);
    cJSON_AddNumberToObject(r, "n", (double)n);
    cJSON_AddNumberToObject(r, "k", (double)k);
    cJSON_AddNumberToObject(r, "d", (double)d);
    if (res.status == VV_SOCP_INFEASIBLE)
        cJSON_AddStringToObject(r, "detail", "Psi is not in the column space of Phi: Y is a "
                                             "certificate (Phi^T Y = 0, <Psi, Y> > 0)");
    if (s->brute_force && res.status != VV_SOCP_INFEASIBLE) {
        support = malloc((size_t)k * sizeof *support + 8);
        vv_socp_brute_opts bo;
        vv_socp_brute_opts_default(&bo);
        bo.socp = so;
        bo.budget = s->budget;
        bo.stop = stop;
        vv_socp_brute_result br;
        rc = support ? vv_socp_brute(n, k, d, phi, psi, &bo, support, NULL, &br)
                     : vv_fail(VV_ENOMEM, "out of memory");
        if (rc < 0) {
            cJSON_Delete(r);
            if (rc == VV_EINVAL && field && fsz)
                snprintf(field, fsz, "/brute_force");
            goto done;
        }
        cJSON *b = cJSON_AddObjectToObject(r, "brute_force");
        cJSON_AddNumberToObject(b, "sparsest", (double)br.sparsest);
        cJSON_AddNumberToObject(b, "global_optimum", br.gl_star);
        cJSON_AddNumberToObject(b, "sparsest_objective", br.sparsest_obj);
        cJSON_AddNumberToObject(b, "subproblems", (double)br.subproblems);
        cJSON_AddNumberToObject(b, "closed_form", (double)br.closed_form);
        cJSON_AddNumberToObject(b, "failed", (double)br.failed);
        cJSON_AddNumberToObject(b, "seconds", br.seconds);
        cJSON *sup = cJSON_AddArrayToObject(b, "support");
        for (int64_t i = 0; i < br.sparsest; i++)
            cJSON_AddItemToArray(sup, cJSON_CreateNumber((double)support[i]));
    }
    /* Artifacts: V (D x K), the dual certificate Y (N x D), the kept columns. */
    char path[4200];
    cJSON *outs = cJSON_AddObjectToObject(r, "outputs");
    snprintf(path, sizeof path, "%s/V.npy", out_dir);
    if ((rc = vv_npy_write(path, VV_F64, 2, (int64_t[]){d, k}, V)) == 0)
        cJSON_AddStringToObject(outs, "V", path);
    snprintf(path, sizeof path, "%s/Y.npy", out_dir);
    if (rc == 0 && (rc = vv_npy_write(path, VV_F64, 2, (int64_t[]){n, d}, Y)) == 0)
        cJSON_AddStringToObject(outs, "Y", path);
    int64_t nk = 0;
    for (int64_t c = 0; c < k; c++) {
        double q = 0;
        for (int64_t i = 0; i < d; i++)
            q += V[i * k + c] * V[i * k + c];
        if (sqrt(q) > VV_ACTIVE_TOL)
            kept[nk++] = c;
    }
    snprintf(path, sizeof path, "%s/kept.npy", out_dir);
    if (rc == 0 && (rc = vv_npy_write(path, VV_I64, 1, (int64_t[]){nk}, kept)) == 0)
        cJSON_AddStringToObject(outs, "kept", path);
    cJSON_AddNumberToObject(r, "seconds", vv_now() - t0);
    snprintf(path, sizeof path, "%s/result.json", out_dir);
    if (rc == 0 && (rc = run_write_json(path, r)) == 0)
        cJSON_AddStringToObject(outs, "result", path);
    if (rc < 0) {
        cJSON_Delete(r);
        goto done;
    }
    *result = r;
done:
    free(phi);
    free(psi);
    free(V);
    free(Y);
    free(support);
    free(kept);
    return rc;
}
