/* spec.h - job specs: JSON in, validated C structs out.
 *
 * The JSON Schema of each kind is in schema/; this parser accepts exactly
 * the fields the schema lists (tests/unit check the two agree).  A wrong
 * type, an unknown field, a missing or contradictory field is an error
 * naming the field as a JSON pointer (RFC 6901), never a silent default.
 */
#ifndef VV_SPEC_H
#define VV_SPEC_H

#include "model_spec.h"
#include "vv/lasso.h"
#include "vv/train.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* An array in a file: a path (relative paths are taken as they are, i.e.
 * against the current directory of `vvd run`) and, for .safetensors, the
 * tensor's name. */
typedef struct spec_file {
    char *path;   /* NULL when not given */
    char *tensor; /* NULL: the only tensor */
} spec_file;

typedef enum { LAM_NONE = 0, LAM_CANONICAL, LAM_PAPER, LAM_RATIO } spec_lambda_kind;
typedef enum { PATH_NONE = 0, PATH_LAMBDAS, PATH_RATIOS, PATH_GRID } spec_path_kind;

/* The most shards phi or psi may list. */
enum { SPEC_MAX_SHARDS = 64 };

typedef struct lasso_spec {
    char *name;
    spec_file phi, psi;
    /* phi and psi given as lists of shards instead (phi and psi unset): the
     * rows are the concatenation of the shards, phi_shards[i] and
     * psi_shards[i] holding the same rows; under mpirun each rank reads
     * whole shards (server/mpi_run.h) */
    spec_file *phi_shards, *psi_shards;
    int nphi_shards, npsi_shards; /* equal in a parsed spec */
    int save_stats;               /* also write G.npy and B.npy, the statistics (run.c) */
    /* bias: inline values or a file, or neither */
    double *bias;
    int64_t nbias;
    spec_file bias_file;
    /* generate: a synthetic problem instead of phi/psi */
    int generate;
    int64_t gen_n, gen_k, gen_d;
    uint64_t gen_seed;
    /* exactly one of: a lambda, a path, a neuron budget */
    spec_lambda_kind lam_kind;
    double lam_value;
    spec_path_kind path_kind;
    double *path_values; /* lambdas or ratios, as given */
    int64_t path_n;      /* number of points */
    double path_min_ratio;
    int64_t target_active;
    /* solver */
    vv_solver solver;
    double tol;
    int64_t max_iter;
    double max_seconds;
    double mu;
    vv_init init;
    int init_given;      /* the spec chose init */
    spec_file init_file; /* init given as a D x K weight file */
    uint64_t seed;
    int refit;
    int64_t metrics_every;
    int64_t chunk_rows;
    char device[16]; /* "" (auto: the process's device), "cpu", "cuda:N", "sim:N" */
} lasso_spec;

/* The exact interpolation problem (kind "interpolate", experiment 2 of the
 * paper): min sum_k ||v_k|| s.t. Phi V^T = Psi, by the interior-point SOCP
 * of vv/socp.h, optionally the sparsest optimal solution by brute force. */
typedef struct interp_spec {
    char *name;
    spec_file phi, psi;
    int generate;       /* a random instance instead of phi/psi */
    int gen_lowrank;    /* 0: Gaussian (Fig. 3/5), 1: rank r (Fig. 4) */
    int64_t gen_n, gen_k, gen_d, gen_rank;
    uint64_t gen_seed;
    double tol;         /* interior-point relative accuracy, default 1e-9 */
    int64_t max_iter;   /* default 100 */
    int brute_force;    /* also find the sparsest optimal support */
    int64_t budget;     /* restricted problems the brute force may solve */
} interp_spec;

/* The width-bound study of the paper's Figs. 3-5 (kind "bounds_study"):
 * random instances, the number of nonzero columns of each exact solution
 * (fig5: of the sparsest optimal solution, by brute force), histograms
 * against the bounds N (or r) and rank(Phi) rank(Psi). */
