/* vvctl.h - what the files of vvctl, the command-line client of vvd, share.
 *
 * vvctl speaks only HTTP to a running `vvd serve` (libcurl) and parses its
 * answers with cJSON; of libvv it uses only the "did you mean" helper
 * (vv/suggest.h), nothing of the server.  Every
 * command returns one of the exit codes below, which main() passes to
 * exit().  Messages for the user go to stderr as one line starting with
 * "vvctl: "; results go to stdout.  Nothing here is thread-safe: vvctl is
 * single-threaded.
 */
#ifndef VVCTL_H
#define VVCTL_H

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes scripts can rely on (documented in `vvctl --help`). */
enum {
    VC_OK = 0,          /* success; for watch: the run FINISHED or was STOPPED */
    VC_FAILED = 1,      /* a run FAILED or CRASHED, or the server refused the request */
    VC_USAGE = 2,       /* bad flags, bad grid syntax, unreadable or malformed spec file */
    VC_UNREACHABLE = 3, /* no answer from the server (refused, timed out, dropped) */
    VC_DETACHED = 130   /* watch interrupted by Ctrl-C (128 + SIGINT); the run goes on */
};

/* Global options, set once by main() before any command runs. */
typedef struct vc_options {
    const char *server; /* base URL without a trailing slash */
    const char *token;  /* bearer token or NULL */
    int json;           /* --json: print the server's JSON as is */
} vc_options;

extern vc_options vc_opt;

/* Set by the SIGINT handler while a watch runs (see vc_catch_sigint). */
extern volatile sig_atomic_t vc_interrupted;

/* Installs a SIGINT handler that only sets vc_interrupted (no SA_RESTART,
 * so blocking waits return), or restores the default when on is 0. */
void vc_catch_sigint(int on);

/* ---- http.c: requests --------------------------------------------------- */

/* One HTTP answer.  body is NUL-terminated (possibly empty), malloc'd. */
typedef struct vc_resp {
    long status;
    char *body;
    size_t len;
} vc_resp;

void vc_resp_free(vc_resp *r); /* accepts NULL */

/* Sends METHOD SERVER+path with an optional JSON body (NULL: none).
 * Returns VC_OK with *out filled for any HTTP status (out->status tells),
 * or VC_UNREACHABLE after printing one line when no answer came. */
int vc_http(const char *method, const char *path, const char *json_body, vc_resp *out);

/* The common case: sends the request and returns the parsed JSON of a 2xx
 * answer (the caller deletes it).  On failure returns NULL and sets *rc:
 * VC_UNREACHABLE (no answer) or VC_FAILED (a 4xx/5xx answer, printed as
 * one line by vc_print_problem, or an answer that is not JSON). */
cJSON *vc_call(const char *method, const char *path, const char *json_body, int *rc);

/* Prints an error answer as one line:
 * "vvctl: 400 INVALID_PARAMETER_VALUE at /lambda: <detail>". */
void vc_print_problem(const vc_resp *r);

/* Uploads a local file with PUT /v1/blobs/<name>.  Returns an exit code
 * (VC_USAGE when the local file cannot be read). */
int vc_upload(const char *local_path, const char *name);

/* Downloads GET path into the file out ("-" for stdout), through a
 * temporary file renamed into place on success.  Returns an exit code. */
int vc_download(const char *path, const char *out);

/* ---- http.c: Server-Sent Events ------------------------------------------ */

/* One event of a stream.  data is the event's data text (NUL-terminated). */
typedef struct vc_sse_event {
    int64_t id; /* -1 when the event had no id */
    const char *type;
    const char *data;
} vc_sse_event;

/* Called for each event; a nonzero return ends the stream early. */
typedef int (*vc_sse_fn)(void *ctx, const vc_sse_event *ev);

/* Result of one connection to an event stream. */
enum {
    VC_SSE_END = 0,         /* the server ended the stream */
    VC_SSE_STOPPED = 1,     /* the callback asked to stop */
    VC_SSE_INTERRUPTED = 2, /* vc_interrupted was set */
    VC_SSE_DROPPED = 3,     /* no connection or the connection broke */
    VC_SSE_REFUSED = 4      /* an HTTP error answer (printed) */
};

/* Opens GET path as an event stream, sending Last-Event-ID: *last_id when
 * *last_id > 0, calls fn for each event and keeps *last_id up to date.
 * *retry_ms gets the server's retry: field when it sends one.  Returns one
 * of the VC_SSE_* values; *http_status gets the answer's status (0 when
 * none).  A stream silent for more than 60 seconds counts as dropped. */
int vc_sse(const char *path, int64_t *last_id, int *retry_ms, vc_sse_fn fn, void *ctx,
           long *http_status);

/* ---- util.c ------------------------------------------------------------------ */

/* Reads a whole file ("-": stdin) into a malloc'd NUL-terminated buffer;
 * NULL with errno set on failure. */
