/* watch.c - `vvctl watch`: follows a run's event stream and shows its
 * progress, reconnecting with Last-Event-ID when the connection drops.
 *
 * On a terminal one live line is rewritten in place (at most 10 times a
 * second); otherwise plain key=value lines are printed, at most 4 metric
 * lines a second (the latest metric before a state change is always
 * printed).  --json prints every event unthrottled as one JSON object a
 * line, then the final run object.
 */
#include "eta.h"
#include "vvctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

enum {
    RING = 32,               /* samples kept for the rate and the ETA */
    RECONNECT_GIVE_UP_S = 60 /* without any contact, a dropped stream is given up */
};
static const double TTY_PERIOD = 0.1;    /* seconds between redraws of the live line */
static const double PLAIN_PERIOD = 0.25; /* seconds between plain metric lines */

typedef struct sample {
    double t, lg, step;
} sample;

typedef struct watch {
    const char *id;
    int tty, json;
    double tol, max_seconds;
    /* compress runs: the layer being solved (from the metric's "layer", else
     * the latest stats event), where its steps start, and the run's layers */
    char layer[64];
    double layer_base; /* run step where the layer starts (its stats event's
                        * step, else its first metric's); NAN before either */
    char layers[16][64];
    int nlayers;
    /* the latest metric */
    int have, pending;
    double step, t, objective, rel_gap, active;
    int training; /* the metrics are a train run's (loss per step) */
    double loss, epoch, lr;
    /* recent samples of (time, ln rel_gap, step), oldest first after wrap */
    sample ring[RING];
    int rn, rhead;
    double last_print; /* wall clock of the last metric output */
    int line_on;       /* a live line is on the terminal */
    char state[16];    /* the latest state */
    int final;         /* a final state arrived */
} watch;

static int is_final(const char *st)
{
    return !strcmp(st, "FINISHED") || !strcmp(st, "STOPPED") || !strcmp(st, "FAILED") ||
           !strcmp(st, "CRASHED");
}

/* ---- Rate and ETA --------------------------------------------------------- */

static void add_sample(watch *w)
{
    if (!(w->rel_gap > 0))
        return;
    double spacing = fmin(0.25, fmax(0.002, w->t / 50));
    if (w->rn > 0) {
        const sample *last = &w->ring[(w->rhead + w->rn - 1) % RING];
        if (w->t - last->t < spacing)
            return;
    }
    sample s = {w->t, log(w->rel_gap), w->step};
    if (w->rn < RING)
        w->ring[(w->rhead + w->rn++) % RING] = s;
    else {
        w->ring[w->rhead] = s;
        w->rhead = (w->rhead + 1) % RING;
    }
}

/* Iterations per second over the recent samples (0 when unknown). */
static double rate(const watch *w)
{
    if (w->rn > 0) {
        const sample *a = &w->ring[w->rhead];
        if (w->t - a->t > 0 && w->step > a->step)
            return (w->step - a->step) / (w->t - a->t);
    }
    return w->t > 0 ? w->step / w->t : 0;
}

/* Seconds until rel_gap reaches tol from the recent samples (eta.h); -1
 * when there is no believable estimate. */
static double eta(const watch *w)
{
    if (w->have && w->rel_gap > 0 && w->rel_gap <= w->tol)
        return 0;
    vc_eta_sample s[RING];
    for (int i = 0; i < w->rn; i++) {
        const sample *x = &w->ring[(w->rhead + i) % RING];
        s[i].t = x->t;
        s[i].lg = x->lg;
    }
    return vc_eta_estimate(s, w->rn, w->rel_gap, w->tol, w->t, w->max_seconds);
}

static const char *fmt_rate(char *b, size_t sz, double r)
{
    if (!(r > 0))
        snprintf(b, sz, "?");
    else if (r >= 1e6)
        snprintf(b, sz, "%.1fM", r / 1e6);
    else if (r >= 1e4)
        snprintf(b, sz, "%.1fk", r / 1e3);
    else
        snprintf(b, sz, "%.0f", r);
    return b;
}

/* ---- Output ---------------------------------------------------------------- */

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

static void clear_line(watch *w)
{
    if (w->tty && w->line_on) {
        fputs("\r\033[K", stdout);
        w->line_on = 0;
    }
}

/* The index of the layer being solved among the run's layers, or -1. */
static int layer_index(const watch *w)
{
    for (int i = 0; i < w->nlayers; i++)
        if (!strcmp(w->layers[i], w->layer))
            return i;
    return -1;
}

