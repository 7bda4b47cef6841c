/*
 * appcfg.h - one app's settings (docs/sites.md "Settings"): the transport and access controls
 * Azure keeps in a site's properties and siteConfig, parsed once into an immutable,
 * reference-counted object that request paths and TLS handshakes read without locks.
 *
 * The stored form is a JSON object with Azure's property names:
 *   minTlsVersion                       "1.2" (default) | "1.3"
 *   clientCertEnabled / clientCertMode  false / "Required" | "Optional" | "OptionalInteractiveUser"
 *   clientCertExclusionPaths            "/health;/public" (',' or ';'; case-insensitive prefixes)
 *   clientCertTrustedCAs                PEM certificates a client certificate must chain to
 *   ipSecurityRestrictions[], ipSecurityRestrictionsDefaultAction
 *   scmIpSecurityRestrictions[], scmIpSecurityRestrictionsDefaultAction,
 *   scmIpSecurityRestrictionsUseMain
 *   appCommandLine                      the app process's command ("" or absent: static only)
 *   cors                                {"allowedOrigins": ["https://a.example", ...] | ["*"],
 *                                        "supportCredentials": false}
 *   sandbox                             {"tier": "shared" (default) | "isolated",
 *                                        "memoryMB": 16..65536 (512), "pids": 8..65536 (256),
 *                                        "cpuPercent": 1..100 x cores (100)}; replaced whole by
 *                                        a patch, absent members are the defaults
 *   healthCheckPath                     "" (default: none) or "/path" (at most 256 bytes of
 *                                        printable ASCII, no space, no '#'): what the
 *                                        supervisor asks to decide ready and healthy
 * Secure defaults where Azure's differ: a client-certificate mode other than off needs a trusted
 * CA list (Azure forwards any certificate unchecked); the certificate is verified here.
 */
#ifndef RP_SITES_APPCFG_H
#define RP_SITES_APPCFG_H

#include "http/request.h"
#include "sites/access.h"
#include "sites/proc.h"

#include <jansson.h>
#include <openssl/x509.h>

#define RP_APPCFG_CA_MAX     (256 * 1024) /* bytes of PEM in clientCertTrustedCAs */
#define RP_APPCFG_PATHS_MAX  2048         /* bytes of clientCertExclusionPaths */
#define RP_APPCFG_MEMORY_MIN 16           /* sandbox.memoryMB */
#define RP_APPCFG_MEMORY_MAX 65536
#define RP_APPCFG_PIDS_MIN   8 /* sandbox.pids (tasks: processes and threads) */
#define RP_APPCFG_PIDS_MAX   65536

typedef enum {
    RP_CERT_OFF = 0,
    RP_CERT_REQUIRED,
    RP_CERT_OPTIONAL,
    RP_CERT_OPTIONAL_INTERACTIVE
} rp_cert_mode;

typedef struct rp_appcfg rp_appcfg;

/*
 * Builds settings from base (the stored object; NULL = all defaults) with patch's members
 * replacing base's (NULL = none). Unknown members, bad values and inconsistent combinations
 * are refused with RP_EINVAL and a message in err naming the property. 0 and *out (one
 * reference), RP_EINVAL, RP_ENOMEM.
 */
int rp_appcfg_build(const json_t *base, const json_t *patch, rp_appcfg **out, char *err,
                    size_t errlen);
rp_appcfg *rp_appcfg_ref(rp_appcfg *c);
void rp_appcfg_unref(rp_appcfg *c); /* accepts NULL */

/* The merged settings as stored (borrowed). */
const json_t *rp_appcfg_stored(const rp_appcfg *c);
/* The settings as the API shows them: Azure's names, access rules with the synthetic last
 * rule, the CA list as a count and subjects instead of PEM. New reference. */
json_t *rp_appcfg_view(const rp_appcfg *c);

int rp_appcfg_min_tls(const rp_appcfg *c); /* 12 or 13 */
/* appCommandLine, or NULL for a static app. Valid as long as c. */
const char *rp_appcfg_command(const rp_appcfg *c);
rp_cert_mode rp_appcfg_cert_mode(const rp_appcfg *c);
/* The app process's sandbox: RP_PROC_SHARED | RP_PROC_ISOLATED, and its limits (defaults
 * filled in: memory in MiB, tasks, percent of one core). */
int rp_appcfg_tier(const rp_appcfg *c);
uint32_t rp_appcfg_memory_mb(const rp_appcfg *c);
uint32_t rp_appcfg_pids(const rp_appcfg *c);
uint32_t rp_appcfg_cpu_percent(const rp_appcfg *c);
/* healthCheckPath, or NULL when there is none. Valid as long as c. */
const char *rp_appcfg_health_path(const rp_appcfg *c);
/* 1 when a and b run the same process (command, tier, limits and health check path):
 * otherwise a settings change must restart it. */
int rp_appcfg_process_equal(const rp_appcfg *a, const rp_appcfg *b);

/*
 * The client-certificate decision for a request to path (the normalised path): 1 to go on,
 * 0 to refuse (403). *trusted is 1 when peer is present and chains to the trusted CAs (only
 * then may it be passed to the app). Required refuses a missing or untrusted certificate except
 * on excluded paths; the optional modes never refuse.
 */
int rp_appcfg_cert_check(const rp_appcfg *c, const char *path, X509 *peer, int *trusted);

/* Access restrictions for the app's host (scm 0) or its scm host (scm 1), honouring
 * scmIpSecurityRestrictionsUseMain. Fills *res; returns res->allowed. */
int rp_appcfg_access(const rp_appcfg *c, int scm, const rp_req *req, rp_access_result *res);

/*
 * CORS: 1 when origin (n bytes, as the Origin header sent it) may read the app's answers;
 * *credentials says whether Access-Control-Allow-Credentials goes with it ("*" never does).
 */
int rp_appcfg_cors(const rp_appcfg *c, const char *origin, size_t n, int *credentials);
/* 1 when the app has CORS settings (then the front door answers preflights for it). */
int rp_appcfg_cors_set(const rp_appcfg *c);

#endif