typedef enum { FIG3 = 3, FIG4 = 4, FIG5 = 5 } bounds_figure;

typedef struct bounds_spec {
    char *name;
    bounds_figure figure;
    int64_t values[16]; /* the panels: N (fig3), rank r (fig4), K (fig5) */
    int nvalues;
    int64_t n, k, d;    /* the fixed sizes (fig3: k, d; fig4: n, k; fig5: n, d) */
    int64_t instances;  /* per panel */
    uint64_t seed;
    double tol;
    int64_t budget;     /* fig5: restricted problems per instance at most */
} bounds_spec;

/* Experiment 1 of the paper (kind "neuron_sharing"): a student ReLU net
 * trained full-batch by SGD on a teacher's data (vv/shallow.h). */
typedef struct sharing_spec {
    char *name;
    int64_t n, d_in, d_out, teacher_width, width;
    uint64_t data_seed, seed;
    int mode;        /* a vv_shallow_mode */
    int per_output;  /* the one-network-per-output baseline */
    double lr, reg, max_seconds;
    int64_t steps, log_every;
} sharing_spec;

/* The fine-tuning stage of a compress run: the smaller network trained for
 * a few epochs with the train job's machinery (vv/train.h). */
typedef struct finetune_spec {
    int enabled;
    int64_t epochs, batch_size;
    vv_train_opts opts;
    int cosine; /* cosine schedule over the epochs, else constant */
    uint64_t seed;
} finetune_spec;

/* Experiment 3 of the paper (kind "compress"): a trained model, a data set,
 * the linear layers to compress, and the lasso options (the solver fields
 * of a lasso spec). */
/* "layers": "all_linear" (every linear layer fed by a linear layer's
 * neurons), "all_conv" (every conv2d fed by another's channels), "all"
 * (both, and linear layers after flatten). */
enum { LAYERS_ALL_LINEAR = 1, LAYERS_ALL_CONV, LAYERS_ALL };

/* Output positions per image sampled from a conv layer by default. */
#define COMPRESS_POSITIONS 64

typedef struct compress_spec {
    char *name;
    model_ref model;
    data_spec data;
    char **layers;     /* names of linear or conv2d layers */
    int nlayers;
    int layer_set;     /* LAYERS_ALL_*: a named set instead of names (0: names) */
    int64_t positions; /* positions_per_image of conv layers: -1 all; 0 the default,
                        * COMPRESS_POSITIONS (fewer when the map is smaller); a given
                        * number may not exceed a layer's map */
    int sequential;    /* features from the already compressed network (default) */
    int64_t batch_size; /* forward-pass batch */
    int export_model;  /* write the compressed model (default true) */
    finetune_spec finetune; /* after the lasso and refit (default on) */
    int baseline;      /* also prune by weight magnitude at the same widths (default on) */
    lasso_spec lasso;  /* lambda selection, solver, tol, refit, ... */
} compress_spec;

/* Training a model (kind "train"): mini-batch SGD with momentum or Adam. */
typedef enum { SCHED_CONSTANT = 0, SCHED_STEP, SCHED_COSINE } train_schedule;

typedef struct train_spec {
    char *name;
    char *preset;       /* "fmnist-mlp", "fmnist-cnn", "alexnet_cifar64", "vgg19_cifar" or
                         * NULL */
    model_ref model;    /* architecture, and initial weights when given */
    data_spec data;
    vv_train_opts opts;
    train_schedule schedule;
    int64_t milestones[16];
    int nmilestones;
    double gamma;
    int64_t epochs, batch_size, log_every;
    uint64_t seed;
    int aug_crop, aug_pad, aug_hflip; /* training augmentation (random crop, flip) */
    char *resume_from;  /* a run directory whose checkpoint to continue from */
    double max_seconds;
    int install_default; /* preset fmnist-mlp: install as the embedded default model */
} train_spec;