/* A new layer starts: its steps count from its first metric (or from the
 * step its stats event names), and the ETA forgets the previous layer. */
static void set_layer(watch *w, const char *layer, double base)
{
    if (!strcmp(w->layer, layer)) {
        if (isnan(w->layer_base))
            w->layer_base = base;
        return;
    }
    snprintf(w->layer, sizeof w->layer, "%s", layer);
    w->layer_base = base;
    w->rn = 0;
    w->rhead = 0;
}

/* Prints the latest metric: the live line on a terminal, a plain line
 * otherwise. */
static void show_metric(watch *w)
{
    char r[32], el[32], et[32];
    fmt_rate(r, sizeof r, rate(w));
    vc_fmt_duration(el, sizeof el, w->t);
    double e = eta(w);
    if (e < 0)
        snprintf(et, sizeof et, "-");
    else
        vc_fmt_duration(et, sizeof et, e);
    char line[512];
    if (w->training) {
        if (w->tty)
            snprintf(line, sizeof line, "%s %s  step %.0f  epoch %.2f  loss %.4f  lr %.3g  %s",
                     w->id, w->state, w->step, w->epoch, w->loss, w->lr, el);
        else
            snprintf(line, sizeof line, "%s step=%.0f epoch=%.3f loss=%.6g lr=%.4g elapsed=%s\n",
                     w->id, w->step, w->epoch, w->loss, w->lr, el);
        if (w->tty) {
            int width = term_width();
            if (width > 1 && (int)strlen(line) >= width)
                line[width - 1] = 0;
            fputs("\r\033[K", stdout);
            w->line_on = 1;
        }
        fputs(line, stdout);
        fflush(stdout);
        w->pending = 0;
        w->last_print = vc_now();
        return;
    }
    /* A compress run: the layer being solved and the step within it. */
    char lay[160] = "";
    if (w->layer[0]) {
        int li = layer_index(w);
        char of[32] = "";
        double local = w->step - w->layer_base + 1;
        if (li >= 0)
            snprintf(of, sizeof of, " %d/%d", li + 1, w->nlayers);
        if (w->tty)
            snprintf(lay, sizeof lay, "  layer %s%s  step %.0f (run %.0f)", w->layer, of, local,
                     w->step);
        else
            snprintf(lay, sizeof lay, " layer=%s layer_step=%.0f", w->layer, local);
    }
    if (w->tty) {
        if (lay[0])
            snprintf(line, sizeof line,
                     "%s %s%s  objective %.6g  rel_gap %.3e  active %.0f  %s it/s  %s  ETA %s",
                     w->id, w->state, lay, w->objective, w->rel_gap, w->active, r, el, et);
        else
            snprintf(line, sizeof line,
                     "%s %s  step %.0f  objective %.6g  rel_gap %.3e  active %.0f  %s it/s  %s  "
                     "ETA %s",
                     w->id, w->state, w->step, w->objective, w->rel_gap, w->active, r, el, et);
        int width = term_width();
        if (width > 1 && (int)strlen(line) >= width)
            line[width - 1] = 0;
        fputs("\r\033[K", stdout);
        fputs(line, stdout);
        w->line_on = 1;
    } else {
        printf("%s%s step=%.0f objective=%.9g rel_gap=%.3e active=%.0f it/s=%s elapsed=%s "
               "eta=%s\n",
               w->id, lay, w->step, w->objective, w->rel_gap, w->active, r, el, et);
    }
    fflush(stdout);
    w->pending = 0;
    w->last_print = vc_now();
}

/* Prints a whole line (a state change or a log event) above the live line. */
static void show_line(watch *w, const char *text)
{
    /* Lines keep their order: a metric held back by the throttle first. */
    if (!w->tty && w->pending)
        show_metric(w);
    clear_line(w);
    printf("%s\n", text);
    if (w->tty && w->have && !w->final)
        show_metric(w);
    fflush(stdout);
}

/* Accuracy reports (a train run's epochs, a compress run's before and
 * after) are whole lines. */
