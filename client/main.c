/* main.c - vvctl: the command-line client of vvd.  Global options, the
 * command table and the help texts. */
#include "vvctl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VVCTL_VERSION
#define VVCTL_VERSION "unknown"
#endif

static const char global_help[] =
    "usage: vvctl [--server URL] [--token T] [--json] COMMAND [ARGS]\n"
    "\n"
    "The command-line client of vvd (vvd serve): submit multi-task lasso runs and\n"
    "sweeps, follow them live, stop them and fetch their results.  It speaks only\n"
    "HTTP to the daemon.\n"
    "\n"
    "Commands:\n"
    "  submit SPEC.json [--watch]      queue a run from a job spec (schema/lasso.schema.json)\n"
    "  lasso --phi F --psi Y ...       queue a lasso run built from flags\n"
    "  watch ID                        follow a run live until it ends\n"
    "  stop ID                         stop a run (it keeps its current V)\n"
    "  ls [--state S] [--tag T] ...    list runs\n"
    "  show ID                         one run: spec, summary, artifacts\n"
    "  compare ID ID...                runs side by side: metrics, differing parameters\n"
    "  tag ID TAG... [--rm TAG...]     add or remove a run's tags\n"
    "  note ID TEXT|-                  set a run's notes ('-': from stdin)\n"
    "  rename ID NAME                  name a run\n"
    "  rm ID... [--yes]                delete ended runs, their records and files\n"
    "  metrics ID [--keys a,b] [--csv] a run's full metric history\n"
    "  get ID ARTIFACT [-o FILE]       download an artifact (V.npy, result.json, ...)\n"
    "  sweep SPEC.json --grid F=V ...  queue a grid of runs; sweep status|stop|resume|watch ID\n"
    "  sweep ls [--state S]            list sweeps\n"
    "  upload FILE [NAME]              upload a file (or folder) into the daemon's blobs\n"
    "  models [ls|load NAME ...|rm NAME]  the daemon's resident models\n"
    "  help [COMMAND]                  this text, or a command's\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  --server URL   the daemon (env VVD_SERVER; default http://127.0.0.1:8470)\n"
    "  --token T      bearer token (env VVD_TOKEN)\n"
    "  --json         print the server's JSON answers as they are (watch: one JSON\n"
    "                 object per event line)\n"
    "  --version      print vvctl's version and exit\n"
    "\n"
    "Exit status:\n"
    "  0    success; for watch, the run FINISHED or was STOPPED\n"
    "  1    a run FAILED or CRASHED, or the server refused the request (any 4xx or\n"
    "       5xx answer, shown as one line: 'vvctl: STATUS ERROR_CODE at FIELD: detail')\n"
    "  2    usage error: bad flags, bad grid syntax, unreadable or malformed spec file\n"
    "       (a misspelled command, subcommand or option gets a 'did you mean')\n"
    "  3    the server is unreachable (connection refused, timed out, dropped for\n"
    "       more than 60 s while watching)\n"
    "  130  watch detached by Ctrl-C; the run goes on\n";

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"submit", vc_cmd_submit,
     "usage: vvctl submit SPEC.json [--watch] [--upload] [--dry-run]\n"
     "\n"
     "Queues a run of the job spec in SPEC.json ('-' reads stdin; see\n"
     "schema/lasso.schema.json) with POST /v1/runs and prints its id.  Paths in the\n"
     "spec resolve inside the daemon's data root.\n"
     "  --watch    follow the run until it ends (as vvctl watch)\n"
     "  --upload   first upload every local file the spec names with\n"
     "             PUT /v1/blobs/BASENAME and rewrite the spec to blobs/BASENAME:\n"
     "             phi, psi, bias, init; model.weights, model.spec (a file);\n"
     "             data.train/test images and labels; data.dir (every file in\n"
     "             the folder, as blobs/DIRNAME/FILE).  Each lands in the data\n"
     "             root's blobs folder (DATA/blobs/), replacing a blob of the same\n"
     "             name; two files of one base name get their folder's name in\n"
     "             front (blobs/train/x.npy, blobs/test/x.npy).  A path that is not\n"
     "             a local file is an error (without --upload, paths name files in\n"
     "             the daemon's data root)\n"
     "  --dry-run  print the spec that would be sent and exit\n"
     "With --json: prints the run object (or, with --watch, the watch output).\n"},
    {"lasso", vc_cmd_lasso,
     "usage: vvctl lasso (--phi F --psi Y | --generate N,K,D[,SEED]) LAMBDA [options]\n"
     "\n"
     "Builds a lasso job spec from flags, queues it and prints the run id.\n"
     "  --phi F, --psi Y       features (N x K) and outputs (N x D): .npy or\n"
     "                         .safetensors paths in the daemon's data root\n"
     "  --generate N,K,D[,S]   a synthetic problem instead\n"
     "  --bias B               the layer's bias: a file, or inline numbers b1,b2,...\n"
     "LAMBDA, exactly one of:\n"
     "  --lambda L             canonical lambda (scikit-learn alpha)\n"
     "  --lambda-paper L       the paper's lam (lambda = L * D / 2)\n"
     "  --lambda-ratio R       a fraction of lambda_max\n"
     "  --target-active N      bisection on lambda for a neuron budget\n"
     "Options: --solver auto|fista|bcd|adam_prox  --tol T  --max-iter N\n"
     "  --max-seconds S  --mu M  --init zeros|random|FILE  --seed N  --refit\n"
     "  --metrics-every N  --name NAME  --device cpu|cuda:N|sim:N (default: the daemon's)\n"
     "  --upload    upload --phi/--psi/--bias/--init files first (see vvctl help submit)\n"
     "  --watch     follow the run until it ends\n"
     "  --dry-run   print the spec and exit\n"},
    {"watch", vc_cmd_watch,
     "usage: vvctl watch ID\n"
     "\n"
     "Follows the run's events (GET /v1/runs/ID/events, Server-Sent Events) until\n"
     "it ends, reconnecting with Last-Event-ID when the connection drops (giving up\n"
     "after 60 s without contact: exit 3).\n"
     "On a terminal: one live line, redrawn at most 10 times a second: step,\n"
     "objective, rel_gap, active neurons, iterations/s, elapsed run time and an ETA\n"
     "until rel_gap reaches the spec's tol, from the slope of log(rel_gap) against\n"
     "time over the last samples: 'ETA -' when that slope is not clearly negative,\n"
     "when the estimate is over 10 times the elapsed time or would pass the run's\n"
     "max_seconds.  A compress run's line names the layer being solved (fc2 1/2)\n"
     "and counts steps within that layer (the run's step in parentheses); its ETA\n"
     "is that layer's.\n"
     "Otherwise: plain key=value lines, at most 4 metric lines a second (the last\n"
     "metric before each state change is always printed; a compress run's lines\n"
     "start with layer=NAME layer_step=N), plus a line per state change and per\n"
     "log event, in words: start, per-layer statistics, path points, accuracy\n"
     "after each stage; an event vvctl does not know shows as 'event NAME k=v ...'.\n"
     "--json: every event, unthrottled, as {\"id\":N,\"event\":TYPE,\"data\":{...}},\n"
     "then the final run object on one line.\n"
     "At the end: the run's summary (state, stop_reason, objective, rel_gap, active,\n"
     "iterations, seconds, artifacts).  Ctrl-C detaches and leaves the run going\n"
     "(exit 130).  Exit 0 if the run FINISHED or was STOPPED, 1 if FAILED/CRASHED.\n"},
    {"stop", vc_cmd_stop,
     "usage: vvctl stop ID\n"
     "\n"
     "Stops a run (POST /v1/runs/ID/stop): a queued run never starts, a running\n"
     "one stops at its next iteration and keeps its V.  Idempotent: for a run that\n"
     "has already ended it says so (and its state) and exits 0.\n"},
    {"ls", vc_cmd_ls,
     "usage: vvctl ls [--state S] [--kind K] [--sweep ID] [--tag T ...] [--q TEXT]\n"
     "                [--page-size N] [--all | --page-token T]\n"
     "\n"
     "Lists runs, newest first: id, name, kind, state, sweep, lambda (the absolute\n"
     "lambda the run used), ratio (the spec's lambda_ratio, for runs given one), mu,\n"
     "active, rel_gap, duration, stop_reason; TEST_ACC and PARAMS when a listed run\n"
     "has them.  A compress run shows its kept neurons per layer as ACTIVE\n"
     "(\"40/12\"), its parameters before->after and its test accuracy.\n"
     "One page (default 50 runs) unless --all; the token of the next page is\n"
     "printed on stderr.  S (any case): QUEUED, RUNNING, FINISHED, STOPPED, FAILED,\n"
     "CRASHED.  --tag T: runs carrying T (repeat it: every tag given); --q TEXT:\n"
     "runs whose id, name, kind or a tag contains TEXT (any case).  --json: the\n"
     "page as the server sent it (--all: one object with every run).\n"},
    {"show", vc_cmd_show,
     "usage: vvctl show ID\n"
     "\n"
     "Shows one run: name, tags, notes, times, spec, summary (for a compress run:\n"
     "each layer's width before->after, parameters and test accuracy before->after),\n"
     "error and artifacts (--json: the run object, see schema/run.schema.json).\n"},
    {"compare", vc_cmd_compare,
     "usage: vvctl compare ID ID...\n"
     "\n"
     "Puts runs side by side, one column each: their state, name and final metrics\n"
     "(every summary key present in any of them; for compress runs also the layer\n"
     "widths), then the spec parameters that differ between them, nested spec\n"
     "objects flattened to dotted names (model.weights, data.max_train); parameters\n"
     "equal in every run are left out.  A cell is '-' where a run lacks the key.\n"
     "--json: {\"runs\": [ids], \"metrics\": {key: [values]}, \"params\": {name:\n"
     "[values]}} with null for missing values.\n"},
    {"tag", vc_cmd_tag,
     "usage: vvctl tag ID [TAG...] [--rm TAG ...]\n"
     "\n"
     "Adds the TAGs to a run and removes the --rm ones (PATCH /v1/runs/ID with\n"
     "add_tags and remove_tags; any state, also RUNNING), then prints the run's\n"
     "tags.  Without TAGs or --rm it prints them.  A tag is 1 to 64 characters of\n"
     "A-Z a-z 0-9 _ . : / = + -; a run has at most 32.  vvctl ls --tag T lists the\n"
     "runs carrying T.  --json: the run object.\n"},
    {"note", vc_cmd_note,
     "usage: vvctl note ID TEXT...|-\n"
     "\n"
     "Sets a run's notes (PATCH /v1/runs/ID): the words given, joined by spaces, or\n"
     "with '-' standard input (up to 64 KiB; one trailing newline dropped).  An\n"
     "empty TEXT ('') clears them.  vvctl show ID prints them.  --json: the run\n"
     "object.\n"},
    {"rename", vc_cmd_rename,
     "usage: vvctl rename ID NAME\n"
     "       vvctl rename ID --reset\n"
     "\n"
     "Names a run (PATCH /v1/runs/ID; 1 to 200 bytes); --reset goes back to the\n"
     "spec's name (or none).  The name shows in vvctl ls and show and vvctl ls --q\n"
     "finds it.  --json: the run object.\n"},
    {"rm", vc_cmd_rm,
     "usage: vvctl rm ID... [--yes]\n"
     "\n"
     "Deletes runs that have ended (DELETE /v1/runs/ID): their records, events,\n"
     "metrics, artifacts and output folder in the daemon's data root.  A QUEUED or\n"
     "RUNNING run is refused (409: stop it first with vvctl stop ID).  A run of a\n"
     "sweep leaves a record in the sweep, and vvctl sweep resume queues its point\n"
     "again.  On a terminal vvctl asks before deleting unless --yes is given; when\n"
     "standard input is not a terminal (a script, a pipe) it asks nothing and\n"
     "deletes.  Exit 1 when any run could not be deleted (the others are).\n"
     "--json: one answer object per run.\n"},
    {"metrics", vc_cmd_metrics,
     "usage: vvctl metrics ID [--keys a,b] [--csv]\n"
     "\n"
     "Prints the run's full metric history: one row per step, with its time and\n"
     "one column per key (--keys picks and orders them; default every key).\n"
     "--csv: the same as CSV (empty cells for missing values); --json: the\n"
     "server's answer (a list of {step, key, value, time}).\n"},
    {"get", vc_cmd_get,
     "usage: vvctl get ID ARTIFACT [-o FILE]\n"
     "\n"
     "Downloads an artifact of a run (vvctl show ID lists them) into FILE (default:\n"
     "the artifact's base name; '-' for stdout).  The file appears only when the\n"
     "download is complete.\n"},
    {"sweep", vc_cmd_sweep,
     "usage: vvctl sweep SPEC.json --grid FIELD=VALUES [--grid ...] [--name N] [--watch]\n"
     "       vvctl sweep SPEC.json --grid ... --emit slurm|k8s [--output FILE] [options]\n"
     "       vvctl sweep --file SWEEP.json [--grid ...] [--watch]\n"
     "       vvctl sweep status ID | stop ID | resume ID [--watch] | watch ID\n"
     "       vvctl sweep ls [--state S] [--kind K] [--q TEXT] [--limit N]\n"
     "\n"
     "Creates a sweep (POST /v1/sweeps): the base spec with every combination of the\n"
     "grid's values, one run per distinct point; prints the sweep id.\n"
     "Grid syntax, FIELD=VALUES with FIELD a top-level spec field:\n"
     "  a,b,c        numbers, true/false or strings (mu=0.01,0.03  solver=fista,bcd)\n"
     "  a:b:lin:n    n evenly spaced numbers from a to b, both ends included\n"
     "  a:b:log:n    n geometrically spaced numbers from a to b (a, b > 0)\n"
     "Bad syntax exits with status 2.\n"
     "--file SWEEP.json: a sweep request as in schema/sweep.schema.json\n"
     "({\"base\": spec, \"grid\": {field: [values]}, \"name\": ...}); a grid entry\n"
     "may also be a string in the syntax above (\"lambda_ratio\": \"0.01:0.5:log:6\"),\n"
     "and --grid adds or replaces entries.  --upload uploads the base's local files\n"
     "(see vvctl help submit); --dry-run prints the request and exits.\n"
     "\n"
     "On a cluster: --emit slurm|k8s [--output FILE] makes the sweep with its points\n"
     "waiting for workers (\"external\": true) and writes a Slurm job-array script\n"
     "(sbatch FILE) or a Kubernetes Indexed Job manifest (kubectl apply -f FILE) in\n"
     "which task i runs point i with `vvd run --report-to URL --sweep ID --index i`:\n"
     "its events, files and end reach this daemon live (vvctl sweep watch ID, the\n"
     "dashboard).  Paths in the spec are the workers' own.  Requests: a GPU when the\n"
     "spec's device is cuda[:N], memory from the sizes the spec states (at least\n"
     "2 GiB; 8 GiB for compress and train), 4 CPUs; --gpus N, --mem 16G, --cpus N,\n"
     "--time HH:MM:SS (Slurm), --parallelism N (k8s) override them.  --report-to URL\n"
     "(default --server), --token-file PATH (on the workers), --image IMG (k8s,\n"
     "default vvd:latest), --vvd PATH (vvd on the workers, default vvd).\n"
     "\n"
     "ls          the sweeps, newest first (GET /v1/sweeps, following its pages up\n"
     "            to --limit, default 50): id, name, kind, state, points, the\n"
     "            points' latest runs by state, the grid's axes (field[number of\n"
     "            values]) and when it was created.  --state (any case): ACTIVE,\n"
     "            STOPPED or FINISHED; --kind: the base spec's kind; --q: a part\n"
     "            of the id or name.  --json: {\"sweeps\": [...]} as the daemon\n"
     "            sent them.\n"
     "status ID   a table of the points: run id (the point's latest attempt), grid\n"
     "            values, state, active neurons, objective, mse, rel_gap (and\n"
     "            test_acc when results have it; TRIES, the number of attempts,\n"
     "            once a point was resumed); '*' marks the Pareto-optimal FINISHED\n"
     "            points: no other FINISHED point has active <= and mse <= with one\n"
     "            of them smaller (from each result's active and mse).\n"
     "            A compress sweep shows instead each point's kept neurons per\n"
     "            layer (WIDTHS, 40/12), PARAMS and TEST_ACC, and '*' marks the\n"
     "            points no other FINISHED point beats with params <= and\n"
     "            test_acc >= (one of them strictly).  A point whose run was deleted\n"
     "            (vvctl rm) shows as DELETED; resume queues it again.\n"
     "stop ID     stops every queued or running run of the sweep (all attempts).\n"
     "resume ID   asks the daemon (POST /v1/sweeps/ID/resume) to queue again, inside\n"
     "            the sweep, every point whose latest attempt FAILED, CRASHED or was\n"
     "            STOPPED and every point that never got a run; prints each new run\n"
     "            with the point's values, its attempt number and what the point\n"
     "            was.  The new attempts belong to the sweep (vvctl ls --sweep ID\n"
     "            lists them); status, stop and watch use each point's latest\n"
     "            attempt.  A second resume queues nothing until a point ends badly\n"
     "            again.  --json prints the daemon's answer (with --watch as the\n"
     "            first line); --watch then follows the sweep as watch ID does.\n"
     "watch ID    polls the sweep twice a second until no point is queued or\n"
     "            running: a live line on a terminal, else a line per point change;\n"
     "            then the status table.  Exit 1 if a point FAILED or CRASHED.\n"
     "            Ctrl-C detaches (exit 130).\n"
     "A spec file named like a subcommand must be given as ./status etc.\n"},
    {"upload", vc_cmd_upload,
     "usage: vvctl upload FILE [NAME]\n"
     "\n"
     "Uploads a local file into the daemon's blobs (PUT /v1/blobs/NAME; NAME\n"
     "defaults to the file's base name and may have folders, a/b.npy) and prints\n"
     "the name specs use for it: blobs/NAME.  A folder uploads every file inside\n"
     "it, keeping their names under NAME (blobs/NAME/FILE): a CIFAR-10 folder\n"
     "for data.dir, say.  A blob of the same name is replaced.  Names are made of\n"
     "letters, digits, '.', '_' and '-'.  --json: {\"name\": \"blobs/NAME\"}.\n"},
    {"models", vc_cmd_models,
     "usage: vvctl models [ls]\n"
     "       vvctl models load NAME (--arch A [--width-div N] [--classes N] [--input C,H,W]\n"
     "                         [--sizes a,b,...] | --spec MODEL.json) [--weights W.safetensors]\n"
     "                         [--preprocess JSON] [--seed N] [--dry-run]\n"
     "       vvctl models rm NAME\n"
     "\n"
     "The models resident in the daemon, loaded once and named by compress runs\n"
     "(\"model\": \"NAME\").\n"
     "ls     a table of them (GET /v1/models): parameters, memory, input shape,\n"
     "       device, runs using each, linear layers and weights; then whether the\n"
     "       embedded default model is trained.\n"
     "load   loads one (POST /v1/models): a built-in architecture (--arch\n"
     "       vgg19_cifar, alexnet_cifar64, fmnist_cnn, mlp with --input and\n"
     "       --sizes) or an\n"
     "       architecture spec file (a run's model.json), and its weights (without\n"
     "       them: a seeded initialisation).  --spec and --weights that are local\n"
     "       files are uploaded first (blobs/BASENAME); other paths name files in\n"
     "       the daemon's data root.  --preprocess: the input preprocessing the\n"
     "       model was trained with, e.g. '{\"mean\": [0.286], \"std\": [0.353]}'.\n"
     "       A torch.save file as weights is refused with how to export it.\n"
     "rm     unloads one (DELETE /v1/models/NAME); runs using it keep it until\n"
     "       they end.\n"
     "--json prints the daemon's answers.\n"},
};

