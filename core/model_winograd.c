/* model_winograd.c - 3x3, stride 1, pad 1 convolutions by Winograd's
 * F(4x4, 3x3): each 4x4 block of outputs from a 6x6 tile of inputs with 36
 * multiplications instead of 144, the 36 products of all channels as 36
 * sgemms (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015; the points 0, 1, -1, 2, -2 and infinity).  The
 * transforms are
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
 *          0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 *   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 *        1/24 -1/12 1/6; 0 0 1],
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1];
 * they compute PyTorch's cross-correlation.  F(2x2, 3x3), which an earlier
 * version ran, takes 16 multiplications per 4 outputs: 1.78 times as many. */
#include "model_internal.h"
#include "vv/blas.h"

#include <string.h>

/* Tile side (inputs) and block side (outputs). */
#define T 6
#define M 4
/* The transforms run on 16 channels at once (one AVX-512 register, two
 * AVX2 ones): the tiles of 4x4 and 8x8 maps are too few per channel to
 * fill vectors, the channels always are (VGG's: 64 to 512).  Blocks of
 * fewer channels pad with zeros. */
#define LANES 16

int vv__wino_ok(const vv_layer *l)
{
    /* Below 8 input channels the transforms cost more than the
     * multiplications they save (VGG's first layer has 3), and below 4x4
     * outputs the tile is mostly padding (AlexNet's 3x3 and VGG's 2x2
     * layers run as im2col). */
    return l->type == VV_LAYER_CONV2D && l->kernel == 3 && l->stride == 1 && l->pad == 1 &&
           l->c >= 8 && l->oh == l->h && l->ow == l->w && l->oh >= 4 && l->ow >= 4;
}

int64_t vv__wino_weight_floats(const vv_layer *l)
{
    return T * T * (int64_t)l->oc * l->c;
}

/* Tiles of 4x4 outputs per sample. */
static int64_t tiles(const vv_layer *l)
{
    return (int64_t)((l->oh + M - 1) / M) * ((l->ow + M - 1) / M);
}

int64_t vv__wino_sample_floats(const vv_layer *l)
{
    return T * T * ((int64_t)l->c + l->oc) * tiles(l);
}

int64_t vv__wino_row_floats(const vv_layer *l)
{
    /* The input transform's 6 padded rows of 16 channels, before and after
     * B^T (the output transform's 4 rows take less). */
    return 2 * T * (M * ((int64_t)(l->ow + M - 1) / M) + 2) * LANES;
}

void vv__wino_weights(const vv_layer *l, float *u)
{
    int64_t oc = l->oc, c = l->c, plane = oc * c;
    for (int64_t o = 0; o < oc; o++)
        for (int64_t ci = 0; ci < c; ci++) {
            /* In double: the sixths and twenty-fourths rounded once. */
            const float *g = l->weight + (o * c + ci) * 9;
            double t[T][3]; /* G g */
            for (int j = 0; j < 3; j++) {
                double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0 / 4;
                t[1][j] = -(g0 + g1 + g2) / 6;
                t[2][j] = -(g0 - g1 + g2) / 6;
                t[3][j] = g0 / 24 + g1 / 12 + g2 / 6;
                t[4][j] = g0 / 24 - g1 / 12 + g2 / 6;
                t[5][j] = g2;
            }
            float *dst = u + o * c + ci;
            for (int i = 0; i < T; i++) { /* (G g) G^T */
                double a = t[i][0], b = t[i][1], d = t[i][2];
                dst[(i * T + 0) * plane] = (float)(a / 4);
                dst[(i * T + 1) * plane] = (float)(-(a + b + d) / 6);
                dst[(i * T + 2) * plane] = (float)(-(a - b + d) / 6);
                dst[(i * T + 3) * plane] = (float)(a / 24 + b / 12 + d / 6);
                dst[(i * T + 4) * plane] = (float)(a / 24 - b / 12 + d / 6);
                dst[(i * T + 5) * plane] = (float)d;
            }
        }
}

/* Builds with x86-64's baseline get the transforms also for AVX2 and
 * AVX-512, picked at load time (GCC's function multiversioning).  Not under
 * the sanitizers: the resolvers run before their runtimes are initialised
 * (a ThreadSanitizer build crashed at start-up), as in shallow.c. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* B^T d on n vectors of LANES: o[j] from d[0 .. 5] (strides ds and os). */
