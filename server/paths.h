/* paths.h - where files of the data root are, for reading and for uploads.
 *
 * The data root DATA (the daemon's --data-dir, an absolute real path) holds
 * the daemon's own state (vvd.db and its -wal/-shm, runs/, models/), files an
 * administrator put there, and DATA/blobs/, the only folder that
 * PUT /v1/blobs/NAME writes into.  Every function here is thread-safe and
 * reports failures with vv_fail(), so vv_err_detail() names the path.
 */
#ifndef VV_PATHS_H
#define VV_PATHS_H

#include <stddef.h>

/* The folder of uploaded blobs, relative to the data root. */
#define DATA_BLOBS "blobs"

/* Resolves a path from a spec or URL inside root (an absolute real path):
 * relative to it, no ".." component, no symlink leading out; writes the
 * absolute real path (or, when !must_exist and the file does not exist yet,
 * the real path of its existing folder followed by its last component).
 * Returns 0, VV_EPATH when it escapes, VV_ENOFILE when must_exist and it does
 * not exist, VV_EINVAL when empty or too long, VV_EIO otherwise. */
int resolve_in_root(const char *root, const char *path, int must_exist, char *out, size_t outsz);

/* Resolves the file a job spec names for READING to the absolute real path
 * of an existing file inside the data root root (an absolute real path):
 *
 *   - an absolute path must lie inside root once symlinks are resolved;
 *   - a relative "blobs/NAME" names root/blobs/NAME only;
 *   - any other relative NAME names root/blobs/NAME (an uploaded blob) when
 *     that exists, and root/NAME otherwise (a file an administrator put in
 *     the root, or a run's output such as runs/r-000001/V.npy).
 *
 * Writes the result to out (outsz bytes) and returns 0.  Fails with
 * VV_EINVAL for an empty or too long path, VV_EPATH for a ".." component or
 * a path whose real location (symlinks followed) is outside root, including
 * an absolute path outside root that does not exist, VV_ENOFILE (the detail
 * names the path and where it was looked for) when nothing exists there, and
 * VV_EIO for any other error of the file system.  It does not check the
 * file's type: callers open it and report what they find. */
int data_resolve_input(const char *root, const char *path, char *out, size_t outsz);

/* Writes root/blobs to out.  Returns 0, or VV_EINVAL when it does not fit. */
int data_blobs_dir(const char *root, char *out, size_t outsz);

/* Creates root/blobs (mode 0755) unless it exists, and refuses it when it is
 * not a real folder (a symlink, a file).  Returns 0, VV_EPATH when it is a
 * symlink or not a folder, VV_EIO otherwise. */
int data_blobs_init(const char *root);

/* Checks a blob name as PUT /v1/blobs/NAME gives it and returns, in *rel,
 * where it goes inside root/blobs: a leading "blobs/" is stripped, so the
 * name a spec uses (blobs/NAME) uploads to the same file as NAME.  Names are
 * made of letters, digits, '.', '_', '-' and '/'; refused are a ".."
 * component (VV_EPATH) and (VV_EINVAL) an empty name, a leading or trailing
 * '/', an empty or "." component, a component starting with ".upload-" (the
 * prefix of temporary files) and a name of PATH_MAX bytes or more.  *rel
 * points into name. */
int data_blob_name(const char *name, const char **rel);

/* Opens the folder that will hold the blob rel (a name data_blob_name
 * accepted) inside root/blobs, creating the missing folders of its name
 * (mode 0755) one component at a time with mkdirat/openat relative to an
 * O_DIRECTORY|O_NOFOLLOW descriptor of the previous one, so that nothing is
 * created outside root/blobs.  On success *dirfd is an open descriptor the
 * caller closes and *leaf points at the last component of rel.  Fails with
 * VV_EPATH when a component is a symlink, VV_ECONFLICT when one is a file
 * (or rel itself names an existing folder), VV_ENOSPACE when the disk is
 * full and VV_EIO otherwise.  A refused name creates nothing: every
 * refusal concerns a component that already existed, and so did the folders
 * before it; only a disk error can leave created folders behind. */
int data_blob_open_dir(const char *root, const char *rel, int *dirfd, const char **leaf);

/* Removes a run's output folder DATA/runs/ID and everything in it, never
 * following a symbolic link (a link is removed, not what it points to).
 * *nfiles (may be NULL) receives how many files and links were removed.
 * A folder that does not exist is 0 files and success; an id that is not
 * one path component is VV_EINVAL; a failed removal VV_EIO naming it. */
int data_remove_run_dir(const char *root, const char *id, int *nfiles);

#endif