enum { NCOMMANDS = sizeof commands / sizeof *commands };

/* Words people type for a command, for suggestions only ("lsit" is close
 * to "list", which means ls). */
static const char *const aliases[][2] = {
    {"list", "ls"},       {"delete", "rm"},      {"remove", "rm"},    {"diff", "compare"},
    {"cancel", "stop"},   {"kill", "stop"},      {"follow", "watch"}, {"info", "show"},
    {"describe", "show"}, {"label", "tag"},      {"comment", "note"}, {"name", "rename"},
    {"download", "get"},  {"history", "metrics"}};

/* The command closest to a misspelled one, or NULL. */
static const char *closest_command(const char *word)
{
    enum { NALIASES = sizeof aliases / sizeof *aliases };
    const char *names[NCOMMANDS + NALIASES + 2];
    for (int i = 0; i < NCOMMANDS; i++)
        names[i] = commands[i].name;
    names[NCOMMANDS] = "help";
    for (int i = 0; i < NALIASES; i++)
        names[NCOMMANDS + 1 + i] = aliases[i][0];
    names[NCOMMANDS + 1 + NALIASES] = NULL;
    const char *near = vc_suggest(word, names);
    for (int i = 0; near && i < NALIASES; i++)
        if (near == aliases[i][0])
            near = aliases[i][1];
    return near;
}

