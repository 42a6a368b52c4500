/* test_paths.c - server/paths.c: data_resolve_input's lookup order and
 * refusals, blob names, and the folder walk of uploads. */
#include "paths.h"
#include "tap.h"
#include "vv/err.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX], outside[PATH_MAX];

static const char *at(const char *base, const char *rel)
{
    static char buf[4][PATH_MAX + 64];
    static int turn;
    char *p = buf[turn++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", base, rel);
    return p;
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* data_resolve_input gives rc, and on success the real path base/rel. */
static int resolves(const char *path, int want_rc, const char *base, const char *rel)
{
    char out[PATH_MAX];
    out[0] = 0;
    int rc = data_resolve_input(root, path, out, sizeof out);
    if (rc != want_rc) {
        printf("#   %s: rc %d (%s), want %d\n", path, rc, vv_err_detail(), want_rc);
        return 0;
    }
    if (rc == 0 && strcmp(out, at(base, rel))) {
        printf("#   %s: %s, want %s\n", path, out, at(base, rel));
        return 0;
    }
    return 1;
}

static void test_resolve(void)
{
    mkdir(at(root, "blobs"), 0755);
    mkdir(at(root, "blobs/sub"), 0755);
    mkdir(at(root, "runs"), 0755);
    mkdir(at(root, "runs/r-000001"), 0755);
    put_file(at(root, "both.npy"), "root");
    put_file(at(root, "blobs/both.npy"), "blob");
    put_file(at(root, "only_root.npy"), "root");
    put_file(at(root, "blobs/sub/x.npy"), "blob");
    put_file(at(root, "runs/r-000001/V.npy"), "run");
    put_file(at(outside, "secret.npy"), "outside");
    symlink(at(outside, "secret.npy"), at(root, "escape.npy"));
    symlink(at(outside, "secret.npy"), at(root, "blobs/bescape.npy"));
    symlink(outside, at(root, "blobs/outdir"));
    symlink(at(root, "only_root.npy"), at(root, "blobs/inlink.npy"));

    CHECK(resolves("both.npy", 0, root, "blobs/both.npy"),
          "NAME is the blob DATA/blobs/NAME when it exists");
    CHECK(resolves("only_root.npy", 0, root, "only_root.npy"),
          "NAME falls back to DATA/NAME when no blob has that name");
    CHECK(resolves("blobs/both.npy", 0, root, "blobs/both.npy"), "blobs/NAME is the blob");
    CHECK(resolves("blobs/only_root.npy", VV_ENOFILE, NULL, NULL),
          "blobs/NAME never falls back to DATA/NAME (VV_ENOFILE)");
    CHECK(resolves("sub/x.npy", 0, root, "blobs/sub/x.npy"), "a blob in a folder: sub/x.npy");
    CHECK(resolves("runs/r-000001/V.npy", 0, root, "runs/r-000001/V.npy"),
          "a run's output runs/r-000001/V.npy is found in DATA");
    CHECK(resolves(at(root, "only_root.npy"), 0, root, "only_root.npy"),
          "an absolute path inside the root");
    CHECK(resolves(at(root, "blobs/both.npy"), 0, root, "blobs/both.npy"),
          "an absolute path to a blob");
    CHECK(resolves("blobs/inlink.npy", 0, root, "only_root.npy"),
          "a symlink that stays inside the root is followed");
    CHECK(resolves(at(root, "missing.npy"), VV_ENOFILE, NULL, NULL),
          "a missing absolute path inside the root: VV_ENOFILE");
    CHECK(resolves(at(outside, "secret.npy"), VV_EPATH, NULL, NULL),
          "an existing absolute path outside: VV_EPATH");
    CHECK(resolves("/nonexistent-vv/x.npy", VV_EPATH, NULL, NULL),
          "a missing absolute path outside: VV_EPATH, not VV_ENOFILE");
    CHECK(resolves("escape.npy", VV_EPATH, NULL, NULL), "a symlink in DATA leading out: VV_EPATH");
    CHECK(resolves("bescape.npy", VV_EPATH, NULL, NULL),
          "a symlink in DATA/blobs leading out: VV_EPATH (no fallback)");
    CHECK(resolves("outdir/secret.npy", VV_EPATH, NULL, NULL),
          "a path through a symlinked folder leading out: VV_EPATH");
    CHECK(resolves("../x.npy", VV_EPATH, NULL, NULL), "'..': VV_EPATH");
    CHECK(resolves("blobs/../vvd.db", VV_EPATH, NULL, NULL), "'..' after blobs/: VV_EPATH");
    CHECK(resolves(at(root, "runs/../both.npy"), VV_EPATH, NULL, NULL),
          "'..' in an absolute path: VV_EPATH");
    CHECK(resolves("", VV_EINVAL, NULL, NULL), "an empty path: VV_EINVAL");
    CHECK(resolves("nope.npy", VV_ENOFILE, NULL, NULL), "a missing NAME: VV_ENOFILE");
    CHECK(strstr(vv_err_detail(), "nope.npy") && strstr(vv_err_detail(), "blobs/nope.npy"),
          "its detail names the path and where it was looked for");
    CHECK(resolves("both.npy/x", VV_ENOFILE, NULL, NULL),
          "a path through a file: VV_ENOFILE, not an I/O error");
}

static void test_names(void)
{
    const char *rel = NULL;
    CHECK(data_blob_name("feats.npy", &rel) == 0 && !strcmp(rel, "feats.npy"),
          "a plain name is kept");
    CHECK(data_blob_name("blobs/a/b.npy", &rel) == 0 && !strcmp(rel, "a/b.npy"),
          "a leading blobs/ is stripped");
    static const struct {
        const char *name;
        int rc;
    } bad[] = {{"", VV_EINVAL},           {"/etc/x", VV_EINVAL},     {"a/", VV_EINVAL},
               {"a//b", VV_EINVAL},       {".", VV_EINVAL},          {"a/./b", VV_EINVAL},
               {"..", VV_EPATH},          {"a/../vvd.db", VV_EPATH}, {"blobs/", VV_EINVAL},
               {"blobs/..", VV_EPATH},    {"a b", VV_EINVAL},        {"x/.upload-1", VV_EINVAL},
               {".upload-9-9", VV_EINVAL}};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECKF(data_blob_name(bad[i].name, &rel) == bad[i].rc, "blob name '%s' is refused (%s)",
               bad[i].name, vv_err_name(bad[i].rc));
}

static void test_open_dir(void)
{
    int fd = -1;
    const char *leaf = NULL;
    char fresh[PATH_MAX + 16];
    snprintf(fresh, sizeof fresh, "%s/fresh", root);
    mkdir(fresh, 0755);
    int rc = data_blob_open_dir(fresh, "a/b/c.npy", &fd, &leaf);
    struct stat st;
    CHECK(rc == 0 && fd >= 0 && !strcmp(leaf, "c.npy") && stat(at(fresh, "blobs/a/b"), &st) == 0 &&
              S_ISDIR(st.st_mode),
          "the blobs folder and the folders of a name are created on first use");
    if (fd >= 0)
        close(fd);
    fd = -1;
    rc = data_blob_open_dir(root, "outdir/new/x.npy", &fd, &leaf);
    CHECK(rc == VV_EPATH && fd < 0 && access(at(outside, "new"), F_OK) < 0,
          "a symlinked folder in the name: VV_EPATH, nothing created outside");
    rc = data_blob_open_dir(root, "sub", &fd, &leaf);
    CHECK(rc == VV_ECONFLICT && fd < 0, "a name that is an existing folder: VV_ECONFLICT");
    rc = data_blob_open_dir(root, "both.npy/x", &fd, &leaf);
    CHECK(rc == VV_ECONFLICT && fd < 0, "a name through a file: VV_ECONFLICT");
    char linked[PATH_MAX + 16];
    snprintf(linked, sizeof linked, "%s/linked", root);
    mkdir(linked, 0755);
    symlink(outside, at(linked, "blobs"));
    rc = data_blob_open_dir(linked, "x.npy", &fd, &leaf);
    CHECK(rc == VV_EPATH && fd < 0, "DATA/blobs itself a symlink: VV_EPATH");
}

int main(void)
{
    const char *tmp = getenv("VV_TEST_TMP");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/vv-paths-XXXXXX", tmp ? tmp : "/tmp");
    char tmpl2[PATH_MAX];
    snprintf(tmpl2, sizeof tmpl2, "%s/vv-paths-out-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl) || !realpath(tmpl, root) || !mkdtemp(tmpl2) || !realpath(tmpl2, outside)) {
        printf("1..0 # SKIP no temporary folder\n");
        return 77;
    }
    test_resolve();
    test_names();
    test_open_dir();
    char cmd[2 * PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, outside);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", root);
    return tap_done();
}
