/*
 * unzip.h - safe extraction of uploaded zip archives ("zip deploy") and the matching zipper.
 *
 * Workload: the App Service deploy endpoint receives one zip per deployment (typically a few
 * hundred files and tens of megabytes, at most about a gigabyte) and unpacks it into a fresh
 * release directory; old releases are pruned with rp_unzip_rmtree. The CLI
 * (`rampart app deploy NAME DIR`) builds the upload with rp_zip_dir. Calls block on disk I/O, so
 * the server runs them off the event loop.
 *
 * Threat model: the archive is untrusted (any authenticated deployer, or a stolen publishing
 * credential). It may try to write outside the release directory (../, absolute names, drive
 * letters, backslashes, symlink entries followed by writes through them), to exhaust disk or
 * time (zip bombs, lying size headers, overlapping entries, millions of entries, deep trees), or
 * to smuggle special files (devices, FIFOs, setuid bits). Every entry is checked before anything
 * is written; files are then created only through directory fds opened component by component
 * with O_NOFOLLOW inside a directory this module has just created, and bytes are counted as they
 * are decompressed. The parent directory and the rest of the host are trusted not to be changed
 * under us by another process (they belong to the rampart user).
 *
 * Entry names are taken as libzip reports them (UTF-8; names without the UTF-8 flag are
 * converted from CP437); libzip cuts a name at an embedded NUL byte, and the cut name is then
 * checked like any other.
 */
#ifndef RP_SITES_UNZIP_H
#define RP_SITES_UNZIP_H

#include <stddef.h>
#include <stdint.h>

#define RP_UNZIP_MAX_TOTAL    (1024ull * 1024 * 1024) /* bytes written, all entries */
#define RP_UNZIP_MAX_FILE     (256ull * 1024 * 1024)  /* bytes written, one entry */
#define RP_UNZIP_MAX_ENTRIES  20000u
#define RP_UNZIP_MAX_RATIO    200u             /* uncompressed / compressed, one entry */
#define RP_UNZIP_RATIO_FLOOR  (1024ull * 1024) /* the ratio is checked above this output */
#define RP_UNZIP_MAX_PATH     1024u            /* bytes of an entry name */
#define RP_UNZIP_MAX_DEPTH    32u              /* path components of an entry name */
#define RP_UNZIP_NAME_MAX     255u             /* bytes of one path component */
#define RP_UNZIP_RMTREE_DEPTH 256u             /* rp_unzip_rmtree nesting (one fd per level) */

/*
 * Limits for rp_unzip_extract and rp_zip_dir. Fill with rp_unzip_limits_default, then lower
 * what you need. Each field is a hard limit taken literally, except max_ratio, where 0 turns
 * the ratio check off. max_path is capped at 65535 (the zip format's own limit).
 */
typedef struct rp_unzip_limits {
    uint64_t max_total;   /* sum of uncompressed bytes actually written */
    uint64_t max_file;    /* uncompressed bytes of one entry */
    uint32_t max_entries; /* entries in the archive, excluded ones included */
    uint32_t max_ratio;   /* per entry, checked once its output passes RP_UNZIP_RATIO_FLOOR */
    size_t max_path;      /* bytes of an entry name, without a directory's trailing '/' */
    unsigned max_depth;   /* path components of an entry name */
} rp_unzip_limits;

/* Sets every limit to its RP_UNZIP_* default. */
void rp_unzip_limits_default(rp_unzip_limits *l);

typedef struct rp_unzip_result {
    uint32_t files;   /* regular files written (zipped) */
    uint32_t dirs;    /* directories created (zipped), not counting the new top directory */
    uint32_t skipped; /* entries not written: excluded names (and for rp_zip_dir symlinks,
                         special files and the output file itself) */
    uint64_t bytes;   /* uncompressed bytes written (read) */
} rp_unzip_result;

/*
 * Progress callback: called every megabyte or so and once at the end with the bytes written so
 * far and the sum of the declared sizes of the entries that will be written (a hint: the real
 * count may stop short of it, never pass it).
 */