char *vc_read_file(const char *path, size_t *len);

/* Reads and parses a JSON file; on failure prints one line and returns
 * NULL (the caller exits with VC_USAGE). */
cJSON *vc_read_json(const char *path);

/* Prints a usage error (printf-style) with a hint to --help; returns VC_USAGE. */
int vc_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string must be a finite number. */
int vc_parse_double(const char *s, double *out);
int vc_parse_long(const char *s, long *out);

/* Prints a cJSON value (pretty or compact) on stdout followed by a newline. */
void vc_print_json(const cJSON *j, int pretty);

/* Member lookups that tolerate NULL and wrong types. */
double vc_num(const cJSON *o, const char *key, double dflt);
const char *vc_str(const cJSON *o, const char *key, const char *dflt);

/* Formats into buf (returned): a number with %.*g, "-" when absent. */
const char *vc_fmt_num(char *buf, size_t sz, const cJSON *o, const char *key, int prec);
/* Formats seconds as "0.42s", "12.3s", "4m05s", "2h03m". */
const char *vc_fmt_duration(char *buf, size_t sz, double seconds);
/* Formats a JSON value compactly for a table cell: strings unquoted. */
char *vc_fmt_value(const cJSON *v);

/* Percent-encodes s for a URL query or path ('/' kept when keep_slash);
 * malloc'd. */
char *vc_urlencode(const char *s, int keep_slash);

