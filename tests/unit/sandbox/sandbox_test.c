/*
 * sandbox_test.c - the launcher's protocol (src/sandbox/sandbox.c; the .c is included to reach
 * its parser): the argv the privileged helper builds reads back the same, bubblewrap's path must
 * be absolute and uid 0 is refused (the directories travel as descriptors, never as paths); the command and environment travel in a sealed, close-on-exec memfd; the
 * probe names what a machine lacks. The launch itself is exercised end to end
 * (tests/e2e/sites-sandbox.test.mjs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/sandbox/sandbox.c"

static void test_argv_round_trip(void **state)
{
    rp_sandbox_spec s = {"/usr/bin/bwrap", 1, "app-x-1", 1879048193u, {96, 64, 150}, RP_SANDBOX_ALL,
                         RP_SANDBOX_PIDS};
    char buf[2048], *argv[RP_SANDBOX_ARGV_MAX];
    launch l;
    int argc = 0;

    (void)state;
    assert_int_equal(rp_sandbox_argv(&s, buf, sizeof(buf), argv, RP_SANDBOX_ARGV_MAX), 0);
    while (argv[argc] != NULL)
        argc++;
    assert_string_equal(argv[1], RP_SANDBOX_VERB);
    assert_string_equal(argv[2], "launch");
    assert_int_equal(parse_launch(argc - 3, argv + 3, &l), 0);
    assert_string_equal(l.bwrap, "/usr/bin/bwrap");
    assert_int_equal(l.isolated, 1);
    assert_string_equal(l.leaf, "app-x-1");
    assert_int_equal(l.uid, 1879048193u);
    assert_int_equal(l.mem, 96);
    assert_int_equal(l.pids, 64);
    assert_int_equal(l.cpu, 150);
    assert_int_equal(l.layers, RP_SANDBOX_ALL);
    assert_int_equal(l.require, RP_SANDBOX_PIDS);
    /* The shared tier has no run directory. */
    s.isolated = 0;
    assert_int_equal(rp_sandbox_argv(&s, buf, sizeof(buf), argv, RP_SANDBOX_ARGV_MAX), 0);
    for (argc = 0; argv[argc] != NULL; argc++)
        ;
    assert_int_equal(parse_launch(argc - 3, argv + 3, &l), 0);
    assert_int_equal(l.isolated, 0);
    /* Too small a buffer, a relative path, a leaf that is a path. */
    assert_int_equal(rp_sandbox_argv(&s, buf, 40, argv, RP_SANDBOX_ARGV_MAX), RP_ETOOBIG);
    s.leaf = "../x";
    assert_int_equal(rp_sandbox_argv(&s, buf, sizeof(buf), argv, RP_SANDBOX_ARGV_MAX), RP_EINVAL);
    s.leaf = "app-x-1";
    s.bwrap = "bwrap";
    assert_int_equal(rp_sandbox_argv(&s, buf, sizeof(buf), argv, RP_SANDBOX_ARGV_MAX), RP_EINVAL);
}

static void test_parse_refusals(void **state)
{
    char *uid0[] = {"bwrap=/b", "isolated=1", "leaf=l", "uid=0"};
    char *rel[] = {"bwrap=b", "isolated=0", "leaf=l", "uid=5"};
    char *unknown[] = {"bwrap=/b", "release=/r", "leaf=l", "uid=5", "env=SECRET=1"};
    char *big[] = {"bwrap=/b", "isolated=2", "leaf=l", "uid=4294967296"};
    char *ok[] = {"bwrap=/b", "isolated=1", "leaf=l", "uid=5"};
    launch l;

    (void)state;
    assert_int_equal(parse_launch(4, uid0, &l), RP_EINVAL);
    assert_int_equal(parse_launch(4, rel, &l), RP_EINVAL);
    assert_int_equal(parse_launch(5, unknown, &l), RP_EINVAL);
    assert_int_equal(parse_launch(4, big, &l), RP_EINVAL);
    assert_int_equal(parse_launch(4, ok, &l), 0);
    assert_int_equal(rp_sandbox_main(2, (char *[]){RP_SANDBOX_VERB, "nothing", NULL}), 2);
}

static void test_blob(void **state)
{
    const char *env[] = {"PORT=8080", "SECRET=s3cr3t"};
    char got[128];
    ssize_t n;
    int fd = -1;

    (void)state;
    assert_int_equal(rp_sandbox_blob("node server.js", env, 2, &fd), 0);
    n = pread(fd, got, sizeof(got), 0);
    assert_int_equal(n, sizeof("node server.js") + sizeof("PORT=8080") + sizeof("SECRET=s3cr3t"));
    assert_memory_equal(got, "node server.js\0PORT=8080\0SECRET=s3cr3t", (size_t)n);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE, F_SEAL_WRITE);
    assert_int_equal(pwrite(fd, "x", 1, 0), -1); /* sealed */
    close(fd);
    {
        static char huge[RP_SANDBOX_BLOB_MAX + 2];
        const char *one[] = {huge};
        memset(huge, 'a', sizeof(huge) - 1);
        huge[1] = '=';
        assert_int_equal(rp_sandbox_blob("x", one, 1, &fd), RP_ETOOBIG);
    }
}

static void test_probe(void **state)
{
    char missing[512];
    int mode;
    unsigned layers;

    (void)state;
    layers = rp_sandbox_probe("/nonexistent/bwrap", &mode, missing, sizeof(missing));
    assert_false(layers & RP_SANDBOX_BWRAP);
    assert_non_null(strstr(missing, "bubblewrap"));
    if (geteuid() == 0)
        assert_true(layers & RP_SANDBOX_UID);
    else
        assert_non_null(strstr(missing, "not root"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_round_trip),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_blob),
        cmocka_unit_test(test_probe),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
