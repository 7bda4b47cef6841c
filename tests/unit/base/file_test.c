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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read_replace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