static int accuracy_line(watch *w, const cJSON *d)
{
    if (!cJSON_GetObjectItemCaseSensitive(d, "train_acc"))
        return 0;
    char text[512];
    const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "phase"));
    int n = 0;
    if (phase && cJSON_GetObjectItemCaseSensitive(d, "epoch"))
        n = snprintf(text, sizeof text, "%s %s epoch %.0f:", w->id, phase, vc_num(d, "epoch", 0));
    else if (phase)
        n = snprintf(text, sizeof text, "%s %s:", w->id, phase);
    else
        n = snprintf(text, sizeof text, "%s epoch %.0f:", w->id, vc_num(d, "epoch", 0));
    n += snprintf(text + n, sizeof text - (size_t)n, " train acc %.4f (loss %.4f)",
                  vc_num(d, "train_acc", NAN), vc_num(d, "train_loss", vc_num(d, "loss", NAN)));
    if (cJSON_GetObjectItemCaseSensitive(d, "test_acc"))
        n += snprintf(text + n, sizeof text - (size_t)n, ", test acc %.4f (loss %.4f)",
                      vc_num(d, "test_acc", NAN), vc_num(d, "test_loss", NAN));
    if (cJSON_GetObjectItemCaseSensitive(d, "params"))
        snprintf(text + n, sizeof text - (size_t)n, ", %.0f parameters, %.2f ms per batch",
                 vc_num(d, "params", NAN), vc_num(d, "latency_ms", NAN));
    show_line(w, text);
    return 1;
}

static void on_metric(watch *w, const cJSON *d)
{
    if (accuracy_line(w, d))
        return;
    if (cJSON_GetObjectItemCaseSensitive(d, "loss")) {
        w->training = 1;
        w->have = 1;
        w->step = vc_num(d, "step", w->step);
        w->t = vc_num(d, "time", w->t);
        w->loss = vc_num(d, "loss", NAN);
        w->epoch = vc_num(d, "epoch", NAN);
        w->lr = vc_num(d, "lr", NAN);
        w->pending = 1;
        if (vc_now() - w->last_print >= (w->tty ? TTY_PERIOD : PLAIN_PERIOD))
            show_metric(w);
        return;
    }
    w->training = 0;
    w->have = 1;
    w->step = vc_num(d, "step", w->step);
    const char *layer = vc_str(d, "layer", NULL);
    if (layer)
        set_layer(w, layer, w->step);
    else if (w->layer[0] && isnan(w->layer_base))
        w->layer_base = w->step;
    w->t = vc_num(d, "time", w->t);
    w->objective = vc_num(d, "objective", NAN);
    w->rel_gap = vc_num(d, "rel_gap", NAN);
    w->active = vc_num(d, "active", NAN);
    add_sample(w);
    w->pending = 1;
    double period = w->tty ? TTY_PERIOD : PLAIN_PERIOD;
    if (vc_now() - w->last_print >= period)
        show_metric(w);
}

/* A log event: the layers of the run (start), the layer being solved
 * (stats), and a short human line for each (watch_log.c). */
static void on_log(watch *w, const cJSON *d)
{
    const char *name = vc_str(d, "event", "");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(d, "layers"), *l;
    if (!strcmp(name, "start") && cJSON_IsArray(layers)) {
        w->nlayers = 0;
        cJSON_ArrayForEach(l, layers)
        {
            if (cJSON_IsString(l) && w->nlayers < 16)
                snprintf(w->layers[w->nlayers++], sizeof w->layers[0], "%s", l->valuestring);
        }
    }
    const char *layer = vc_str(d, "layer", NULL);
    if (!w->json && !w->tty && w->pending)
        show_metric(w); /* the previous layer's last metric first */
    if (!strcmp(name, "stats") && layer && !vc_str(d, "phase", NULL)) {
        set_layer(w, layer, NAN);
        w->layer_base = vc_num(d, "step", NAN);
    }
    if (w->json)
        return;
    char *text = vc_log_text(d), *line = NULL;
    vc_strcatf(&line, "%s %s", w->id, text ? text : name);
    if (line)
        show_line(w, line);
    free(line);
    free(text);
}