static inline void bt6(const float *restrict d, int64_t ds, float *restrict o, int64_t os,
                       int64_t n)
{
    for (int64_t k = 0; k < n * LANES; k++) {
        float d0 = d[k], d1 = d[ds + k], d2 = d[2 * ds + k], d3 = d[3 * ds + k], d4 = d[4 * ds + k],
              d5 = d[5 * ds + k];
        o[k] = 4.0f * d0 - 5.0f * d2 + d4;
        o[os + k] = d3 + d4 - 4.0f * (d1 + d2);
        o[2 * os + k] = d4 - d3 + 4.0f * (d1 - d2);
        o[3 * os + k] = d4 - d2 + 2.0f * (d3 - d1);
        o[4 * os + k] = d4 - d2 - 2.0f * (d3 - d1);
        o[5 * os + k] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

/* The input transform of ns samples: v[xi][t][c] = (B^T d B)[xi] for the
 * tile t (sample-major, then tile rows, then tile columns) of channel c.
 * row holds vv__wino_row_floats: a tile row's 6 padded input rows of 16
 * channels, channel-minor (d[i][p][lane], padded column p = input column
 * p - 1), then the same after B^T along the rows. */
VECTOR_CLONES
static void input_transform(const vv_layer *l, const float *restrict x, int64_t ns,
                            float *restrict v, float *restrict row)
{
    int h = l->h, w = l->w, th = (l->oh + M - 1) / M, tw = (l->ow + M - 1) / M;
    int64_t c = l->c, tps = (int64_t)th * tw, nt = ns * tps, plane = nt * c;
    int64_t wp = M * tw + 2, rs = wp * LANES; /* padded columns; floats per row */
    float *d = row, *q = row + T * rs;
    for (int64_t s = 0; s < ns; s++)
        for (int64_t cb = 0; cb < c; cb += LANES) {
            int cn = c - cb < LANES ? (int)(c - cb) : LANES;
            for (int ti = 0; ti < th; ti++) {
                for (int i = 0; i < T; i++) {
                    int y = M * ti - 1 + i;
                    float *di = d + i * rs;
                    if (y < 0 || y >= h || cn < LANES) {
                        memset(di, 0, (size_t)rs * sizeof *di);
                        if (y < 0 || y >= h)
                            continue;
                    } else {
                        memset(di, 0, LANES * sizeof *di);
                        memset(di + (w + 1) * LANES, 0, (size_t)(wp - w - 1) * LANES * sizeof *di);
                    }
                    for (int ln = 0; ln < cn; ln++) {
                        const float *src = x + ((s * c + cb + ln) * h + y) * w;
                        for (int p = 0; p < w; p++)
                            di[(p + 1) * LANES + ln] = src[p];
                    }
                }
                /* B^T d down the rows, every column at once. */
                bt6(d, rs, q, rs, wp);
                /* ... and B along the columns: tile tj's are 4 tj .. 4 tj + 5. */
                for (int i = 0; i < T; i++)
                    for (int tj = 0; tj < tw; tj++) {
                        float *o = v + (int64_t)(T * i) * plane +
                                   (s * tps + (int64_t)ti * tw + tj) * c + cb;
                        const float *qi = q + i * rs + (int64_t)(M * tj) * LANES;
                        float t6[T][LANES] __attribute__((aligned(64)));
                        bt6(qi, LANES, &t6[0][0], LANES, 1);
                        for (int k = 0; k < T; k++)
                            if (cn == LANES)
                                for (int ln = 0; ln < LANES; ln++)
                                    o[k * plane + ln] = t6[k][ln];
                            else
                                for (int ln = 0; ln < cn; ln++)
                                    o[k * plane + ln] = t6[k][ln];
                    }
            }
        }
}

/* The output transform with the affine and ReLU (and, when pool, a 2x2
 * stride-2 max pool): y[s][o] from mm[xi][t][o] over the ns samples'
 * tiles, 16 output channels at once; row holds a tile row's 4 output rows
 * of 16 channels (r[i][col][lane]; pooled, 2 rows of half the columns). */
VECTOR_CLONES
static void output_transform(const vv_layer *l, const float *restrict mm, int64_t ns,
                             const float *scale, const float *shift, int relu, int pool,
                             float *restrict y, float *restrict row)
{
    int oh = l->oh, ow = l->ow, th = (oh + M - 1) / M, tw = (ow + M - 1) / M;
    int64_t oc = l->oc, tps = (int64_t)th * tw, nt = ns * tps, plane = nt * oc;
    /* Rows of the block written (4, or 2 pooled), their columns, y's map. */
    int br = pool ? M / 2 : M, bw = pool ? M / 2 : M, yh = pool ? oh / 2 : oh,
        yw = pool ? ow / 2 : ow;
    int64_t rs = (int64_t)bw * tw * LANES;
    float lo = relu ? 0.0f : -__builtin_inff();
    for (int64_t s = 0; s < ns; s++)
        for (int64_t ob = 0; ob < oc; ob += LANES) {
            int on = oc - ob < LANES ? (int)(oc - ob) : LANES;
            float a[LANES] __attribute__((aligned(64))), b[LANES] __attribute__((aligned(64)));
            for (int ln = 0; ln < LANES; ln++) {
                a[ln] = ln < on ? scale[ob + ln] : 0.0f;
                b[ln] = ln < on ? shift[ob + ln] : 0.0f;
            }
            for (int ti = 0; ti < th; ti++) {
                for (int tj = 0; tj < tw; tj++) {
                    const float *m = mm + (s * tps + (int64_t)ti * tw + tj) * oc + ob;
                    float mt[T * T][LANES] __attribute__((aligned(64)));
                    for (int xi = 0; xi < T * T; xi++)
                        if (on == LANES)
                            for (int ln = 0; ln < LANES; ln++)
                                mt[xi][ln] = m[xi * plane + ln];
                        else
                            for (int ln = 0; ln < LANES; ln++)
                                mt[xi][ln] = ln < on ? m[xi * plane + ln] : 0.0f;
                    /* A^T m A: down the columns, then along the rows. */
                    float p[M][T][LANES] __attribute__((aligned(64)));
                    for (int j = 0; j < T; j++)
                        for (int ln = 0; ln < LANES; ln++) {
                            float m0 = mt[j][ln], m1 = mt[T + j][ln], m2 = mt[2 * T + j][ln],
                                  m3 = mt[3 * T + j][ln], m4 = mt[4 * T + j][ln],
                                  m5 = mt[5 * T + j][ln];
                            float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
                            p[0][j][ln] = m0 + s12 + s34;
                            p[1][j][ln] = d12 + 2.0f * d34;
                            p[2][j][ln] = s12 + 4.0f * s34;
                            p[3][j][ln] = d12 + 8.0f * d34 + m5;
                        }
                    float q[M][M][LANES] __attribute__((aligned(64)));
                    for (int i = 0; i < M; i++)
                        for (int ln = 0; ln < LANES; ln++) {
                            float s12 = p[i][1][ln] + p[i][2][ln], d12 = p[i][1][ln] - p[i][2][ln],
                                  s34 = p[i][3][ln] + p[i][4][ln], d34 = p[i][3][ln] - p[i][4][ln];
                            float q0 = (p[i][0][ln] + s12 + s34) * a[ln] + b[ln];
                            float q1 = (d12 + 2.0f * d34) * a[ln] + b[ln];
                            float q2 = (s12 + 4.0f * s34) * a[ln] + b[ln];
                            float q3 = (d12 + 8.0f * d34 + p[i][5][ln]) * a[ln] + b[ln];
                            q[i][0][ln] = q0 > lo ? q0 : lo;
                            q[i][1][ln] = q1 > lo ? q1 : lo;
                            q[i][2][ln] = q2 > lo ? q2 : lo;
                            q[i][3][ln] = q3 > lo ? q3 : lo;
                        }
                    for (int i = 0; i < br; i++)
                        for (int j = 0; j < bw; j++) {
                            float *r = row + i * rs + (int64_t)(bw * tj + j) * LANES;
                            if (pool)
                                for (int ln = 0; ln < LANES; ln++) {
                                    float u0 = q[2 * i][2 * j][ln], u1 = q[2 * i][2 * j + 1][ln],
                                          u2 = q[2 * i + 1][2 * j][ln],
                                          u3 = q[2 * i + 1][2 * j + 1][ln];
                                    u0 = u0 > u1 ? u0 : u1;
                                    u2 = u2 > u3 ? u2 : u3;
                                    r[ln] = u0 > u2 ? u0 : u2;
                                }
                            else
                                for (int ln = 0; ln < LANES; ln++)
                                    r[ln] = q[i][j][ln];
                        }
                }
                /* The tile row's outputs back to each channel's rows. */
                for (int ln = 0; ln < on; ln++) {
                    float *yo = y + ((s * oc + ob + ln) * yh + (int64_t)br * ti) * yw;
                    for (int i = 0; i < br && br * ti + i < yh; i++) {
                        const float *r = row + i * rs + ln;
                        for (int j = 0; j < yw; j++)
                            yo[(int64_t)i * yw + j] = r[(int64_t)j * LANES];
                    }
                }
            }
        }
}

int vv__wino_pool_ok(const vv_layer *l, const vv_layer *pool)
{
    return pool->type == VV_LAYER_MAXPOOL2D && pool->kernel == 2 && pool->stride == 2 &&
           pool->pad == 0 && l->oh % 2 == 0 && l->ow % 2 == 0 && pool->oh == l->oh / 2 &&
           pool->ow == l->ow / 2;
}

int64_t vv__wino_conv(const vv_layer *l, const float *u, const float *x, int64_t nb, float *y,
                      float *scratch, int64_t nscratch, const float *scale, const float *shift,
                      int relu, int pool)
{
    int64_t per = vv__wino_sample_floats(l), rows = vv__wino_row_floats(l);
    int64_t g = (nscratch - rows) / per;
    if (g < 1)
        return 0;
    if (g > nb)
        g = nb;
    int64_t c = l->c, oc = l->oc, tps = tiles(l);
    int64_t in_sz = c * l->h * l->w, out_sz = oc * l->oh * l->ow / (pool ? 4 : 1);
    float *row = scratch + g * per;
    for (int64_t s0 = 0; s0 < nb; s0 += g) {
        int64_t ns = nb - s0 < g ? nb - s0 : g, nt = ns * tps;
        float *v = scratch, *mm = scratch + T * T * c * nt;
        input_transform(l, x + s0 * in_sz, ns, v, row);
        for (int k = 0; k < T * T; k++) /* mm[k] (nt x oc) = v[k] (nt x c) u[k]^T */
            vv_sgemm(0, 1, nt, oc, c, 1.0f, v + k * c * nt, c, u + k * oc * c, c, 0.0f,
                     mm + k * oc * nt, oc);
        output_transform(l, mm, ns, scale, shift, relu, pool, y + s0 * out_sz, row);
    }
    return nb;
}