/* Appends printf-style text to a growing malloc'd string. */
void vc_strcatf(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A text table: rows of cells, printed with columns padded to their width. */
typedef struct vc_table {
    int ncols, nrows, cap;
    char **cells; /* nrows * ncols, malloc'd */
} vc_table;

void vc_table_init(vc_table *t, int ncols);
/* Adds a row of ncols strings (copied; NULL prints as "-"). */
void vc_table_row(vc_table *t, const char *const *cells);
void vc_table_print(const vc_table *t);
void vc_table_free(vc_table *t); /* accepts NULL */

/* Wall clock in seconds (monotonic). */
double vc_now(void);
int vc_isatty_stdout(void);

/* ---- option parsing (util.c) ----------------------------------------------- */

/* One option of a command: "--name" with a value (has_arg) or a flag. */
typedef struct vc_optdef {
    const char *name; /* without the leading dashes */
    int has_arg;
} vc_optdef;

/* Parsed options: for each optdef, the last value given (flags: "1"),
 * repeated values (for --grid), and the positional arguments. */
typedef struct vc_args {
    const char *val[32];
    const char *multi[64]; /* every value of the option named multi_name */
    int nmulti;
    const char *pos[16];
    int npos;
} vc_args;

/* Parses argv (after the command name) against defs, also taking the
 * global --server, --token and --json anywhere.  multi_name (or NULL)
 * names an option that may repeat.  Returns VC_OK, VC_USAGE (printed), or
 * -1 when --help was asked for. */
int vc_parse_args(const char *cmd, int argc, char **argv, const vc_optdef *defs,
                  const char *multi_name, vc_args *a);

/* The value of option name (NULL when not given). */
const char *vc_arg(const vc_optdef *defs, const vc_args *a, const char *name);

/* ---- grid.c ----------------------------------------------------------------- */

/* Parses one --grid argument "field=values" where values is a comma list
 * of numbers, true/false or strings, or a range "a:b:lin:n" / "a:b:log:n"
 * (n points including both ends).  On success *field is malloc'd and
 * *values a new JSON array; on failure writes a message and returns -1. */
int vc_grid_parse(const char *arg, char **field, cJSON **values, char *err, size_t errsz);

/* Parses a grid value string (the part after '='), as above. */
cJSON *vc_grid_values(const char *text, char *err, size_t errsz);

/* Marks in optimal[i] the Pareto-optimal points among those with
 * eligible[i]: no other eligible point has active <= and mse <= with one
 * of them strictly smaller. */
void vc_pareto(const double *active, const double *mse, const int *eligible, int n, int *optimal);

/* ---- view.c: what tables show of a run, whatever its kind ------------------ */

/* The run's result object, else its summary (NULL when neither). */
const cJSON *vc_run_result(const cJSON *run);
int vc_run_is_compress(const cJSON *run);
/* The run's name: the PATCHed "name", else the spec's, else NULL. */
const char *vc_run_name(const cJSON *run);
/* The layer widths of a compress result, "fc2 128->40, fc3 64->12" or, when
 * compact, "40/12" (kept neurons per layer); malloc'd, NULL when the result
 * has no layers. */
char *vc_fmt_widths(const cJSON *result, int compact);
/* A compress result's parameters and test accuracy as "BEFORE->AFTER" when
 * its "before" has them, else the value alone, else "-"; into b. */
const char *vc_fmt_params(char *b, size_t sz, const cJSON *result);
const char *vc_fmt_acc(char *b, size_t sz, const cJSON *result);
/* The absolute lambda of a run (summary, else spec), or "-" (also for a
 * compress run of several layers, whose lambdas differ); into b. */
const char *vc_fmt_lambda(char *b, size_t sz, const cJSON *run);
/* The run's tags joined with ", " (malloc'd), NULL when it has none. */
char *vc_fmt_tags(const cJSON *run);
/* Prints a compress run's layer widths, parameters and test accuracy
 * (before->after, and the magnitude-pruning baseline's), each line
 * starting with indent; nothing for other runs. */
void vc_print_compress(const cJSON *run, const char *indent);

/* ---- watch_log.c ------------------------------------------------------------ */

/* A log event (its "event" member names it) as a short human line without
 * the run id: "start compress: model fm, layers fc2, fc3; ...", "layer fc2:
 * statistics ...", "path point 3: ...", or "event NAME k=v ..." for others.
 * malloc'd. */
char *vc_log_text(const cJSON *ev);

/* ---- suggestions (util.c) ------------------------------------------------------ */

/* The candidate closest to word (vv/suggest.h), or NULL when none is close;
 * cands ends at a NULL. */
const char *vc_suggest(const char *word, const char *const *cands);

/* Uppercases a state name given on the command line into b (QUEUED,
 * RUNNING, ... are matched case-insensitively); returns b. */
const char *vc_upper(char *b, size_t sz, const char *s);

/* Asks a yes/no question on stderr and reads the answer from stdin;
 * returns 1 for y/yes. */
int vc_confirm(const char *question);

/* ---- commands ------------------------------------------------------------- */

int vc_cmd_submit(int argc, char **argv);
int vc_cmd_lasso(int argc, char **argv);
int vc_cmd_watch(int argc, char **argv);
int vc_cmd_stop(int argc, char **argv);
int vc_cmd_ls(int argc, char **argv);
int vc_cmd_show(int argc, char **argv);
int vc_cmd_metrics(int argc, char **argv);
int vc_cmd_get(int argc, char **argv);
int vc_cmd_sweep(int argc, char **argv);
int vc_cmd_upload(int argc, char **argv);
int vc_cmd_models(int argc, char **argv);
int vc_cmd_tag(int argc, char **argv);
int vc_cmd_note(int argc, char **argv);
int vc_cmd_rename(int argc, char **argv);
int vc_cmd_rm(int argc, char **argv);
int vc_cmd_compare(int argc, char **argv);

/* `vvctl sweep ls` (sweep_list.c). */
int vc_sweep_ls(int argc, char **argv);

/* Follows run id to its end (watch.c).  Returns the watch exit code. */
int vc_watch_run(const char *id);

/* Prints a run object's summary: state, stop_reason, objective, rel_gap,
 * active, iterations, seconds, error and artifacts (watch.c). */
void vc_print_run_summary(const cJSON *run);

/* Prints the help of a command (or the global help for NULL) on stdout;
 * returns VC_USAGE for an unknown command (main.c). */
int vc_help(const char *cmd);

/* Uploads every local file a spec names (--upload of submit, lasso and
 * sweep) and rewrites each to the name of its blob, "blobs/NAME": phi, psi,
 * bias and init (a path, or {"path": ...}), the model's weights and spec
 * file, the data set's train/test images and labels, and its dir (every
 * file inside, as blobs/DIRNAME/...).  NAME is the file's base name, with its
 * folder's name in front when another file of the spec has that base name.
 * A path that is not a local file is a usage error (VC_USAGE, printed);
 * otherwise returns vc_upload's exit code (upload.c). */
int vc_upload_spec_files(cJSON *spec);

/* Uploads a local file, or every file of a local folder (as NAME/...), as
 * the blob NAME; returns an exit code (upload.c). */
int vc_upload_path(const char *local, const char *name);


/* ---- emit.c: sweeps for a cluster's scheduler --------------------------------- */

typedef struct vc_emit_opts {
    const char *kind;       /* "slurm" or "k8s" */
    const char *report_to;  /* the daemon the workers report to */
    const char *token_file; /* the token's path on the workers, or NULL */
    const char *image;      /* k8s: the container image */
    const char *vvd;        /* vvd on the workers */
    const char *time;       /* slurm: --time, or NULL */
    long mem_mib;           /* 0: from the spec */
    int gpus;               /* -1: from the spec */
    int cpus, parallelism;
} vc_emit_opts;

/* Writes the Slurm array script or the Kubernetes Indexed Job of the sweep
 * (the answer to POST /v1/sweeps of request, made with "external": true). */
int vc_emit(FILE *f, const vc_emit_opts *o, const cJSON *request, const cJSON *sweep);
/* "512M", "8G", "8Gi", "1T" (MiB when no unit) in MiB; -1 when malformed. */
int vc_parse_mem(const char *s, long *mib);

#endif
