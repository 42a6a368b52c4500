/* test_stats.c - the streaming pass equals the brute-force sums. */
#include "tap.h"
#include "util.h"
#include "vv/err.h"

#include <stdatomic.h>

/* The shares of a distributed pass (mpi_run.h): vv_stats_share, row ranges
 * whose statistics add up, and shards concatenated.  G, Bt, c: the textbook
 * sums of p. */
static void check_shares(const tprob *p, const double *G, const double *Bt, double c)
{
    int64_t n = p->n, k = p->k, d = p->d;
    /* The shares of a distributed pass: contiguous, in order, covering
     * every item once, sizes within one of each other (mpi_run.h). */
    int share_ok = 1;
    int64_t ns[] = {0, 1, 5, 7, 537, 1000003};
    for (unsigned t = 0; t < sizeof ns / sizeof *ns; t++)
        for (int parts = 1; parts <= 9; parts++) {
            int64_t at = 0, lo = INT64_MAX, hi = 0;
            for (int r = 0; r < parts; r++) {
                int64_t b0, e0;
                vv_stats_share(ns[t], r, parts, &b0, &e0);
                share_ok &= b0 == at && e0 >= b0;
                lo = e0 - b0 < lo ? e0 - b0 : lo;
                hi = e0 - b0 > hi ? e0 - b0 : hi;
                at = e0;
            }
            share_ok &= at == ns[t] && hi - lo <= 1;
        }
    CHECK(share_ok, "vv_stats_share splits 0..n into contiguous shares within one of each other");

    /* Row ranges: the sums of the shares of 3 "ranks" equal one pass over
     * every row to 1e-12 (only the order of summation differs), and n
     * counts the rows of each share. */
    {
        vv_rows *a, *b;
        vv_rows_from_memory("phi", p->n, p->k, p->phi, &a);
        vv_rows_from_memory("psi", p->n, p->d, p->psi, &b);
        double *Gs = calloc((size_t)(k * k), sizeof *Gs), *Bs = calloc((size_t)(k * d), sizeof *Bs);
        double cs = 0;
        int64_t nsum = 0;
        int rok = 1;
        for (int r = 0; r < 3; r++) {
            int64_t b0, e0;
            vv_stats_share(n, r, 3, &b0, &e0);
            vv_stats_opts o = {
                .chunk_rows = 50, .bias = p->bias, .row0 = b0, .nrows = e0 - b0, .workers = 2};
            vv_stats st;
            if (vv_stats_compute(a, b, &o, &st) < 0) {
                rok = 0;
                continue;
            }
            rok &= st.n == e0 - b0;
            for (int64_t i = 0; i < k * k; i++)
                Gs[i] += st.G[i];
            for (int64_t i = 0; i < k * d; i++)
                Bs[i] += st.Bt[i];
            cs += st.c;
            nsum += st.n;
            vv_stats_free(&st);
        }
        CHECK(rok && nsum == n, "a pass over a row range sums that range's rows only");
        CHECK(max_rel_diff(Gs, G, k * k) < 1e-12 && max_rel_diff(Bs, Bt, k * d) < 1e-12 &&
                  fabs(cs - c) <= 1e-12 * c,
              "the statistics of the shares add up to those of all the rows");
        vv_stats st;
        vv_stats_opts bad = {.row0 = n - 2, .nrows = 3};
        CHECK(vv_stats_compute(a, b, &bad, &st) == VV_EINVAL && strstr(vv_err_detail(), "phi"),
              "a row range past the end is VV_EINVAL naming the source");
        vv_rows_free(a);
        vv_rows_free(b);

        /* Shards: the concatenation of row pieces is the whole matrix. */
        vv_rows *pa[3], *pb[3], *ca, *cb;
        int64_t cut[] = {0, 100, 101, n};
        for (int i = 0; i < 3; i++) {
            vv_rows_from_memory("phi part", cut[i + 1] - cut[i], k, p->phi + cut[i] * k, &pa[i]);
            vv_rows_from_memory("psi part", cut[i + 1] - cut[i], d, p->psi + cut[i] * d, &pb[i]);
        }
        int cok = vv_rows_concat("phi shards", pa, 3, &ca) == 0;
        cok &= vv_rows_concat("psi shards", pb, 3, &cb) == 0;
        CHECK(cok && vv_rows_n(ca) == n && vv_rows_cols(ca) == k && !vv_rows_thread_safe(ca),
              "vv_rows_concat: rows of all parts, their columns, serialised reads");
        vv_stats_opts o = {.chunk_rows = 64, .bias = p->bias};
        if (cok && vv_stats_compute(ca, cb, &o, &st) == 0) {
            CHECK(max_rel_diff(st.G, G, k * k) < 1e-13 && max_rel_diff(st.Bt, Bt, k * d) < 1e-13,
                  "the statistics of the shards' concatenation are those of the whole");
            vv_stats_free(&st);
        } else {
            CHECK(0, "the statistics of the shards' concatenation are those of the whole");
        }
        vv_rows_free(ca);
        vv_rows_free(cb);
        vv_rows *q[2];
        vv_rows_from_memory("a", 3, k, p->phi, &q[0]);
        vv_rows_from_memory("b", 3, k + 1, p->phi, &q[1]);
        CHECK(vv_rows_concat("mixed", q, 2, &ca) == VV_ESHAPE && ca == NULL,
              "shards of different widths are VV_ESHAPE");
        free(Gs);
        free(Bs);
    }
}

