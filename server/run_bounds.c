/* run_bounds.c - the "bounds_study" job: the paper's Figs. 3-5. */
#include "run.h"
#include "state.h"
#include "svg.h"

#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/socp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One instance: the count of nonzero columns (of the sparsest optimal
 * solution for fig5), or -1 when the solve did not reach its tolerance. */
static int one_instance(const bounds_spec *s, int64_t value, uint64_t seed, double *phi,
                        double *psi, const atomic_int *stop, int64_t *count, double *objective,
                        double *rel_gap)
{
    int64_t n = s->figure == FIG3 ? value : s->n;
    int64_t k = s->figure == FIG5 ? value : s->k;
    int64_t d = s->figure == FIG4 ? value : s->d;
    int rc = s->figure == FIG4 ? vv_socp_gen_lowrank(n, k, value, seed, phi, psi)
                               : vv_socp_gen_gaussian(n, k, d, seed, phi, psi);
    if (rc < 0)
        return rc;
    vv_socp_opts so;
    vv_socp_opts_default(&so);
    so.tol = s->tol;
    so.stop = stop;
    if (s->figure == FIG5) {
        vv_socp_brute_opts bo;
        vv_socp_brute_opts_default(&bo);
        bo.socp = so;
        bo.budget = s->budget;
        bo.stop = stop;
        vv_socp_brute_result br;
        if ((rc = vv_socp_brute(n, k, d, phi, psi, &bo, NULL, NULL, &br)) < 0)
            return rc;
        *count = br.failed ? -1 : br.sparsest;
        *objective = br.gl_star;
        *rel_gap = 0;
        return 0;
    }
    vv_socp_result res;
    if ((rc = vv_socp_solve(n, k, d, phi, psi, &so, NULL, NULL, &res)) < 0)
        return rc;
    *count = res.status == VV_SOCP_OPTIMAL ? res.active : -1;
    *objective = res.primal;
    *rel_gap = res.rel_gap;
    return 0;
}

