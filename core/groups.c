/* groups.c - groups of rows of W penalised together (the group lasso).
 *
 * Group g is rows [group_off[g], group_off[g + 1]) of W (K x D, row-major),
 * so its block W_g is (size x D) consecutive values: every per-group
 * quantity is a plain loop over one contiguous range, and groups of one
 * size are the rows of the ngroups x (size D) view of the same memory,
 * which is how the backends' row operations serve them.  Without offsets
 * every row is its own group and each function here does exactly what the
 * row-wise code did.  The mathematics: doc/group-lasso.md.
 */
#include "solve_internal.h"
#include "vv/blas.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int vv_groups_check(const vv_stats *s)
{
    int64_t k = s->k, ng = s->ngroups;
    const int64_t *o = s->group_off;
    if (!o) {
        if (ng != 0 && ng != k)
            return vv_fail(VV_EINVAL,
                           "groups: ngroups is %lld but group_off is NULL (every row its own "
                           "group needs ngroups 0 or k = %lld)",
                           (long long)ng, (long long)k);
        return 0;
    }
    if (ng < 0 || (ng == 0 && k > 0))
        return vv_fail(VV_EINVAL, "groups: %lld groups for %lld features", (long long)ng,
                       (long long)k);
    if (o[0] != 0)
        return vv_fail(VV_EINVAL, "groups: group_off[0] is %lld, not 0", (long long)o[0]);
    for (int64_t g = 0; g < ng; g++) {
        if (o[g + 1] <= o[g])
            return vv_fail(VV_EINVAL,
                           "groups: group %lld is empty or the offsets descend "
                           "(group_off[%lld] = %lld, group_off[%lld] = %lld)",
                           (long long)g, (long long)g, (long long)o[g], (long long)(g + 1),
                           (long long)o[g + 1]);
        if (o[g + 1] > k)
            return vv_fail(VV_EINVAL,
                           "groups: group_off[%lld] = %lld is past the feature count k = %lld",
                           (long long)(g + 1), (long long)o[g + 1], (long long)k);
    }
    if (o[ng] != k)
        return vv_fail(VV_EINVAL, "groups: group_off[%lld] = %lld, not the feature count k = %lld",
                       (long long)ng, (long long)o[ng], (long long)k);
    return 0;
}

int vv_groups_uniform(int64_t k, int64_t size, int64_t **off, int64_t *ng)
{
    *off = NULL;
    *ng = 0;
    if (k < 0 || size < 1 || k % size != 0)
        return vv_fail(VV_EINVAL, "groups: %lld features do not split into groups of %lld",
                       (long long)k, (long long)size);
    int64_t n = k / size;
    int64_t *o = malloc((size_t)(n + 1) * sizeof *o);
    if (!o)
        return vv_fail(VV_ENOMEM, "groups: out of memory for %lld offsets", (long long)(n + 1));
    for (int64_t g = 0; g <= n; g++)
        o[g] = g * size;
    *off = o;
    *ng = n;
    return 0;
}

int64_t vv_groups_count(const vv_stats *s)
{
    return s->group_off ? s->ngroups : s->k;
}

int64_t vv_groups_size(const vv_stats *s)
{
    if (!s->group_off || s->ngroups == 0)
        return 1;
    int64_t sz = s->group_off[1] - s->group_off[0];
    for (int64_t g = 1; g < s->ngroups; g++)
        if (s->group_off[g + 1] - s->group_off[g] != sz)
            return 0;
    return sz;
}

int vv_group_lmax(const vv_stats *s, double *L)
{
    int64_t k = s->k, ng = vv_groups_count(s), big = 1;
    for (int64_t g = 0; g < ng; g++) {
        int64_t sz = vv__goff(s, g + 1) - vv__goff(s, g);
        big = sz > big ? sz : big;
    }
    double *a = NULL, *w = NULL;
    if (big > 1 && (!(a = malloc((size_t)(big * big) * sizeof *a)) ||
                    !(w = malloc((size_t)big * sizeof *w)))) {
        free(a);
        return vv_fail(VV_ENOMEM, "groups: out of memory for a %lld-row block", (long long)big);
    }
    int rc = 0;
    for (int64_t g = 0; g < ng && rc == 0; g++) {
        int64_t r0 = vv__goff(s, g), sz = vv__goff(s, g + 1) - r0;
        if (sz == 1) {
            /* Exactly today's constant: the block is the scalar G_kk. */
            L[g] = s->G[r0 * k + r0];
            continue;
        }
        for (int64_t i = 0; i < sz; i++)
            memcpy(a + i * sz, s->G + (r0 + i) * k + r0, (size_t)sz * sizeof *a);
        int info = vv_dsyev((int)sz, a, w);
        if (info != 0) {
            rc = info == -1 ? vv_fail(VV_ENOMEM, "groups: out of memory for dsyev")
                            : vv_fail(VV_ENUMERIC, "groups: dsyev failed on group %lld (info %d)",
                                      (long long)g, info);
            break;
        }
        /* dsyev is backward stable: its largest eigenvalue is within a small
         * multiple of eps ||G_gg|| of the true one.  Screening needs an upper
         * bound, so it is scaled up by far more than that error. */
        double top = w[sz - 1];
        L[g] = top > 0 ? top * (1 + 1e-12) : 0.0;
    }
    free(a);
    free(w);
    return rc;
}

int64_t vv_lasso_group_support(const vv_stats *s, const double *W, int64_t *gidx)
{
    int64_t d = s->d, ng = vv_groups_count(s), m = 0;
    for (int64_t g = 0; g < ng; g++) {
        const double *w = W + vv__goff(s, g) * d;
        int64_t len = (vv__goff(s, g + 1) - vv__goff(s, g)) * d;
        double q = 0;
        for (int64_t j = 0; j < len; j++)
            q += w[j] * w[j];
        if (sqrt(q) > VV_ACTIVE_TOL) {
            if (gidx)
                gidx[m] = g;
            m++;
        }
    }
    return m;
}

int vv__group_shrink(vv_backend *be, const vv_stats *s, double *X, double thr, double eps)
{
    int64_t gs = vv_groups_size(s);
    /* Groups of one size: the rows of the ngroups x (size D) view, so the
     * backend's row operation (and a device's kernel) serves them as is. */
    if (gs > 0)
        return be->ops->group_shrink(be, s->k / gs, gs * s->d, X, thr, eps, NULL);
    /* Sizes that differ: one group at a time, on host memory (the host
     * solvers' only case; the resident solver refuses such groups). */
    vv_backend *cpu = vv_backend_cpu();
    int64_t ng = vv_groups_count(s);
    for (int64_t g = 0; g < ng; g++) {
        int64_t r0 = vv__goff(s, g), r1 = vv__goff(s, g + 1);
        int rc = cpu->ops->group_shrink(cpu, 1, (r1 - r0) * s->d, X + r0 * s->d, thr, eps, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}