int vc_help(const char *cmd)
{
    if (!cmd) {
        fputs(global_help, stdout);
        return VC_OK;
    }
    size_t n = strcspn(cmd, " ");
    for (int i = 0; i < NCOMMANDS; i++)
        if (strlen(commands[i].name) == n && !strncmp(commands[i].name, cmd, n)) {
            fputs(commands[i].help, stdout);
            return VC_OK;
        }
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)(n < 63 ? n : 63), cmd);
    const char *near = closest_command(word);
    if (near)
        fprintf(stderr, "vvctl: no command '%s'; did you mean '%s'? (see 'vvctl help')\n", word,
                near);
    else
        fprintf(stderr, "vvctl: no command '%s' (see 'vvctl help')\n", word);
    return VC_USAGE;
}

int main(int argc, char **argv)
{
    const char *env = getenv("VVD_SERVER");
    vc_opt.server = env && env[0] ? env : "http://127.0.0.1:8470";
    env = getenv("VVD_TOKEN");
    vc_opt.token = env && env[0] ? env : NULL;
    /* Global options before the command. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return vc_help(NULL);
        if (!strcmp(a, "--version")) {
            printf("vvctl %s\n", VVCTL_VERSION);
            return VC_OK;
        }
        if (!strcmp(a, "--json")) {
            vc_opt.json = 1;
        } else if (!strcmp(a, "--server") || !strcmp(a, "--token")) {
            if (i + 1 >= argc)
                return vc_usage(NULL, "option '%s' needs a value", a);
            if (a[2] == 's')
                vc_opt.server = argv[++i];
            else
                vc_opt.token = argv[++i];
        } else if (!strncmp(a, "--server=", 9)) {
            vc_opt.server = a + 9;
        } else if (!strncmp(a, "--token=", 8)) {
            vc_opt.token = a + 8;
        } else {
            static const char *const globals[] = {"server",  "token", "json",
                                                  "version", "help",  NULL};
            const char *near = a[1] == '-' ? vc_suggest(a + 2, globals) : NULL;
            if (near)
                return vc_usage(NULL, "unknown option '%s'; did you mean '--%s'?", a, near);
            return vc_usage(NULL, "unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        fputs(global_help, stderr);
        return VC_USAGE;
    }
    const char *cmd = argv[i];
    if (!strcmp(cmd, "help"))
        return vc_help(i + 1 < argc ? argv[i + 1] : NULL);
    for (int k = 0; k < NCOMMANDS; k++) {
        if (strcmp(commands[k].name, cmd))
            continue;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "vvctl: cannot initialise libcurl\n");
            return VC_FAILED;
        }
        int rc = commands[k].fn(argc - i - 1, argv + i + 1);
        fflush(stdout);
        curl_global_cleanup();
        return rc;
    }
    const char *near = closest_command(cmd);
    if (near)
        return vc_usage(NULL, "no command '%s'; did you mean '%s'?", cmd, near);
    return vc_usage(NULL, "no command '%s'", cmd);
}