typedef void (*rp_unzip_progress_fn)(uint64_t done, uint64_t total_hint, void *arg);

/*
 * Extracts the zip archive in zip_fd (a regular file; not closed, its file offset moves) into
 * a new directory `name` (one path component) created with mode 0755 under the directory
 * parent_fd. lim NULL means the defaults; excludes is NULL or a NULL-terminated list of extra
 * path-component names to leave out, compared exactly, in addition to the built-in .git .svn
 * .hg .env (compared ignoring ASCII case). An entry with an excluded component at any depth is
 * skipped and counted in res->skipped, so an excluded directory's whole subtree is skipped,
 * whatever the entries' types (a symlink under .git/ is not an error); its name must still be
 * safe. Skipped entries create nothing, not even their parent directories.
 *
 * Files get mode 0755 when the entry's unix mode has the owner-execute bit and 0644 otherwise,
 * directories 0755, whatever the umask; setuid, setgid and sticky bits are never set.
 *
 * On any failure the new directory and everything in it is removed, so the parent is exactly
 * as before (RP_EEXIST leaves the existing entry alone). err (NULL, or errlen bytes) receives
 * a one-line reason naming the entry and the rule, with no host path, safe to show the
 * uploader. res (may be NULL) is filled on success and zeroed on failure.
 *
 * Returns 0; RP_EPARSE (not a zip, corrupt or truncated, CRC or size mismatch, overlapping
 * entries, encrypted entry, compression other than store/deflate); RP_EINVAL (bad argument, or
 * an unsafe entry: absolute name, drive letter, backslash, '.' '..' or empty component, control
 * character or bad UTF-8, symlink/device/FIFO/socket entry, duplicate name, a file where a
 * directory is needed or the other way round); RP_ETOOBIG (any limit, declared or counted);
 * RP_EEXIST (name exists); RP_EIO; RP_ENOMEM.
 */
int rp_unzip_extract(int zip_fd, int parent_fd, const char *name, const rp_unzip_limits *lim,
                     const char *const *excludes, rp_unzip_progress_fn progress, void *arg,
                     rp_unzip_result *res, char *err, size_t errlen);

/*
 * Removes `name` (one path component) under the directory parent_fd with everything below it,
 * never following a symlink: a symlink is unlinked, never its target. A directory the owner
 * can read but not write or search is chmod'ed u+rwx first (one it cannot read is RP_EIO). Returns 0 (also when name does not exist),
 * RP_EINVAL (bad name), RP_ETOOBIG (nested deeper than RP_UNZIP_RMTREE_DEPTH), RP_ENOMEM or
 * RP_EIO; after a failure part of the tree may be gone.
 */
int rp_unzip_rmtree(int parent_fd, const char *name);

/*
 * Writes a zip of the directory dir (following dir itself if it is a symlink, nothing below
 * it) to the new file out_path, created with mode 0600 and O_EXCL. Regular files (deflated,
 * unix mode 0755 or 0644) and directories are stored under names relative to dir with '/',
 * sorted, so the same tree gives the same entries; symlinks, special files, out_path itself
 * and excluded names (as in rp_unzip_extract) are skipped and counted. Every name must pass
 * the same checks rp_unzip_extract applies, so the archive always extracts. lim NULL means the
 * defaults (max_ratio does not apply).
 *
 * Returns 0, RP_ENOENT (no dir), RP_EEXIST (out_path exists), RP_EINVAL (dir is not a
 * directory, or a name rp_unzip_extract would refuse), RP_ETOOBIG, RP_EIO, RP_ENOMEM. On
 * failure out_path is removed. err and res as for rp_unzip_extract (names are relative to dir).
 */
int rp_zip_dir(const char *dir, const char *out_path, const char *const *excludes,
               const rp_unzip_limits *lim, rp_unzip_result *res, char *err, size_t errlen);

#endif