static int on_event(void *ctx, const vc_sse_event *ev)
{
    watch *w = ctx;
    cJSON *d = cJSON_Parse(ev->data);
    if (w->json) {
        printf("{\"id\":%lld,\"event\":\"%s\",\"data\":%s}\n", (long long)ev->id, ev->type,
               d ? ev->data : "null");
        fflush(stdout);
    }
    if (!strcmp(ev->type, "metric") && d) {
        if (w->json) {
            w->have = 1;
        } else {
            on_metric(w, d);
        }
    } else if (!strcmp(ev->type, "state") && d) {
        const char *st = vc_str(d, "state", "?");
        snprintf(w->state, sizeof w->state, "%s", st);
        w->final = is_final(st);
        if (!w->json) {
            /* The latest metric before the change is always shown; on a
             * terminal its live line stays on screen. */
            if (w->pending || (w->tty && w->line_on))
                show_metric(w);
            if (w->tty && w->line_on) {
                putchar('\n');
                w->line_on = 0;
            }
            char line[160];
            const char *why = vc_str(d, "stop_reason", NULL);
            snprintf(line, sizeof line, "%s state %s%s%s%s", w->id, st, why ? " (" : "",
                     why ? why : "", why ? ")" : "");
            show_line(w, line);
        }
    } else if (!strcmp(ev->type, "log") && d) {
        on_log(w, d);
    } else if (!w->json) {
        /* Another type of event: its name and a few of its members. */
        cJSON *o = d ? d : cJSON_CreateObject();
        if (!vc_str(o, "event", NULL))
            cJSON_AddStringToObject(o, "event", ev->type);
        char *text = vc_log_text(o), *line = NULL;
        vc_strcatf(&line, "%s %s", w->id, text ? text : ev->type);
        if (line)
            show_line(w, line);
        free(line);
        free(text);
        if (!d)
            cJSON_Delete(o);
    }
    cJSON_Delete(d);
    return 0;
}

/* ---- Summary ---------------------------------------------------------------- */

static const char *fmt_bytes(char *b, size_t sz, double n)
{
    if (n >= 1 << 30)
        snprintf(b, sz, "%.1f GiB", n / (1 << 30));
    else if (n >= 1 << 20)
        snprintf(b, sz, "%.1f MiB", n / (1 << 20));
    else if (n >= 1 << 10)
        snprintf(b, sz, "%.1f KiB", n / (1 << 10));
    else
        snprintf(b, sz, "%.0f B", n);
    return b;
}

void vc_print_run_summary(const cJSON *run)
{
    const char *id = vc_str(run, "id", "?");
    const char *why = vc_str(run, "stop_reason", NULL);
    printf("%s %s%s%s%s\n", id, vc_str(run, "state", "?"), why ? " (" : "", why ? why : "",
           why ? ")" : "");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(run, "summary");
    char a[32], b[32], c[32], d[32], e[32], f[32];
    if (cJSON_GetObjectItemCaseSensitive(s, "train_acc"))
        /* train and compress runs: accuracy first */
        printf("  train acc %s  test acc %s  parameters %s  seconds %s\n",
               vc_fmt_num(a, sizeof a, s, "train_acc", 4),
               vc_fmt_num(b, sizeof b, s, "test_acc", 4), vc_fmt_num(c, sizeof c, s, "params", 12),
               vc_fmt_num(d, sizeof d, s, "seconds", 4));
    vc_print_compress(run, "  ");
    if (cJSON_GetObjectItemCaseSensitive(s, "objective") ||
        !cJSON_GetObjectItemCaseSensitive(s, "train_acc"))
        printf("  objective %s  rel_gap %s  active %s  iterations %s  seconds %s  lambda %s\n",
               vc_fmt_num(a, sizeof a, s, "objective", 9), vc_fmt_num(b, sizeof b, s, "rel_gap", 3),
               vc_fmt_num(c, sizeof c, s, "active", 9),
               vc_fmt_num(d, sizeof d, s, "iterations", 12),
               vc_fmt_num(e, sizeof e, s, "seconds", 4), vc_fmt_num(f, sizeof f, s, "lambda", 6));
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(run, "error");
    if (cJSON_IsObject(err))
        printf("  error: %s %s\n", vc_str(err, "error_code", ""),
               vc_str(err, "detail", vc_str(err, "title", "")));
    const cJSON *arts = cJSON_GetObjectItemCaseSensitive(run, "artifacts");
    printf("  artifacts:");
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arts)
    {
        printf("%s %s (%s)", n++ ? "," : "", vc_str(it, "name", "?"),
               fmt_bytes(a, sizeof a, vc_num(it, "bytes", 0)));
    }
    printf("%s\n", n ? "" : " none");
    if (n)
        printf("  fetch one with: vvctl get %s NAME -o FILE\n", id);
}

/* ---- The watch loop ---------------------------------------------------------- */

/* Sleeps ms milliseconds, or less when Ctrl-C is pressed. */
static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (!vc_interrupted && nanosleep(&ts, &ts) != 0)
        ;
}

static int detach(watch *w)
{
    clear_line(w);
    if (w->tty)
        putchar('\n');
    fflush(stdout);
    fprintf(stderr,
            "vvctl: detached from %s (%s); the run goes on.\n"
            "  re-attach: vvctl watch %s\n  stop it:   vvctl stop %s\n",
            w->id, w->state[0] ? w->state : "state unknown", w->id, w->id);
    return VC_DETACHED;
}

