/*
 * proxy.h - the reverse proxy from the front door to an app process on loopback
 * (docs/sites.md "App processes").
 *
 * One upstream connection per request (HTTP/1.1, Connection: close, as nginx's proxy_pass does
 * by default). Bodies stream both ways with flow control: a slow app pauses reading the client's
 * body, a slow client pauses reading the app's answer; at most a few hundred KiB are buffered
 * per request in either direction. Hop-by-hop headers are removed both ways; the app gets
 * Host as the client sent it and X-Forwarded-For (the chain with the client appended),
 * X-Forwarded-Proto: https and X-Forwarded-Host; client-sent X-MS-CLIENT-PRINCIPAL*,
 * X-MS-TOKEN-*, X-ARR-ClientCert and X-ARR-SSL never reach it, and X-ARR-ClientCert carries the
 * verified client certificate (base64 DER) when there is one. The app's own HSTS,
 * X-Content-Type-Options and Date are replaced by the front door's.
 *
 * Errors: the app not answering on its port within RP_PROXY_CONNECT_MS (it may be starting) is
 * 502 BadGateway; no response head within RP_PROXY_RESPONSE_MS is 504 GatewayTimeout (Azure's
 * front end waits 230 s); an app that breaks off mid-answer makes the front door close the
 * client's connection so the answer cannot pass for complete.
 */
#ifndef RP_SITES_PROXY_H
#define RP_SITES_PROXY_H

#include "http/request.h"

#define RP_PROXY_CONNECT_MS  10000
#define RP_PROXY_RESPONSE_MS 230000
#define RP_PROXY_HEAD_MAX    (64u << 10) /* the app's response head */

/* Forwards req to 127.0.0.1:port and answers it from there. client_cert (may be NULL): the
 * X-ARR-ClientCert value. Call from the request's handler, before its body is read. */
void rp_proxy_forward(rp_req *req, int port, const char *client_cert);

#endif
