/* util.c - files, numbers, formatting, tables and option parsing for vvctl. */
#include "vv/suggest.h"
#include "vvctl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

vc_options vc_opt;
volatile sig_atomic_t vc_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    vc_interrupted = 1;
}

void vc_catch_sigint(int on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_sigint : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- Files ------------------------------------------------------------------ */

char *vc_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                int e = errno ? errno : EIO;
                free(buf);
                buf = NULL;
                errno = e;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = n;
    }
    return buf;
}

cJSON *vc_read_json(const char *path)
{
    size_t len = 0;
    char *text = vc_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "vvctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        /* Name the line of the first byte cJSON could not take. */
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        int line = 1;
        for (size_t i = 0; i < off && i < len; i++)
            line += text[i] == '\n';
        fprintf(stderr, "vvctl: %s: malformed JSON near line %d (byte %zu)\n", path, line, off);
    }
    free(text);
    return j;
}

int vc_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vvctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'vvctl help%s%s')\n", cmd ? " " : "", cmd ? cmd : "");
    return VC_USAGE;
}

/* ---- Numbers -------------------------------------------------------------- */

int vc_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (*e || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int vc_parse_long(const char *s, long *out)
{
    if (!s || !*s)
        return -1;
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (*e || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

double vc_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

const char *vc_str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* ---- Formatting -------------------------------------------------------------- */

void vc_print_json(const cJSON *j, int pretty)
{
    char *s = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

const char *vc_fmt_num(char *buf, size_t sz, const cJSON *o, const char *key, int prec)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!cJSON_IsNumber(v))
        snprintf(buf, sz, "-");
    else
        snprintf(buf, sz, "%.*g", prec, v->valuedouble);
    return buf;
}

const char *vc_fmt_duration(char *buf, size_t sz, double s)
{
    if (!(s >= 0) || !isfinite(s))
        snprintf(buf, sz, "-");
    else if (s < 10)
        snprintf(buf, sz, "%.2fs", s);
    else if (s < 60)
        snprintf(buf, sz, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, sz, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else if (s < 360000)
        snprintf(buf, sz, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else
        snprintf(buf, sz, "%.0fh", s / 3600);
    return buf;
}

char *vc_fmt_value(const cJSON *v)
{
    if (!v)
        return strdup("-");
    if (cJSON_IsString(v))
        return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char b[64];
        snprintf(b, sizeof b, "%.6g", v->valuedouble);
        return strdup(b);
    }
    char *s = cJSON_PrintUnformatted(v);
    return s ? s : strdup("?");
}

char *vc_urlencode(const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(3 * strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p) || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = 0;
    return out;
}

void vc_strcatf(char **s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t old = *s ? strlen(*s) : 0;
    char *b = realloc(*s, old + (size_t)n + 1);
    if (!b)
        return;
    va_start(ap, fmt);
    vsnprintf(b + old, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *s = b;
}

/* ---- Tables ------------------------------------------------------------------ */

void vc_table_init(vc_table *t, int ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
}

void vc_table_row(vc_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, (size_t)cap * (size_t)t->ncols * sizeof *c);
        if (!c)
            return;
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "-");
    t->nrows++;
}

void vc_table_print(const vc_table *t)
{
    int w[64] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols && c < 64; c++) {
            const char *s = t->cells[r * t->ncols + c];
            int n = s ? (int)strlen(s) : 1;
            if (n > w[c])
                w[c] = n;
        }
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols && c < 64; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                printf("%s", s ? s : "-");
            else
                printf("%-*s  ", w[c], s ? s : "-");
        }
        putchar('\n');
    }
}

void vc_table_free(vc_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

double vc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int vc_isatty_stdout(void)
{
    return isatty(STDOUT_FILENO);
}

/* ---- Options ----------------------------------------------------------------- */

static const vc_optdef global_defs[] = {{"server", 1}, {"token", 1}, {"json", 0}};

int vc_parse_args(const char *cmd, int argc, char **argv, const vc_optdef *defs,
                  const char *multi_name, vc_args *a)
{
    memset(a, 0, sizeof *a);
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || arg[0] != '-' || !strcmp(arg, "-")) {
            if (a->npos == (int)(sizeof a->pos / sizeof *a->pos))
                return vc_usage(cmd, "too many arguments");
            a->pos[a->npos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
            return -1;
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        /* Short forms: -o FILE only. */
        if (arg[1] != '-' && strcmp(name, "o"))
            return vc_usage(cmd, "unknown option '%s'", arg);
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const vc_optdef *d = NULL;
        int idx = -1, global = -1;
        for (int k = 0; defs && defs[k].name; k++)
            if (strlen(defs[k].name) == nl && !strncmp(defs[k].name, name, nl)) {
                d = &defs[k];
                idx = k;
            }
        for (int k = 0; !d && k < 3; k++)
            if (strlen(global_defs[k].name) == nl && !strncmp(global_defs[k].name, name, nl)) {
                d = &global_defs[k];
                global = k;
            }
        if (!d) {
            /* The closest option of the command (or a global one). */
            const char *cands[48];
            int nc = 0;
            for (int k = 0; defs && defs[k].name && nc < 44; k++)
                cands[nc++] = defs[k].name;
            for (int k = 0; k < 3; k++)
                cands[nc++] = global_defs[k].name;
            cands[nc] = NULL;
            char word[80];
            snprintf(word, sizeof word, "%.*s", (int)(nl < 79 ? nl : 79), name);
            const char *near = vc_suggest(word, cands);
            if (near)
                return vc_usage(cmd, "unknown option '%.*s'; did you mean '--%s'?",
                                (int)(nl + (size_t)(name - arg)), arg, near);
            return vc_usage(cmd, "unknown option '%.*s'", (int)(nl + (size_t)(name - arg)), arg);
        }
        const char *val = "1";
        if (d->has_arg) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return vc_usage(cmd, "option '--%s' needs a value", d->name);
        } else if (eq) {
            return vc_usage(cmd, "option '--%s' takes no value", d->name);
        }
        if (global == 0)
            vc_opt.server = val;
        else if (global == 1)
            vc_opt.token = val;
        else if (global == 2)
            vc_opt.json = 1;
        else if (multi_name && !strcmp(d->name, multi_name)) {
            if (a->nmulti == (int)(sizeof a->multi / sizeof *a->multi))
                return vc_usage(cmd, "too many --%s options", d->name);
            a->multi[a->nmulti++] = val;
        } else if (idx < (int)(sizeof a->val / sizeof *a->val)) {
            a->val[idx] = val;
        }
    }
    return VC_OK;
}

const char *vc_arg(const vc_optdef *defs, const vc_args *a, const char *name)
{
    for (int k = 0; defs[k].name; k++)
        if (!strcmp(defs[k].name, name))
            return k < (int)(sizeof a->val / sizeof *a->val) ? a->val[k] : NULL;
    return NULL;
}

/* ---- Suggestions, states, questions ------------------------------------------- */

const char *vc_suggest(const char *word, const char *const *cands)
{
    return vv_closest(word, cands, -1);
}

const char *vc_upper(char *b, size_t sz, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < sz; i++)
        b[i] = (char)toupper((unsigned char)s[i]);
    if (sz)
        b[i] = 0;
    return b;
}

int vc_confirm(const char *question)
{
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 0;
    line[strcspn(line, "\r\n")] = 0;
    return !strcasecmp(line, "y") || !strcasecmp(line, "yes");
}
