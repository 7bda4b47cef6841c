/*
 * static.h - serves files from a content root (the simplest site; sites build on it).
 *
 * Security rules, each enforced here and tested in tests/e2e/static.test.mjs:
 *  - only files beneath the root are served: every path is opened relative to a directory
 *    descriptor with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so neither ".." nor a
 *    symlink can leave the root (kernels without openat2 fall back to refusing every symlink);
 *  - no dotfiles or dot-folders (.git, .env, .well-known is the one exception) -> 404;
 *  - no directory listings: a directory answers its index.html or 404;
 *  - regular files only (no FIFOs or devices).
 * It answers GET and HEAD with ETag/Last-Modified, conditional requests (304) and a single
 * byte range (206/416); multi-range requests get the whole file (allowed by RFC 9110).
 */
#ifndef RP_HTTP_STATIC_H
#define RP_HTTP_STATIC_H

#include "http/request.h"

typedef struct rp_static rp_static;

/* Opens the content root. 0, RP_ENOENT (missing or not a directory) or RP_ENOMEM. */
int rp_static_open(const char *root, rp_static **out);
void rp_static_close(rp_static *s); /* accepts NULL */
/* The handler: req->route_data must be the rp_static. */
void rp_static_handle(rp_req *req);
/* Answers req from s (as rp_static_handle does). Synchronous: once it returns the file is open
 * or the answer sent, so s may be closed afterwards. */
void rp_static_serve(rp_static *s, rp_req *req);
/*
 * Parses a Range header value against a representation of size bytes: one "bytes=a-b",
 * "bytes=a-" or "bytes=-n" range. Returns 1 (satisfiable: *start and *len set, within size),
 * 0 (ignore the header: malformed or several ranges) or -1 (unsatisfiable: answer 416).
 */
int rp_static_parse_range(rp_str v, off_t size, off_t *start, off_t *len);
/* MIME type for a file name (by extension); never NULL. */
const char *rp_static_mime(const char *name, size_t n);

#endif