int run_bounds(const bounds_spec *s, const char *out_dir, const run_sink *sink,
               const atomic_int *stop, cJSON **result, char *field, size_t fsz)
{
    *result = NULL;
    if (field && fsz)
        field[0] = 0;
    double t0 = vv_now();
    int rc = run_mkdir_p(out_dir);
    if (rc < 0)
        return rc;
    int64_t maxn = s->figure == FIG3 ? 0 : s->n, maxk = s->figure == FIG5 ? 0 : s->k,
            maxd = s->figure == FIG4 ? 0 : s->d;
    for (int i = 0; i < s->nvalues; i++) {
        int64_t v = s->values[i];
        maxn = s->figure == FIG3 && v > maxn ? v : maxn;
        maxk = s->figure == FIG5 && v > maxk ? v : maxk;
        maxd = s->figure == FIG4 && v > maxd ? v : maxd;
    }
    double *phi = malloc((size_t)(maxn * maxk) * sizeof *phi);
    double *psi = malloc((size_t)(maxn * maxd) * sizeof *psi);
    int64_t *counts = malloc((size_t)(s->instances * s->nvalues) * sizeof *counts);
    svg_hist panels[16];
    char titles[16][96];
    if (!phi || !psi || !counts) {
        rc = vv_fail(VV_ENOMEM, "out of memory");
        goto done;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "event", "result");
    cJSON_AddStringToObject(r, "kind", "bounds_study");
    if (s->name)
        cJSON_AddStringToObject(r, "name", s->name);
    cJSON_AddStringToObject(r, "figure", s->figure == FIG3 ? "fig3" : s->figure == FIG4 ? "fig4" : "fig5");
    cJSON *pan = cJSON_AddArrayToObject(r, "panels");
    int64_t step = 0, violations = 0, failed_total = 0;
    int stopped = 0;
    for (int p = 0; p < s->nvalues && !stopped; p++) {
        int64_t v = s->values[p];
        int64_t n = s->figure == FIG3 ? v : s->n, k = s->figure == FIG5 ? v : s->k;
        int64_t d = s->figure == FIG4 ? v : s->d;
        /* The bounds: rank(Phi) and rank(Phi) rank(Psi) (Gaussian: N and N min(N, D);
         * rank r: r and r^2, Psi having r outputs of rank r). */
        int64_t rphi = s->figure == FIG4 ? v : (n < k ? n : k);
        int64_t rpsi = s->figure == FIG4 ? v : (n < d ? n : d);
        int64_t lower = rphi, upper = rphi * rpsi;
        int64_t *c = counts + (size_t)p * (size_t)s->instances;
        int got = 0, failed = 0;
        for (int64_t i = 0; i < s->instances; i++) {
            if (stop && atomic_load(stop)) {
                stopped = 1;
                break;
            }
            uint64_t seed = s->seed * 1000003ULL + (uint64_t)v * 10007ULL + (uint64_t)i;
            int64_t cnt;
            double obj, rg;
            rc = one_instance(s, v, seed, phi, psi, stop, &cnt, &obj, &rg);
            if (rc == VV_ESTATE && stop && atomic_load(stop)) {
                stopped = 1;
                rc = 0;
                break;
            }
            if (rc < 0) {
                cJSON_Delete(r);
                goto done;
            }
            if (cnt < 0) {
                failed++;
                continue;
            }
            c[got++] = cnt;
            violations += cnt < lower || cnt > upper;
            run_metric rm = {.step = step++, .time = vv_now() - t0};
            run_metric_set(&rm, RM_active, (double)cnt);
            run_metric_set(&rm, RM_objective, obj);
            run_metric_set(&rm, RM_rel_gap, rg);
            run_emit_metric(sink, &rm);
        }
        failed_total += failed;
        qsort(c, (size_t)got, sizeof *c, cmp_i64);
        double mean = 0;
        for (int i = 0; i < got; i++)
            mean += (double)c[i];
        mean = got ? mean / got : NAN;
        double var = 0;
        for (int i = 0; i < got; i++)
            var += ((double)c[i] - mean) * ((double)c[i] - mean);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "value", (double)v);
        cJSON_AddNumberToObject(o, "n", (double)n);
        cJSON_AddNumberToObject(o, "k", (double)k);
        cJSON_AddNumberToObject(o, "d", (double)d);
        cJSON_AddNumberToObject(o, "lower_bound", (double)lower);
        cJSON_AddNumberToObject(o, "upper_bound", (double)upper);
        cJSON_AddNumberToObject(o, "instances", got);
        cJSON_AddNumberToObject(o, "failed", failed);
        if (got) {
            cJSON_AddNumberToObject(o, "min", (double)c[0]);
            cJSON_AddNumberToObject(o, "max", (double)c[got - 1]);
            cJSON_AddNumberToObject(o, "mean", mean);
            cJSON_AddNumberToObject(o, "std", got > 1 ? sqrt(var / (got - 1)) : 0);
            cJSON_AddNumberToObject(o, "median", got % 2 ? (double)c[got / 2]
                                                         : 0.5 * (double)(c[got / 2 - 1] + c[got / 2]));
        }
        cJSON *h = cJSON_AddObjectToObject(o, "histogram");
        for (int i = 0; i < got; i++) {
            int j = i;
            while (j + 1 < got && c[j + 1] == c[i])
                j++;
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)c[i]);
            cJSON_AddNumberToObject(h, key, j - i + 1);
            i = j;
        }
        cJSON *all = cJSON_AddArrayToObject(o, "counts");
        for (int i = 0; i < got; i++)
            cJSON_AddItemToArray(all, cJSON_CreateNumber((double)c[i]));
        cJSON_AddItemToArray(pan, o);
        if (s->figure == FIG3)
            snprintf(titles[p], sizeof titles[p], "D=%lld, N=%lld, K=%lld", (long long)d,
                     (long long)n, (long long)k);
        else if (s->figure == FIG4)
            snprintf(titles[p], sizeof titles[p], "N=%lld, K=%lld, rank=%lld (D=%lld)",
                     (long long)n, (long long)k, (long long)v, (long long)d);
        else
            snprintf(titles[p], sizeof titles[p], "D=%lld, N=%lld, K=%lld", (long long)d,
                     (long long)n, (long long)k);
        panels[p] = (svg_hist){titles[p], c, got, lower, upper};
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "event", "panel");
        cJSON_AddStringToObject(ev, "title", titles[p]);
        cJSON_AddNumberToObject(ev, "mean", mean);
        cJSON_AddNumberToObject(ev, "instances", got);
        run_emit_log(sink, ev);
    }
    int npanels = cJSON_GetArraySize(pan);
    cJSON_AddStringToObject(r, "state", stopped ? run_state_name(RUN_STOPPED) : run_state_name(RUN_FINISHED));
    cJSON_AddStringToObject(r, "stop_reason", stop_reason_name(stopped ? STOP_USER : STOP_CONVERGED));
    cJSON_AddNumberToObject(r, "instances", (double)step);
    cJSON_AddNumberToObject(r, "failed", (double)failed_total);
    cJSON_AddNumberToObject(r, "violations", (double)violations);
    cJSON_AddNumberToObject(r, "seconds", vv_now() - t0);
    char path[4200];
    cJSON *outs = cJSON_AddObjectToObject(r, "outputs");
    snprintf(path, sizeof path, "%s/histograms.svg", out_dir);
    FILE *f = fopen(path, "w");
    rc = f ? svg_histograms(f, panels, npanels, s->figure == FIG5 ? "Number of nonzero columns (sparsest optimal)"
                                                                 : "Number of nonzero columns")
           : vv_fail(VV_EIO, "%s: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && rc == 0)
        rc = vv_fail(VV_EIO, "%s: %s", path, strerror(errno));
    if (rc == 0)
        cJSON_AddStringToObject(outs, "figure", path);
    snprintf(path, sizeof path, "%s/result.json", out_dir);
    if (rc == 0)
        rc = run_write_json(path, r);
    if (rc == 0)
        cJSON_AddStringToObject(outs, "result", path);
    if (rc < 0) {
        cJSON_Delete(r);
        goto done;
    }
    *result = r;
done:
    free(phi);
    free(psi);
    free(counts);
    return rc;
}