int vc_watch_run(const char *id)
{
    watch w = {0};
    w.id = id;
    w.json = vc_opt.json;
    w.tty = !w.json && vc_isatty_stdout();
    char path[256];
    snprintf(path, sizeof path, "/v1/runs/%s", id);
    int rc;
    cJSON *run = vc_call("GET", path, NULL, &rc);
    if (!run)
        return rc;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(run, "spec");
    w.tol = vc_num(spec, "tol", 1e-6);
    w.max_seconds = vc_num(spec, "max_seconds", 0);
    w.layer_base = NAN;
    snprintf(w.state, sizeof w.state, "%s", vc_str(run, "state", ""));
    cJSON_Delete(run);

    vc_catch_sigint(1);
    snprintf(path, sizeof path, "/v1/runs/%s/events", id);
    int64_t last = 0;
    int retry = 2000, connected = 0, warned = 0;
    double contact = vc_now();
    int ret = -1;
    while (ret < 0) {
        long status = 0;
        int r = vc_sse(path, &last, &retry, on_event, &w, &status);
        if (status >= 200 && status < 300) {
            connected = 1;
            contact = vc_now();
            if (warned) {
                clear_line(&w);
                fprintf(stderr, "vvctl: %s: reconnected (after event %lld)\n", id, (long long)last);
                warned = 0;
            }
        }
        if (w.final)
            break;
        if (r == VC_SSE_INTERRUPTED || vc_interrupted) {
            ret = detach(&w);
            break;
        }
        if (r == VC_SSE_REFUSED) {
            ret = VC_FAILED;
            break;
        }
        if (r == VC_SSE_END) {
            /* The stream ended without a final state (the daemon shut down,
             * or its events predate this start): ask the run itself. */
            snprintf(path, sizeof path, "/v1/runs/%s", id);
            vc_resp resp;
            if (vc_http("GET", path, NULL, &resp) == VC_OK && resp.status == 200) {
                cJSON *j = cJSON_Parse(resp.body);
                const char *st = vc_str(j, "state", "");
                if (is_final(st)) {
                    snprintf(w.state, sizeof w.state, "%s", st);
                    w.final = 1;
                }
                cJSON_Delete(j);
            }
            vc_resp_free(&resp);
            snprintf(path, sizeof path, "/v1/runs/%s/events", id);
            if (w.final)
                break;
        }
        if (!connected) {
            fprintf(stderr, "vvctl: cannot reach vvd at %s (set --server or VVD_SERVER)\n",
                    vc_opt.server);
            ret = VC_UNREACHABLE;
            break;
        }
        if (vc_now() - contact > RECONNECT_GIVE_UP_S) {
            clear_line(&w);
            fprintf(stderr,
                    "vvctl: %s: lost the connection to %s for %ds; giving up "
                    "(the run may go on: vvctl watch %s)\n",
                    id, vc_opt.server, RECONNECT_GIVE_UP_S, id);
            ret = VC_UNREACHABLE;
            break;
        }
        if (!warned) {
            clear_line(&w);
            fprintf(stderr, "vvctl: %s: connection lost after event %lld; reconnecting\n", id,
                    (long long)last);
            warned = 1;
        }
        nap(retry > 0 && retry < 10000 ? retry : 2000);
        if (vc_interrupted) {
            ret = detach(&w);
            break;
        }
    }
    vc_catch_sigint(0);
    if (ret >= 0)
        return ret;

    /* The run is over: its summary. */
    if (!w.json && w.pending)
        show_metric(&w);
    clear_line(&w);
    snprintf(path, sizeof path, "/v1/runs/%s", id);
    run = vc_call("GET", path, NULL, &rc);
    if (!run)
        return rc;
    if (w.json)
        vc_print_json(run, 0);
    else
        vc_print_run_summary(run);
    const char *st = vc_str(run, "state", "");
    ret = !strcmp(st, "FINISHED") || !strcmp(st, "STOPPED") ? VC_OK : VC_FAILED;
    cJSON_Delete(run);
    fflush(stdout);
    return ret;
}

int vc_cmd_watch(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("watch", argc, argv, NULL, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("watch") : rc;
    if (a.npos != 1)
        return vc_usage("watch", "watch takes one run id");
    return vc_watch_run(a.pos[0]);
}
