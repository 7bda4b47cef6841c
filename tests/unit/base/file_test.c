/* file_test.c - atomic replacement (mode, content, no temp left behind) and bounded reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char scratch[512];

static int setup(void **state)
{
    rp_test_scratch("file", scratch, sizeof(scratch));
    return 0;
}

static int teardown(void **state)
{
    rp_test_rmtree(scratch);
    return 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_write_read_replace(void **state)
{
    char path[600], link[600];
    struct stat st;
    rp_buf b;

    snprintf(path, sizeof(path), "%s/a.txt", scratch);
    assert_int_equal(rp_file_write_atomic(path, "first", 5, 0600), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rp_file_write_atomic(path, "second!", 7, 0644), 0);
    assert_int_equal(count_entries(scratch), 1); /* no temp file left */
    rp_buf_init(&b, 100);
    assert_int_equal(rp_file_read(path, &b), 0);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "second!");
    rp_buf_free(&b);

    rp_buf_init(&b, 3);
    assert_int_equal(rp_file_read(path, &b), RP_ETOOBIG);
    assert_int_equal(b.len, 0);
    rp_buf_free(&b);

    rp_buf_init(&b, 100);
    snprintf(link, sizeof(link), "%s/missing", scratch);
    assert_int_equal(rp_file_read(link, &b), RP_ENOENT);
    snprintf(link, sizeof(link), "%s/link", scratch);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(rp_file_read(link, &b), RP_EIO);    /* never through a symlink */
    assert_int_equal(rp_file_read(scratch, &b), RP_EIO); /* not a regular file */
    rp_buf_free(&b);
}

/* A socket is reached through its own inode; a symlink in its place, or a file, is refused. */
static void test_socket_ref(void **state)
{
    char sock[600], link[600], file[600], via[40];
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s, c, fd = -1;

    (void)state;
    snprintf(sock, sizeof(sock), "%s/app.sock", scratch);
    snprintf(link, sizeof(link), "%s/evil.sock", scratch);
    snprintf(file, sizeof(file), "%s/plain", scratch);
    assert_true(strlen(sock) < sizeof(a.sun_path));
    memcpy(a.sun_path, sock, strlen(sock) + 1); /* length checked above */
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 4), 0);

    assert_int_equal(rp_file_socket_ref(sock, &fd, via, sizeof(via)), 0);
    assert_true(fd >= 0);
    memset(a.sun_path, 0, sizeof(a.sun_path));
    memcpy(a.sun_path, via, strlen(via));
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    close(c);
    close(fd);

    assert_int_equal(symlink(sock, link), 0);
    assert_int_equal(rp_file_socket_ref(link, &fd, via, sizeof(via)), RP_EPERM);
    assert_int_equal(fd, -1);
    assert_int_equal(rp_file_write_all(c = open(file, O_WRONLY | O_CREAT, 0600), "x", 1), 0);
    close(c);
    assert_int_equal(rp_file_socket_ref(file, &fd, via, sizeof(via)), RP_EPERM);
    assert_int_equal(rp_file_socket_ref("/nonexistent/x.sock", &fd, via, sizeof(via)), RP_ENOENT);
    assert_string_equal(via, "/proc/self/fd/-1");
    close(s);
}

/* Once connected, whoever listens must be the owner of the socket's directory. */
static void test_socket_peer(void **state)
{
    char sock[600];
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s, c;

    (void)state;
    snprintf(sock, sizeof(sock), "%s/app.sock", scratch);
    assert_true(strlen(sock) < sizeof(a.sun_path));
    memcpy(a.sun_path, sock, strlen(sock) + 1); /* length checked above */
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 4), 0);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    /* We listen, and own the directory. */
    assert_int_equal(rp_file_socket_peer_ok(c, sock), 0);
    if (geteuid() == 0) {
        /* The directory is another uid's: our listener is not its owner's (a swapped link). */
        assert_int_equal(chown(scratch, 12345, 12345), 0);
        assert_int_equal(rp_file_socket_peer_ok(c, sock), RP_EPERM);
        assert_int_equal(chown(scratch, 0, 0), 0);
    }
    assert_int_equal(rp_file_socket_peer_ok(c, "nodir"), RP_EIO);
    close(c);
    close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_peer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