typedef enum { JOB_LASSO = 0, JOB_INTERPOLATE, JOB_BOUNDS, JOB_SHARING, JOB_COMPRESS,
               JOB_TRAIN } job_kind;

/* A parsed job of any kind. */
typedef struct job_spec {
    job_kind kind;
    lasso_spec lasso;       /* JOB_LASSO */
    interp_spec interp;     /* JOB_INTERPOLATE */
    bounds_spec bounds;     /* JOB_BOUNDS */
    sharing_spec sharing;   /* JOB_SHARING */
    compress_spec compress; /* JOB_COMPRESS */
    train_spec train;       /* JOB_TRAIN */
} job_spec;

/* The kind's name ("lasso", "interpolate"). */
const char *spec_kind_name(job_kind k);

/* Parses a spec of any kind (dispatching on "kind"); same contract as
 * spec_parse_lasso.  Call spec_free_job either way. */
int spec_parse_job(const cJSON *root, job_spec *out, char *field, size_t fieldsz);
/* spec_parse_job for a spec that a worker will run (`vvd run --report-to`):
 * its "device" is checked by name only, not against this process's. */
int spec_parse_job_remote(const cJSON *root, job_spec *out, char *field, size_t fieldsz);
extern _Thread_local int spec_for_worker;
int spec_parse_job_text(const char *text, size_t len, job_spec *out, char *field, size_t fieldsz);
void spec_free_job(job_spec *s);

/* The top-level fields of a kind, NULL-ended. */
const char *const *spec_fields(job_kind k);

/* Parses a spec of kind "interpolate" (spec_interp.c). */
int spec_parse_interp(const cJSON *root, interp_spec *out, char *field, size_t fieldsz);
extern const char *const spec_interp_fields[];
void spec_free_interp(interp_spec *s);

/* Parses a spec of kind "bounds_study" (spec_interp.c). */
int spec_parse_bounds(const cJSON *root, bounds_spec *out, char *field, size_t fieldsz);
extern const char *const spec_bounds_fields[];

/* Parses a spec of kind "neuron_sharing" (spec_interp.c). */
int spec_parse_sharing(const cJSON *root, sharing_spec *out, char *field, size_t fieldsz);
extern const char *const spec_sharing_fields[];

/* Parses a spec of kind "compress" (spec_compress.c). */
int spec_parse_compress(const cJSON *root, compress_spec *out, char *field, size_t fieldsz);
extern const char *const spec_compress_fields[];
void spec_free_compress(compress_spec *s);

/* Parses a spec of kind "train" (spec_train.c). */
int spec_parse_train(const cJSON *root, train_spec *out, char *field, size_t fieldsz);
extern const char *const spec_train_fields[];
void spec_free_train(train_spec *s);

/* Parses only the solver options of a lasso spec (lambda selection,
 * solver, tol, max_iter, max_seconds, mu, init zeros|random, seed, refit,
 * metrics_every, chunk_rows, device) from root, skipping the fields named
 * in foreign (NULL-ended); phi, psi, bias and generate are unknown here. */
int spec_parse_lasso_options(const cJSON *root, const char *const *foreign, lasso_spec *s,
                             char *field, size_t fieldsz);

/* A file reference, "path" or {"path", "tensor"}, at JSON pointer ptr
 * (shared by every kind); out must start zeroed. */
int spec_parse_file(const cJSON *j, const char *ptr, spec_file *out, char *field, size_t fieldsz);

/* Parses a spec of kind "lasso".  On failure returns a negative vv_err,
 * with vv_err_detail() describing the problem and field receiving the JSON
 * pointer of the offending input ("" for the whole document); *out may then
 * hold partial allocations: call spec_free_lasso either way. */
int spec_parse_lasso(const cJSON *root, lasso_spec *out, char *field, size_t fieldsz);


/* The field names spec_parse_lasso accepts at the top level, NULL-ended
 * (for the schema consistency test). */
extern const char *const spec_lasso_fields[];

void spec_free_lasso(lasso_spec *s);

#endif