/* ---- A shared pass over several problems (vv_stats_compute_set) ---- */

/* A callback source over a tprob's rows that logs its reads (problem, phi
 * or psi, first unit, units), as a network's layers would be read. */
typedef struct logged {
    const double *data;
    int64_t cols, per;
    int prob, psi;
    int64_t (*log)[4];
    int *nlog;
} logged;

static int logged_read(void *ctx, int64_t r0, int64_t n, double *dst)
{
    logged *l = ctx;
    memcpy(dst, l->data + r0 * l->cols, (size_t)(n * l->cols) * sizeof *dst);
    if (*l->nlog < 4096) {
        int64_t *e = l->log[(*l->nlog)++];
        e[0] = l->prob;
        e[1] = l->psi;
        e[2] = r0 % l->per ? -1 : r0 / l->per;
        e[3] = n % l->per ? -1 : n / l->per;
    }
    return 0;
}

/* The textbook sums of p's rows. */
static void brute(const tprob *p, double *G, double *Bt, double *c)
{
    int64_t k = p->k, d = p->d;
    memset(G, 0, (size_t)(k * k) * sizeof *G);
    memset(Bt, 0, (size_t)(k * d) * sizeof *Bt);
    *c = 0;
    for (int64_t i = 0; i < p->n; i++) {
        for (int64_t a = 0; a < k; a++)
            for (int64_t b = 0; b < k; b++)
                G[a * k + b] += p->phi[i * k + a] * p->phi[i * k + b];
        for (int64_t j = 0; j < d; j++) {
            double y = p->psi[i * d + j] - p->bias[j];
            *c += y * y;
            for (int64_t a = 0; a < k; a++)
                Bt[a * d + j] += p->phi[i * k + a] * y;
        }
    }
}

