/* Image classification data sets: CIFAR-10 binary batches, IDX (MNIST /
 * Fashion-MNIST, gzipped or not) and .npy image arrays with labels, and the
 * preprocessing a model declares (scale, normalise, resize, crop, and the
 * training augmentations random crop and horizontal flip).
 *
 * A data set keeps its images as stored (uint8 for CIFAR-10 and IDX, uint8
 * or float32 for .npy) in N x C x H x W order; preprocessing runs per batch
 * into a caller's float buffer, so a resized 64x64 CIFAR-10 never exists
 * whole in memory.  An opened data set is read-only: every function that
 * takes a const vv_dataset * may be called from several threads at once. */
#ifndef VV_DATASET_H
#define VV_DATASET_H

#include <stdint.h>

#include "vv/err.h"
#include "vv/lasso.h" /* vv_rng */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vv_dataset vv_dataset;

/* Opens CIFAR-10 binary batches (each record: 1 label byte then 3072 bytes,
 * 3 x 32 x 32 channel-major) and concatenates them in the given order.
 * A file whose size is not a whole number of records, or a label > 9, fails
 * with VV_EFORMAT naming the file (and the record, counted from 0 in that
 * file); a missing file with VV_ENOFILE.  On success *out is a new data set
 * owned by the caller (vv_dataset_free); on failure *out is NULL.  The same
 * holds for the other two readers. */
vv_err vv_dataset_open_cifar10(const char *const *files, int nfiles, vv_dataset **out);

/* Opens an IDX images file (magic 0x00000803, N x H x W uint8) and an IDX
 * labels file (0x00000801, N uint8); either may be gzipped (detected by its
 * magic bytes, not its name).  Mismatched counts, a wrong magic, a
 * truncated file, data after the last image or a corrupt gzip stream fail
 * with VV_EFORMAT naming the file. */
vv_err vv_dataset_open_idx(const char *images, const char *labels, vv_dataset **out);

/* Opens a .npy image array (N x H x W -> C = 1, or N x C x H x W; uint8 or
 * float32/float64, float converted to float32; C order) and a .npy label
 * vector (N; any integer type).  A label < 0 or > INT32_MAX fails with
 * VV_EINVAL naming the file and the row; another rank or mismatched counts
 * with VV_ESHAPE, another dtype with VV_EDTYPE, NaN or Inf pixels with
 * VV_ENONFINITE, a malformed file as vv_npy_read_raw does. */
vv_err vv_dataset_open_npy(const char *images, const char *labels, vv_dataset **out);

/* The images of a .npy array alone, as vv_dataset_open_npy reads them, for
 * inference (vvd forward): every label is 0. */
vv_err vv_dataset_open_npy_images(const char *images, vv_dataset **out);

/* Frees a data set; NULL is allowed. */
void vv_dataset_free(vv_dataset *ds);

/* Sizes of an opened data set; 0 (NULL for the labels) when ds is NULL. */
int64_t vv_dataset_count(const vv_dataset *ds);
int vv_dataset_channels(const vv_dataset *ds);
int vv_dataset_height(const vv_dataset *ds);
int vv_dataset_width(const vv_dataset *ds);
/* 1 + the largest label. */
int vv_dataset_classes(const vv_dataset *ds);
/* Labels, count entries, owned by the data set. */
const int32_t *vv_dataset_labels(const vv_dataset *ds);

/* Preprocessing, applied in this order:
 *   1. scale: uint8 pixels become x / 255 (float .npy data is taken as is
 *      unless scale255 is set, which divides it by 255 too);
 *   2. resize (when > 0): the shorter side becomes `resize`, the longer
 *      side int(resize * long / short), bilinear with antialiasing, which is
 *      torchvision's Resize on tensors, i.e.
 *      torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 *      antialias=True);
 *   3. crop (when > 0): a crop x crop window, from the center (rounded as
 *      torchvision's CenterCrop does) or, when random_crop is set, at a
 *      random offset after zero-padding each side by `pad` pixels (the
 *      padding is 0 before normalisation, as in torchvision's RandomCrop);
 *   4. hflip (training only): mirror each image with probability 1/2;
 *   5. normalise: (x - mean[c]) / std[c] for each channel c when nnorm > 0
 *      (nnorm must equal the channel count).
 * The zero value means "scale only". */
typedef struct vv_preprocess {
    int scale255;    /* float .npy input: divide by 255 as well */
    int resize;      /* shorter side after resizing, 0 = keep */
    int crop;        /* output side after cropping, 0 = no crop */
    int random_crop; /* 1: random crop window (training), 0: center */
    int pad;         /* zero padding before a random crop (needs random_crop) */
    int hflip;       /* 1: random horizontal flip (training) */
    int nnorm;       /* channels in mean/std, 0 = no normalisation */
    float mean[4];
    float std[4];
} vv_preprocess;

/* Shape of one preprocessed image: channels, height, width.  pp may be
 * NULL (scale only); any output pointer may be NULL. */
void vv_preprocess_shape(const vv_dataset *ds, const vv_preprocess *pp, int *c, int *h, int *w);

/* Checks pp against ds (nnorm vs channels, crop larger than the resized
 * (and, for a random crop, padded) image, std == 0 or not finite, mean not
 * finite, negative sizes, sides above 65536, pad without random_crop,
 * random_crop without crop); VV_EINVAL with a detail that starts with the
 * preprocessing field ("crop = 80: ...", "std[1] = 0: ..."). */
vv_err vv_preprocess_check(const vv_dataset *ds, const vv_preprocess *pp);

/* Writes images idx[0..count) (or start..start+count when idx is NULL)
 * preprocessed into x (count x C x H x W float32 of vv_preprocess_shape)
 * and their labels into y (may be NULL).  pp may be NULL (scale only).  The
 * random augmentations draw from *rng (advanced; may be NULL when pp asks
 * for none): per image the crop's top, then its left, then the flip, so a
 * fixed seed gives the same batch.  Fails, before writing anything, with
 * VV_EINVAL when an index is out of range, when pp fails
 * vv_preprocess_check or when rng is missing.  Thread-safe for distinct x,
 * y and rng. */
vv_err vv_dataset_batch(const vv_dataset *ds, const vv_preprocess *pp, const int64_t *idx,
                        int64_t start, int64_t count, vv_rng *rng, float *x, int32_t *y);

#ifdef __cplusplus
}
#endif
#endif
