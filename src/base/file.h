/*
 * file.h - small-file helpers shared by the modules that keep state in the data directory.
 */
#ifndef RP_BASE_FILE_H
#define RP_BASE_FILE_H

#include "base/buf.h"

#include <stddef.h>
#include <sys/types.h>

/*
 * Writes data[0..len) to path atomically with the given mode: a temp file next to it (O_EXCL),
 * fsync, rename over path, fsync of the directory. 0, RP_EINVAL, RP_EIO (the temp file is
 * removed).
 */
int rp_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Writes all n bytes to fd, retrying short writes and EINTR. 0 or RP_EIO. */
int rp_file_write_all(int fd, const void *data, size_t n);

/*
 * Reads a whole regular file (never through a symlink) into out, which the caller initialised;
 * its max bounds the size. 0, RP_ENOENT, RP_ETOOBIG, RP_ENOMEM, RP_EIO. On failure out keeps
 * its previous length.
 */
int rp_file_read(const char *path, rp_buf *out);

/* rp_file_read for a file holding a secret (PIN, passphrase): also RP_EPERM when group or
 * others have any permission on it. Release out with rp_buf_free_secret. */
int rp_file_read_private(const char *path, rp_buf *out);

/*
 * A unix socket a less trusted process created (an isolated app's app.sock, in a directory it
 * owns), to connect to without following a symlink it could have put there instead: opens path
 * with O_PATH|O_NOFOLLOW, checks it is a socket, and writes "/proc/self/fd/N" into via (cap >=
 * 32) - connect(2) to that reaches exactly this inode (a process may always use its own
 * /proc/self/fd, dumpable or not). Close *fd once the connect call returned. 0; RP_ENOENT
 * (nothing there yet: via names a path that does not exist either, so a connect fails with
 * ENOENT as it would have); RP_EPERM (a symlink or not a socket); RP_EIO.
 */
int rp_file_socket_ref(const char *path, int *fd, char *via, size_t cap);

/*
 * After connecting sock to path: whoever listens (SO_PEERCRED) must be the owner of path's
 * directory, so a socket of anyone else reached through a swapped-in link is never used. 0;
 * RP_EPERM (another uid listens); RP_EIO.
 */
int rp_file_socket_peer_ok(int sock, const char *path);

#endif