static void check_set(void)
{
    enum { NP = 3, UNITS = 61 };
    int64_t per[NP] = {1, 5, 3}, kk[NP] = {9, 17, 6}, dd[NP] = {4, 3, 7};
    tprob p[NP];
    double *G[NP], *Bt[NP], c[NP];
    for (int j = 0; j < NP; j++) {
        tprob_make(&p[j], UNITS * per[j], kk[j], dd[j], 40 + (uint64_t)j, 1);
        G[j] = malloc((size_t)(kk[j] * kk[j]) * sizeof(double));
        Bt[j] = malloc((size_t)(kk[j] * dd[j]) * sizeof(double));
        brute(&p[j], G[j], Bt[j], &c[j]);
    }
    /* chunk_rows, workers, device, row0, nrows */
    struct {
        int64_t chunk;
        int workers, device;
        const char *what;
    } cases[] = {{0, 1, 0, "default chunks, one worker"},
                 {7, 2, 0, "chunks of 7 rows (batches of one unit), two workers"},
                 {11, 2, 0, "chunks of 11 rows, two workers"},
                 {4, 1, 0, "chunks smaller than a unit's 5 rows"},
                 {10, 1, 1, "chunks of 10 rows on a device backend"}};
    for (unsigned t = 0; t < sizeof cases / sizeof *cases; t++) {
        static int64_t log[4096][4];
        int nlog = 0;
        logged lg[NP][2];
        vv_stats_src src[NP];
        for (int j = 0; j < NP; j++) {
            for (int s = 0; s < 2; s++)
                lg[j][s] =
                    (logged){s ? p[j].psi : p[j].phi, s ? dd[j] : kk[j], per[j], j, s, log, &nlog};
            vv_rows_from_callback("phi", p[j].n, kk[j], logged_read, &lg[j][0], NULL, &src[j].phi);
            vv_rows_from_callback("psi", p[j].n, dd[j], logged_read, &lg[j][1], NULL, &src[j].psi);
            src[j].per_unit = per[j];
            src[j].bias = p[j].bias;
        }
        vv_stats_opts o = {.chunk_rows = cases[t].chunk,
                           .workers = cases[t].workers,
                           .be = cases[t].device ? sim_dev() : NULL};
        vv_stats st[NP];
        int rc = vv_stats_compute_set(NP, src, &o, st);
        CHECKF(rc == 0, "shared pass, %s: succeeds", cases[t].what);
        int same = rc == 0;
        for (int j = 0; same && j < NP; j++)
            same &= st[j].n == p[j].n && st[j].k == kk[j] && st[j].d == dd[j] &&
                    max_rel_diff(st[j].G, G[j], kk[j] * kk[j]) < 1e-13 &&
                    max_rel_diff(st[j].Bt, Bt[j], kk[j] * dd[j]) < 1e-13 &&
                    fabs(st[j].c - c[j]) <= 1e-13 * c[j] && st[j].seconds == st[0].seconds;
        CHECKF(same, "shared pass, %s: every problem's G, Bt, c are its textbook sums",
               cases[t].what);
        /* Each batch of units is read for every problem in turn, phi then
         * psi, whole units, and the batches cover every unit once. */
        int order = nlog % (2 * NP) == 0 && nlog > 0;
        int64_t covered = 0;
        for (int e = 0; order && e < nlog; e += 2 * NP) {
            for (int q = 0; q < 2 * NP; q++)
                order &= log[e + q][0] == q / 2 && log[e + q][1] == q % 2 &&
                         log[e + q][2] == log[e][2] && log[e + q][3] == log[e][3] &&
                         log[e][2] >= 0 && log[e][3] > 0;
            covered += log[e][3];
        }
        CHECKF(order && covered == UNITS,
               "shared pass, %s: each batch (%d of them) read for problems 0, 1, 2 in turn, "
               "phi then psi, whole units, all %d units once",
               cases[t].what, nlog / (2 * NP), UNITS);
        for (int j = 0; j < NP; j++) {
            vv_stats_free(&st[j]);
            vv_rows_free(src[j].phi);
            vv_rows_free(src[j].psi);
        }
    }
    /* Units of different problems must agree; ranges count units. */
    vv_stats_src src[2];
    vv_rows_from_memory("a-phi", p[0].n, kk[0], p[0].phi, &src[0].phi);
    vv_rows_from_memory("a-psi", p[0].n, dd[0], p[0].psi, &src[0].psi);
    vv_rows_from_memory("b-phi", p[1].n, kk[1], p[1].phi, &src[1].phi);
    vv_rows_from_memory("b-psi", p[1].n, dd[1], p[1].psi, &src[1].psi);
    src[0].per_unit = 1;
    src[0].bias = p[0].bias;
    src[1].per_unit = 4;
    src[1].bias = p[1].bias;
    vv_stats st[2];
    CHECK(vv_stats_compute_set(2, src, NULL, st) == VV_ESHAPE && strstr(vv_err_detail(), "b-phi") &&
              st[0].G == NULL,
          "305 rows are not 61 units of 4 rows: VV_ESHAPE naming the source, nothing returned");
    src[1].per_unit = 5;
    /* Unit ranges of three "ranks" add up to the whole. */
    int rok = 1;
    double *Gs = calloc((size_t)(kk[1] * kk[1]), sizeof *Gs);
    int64_t ns = 0;
    for (int r = 0; r < 3; r++) {
        int64_t b0, e0;
        vv_stats_share(UNITS, r, 3, &b0, &e0);
        vv_stats_opts o = {.chunk_rows = 8, .row0 = b0, .nrows = e0 - b0};
        if (vv_stats_compute_set(2, src, &o, st) < 0) {
            rok = 0;
            continue;
        }
        rok &= st[0].n == e0 - b0 && st[1].n == 5 * (e0 - b0);
        ns += st[1].n;
        for (int64_t i = 0; i < kk[1] * kk[1]; i++)
            Gs[i] += st[1].G[i];
        vv_stats_free(&st[0]);
        vv_stats_free(&st[1]);
    }
    CHECK(rok && ns == p[1].n && max_rel_diff(Gs, G[1], kk[1] * kk[1]) < 1e-12,
          "shared pass: row0 and nrows count units; the shares' sums add up to the whole");
    free(Gs);
    for (int j = 0; j < 2; j++) {
        vv_rows_free(src[j].phi);
        vv_rows_free(src[j].psi);
    }
    for (int j = 0; j < NP; j++) {
        free(G[j]);
        free(Bt[j]);
        tprob_free(&p[j]);
    }
}

