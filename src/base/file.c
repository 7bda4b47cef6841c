/*
 * file.c - whole-file reads and crash-safe replacement of small files (keys, certificates,
 * install.json): write a temp file beside the target, fsync it, rename it over the target,
 * fsync the directory.
 */
#include "base/file.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int rp_file_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;

    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return RP_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, rc = 0;

    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof(dir))
            return RP_ETOOBIG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RP_EIO;
    if (fsync(fd) != 0)
        rc = RP_EIO;
    close(fd);
    return rc;
}

int rp_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    int fd, rc, n;

    if (path == NULL || path[0] == '\0' || (data == NULL && len > 0))
        return RP_EINVAL;
    n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return RP_ETOOBIG;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RP_ENOENT : RP_EIO;
    /* mkostemp creates 0600; set the exact mode before any byte is written. */
    rc = fchmod(fd, mode) == 0 ? 0 : RP_EIO;
    if (rc == 0)
        rc = rp_file_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = RP_EIO;
    if (close(fd) != 0 && rc == 0)
        rc = RP_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = RP_EIO;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return fsync_parent(path);
}

static int read_file(const char *path, rp_buf *out, int private_only);

int rp_file_read(const char *path, rp_buf *out)
{
    return read_file(path, out, 0);
}

int rp_file_read_private(const char *path, rp_buf *out)
{
    return read_file(path, out, 1);
}

static int read_file(const char *path, rp_buf *out, int private_only)
{
    struct stat st;
    size_t base = out->len;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? RP_ENOENT : RP_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = RP_EIO;
        goto out;
    }
    if (private_only && (st.st_mode & 077) != 0) {
        rc = RP_EPERM;
        goto out;
    }
    if ((uintmax_t)st.st_size > out->max - out->len) {
        rc = RP_ETOOBIG;
        goto out;
    }
    rc = rp_buf_reserve(out, (size_t)st.st_size);
    if (rc != 0)
        goto out;
    for (;;) {
        size_t room = out->cap - 1 - out->len;
        ssize_t r;
        if (room == 0) {
            rc = rp_buf_reserve(out, 1);
            if (rc != 0)
                goto out;
            room = out->cap - 1 - out->len;
        }
        r = read(fd, out->data + out->len, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = RP_EIO;
            goto out;
        }
        if (r == 0)
            break;
        out->len += (size_t)r;
    }
    out->data[out->len] = '\0';
    rc = 0;
out:
    if (rc != 0) {
        out->len = base;
        if (out->data != NULL)
            out->data[base] = '\0';
    }
    close(fd);
    return rc;
}

int rp_file_socket_ref(const char *path, int *fd, char *via, size_t cap)
{
    struct stat st;
    int f;

    *fd = -1;
    f = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0) {
        snprintf(via, cap, "/proc/self/fd/-1");
        return errno == ENOENT ? RP_ENOENT : errno == ELOOP ? RP_EPERM : RP_EIO;
    }
    if (fstat(f, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        close(f);
        snprintf(via, cap, "/proc/self/fd/-1");
        return RP_EPERM;
    }
    snprintf(via, cap, "/proc/self/fd/%d", f);
    *fd = f;
    return 0;
}

int rp_file_socket_peer_ok(int sock, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct stat st;
    size_t n;

    if (slash == NULL)
        return RP_EIO;
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof(dir))
        return RP_EIO;
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || lstat(dir, &st) != 0)
        return RP_EIO;
    return cred.uid == st.st_uid ? 0 : RP_EPERM;
}
