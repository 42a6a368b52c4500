/* model_winograd.c - 3x3, stride 1, pad 1 convolutions by Winograd's
 * F(2x2, 3x3): each 2x2 block of outputs from a 4x4 tile of inputs with 16
 * multiplications instead of 36, the 16 products of all channels as 16
 * sgemms (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015).  The transforms are B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0;
 * 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1] and A^T = [1 1 1 0;
 * 0 1 -1 -1]; they compute PyTorch's cross-correlation. */
#include "model_internal.h"
#include "vv/blas.h"

#include <string.h>

int vv__wino_ok(const vv_layer *l)
{
    /* Below 8 input channels the transforms cost more than the
     * multiplications they save (VGG's first layer has 3), and below 4x4
     * outputs the tiles' padding and the small sgemms do (measured on
     * AlexNet's 3x3 and VGG's 2x2 layers). */
    return l->type == VV_LAYER_CONV2D && l->kernel == 3 && l->stride == 1 && l->pad == 1 &&
           l->c >= 8 && l->oh == l->h && l->ow == l->w && l->oh >= 4 && l->ow >= 4;
}

int64_t vv__wino_weight_floats(const vv_layer *l)
{
    return 16 * (int64_t)l->oc * l->c;
}

/* Tiles of 2x2 outputs per sample. */
static int64_t tiles(const vv_layer *l)
{
    return (int64_t)((l->oh + 1) / 2) * ((l->ow + 1) / 2);
}

int64_t vv__wino_sample_floats(const vv_layer *l)
{
    return 16 * ((int64_t)l->c + l->oc) * tiles(l);
}