int main(void)
{
    tprob p;
    tprob_make(&p, 537, 23, 4, 11, 1);
    /* Brute force in the textbook form. */
    int64_t n = p.n, k = p.k, d = p.d;
    double *G = calloc((size_t)(k * k), sizeof *G), *Bt = calloc((size_t)(k * d), sizeof *Bt);
    double c = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t a = 0; a < k; a++)
            for (int64_t b = 0; b < k; b++)
                G[a * k + b] += p.phi[i * k + a] * p.phi[i * k + b];
        for (int64_t j = 0; j < d; j++) {
            double y = p.psi[i * d + j] - p.bias[j];
            c += y * y;
            for (int64_t a = 0; a < k; a++)
                Bt[a * d + j] += p.phi[i * k + a] * y;
        }
    }
    int64_t chunks[] = {1, 7, 64, 536, 537, 0};
    for (unsigned t = 0; t < sizeof chunks / sizeof *chunks; t++) {
        vv_stats st;
        int rc = tprob_stats(&p, chunks[t], &st);
        CHECKF(rc == 0, "chunk %lld: pass succeeds", (long long)chunks[t]);
        if (rc)
            continue;
        CHECKF(st.n == n && st.k == k && st.d == d, "chunk %lld: sizes", (long long)chunks[t]);
        CHECKF(max_rel_diff(st.G, G, k * k) < 1e-13, "chunk %lld: G = Phi^T Phi",
               (long long)chunks[t]);
        CHECKF(max_rel_diff(st.Bt, Bt, k * d) < 1e-13, "chunk %lld: Bt = Phi^T (Psi - b)",
               (long long)chunks[t]);
        CHECKF(fabs(st.c - c) <= 1e-13 * c, "chunk %lld: c = ||Psi - b||^2", (long long)chunks[t]);
        int sym = 1;
        for (int64_t a = 0; a < k; a++)
            for (int64_t b = 0; b < k; b++)
                sym &= st.G[a * k + b] == st.G[b * k + a];
        CHECKF(sym, "chunk %lld: G exactly symmetric", (long long)chunks[t]);
        vv_stats_free(&st);
    }

    /* On a device backend (the simulated one) the chunks go up and G, Bt
     * accumulate there: the same statistics, and nothing left allocated. */
    {
        vv_rows *a, *b;
        vv_rows_from_memory("phi", n, k, p.phi, &a);
        vv_rows_from_memory("psi", n, d, p.psi, &b);
        vv_stats_opts o = {.chunk_rows = 100, .bias = p.bias, .be = sim_dev()};
        vv_stats st;
        int64_t up0 = sim_uploads();
        int rc = vv_stats_compute(a, b, &o, &st);
        size_t used = 1;
        vv_backend_sim_counts(sim_dev(), NULL, &used);
        CHECKF(rc == 0 && sim_uploads() - up0 == 2 + 2 * 6 && used == 0,
               "device backend: G, Bt and 6 chunks of (Phi, Psi) uploaded (%lld uploads), "
               "%zu bytes left allocated",
               (long long)(sim_uploads() - up0), used);
        CHECK(rc == 0 && max_rel_diff(st.G, G, k * k) < 1e-13 &&
                  max_rel_diff(st.Bt, Bt, k * d) < 1e-13 && fabs(st.c - c) <= 1e-13 * c,
              "device backend: G, Bt, c as the textbook sums");
        vv_stats_free(&st);
        vv_rows_free(a);
        vv_rows_free(b);
    }
    check_shares(&p, G, Bt, c);
    check_set();

    /* Mismatched N. */
    vv_rows *a, *b;
    vv_rows_from_memory("phi-mem", n, k, p.phi, &a);
    vv_rows_from_memory("psi-mem", n - 1, d, p.psi, &b);
    vv_stats st;
    int rc = vv_stats_compute(a, b, NULL, &st);
    CHECK(rc == VV_ESHAPE, "different N in phi and psi is a shape error");
    CHECK(strstr(vv_err_detail(), "phi-mem") && strstr(vv_err_detail(), "psi-mem"),
          "the error names both sources");
    vv_rows_free(b);

    /* NaN in psi. */
    p.psi[300 * d + 2] = NAN;
    vv_rows_from_memory("psi-mem", n, d, p.psi, &b);
    rc = vv_stats_compute(a, b, NULL, &st);
    CHECK(rc == VV_ENONFINITE, "NaN in psi is reported");
    CHECK(strstr(vv_err_detail(), "psi-mem") != NULL, "the NaN error names the source");
    p.psi[300 * d + 2] = 0;

    /* Stop flag. */
    atomic_int stop = 1;
    vv_stats_opts o = {.stop = &stop};
    rc = vv_stats_compute(a, b, &o, &st);
    CHECK(rc == VV_ESTATE, "a set stop flag ends the pass");
    vv_rows_free(a);
    vv_rows_free(b);

    /* The synthetic problem is the same whatever the chunking. */
    vv_rows *sp, *sy;
    vv_stats s1, s2;
    vv_synth_open(1000, 16, 3, 5, &sp, &sy);
    vv_stats_opts o1 = {.chunk_rows = 1000}, o2 = {.chunk_rows = 97};
    int ok = vv_stats_compute(sp, sy, &o1, &s1) == 0;
    vv_rows_free(sp);
    vv_rows_free(sy);
    vv_synth_open(1000, 16, 3, 5, &sp, &sy);
    ok &= vv_stats_compute(sp, sy, &o2, &s2) == 0;
    CHECK(ok, "synthetic statistics computed");
    if (ok) {
        CHECK(max_rel_diff(s1.G, s2.G, 16 * 16) < 1e-13 && fabs(s1.c - s2.c) < 1e-12 * s1.c,
              "synthetic rows do not depend on the chunking");
        int relu = 1;
        for (int i = 0; i < 16; i++)
            relu &= s1.G[i * 16 + i] >= 0;
        CHECK(relu && vv_lambda_max(&s1) > 0, "synthetic features are a non-trivial problem");
    }
    vv_stats_free(&s1);
    vv_stats_free(&s2);
    vv_stats_free(NULL);
    vv_rows_free(sp);
    vv_rows_free(sy);

    free(G);
    free(Bt);
    tprob_free(&p);
    return tap_done();
}
