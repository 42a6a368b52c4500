/* paths.c - where files of the data root are, for reading and for uploads. */
#include "paths.h"

#include "vv/err.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether real (an absolute real path) is root or lies inside it. */
static int inside(const char *root, const char *real)
{
    size_t rl = strlen(root);
    if (rl == 1 && root[0] == '/')
        return real[0] == '/';
    return !strncmp(real, root, rl) && (real[rl] == '/' || real[rl] == 0);
}

/* Whether path has a ".." component. */
static int has_dotdot(const char *path)
{
    for (const char *p = path; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p += n + (e != NULL);
    }
    return 0;
}

int resolve_in_root(const char *root, const char *path, int must_exist, char *out, size_t outsz)
{
    char cand[PATH_MAX], real[PATH_MAX];
    if (!path[0])
        return vv_fail(VV_EINVAL, "empty path");
    /* No ".." component anywhere, whatever it would resolve to. */
    if (has_dotdot(path))
        return vv_fail(VV_EPATH, "%s: '..' is not allowed in paths", path);
    int n = path[0] == '/' ? snprintf(cand, sizeof cand, "%s", path)
                           : snprintf(cand, sizeof cand, "%s/%s", root, path);
    if (n < 0 || (size_t)n >= sizeof cand)
        return vv_fail(VV_EINVAL, "%s: path too long", path);
    if (realpath(cand, real)) {
        if (!inside(root, real))
            return vv_fail(VV_EPATH, "%s: outside the data root", path);
        if (snprintf(out, outsz, "%s", real) >= (int)outsz)
            return vv_fail(VV_EINVAL, "%s: path too long", path);
        return 0;
    }
    if (errno != ENOENT)
        return vv_fail(VV_EIO, "%s: %s", path, strerror(errno));
    if (must_exist) {
        /* Say "outside" rather than "missing" for absolute paths elsewhere. */
        if (path[0] == '/' && !inside(root, cand))
            return vv_fail(VV_EPATH, "%s: outside the data root", path);
        return vv_fail(VV_ENOFILE, "%s: no such file in the data root", path);
    }
    /* A file to create: its directory must resolve inside the root. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cand);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return vv_fail(VV_EPATH, "%s: outside the data root", path);
    *slash = 0;
    if (!realpath(dir, real)) {
        if (errno == ENOENT)
            return vv_fail(VV_ENOFILE, "%s: directory does not exist", path);
        return vv_fail(VV_EIO, "%s: %s", path, strerror(errno));
    }
    if (!inside(root, real))
        return vv_fail(VV_EPATH, "%s: outside the data root", path);
    if (snprintf(out, outsz, "%s/%s", real, slash + 1) >= (int)outsz)
        return vv_fail(VV_EINVAL, "%s: path too long", path);
    return 0;
}

/* Resolves cand (an absolute path) inside root: 1 when it exists there, 0
 * when it does not exist, or a negative vv_err naming path. */
static int try_real(const char *root, const char *path, const char *cand, char *out, size_t outsz)
{
    char real[PATH_MAX];
    if (!realpath(cand, real)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return vv_fail(VV_EIO, "%s: %s", path, strerror(errno));
    }
    if (!inside(root, real))
        return vv_fail(VV_EPATH, "%s: outside the data root", path);
    if (snprintf(out, outsz, "%s", real) >= (int)outsz)
        return vv_fail(VV_EINVAL, "%s: path too long", path);
    return 1;
}

int data_resolve_input(const char *root, const char *path, char *out, size_t outsz)
{
    char cand[PATH_MAX];
    int n, rc;
    if (!path || !path[0])
        return vv_fail(VV_EINVAL, "empty path");
    if (has_dotdot(path))
        return vv_fail(VV_EPATH, "%s: '..' is not allowed in paths", path);
    if (path[0] == '/') {
        if ((n = snprintf(cand, sizeof cand, "%s", path)) < 0 || (size_t)n >= sizeof cand)
            return vv_fail(VV_EINVAL, "%s: path too long", path);
        if ((rc = try_real(root, path, cand, out, outsz)) != 0)
            return rc < 0 ? rc : 0;
        if (!inside(root, cand))
            return vv_fail(VV_EPATH, "%s: outside the data root", path);
        return vv_fail(VV_ENOFILE, "%s: no such file in the data root", path);
    }
    int blob = !strncmp(path, DATA_BLOBS "/", sizeof DATA_BLOBS);
    /* An uploaded blob: blobs/NAME names it explicitly, NAME first. */
    n = blob ? snprintf(cand, sizeof cand, "%s/%s", root, path)
             : snprintf(cand, sizeof cand, "%s/" DATA_BLOBS "/%s", root, path);
    if (n < 0 || (size_t)n >= sizeof cand)
        return vv_fail(VV_EINVAL, "%s: path too long", path);
    if ((rc = try_real(root, path, cand, out, outsz)) != 0)
        return rc < 0 ? rc : 0;
    if (blob)
        return vv_fail(VV_ENOFILE, "%s: no such blob in the data root (upload it with PUT /v1/%s)",
                       path, path);
    /* A file of the data root itself. */
    if ((n = snprintf(cand, sizeof cand, "%s/%s", root, path)) < 0 || (size_t)n >= sizeof cand)
        return vv_fail(VV_EINVAL, "%s: path too long", path);
    if ((rc = try_real(root, path, cand, out, outsz)) != 0)
        return rc < 0 ? rc : 0;
    return vv_fail(VV_ENOFILE,
                   "%s: no such file in the data root (looked for " DATA_BLOBS "/%s and %s)", path,
                   path, path);
}

int data_blobs_dir(const char *root, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/" DATA_BLOBS, root);
    if (n < 0 || (size_t)n >= outsz)
        return vv_fail(VV_EINVAL, "%s/" DATA_BLOBS ": path too long", root);
    return 0;
}

/* The vv_err of a failed mkdir/open/write: a full disk or quota is
 * VV_ENOSPACE, anything else VV_EIO. */
static int io_err(int e)
{
    return e == ENOSPC || e == EDQUOT ? VV_ENOSPACE : VV_EIO;
}

int data_blobs_init(const char *root)
{
    char dir[PATH_MAX];
    int rc = data_blobs_dir(root, dir, sizeof dir);
    if (rc < 0)
        return rc;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return vv_fail(io_err(errno), "%s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) < 0)
        return vv_fail(VV_EIO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return vv_fail(VV_EPATH, "%s: not a folder (a symlink or a file)", dir);
    return 0;
}

int data_blob_name(const char *name, const char **rel)
{
    size_t len = strlen(name);
    int ok = len > 0 && len < PATH_MAX;
    for (const char *p = name; *p && ok; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '_' || *p == '-' || *p == '/';
    if (!ok)
        return vv_fail(VV_EINVAL,
                       "blob names are made of letters, digits, '.', '_', '-' and '/' between "
                       "them, got '%.200s'",
                       name);
    const char *r = name;
    if (!strncmp(r, DATA_BLOBS "/", sizeof DATA_BLOBS))
        r += sizeof DATA_BLOBS;
    if (!r[0])
        return vv_fail(VV_EINVAL, "blob name '%.200s' names no file", name);
    for (const char *p = r;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
            return vv_fail(VV_EINVAL, "blob name '%.200s' has an empty component", name);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return vv_fail(VV_EPATH, "blob name '%.200s': '..' is not allowed in paths", name);
        if (n == 1 && p[0] == '.')
            return vv_fail(VV_EINVAL, "blob name '%.200s': '.' components are refused", name);
        if (n >= 8 && !strncmp(p, ".upload-", 8))
            return vv_fail(VV_EINVAL,
                           "blob name '%.200s': components starting with '.upload-' are "
                           "reserved for uploads in progress",
                           name);
        if (!e)
            break;
        p = e + 1;
    }
    *rel = r;
    return 0;
}

int data_blob_open_dir(const char *root, const char *rel, int *dirfd, const char **leaf)
{
    char dir[PATH_MAX];
    int rc = data_blobs_dir(root, dir, sizeof dir);
    if (rc < 0)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if ((rc = data_blobs_init(root)) < 0)
            return rc;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return vv_fail(VV_EPATH, "%s: not a folder (a symlink or a file)", dir);
        return vv_fail(io_err(errno), "%s: %s", dir, strerror(errno));
    }
    char comp[NAME_MAX + 1];
    const char *p = rel;
    for (const char *e; (e = strchr(p, '/')) != NULL; p = e + 1) {
        size_t n = (size_t)(e - p);
        if (n > NAME_MAX) {
            close(fd);
            return vv_fail(VV_EINVAL, "blob name '%.200s': a component is too long", rel);
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
            int e2 = errno;
            close(fd);
            return vv_fail(io_err(e2), "blob %.200s: creating folder %s: %s", rel, comp,
                           strerror(e2));
        }
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int e2 = errno;
            struct stat st;
            int is_link = fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
            close(fd);
            if (e2 == ELOOP || is_link)
                return vv_fail(VV_EPATH,
                               "blob %.200s: %.*s is a symlink; blobs are never written "
                               "through one",
                               rel, (int)(e - rel), rel);
            if (e2 == ENOTDIR)
                return vv_fail(VV_ECONFLICT, "blob %.200s: %.*s is a file, not a folder", rel,
                               (int)(e - rel), rel);
            return vv_fail(io_err(e2), "blob %.200s: %s", rel, strerror(e2));
        }
        close(fd);
        fd = next;
    }
    if (strlen(p) > NAME_MAX) {
        close(fd);
        return vv_fail(VV_EINVAL, "blob name '%.200s': a component is too long", rel);
    }
    struct stat st;
    if (fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            close(fd);
            return vv_fail(VV_ECONFLICT, "blob %.200s: a folder of that name exists", rel);
        }
        /* An existing symlink is replaced by the rename, never followed. */
    }
    *dirfd = fd;
    *leaf = p;
    return 0;
}

/* Empties the folder open as fd (taking it) and counts the files removed. */
static int empty_dir(int fd, int *nfiles, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return vv_fail(VV_EIO, "opening a run folder: %s", strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = vv_fail(VV_EIO, "%s: %s", e->d_name, strerror(errno));
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth >= 32) {
                rc = vv_fail(VV_EIO, "%s: folders nested too deep", e->d_name);
                break;
            }
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                rc = vv_fail(VV_EIO, "%s: %s", e->d_name, strerror(errno));
            else if ((rc = empty_dir(sub, nfiles, depth + 1)) == 0 &&
                     unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
                rc = vv_fail(VV_EIO, "%s: %s", e->d_name, strerror(errno));
        } else if (unlinkat(dirfd(d), e->d_name, 0) < 0) {
            rc = vv_fail(VV_EIO, "%s: %s", e->d_name, strerror(errno));
        } else if (nfiles) {
            (*nfiles)++;
        }
    }
    closedir(d);
    return rc;
}

int data_remove_run_dir(const char *root, const char *id, int *nfiles)
{
    if (nfiles)
        *nfiles = 0;
    if (!id[0] || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
        return vv_fail(VV_EINVAL, "'%.64s' is not a run id", id);
    char runs[PATH_MAX];
    int n = snprintf(runs, sizeof runs, "%s/runs", root);
    if (n < 0 || (size_t)n >= sizeof runs)
        return vv_fail(VV_EINVAL, "%s/runs: path too long", root);
    int rfd = open(runs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rfd < 0)
        return errno == ENOENT ? 0 : vv_fail(VV_EIO, "%s: %s", runs, strerror(errno));
    int rc = 0;
    int fd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            rc = vv_fail(VV_EIO, "%s/%s: %s", runs, id, strerror(errno));
    } else if ((rc = empty_dir(fd, nfiles, 0)) == 0 && unlinkat(rfd, id, AT_REMOVEDIR) < 0) {
        rc = vv_fail(VV_EIO, "%s/%s: %s", runs, id, strerror(errno));
    }
    close(rfd);
    return rc;
}