void vv__wino_weights(const vv_layer *l, float *u)
{
    int64_t oc = l->oc, c = l->c, plane = oc * c;
    for (int64_t o = 0; o < oc; o++)
        for (int64_t ci = 0; ci < c; ci++) {
            const float *g = l->weight + (o * c + ci) * 9;
            float t[4][3]; /* G g */
            for (int j = 0; j < 3; j++) {
                float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0;
                t[1][j] = 0.5f * (g0 + g1 + g2);
                t[2][j] = 0.5f * (g0 - g1 + g2);
                t[3][j] = g2;
            }
            float *dst = u + o * c + ci;
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                float a = t[i][0], b = t[i][1], d = t[i][2];
                dst[(i * 4 + 0) * plane] = a;
                dst[(i * 4 + 1) * plane] = 0.5f * (a + b + d);
                dst[(i * 4 + 2) * plane] = 0.5f * (a - b + d);
                dst[(i * 4 + 3) * plane] = d;
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

/* The input transform of ns samples: v[xi][c][t] = (B^T d B)[xi] for the
 * tile t (sample-major, then tile rows, then tile columns) of channel c.
 * row holds 16 (tw + 1) floats: 4 input rows split into their even and odd
 * padded columns, so that every loop runs over contiguous floats. */
VECTOR_CLONES
static void input_transform(const vv_layer *l, const float *x, int64_t ns, float *v, float *row)
{
    int h = l->h, w = l->w, th = (l->oh + 1) / 2, tw = (l->ow + 1) / 2, n2 = tw + 1;
    int64_t c = l->c, tps = (int64_t)th * tw, nt = ns * tps, stride = c * nt;
    float *ev[4], *od[4], *qe[4], *qo[4];
    for (int i = 0; i < 4; i++) {
        ev[i] = row + (2 * i) * n2;
        od[i] = row + (2 * i + 1) * n2;
        qe[i] = row + (8 + 2 * i) * n2;
        qo[i] = row + (9 + 2 * i) * n2;
    }
    for (int64_t s = 0; s < ns; s++)
        for (int64_t ci = 0; ci < c; ci++) {
            const float *xc = x + (s * c + ci) * h * w;
            for (int ti = 0; ti < th; ti++) {
                /* Padded column p = input column p - 1: even p are the odd
                 * input columns. */
                for (int i = 0; i < 4; i++) {
                    int y = 2 * ti - 1 + i;
                    const float *src = xc + (int64_t)y * w;
                    int in = y >= 0 && y < h;
                    ev[i][0] = 0.0f;
                    for (int k = 1; k < n2; k++)
                        ev[i][k] = in && 2 * k - 1 < w ? src[2 * k - 1] : 0.0f;
                    for (int k = 0; k < n2; k++)
                        od[i][k] = in && 2 * k < w ? src[2 * k] : 0.0f;
                }
                /* B^T d along the rows. */
                for (int k = 0; k < n2; k++) {
                    float d0 = ev[0][k], d1 = ev[1][k], d2 = ev[2][k], d3 = ev[3][k];
                    qe[0][k] = d0 - d2;
                    qe[1][k] = d1 + d2;
                    qe[2][k] = d2 - d1;
                    qe[3][k] = d1 - d3;
                    float e0 = od[0][k], e1 = od[1][k], e2 = od[2][k], e3 = od[3][k];
                    qo[0][k] = e0 - e2;
                    qo[1][k] = e1 + e2;
                    qo[2][k] = e2 - e1;
                    qo[3][k] = e1 - e3;
                }
                /* ... B along the columns: tile tj's columns are padded
                 * 2 tj .. 2 tj + 3, that is qe[tj], qo[tj], qe[tj+1], qo[tj+1]. */
                float *dst = v + ci * nt + s * tps + (int64_t)ti * tw;
                for (int i = 0; i < 4; i++) {
                    float *o0 = dst + (4 * i) * stride, *o1 = o0 + stride, *o2 = o1 + stride,
                          *o3 = o2 + stride;
                    const float *pe = qe[i], *po = qo[i];
                    for (int tj = 0; tj < tw; tj++) {
                        o0[tj] = pe[tj] - pe[tj + 1];
                        o1[tj] = po[tj] + pe[tj + 1];
                        o2[tj] = pe[tj + 1] - po[tj];
                        o3[tj] = po[tj] - po[tj + 1];
                    }
                }
            }
        }
}

/* The output transform with the affine and ReLU: y[s][o] from
 * mm[xi][o][t] over the ns samples' tiles; row holds 4 tw floats. */
VECTOR_CLONES
static void output_transform(const vv_layer *l, const float *mm, int64_t ns, const float *scale,
                             const float *shift, int relu, float *y, float *row)
{
    int oh = l->oh, ow = l->ow, th = (oh + 1) / 2, tw = (ow + 1) / 2;
    int64_t oc = l->oc, tps = (int64_t)th * tw, nt = ns * tps, st = oc * nt;
    float lo = relu ? 0.0f : -__builtin_inff();
    float *r00 = row, *r01 = row + tw, *r10 = row + 2 * tw, *r11 = row + 3 * tw;
    for (int64_t s = 0; s < ns; s++)
        for (int64_t o = 0; o < oc; o++) {
            float a = scale[o], b = shift[o];
            float *yo = y + (s * oc + o) * oh * ow;
            for (int ti = 0; ti < th; ti++) {
                const float *m = mm + o * nt + s * tps + (int64_t)ti * tw;
                for (int tj = 0; tj < tw; tj++) {
                    /* A^T m A: rows, then columns. */
                    float p0[4], p1[4];
                    for (int j = 0; j < 4; j++) {
                        float v0 = m[j * st + tj], v1 = m[(4 + j) * st + tj],
                              v2 = m[(8 + j) * st + tj], v3 = m[(12 + j) * st + tj];
                        p0[j] = v0 + v1 + v2;
                        p1[j] = v1 - v2 - v3;
                    }
                    float q00 = (p0[0] + p0[1] + p0[2]) * a + b;
                    float q01 = (p0[1] - p0[2] - p0[3]) * a + b;
                    float q10 = (p1[0] + p1[1] + p1[2]) * a + b;
                    float q11 = (p1[1] - p1[2] - p1[3]) * a + b;
                    r00[tj] = q00 > lo ? q00 : lo;
                    r01[tj] = q01 > lo ? q01 : lo;
                    r10[tj] = q10 > lo ? q10 : lo;
                    r11[tj] = q11 > lo ? q11 : lo;
                }
                float *y0 = yo + (int64_t)(2 * ti) * ow;
                for (int tj = 0; tj < ow / 2; tj++) {
                    y0[2 * tj] = r00[tj];
                    y0[2 * tj + 1] = r01[tj];
                }
                if (ow & 1)
                    y0[ow - 1] = r00[tw - 1];
                if (2 * ti + 1 < oh) {
                    float *y1 = y0 + ow;
                    for (int tj = 0; tj < ow / 2; tj++) {
                        y1[2 * tj] = r10[tj];
                        y1[2 * tj + 1] = r11[tj];
                    }
                    if (ow & 1)
                        y1[ow - 1] = r10[tw - 1];
                }
            }
        }
}

int64_t vv__wino_conv(const vv_layer *l, const float *u, const float *x, int64_t nb, float *y,
                      float *scratch, int64_t nscratch, const float *scale, const float *shift,
                      int relu)
{
    int64_t per = vv__wino_sample_floats(l), rows = 16 * ((int64_t)(l->ow + 1) / 2 + 1);
    int64_t g = (nscratch - rows) / per;
    if (g < 1)
        return 0;
    if (g > nb)
        g = nb;
    int64_t c = l->c, oc = l->oc, tps = tiles(l);
    int64_t in_sz = c * l->h * l->w, out_sz = oc * l->oh * l->ow;
    float *row = scratch + g * per;
    for (int64_t s0 = 0; s0 < nb; s0 += g) {
        int64_t ns = nb - s0 < g ? nb - s0 : g, nt = ns * tps;
        float *v = scratch, *mm = scratch + 16 * c * nt;
        input_transform(l, x + s0 * in_sz, ns, v, row);
        for (int k = 0; k < 16; k++)
            vv_sgemm(0, 0, oc, nt, c, 1.0f, u + k * oc * c, c, v + k * c * nt, nt, 0.0f,
                     mm + k * oc * nt, nt);
        output_transform(l, mm, ns, scale, shift, relu, y + s0 * out_sz, row);
    }
    return nb;
}
