/* listen.c - SO_REUSEPORT listening sockets. */
#include "net/listen.h"
#include "base/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* IP literal, "localhost", or a name resolved once at start-up. 0 or RP_EINVAL. */
static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *slen)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    struct addrinfo hints, *res = NULL;

    memset(ss, 0, sizeof(*ss));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *slen = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *slen = sizeof(*sin6);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL ||
        res->ai_addrlen > sizeof(*ss)) {
        if (res != NULL)
            freeaddrinfo(res);
        return RP_EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *slen = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        sin->sin_port = htons((uint16_t)port);
    else
        sin6->sin6_port = htons((uint16_t)port);
    return 0;
}

int rp_listen_tcp(const char *host, int *port, int backlog, char *err, unsigned long errlen)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    int fd, one = 1;

    if (resolve(host, *port, &ss, &slen) != 0) {
        snprintf(err, errlen, "listen: cannot resolve %s", host);
        return RP_EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen: socket: %s", strerror(errno));
        return RP_EIO;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        snprintf(err, errlen, "listen: setsockopt: %s", strerror(errno));
        close(fd);
        return RP_EIO;
    }
    if (bind(fd, (struct sockaddr *)&ss, slen) != 0) {
        snprintf(err, errlen, "listen: cannot bind %s:%d: %s", host, *port, strerror(errno));
        close(fd);
        return RP_EIO;
    }
    if (listen(fd, backlog) != 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return RP_EIO;
    }
    if (*port == 0) {
        struct sockaddr_storage got;
        socklen_t glen = sizeof(got);
        if (getsockname(fd, (struct sockaddr *)&got, &glen) != 0) {
            close(fd);
            return RP_EIO;
        }
        *port = got.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&got)->sin_port)
                                         : ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
    }
    return fd;
}
