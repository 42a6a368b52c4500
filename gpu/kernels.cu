// kernels.cu - the CUDA kernels of the backend table (gpu/backend_cuda.c
// loads them from an embedded fatbin with the driver API).  Row-major
// buffers, as in core/include/vv/backend.h.
#include <float.h>
#include <stdint.h>

#define BLOCK 256

// Sum of v over the block (blockDim.x == BLOCK), valid in thread 0.
__device__ static double block_sum(double v)
{
    __shared__ double sh[BLOCK];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int o = BLOCK / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o)
            sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    return sh[0];
}

// norms[r] = ||row r of x||; one block per row.
extern "C" __global__ void vv_row_norms(int64_t rows, int64_t cols, const double *x, double *norms)
{
    int64_t r = blockIdx.x;
    if (r >= rows)
        return;
    double s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += BLOCK) {
        double v = x[r * cols + c];
        s += v * v;
    }
    s = block_sum(s);
    if (threadIdx.x == 0)
        norms[r] = sqrt(s);
}

// x_r <- max(0, 1 - thr / (||x_r|| + eps)) x_r, counting the rows kept in
// *count; one block per row.
extern "C" __global__ void vv_group_shrink(int64_t rows, int64_t cols, double *x, double thr,
                                           double eps, unsigned long long *count)
{
    int64_t r = blockIdx.x;
    if (r >= rows)
        return;
    double *row = x + r * cols;
    double s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += BLOCK)
        s += row[c] * row[c];
    s = block_sum(s);
    double nrm = sqrt(s);
    double a = nrm + eps > 0 ? 1.0 - thr / (nrm + eps) : 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += BLOCK)
        row[c] = a <= 0 ? 0.0 : row[c] * a;
    if (threadIdx.x == 0 && a > 0)
        atomicAdd(count, 1ull);
}

// y = a x + b y; y is not read when b == 0.
extern "C" __global__ void vv_axpby(int64_t n, double a, const double *x, double b, double *y)
{
    for (int64_t i = blockIdx.x * (int64_t)BLOCK + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * BLOCK)
        y[i] = b == 0 ? a * x[i] : a * x[i] + b * y[i];
}

// dst (n x cols) = rows idx[0..n) of src; one thread per element.
extern "C" __global__ void vv_gather_rows(const double *src, int64_t cols, const int64_t *idx,
                                          int64_t n, double *dst)
{
    int64_t total = n * cols;
    for (int64_t t = blockIdx.x * (int64_t)BLOCK + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * BLOCK) {
        int64_t r = t / cols, c = t % cols;
        dst[t] = src[idx[r] * cols + c];
    }
}

// The unfolding of vv_backend_ops.im2col: one thread per element of col,
// nb images at once (image s in columns s oh ow ...).
extern "C" __global__ void vv_im2col(const float *x, int64_t nb, int c, int h, int w, int k,
                                     int stride, int pad, int oh, int ow, float *col, int64_t ldc)
{
    int64_t ohw = (int64_t)oh * ow, per = (int64_t)c * k * k * ohw, total = nb * per;
    for (int64_t t = blockIdx.x * (int64_t)BLOCK + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * BLOCK) {
        int64_t s = t / per, r = t % per;
        int64_t p = r % ohw, row = r / ohw;
        int i = (int)(p / ow), j = (int)(p % ow);
        int kj = (int)(row % k), ki = (int)((row / k) % k), ci = (int)(row / ((int64_t)k * k));
        int y = i * stride - pad + ki, xx = j * stride - pad + kj;
        const float *img = x + s * (int64_t)c * h * w;
        col[row * ldc + s * ohw + p] =
            y >= 0 && y < h && xx >= 0 && xx < w ? img[((int64_t)ci * h + y) * w + xx] : 0.0f;
    }
}

// vv_backend_ops.affine_act: one thread per element of y.
extern "C" __global__ void vv_affine_act(const float *x, int64_t xo, int64_t xs, int64_t nb,
                                         int64_t ch, int64_t hw, const float *scale,
                                         const float *shift, int relu, float *y)
{
    int64_t total = nb * ch * hw;
    for (int64_t t = blockIdx.x * (int64_t)BLOCK + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * BLOCK) {
        int64_t p = t % hw, o = (t / hw) % ch, s = t / (hw * ch);
        float v = x[o * xo + s * xs + p] * (scale ? scale[o] : 1.0f) + (shift ? shift[o] : 0.0f);
        y[t] = relu && !(v > 0) ? 0.0f : v;
    }
}

// vv_backend_ops.pool2d: one thread per output element.
extern "C" __global__ void vv_pool2d(const float *x, int64_t planes, int h, int w, int k,
                                     int stride, int pad, int oh, int ow, int is_max, float *y)
{
    int64_t total = planes * oh * ow;
    float inv = 1.0f / (float)(k * k);
    for (int64_t t = blockIdx.x * (int64_t)BLOCK + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * BLOCK) {
        int j = (int)(t % ow), i = (int)((t / ow) % oh);
        const float *src = x + (t / ((int64_t)oh * ow)) * h * w;
        int y0 = i * stride - pad, x0 = j * stride - pad;
        float acc = is_max ? -FLT_MAX : 0.0f;
        for (int a = y0; a < y0 + k; a++) {
            if (a < 0 || a >= h)
                continue;
            for (int b = x0; b < x0 + k; b++) {
                if (b < 0 || b >= w)
                    continue;
                float v = src[a * w + b];
                if (is_max)
                    acc = v > acc || isnan(v) ? v : acc;
                else
                    acc += v;
            }
        }
        y[t] = is_max ? acc : acc * inv;
    }
}

// vv_backend_ops.adaptive_avg: one thread per output element.
extern "C" __global__ void vv_adaptive_avg(const float *x, int64_t planes, int h, int w, int oh,
                                           int ow, float *y)
{
    int64_t total = planes * oh * ow;
    for (int64_t t = blockIdx.x * (int64_t)BLOCK + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * BLOCK) {
        int j = (int)(t % ow), i = (int)((t / ow) % oh);
        const float *src = x + (t / ((int64_t)oh * ow)) * h * w;
        int h0 = i * h / oh, h1 = ((i + 1) * h + oh - 1) / oh;
        int w0 = j * w / ow, w1 = ((j + 1) * w + ow - 1) / ow;
        float acc = 0;
        for (int a = h0; a < h1; a++)
            for (int b = w0; b < w1; b++)
                acc += src[a * w + b];
        y[t] = acc / (float)((h1 - h0) * (w1 - w0));
    }
}
