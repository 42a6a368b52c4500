/* upload.c - local files into the daemon's blobs: `vvctl upload`, and the
 * --upload of submit, lasso and sweep, which uploads every local file a spec
 * names and rewrites the spec to the uploaded names. */
#include "vvctl.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Folders inside an uploaded folder, at most this deep. */
enum { UPLOAD_MAX_DEPTH = 8 };

/* 1 when s is a blob name component: letters, digits, '.', '_', '-'. */
static int name_ok(const char *s)
{
    if (!s[0] || !strcmp(s, ".") || !strcmp(s, "..") || !strncmp(s, ".upload-", 8))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

/* The last component of a path, without trailing slashes, into buf. */
static const char *base_name(const char *path, char *buf, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/')
        b--;
    snprintf(buf, cap, "%.*s", (int)(n - b), path + b);
    return buf;
}

static int bad_name(const char *local, const char *name)
{
    fprintf(stderr,
            "vvctl: %s: '%s' cannot be a blob name (letters, digits, '.', '_' and '-'); "
            "rename it or give a name\n",
            local, name);
    return VC_USAGE;
}

/* Uploads every regular file under the folder local as name/RELATIVE. */
static int upload_dir(const char *local, const char *name, int depth, int *files)
{
    if (depth > UPLOAD_MAX_DEPTH) {
        fprintf(stderr, "vvctl: %s: folders nested deeper than %d\n", local, UPLOAD_MAX_DEPTH);
        return VC_USAGE;
    }
    /* Sorted, so that uploads happen in a stable order. */
    struct dirent **ents = NULL;
    int n = scandir(local, &ents, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "vvctl: %s: %s\n", local, strerror(errno));
        return VC_USAGE;
    }
    int rc = VC_OK;
    for (int i = 0; i < n; i++) {
        const char *e = ents[i]->d_name;
        if (rc == VC_OK && strcmp(e, ".") && strcmp(e, "..")) {
            char *lp = NULL, *bn = NULL;
            vc_strcatf(&lp, "%s/%s", local, e);
            vc_strcatf(&bn, "%s/%s", name, e);
            struct stat st;
            if (!name_ok(e))
                rc = bad_name(lp, e);
            else if (stat(lp, &st) < 0)
                rc = (fprintf(stderr, "vvctl: %s: %s\n", lp, strerror(errno)), VC_USAGE);
            else if (S_ISDIR(st.st_mode))
                rc = upload_dir(lp, bn, depth + 1, files);
            else if (S_ISREG(st.st_mode) && (rc = vc_upload(lp, bn)) == VC_OK)
                ++*files;
            free(lp);
            free(bn);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int vc_upload_path(const char *local, const char *name)
{
    struct stat st;
    if (stat(local, &st) < 0) {
        fprintf(stderr, "vvctl: %s: %s\n", local, strerror(errno));
        return VC_USAGE;
    }
    if (!S_ISDIR(st.st_mode))
        return vc_upload(local, name);
    int files = 0, rc = upload_dir(local, name, 0, &files);
    if (rc == VC_OK && files == 0) {
        fprintf(stderr, "vvctl: %s: no files to upload in the folder\n", local);
        return VC_USAGE;
    }
    return rc;
}

/* ---- vvctl upload ----------------------------------------------------------------- */

int vc_cmd_upload(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("upload", argc, argv, NULL, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("upload") : rc;
    if (a.npos < 1 || a.npos > 2)
        return vc_usage("upload", "upload takes a local file (or folder) and an optional name");
    char b[NAME_MAX + 1];
    const char *local = a.pos[0];
    const char *name = a.npos == 2 ? a.pos[1] : base_name(local, b, sizeof b);
    /* A name may have folders (a/b.npy); "blobs/" names the same blob. */
    if (!strncmp(name, "blobs/", 6))
        name += 6;
    char *copy = strdup(name), *save = NULL;
    int ok = copy && name[0] && name[strlen(name) - 1] != '/' && name[0] != '/';
    for (char *t = copy ? strtok_r(copy, "/", &save) : NULL; t && ok;
         t = strtok_r(NULL, "/", &save))
        ok = name_ok(t);
    free(copy);
    if (!ok || strstr(name, "//"))
        return bad_name(local, name);
    rc = vc_upload_path(local, name);
    if (rc == VC_OK) {
        if (vc_opt.json) {
            cJSON *o = cJSON_CreateObject();
            char *ref = NULL;
            vc_strcatf(&ref, "blobs/%s", name);
            cJSON_AddStringToObject(o, "name", ref);
            vc_print_json(o, 0);
            cJSON_Delete(o);
            free(ref);
        } else {
            printf("blobs/%s\n", name);
        }
    }
    return rc;
}

/* ---- The files a spec names ---------------------------------------------------------- */

/* The files uploaded for one spec: blob name -> the local file's real path,
 * so that two files of one name are told apart and a file named twice is
 * sent once. */
typedef struct upl {
    char *blob[64], *real[64];
    int n;
} upl;

static void upl_free(upl *u)
{
    for (int i = 0; i < u->n; i++) {
        free(u->blob[i]);
        free(u->real[i]);
    }
}

/* Uploads the local file or folder that item (a string member at ptr)
 * names and rewrites it to "blobs/NAME".  NAME is its base name, or, when
 * another file of this spec took that name, its parent folder's name and
 * its base name. */
static int upload_item(upl *u, cJSON *item, const char *ptr, int want_dir)
{
    const char *local = item->valuestring;
    struct stat st;
    char real[PATH_MAX];
    if (stat(local, &st) < 0 || !realpath(local, real)) {
        fprintf(stderr,
                "vvctl: --upload: %s: '%s' is not a local %s (%s); without --upload, paths "
                "name files in the daemon's data root\n",
                ptr, local, want_dir ? "folder" : "file", strerror(errno));
        return VC_USAGE;
    }
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        fprintf(stderr, "vvctl: --upload: %s: '%s' is not a %s\n", ptr, local,
                want_dir ? "folder" : "regular file");
        return VC_USAGE;
    }
    char b[NAME_MAX + 1], pb[NAME_MAX + 1], name[2 * NAME_MAX + 2];
    base_name(real, b, sizeof b);
    if (!name_ok(b))
        return bad_name(local, b);
    snprintf(name, sizeof name, "%s", b);
    int renamed = 0;
    for (int i = 0; i < u->n; i++) {
        if (strcmp(u->blob[i], name))
            continue;
        if (!strcmp(u->real[i], real)) {
            /* The same file again: already uploaded. */
            char *ref = NULL;
            vc_strcatf(&ref, "blobs/%s", name);
            cJSON_SetValuestring(item, ref);
            free(ref);
            return VC_OK;
        }
        /* Another file of that name: its folder's name tells them apart. */
        char *slash = strrchr(real, '/');
        if (slash && slash > real) {
            *slash = 0;
            base_name(real, pb, sizeof pb);
            *slash = '/';
        } else {
            pb[0] = 0;
        }
        if (renamed || !name_ok(pb)) {
            fprintf(stderr,
                    "vvctl: --upload: %s: '%s' and another file of the spec are both named '%s'; "
                    "rename one\n",
                    ptr, local, b);
            return VC_USAGE;
        }
        snprintf(name, sizeof name, "%s/%s", pb, b);
        renamed = 1;
        i = -1; /* check the new name too */
    }
    if (u->n == (int)(sizeof u->blob / sizeof *u->blob)) {
        fprintf(stderr, "vvctl: --upload: too many files\n");
        return VC_USAGE;
    }
    int rc = vc_upload_path(local, name);
    if (rc != VC_OK)
        return rc;
    u->blob[u->n] = strdup(name);
    u->real[u->n] = strdup(real);
    u->n++;
    char *ref = NULL;
    vc_strcatf(&ref, "blobs/%s", name);
    cJSON_SetValuestring(item, ref);
    free(ref);
    return VC_OK;
}

/* The string member key of o, or of o's member key given as {"path": ...}
 * when path_form; NULL when absent or not a string. */
static cJSON *str_member(cJSON *o, const char *key, int path_form)
{
    cJSON *f = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (path_form && cJSON_IsObject(f))
        f = cJSON_GetObjectItemCaseSensitive(f, "path");
    return cJSON_IsString(f) ? f : NULL;
}

int vc_upload_spec_files(cJSON *spec)
{
    upl u = {0};
    int rc = VC_OK;
    /* lasso and interpolate: arrays, "path" or {"path", "tensor"}; init may
     * be zeros or random. */
    static const char *const top[] = {"phi", "psi", "bias", "init"};
    for (unsigned i = 0; i < sizeof top / sizeof *top && rc == VC_OK; i++) {
        cJSON *f = str_member(spec, top[i], 1);
        if (!f || (!strcmp(top[i], "init") &&
                   (!strcmp(f->valuestring, "zeros") || !strcmp(f->valuestring, "random"))))
            continue;
        char ptr[16];
        snprintf(ptr, sizeof ptr, "/%s", top[i]);
        rc = upload_item(&u, f, ptr, 0);
    }
    /* compress and train: the model's weights and spec file (a string; an
     * object is the architecture itself; a string model is a resident one). */
    cJSON *model = cJSON_GetObjectItemCaseSensitive(spec, "model");
    static const char *const mfields[] = {"weights", "spec"};
    for (int i = 0; i < 2 && rc == VC_OK; i++) {
        cJSON *f = str_member(model, mfields[i], 0);
        char ptr[32];
        snprintf(ptr, sizeof ptr, "/model/%s", mfields[i]);
        if (f)
            rc = upload_item(&u, f, ptr, 0);
    }
    /* The data set's files and folder ("fashion-mnist" names none). */
    cJSON *data = cJSON_GetObjectItemCaseSensitive(spec, "data");
    static const char *const splits[] = {"train", "test"}, *const parts[] = {"images", "labels"};
    for (int s = 0; s < 2 && rc == VC_OK; s++)
        for (int p = 0; p < 2 && rc == VC_OK; p++) {
            cJSON *f = str_member(cJSON_GetObjectItemCaseSensitive(data, splits[s]), parts[p], 0);
            char ptr[32];
            snprintf(ptr, sizeof ptr, "/data/%s/%s", splits[s], parts[p]);
            if (f)
                rc = upload_item(&u, f, ptr, 0);
        }
    cJSON *dir = str_member(data, "dir", 0);
    if (rc == VC_OK && dir)
        rc = upload_item(&u, dir, "/data/dir", 1);
    upl_free(&u);
    return rc;
}
