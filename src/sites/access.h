/*
 * access.h - App Service access restrictions (Azure's siteConfig.ipSecurityRestrictions):
 * parse a rule list from JSON once, then decide every request against it.
 *
 * Workload: an app carries from none to a few dozen rules (at most RP_ACCESS_MAX_RULES); the
 * list is parsed when the app's configuration is written or loaded and checked on every request
 * the app serves, on every loop thread. A check allocates nothing and costs one address parse,
 * one pass over the X-Forwarded-For headers when a rule filters on them, and a few compares per
 * rule until the first match.
 *
 * Threads: an rp_access is immutable once rp_access_parse returned it, so any number of threads
 * may call rp_access_check and rp_access_to_json on it at once. Whoever parsed it owns it and
 * frees it with rp_access_free after every reader is done (the sites module swaps whole sets).
 *
 * Rule object, as Azure spells it (members are case-sensitive; any other member is refused;
 * null counts as absent for every optional member, so a list Azure's GET printed can be sent
 * back):
 *   ipAddress   required. "Any" (any case), or 1..RP_ACCESS_MAX_SOURCES CIDRs separated by
 *               commas (spaces around each are ignored) = a multi-source rule. A bare address
 *               means /32 or /128. See rp_cidr_parse for the exact syntax.
 *   action      required. "Allow" or "Deny" (any case).
 *   priority    required. Integer 1..RP_ACCESS_PRIORITY_MAX; lower is checked first, equal
 *               priorities keep the order of the list.
 *   name        optional string, at most RP_ACCESS_NAME_MAX bytes, no control characters.
 *   description optional string, at most RP_ACCESS_DESC_MAX bytes, no control characters.
 *   tag         optional, "Default" or "XffProxy" (any case). Both match ipAddress against the
 *               TCP peer: rampart has no front proxy whose X-Forwarded-For it could trust, so
 *               XffProxy is kept for round trips only. "ServiceTag" is refused (RP_EUNSUPPORTED).
 *   headers     optional object whose keys are "x-forwarded-host", "x-forwarded-for",
 *               "x-azure-fdid" and "x-fd-healthprobe" (lowercase, exactly) and whose values are
 *               arrays of at most RP_ACCESS_MAX_HEADER_VALUES strings of 1..RP_ACCESS_HEADER_
 *               VALUE_MAX bytes (an empty array, like an absent key, accepts any value or none):
 *                 x-forwarded-host  host names (letters, digits, '-', '_', '.'), or "*.suffix",
 *                                   which matches exactly one more label: "*.contoso.com" takes
 *                                   a.contoso.com, not a.b.contoso.com nor contoso.com;
 *                 x-forwarded-for   CIDRs as for ipAddress, one per string;
 *                 x-azure-fdid      printable ASCII without spaces; compared ignoring ASCII case
 *                                   (Front Door ids are GUIDs);
 *                 x-fd-healthprobe  printable ASCII without spaces; compared exactly.
 *   vnetSubnetResourceId, subnetMask, vnetTrafficTag, subnetTrafficTag: refused when not null
 *               (RP_EUNSUPPORTED): rampart has no virtual networks.
 *
 * Decision: the rules in priority order, first match wins. A rule matches when its source
 * matches the client address and every non-empty header filter matches. When nothing matches,
 * the default action applies: the explicit defaultAction if one was given, else Allow for an
 * empty list and Deny as soon as there is one rule (Azure's implicit "Deny all").
 */
#ifndef RP_SITES_ACCESS_H
#define RP_SITES_ACCESS_H

#include "http/codec.h"

#include <jansson.h>
#include <stddef.h>

#define RP_ACCESS_MAX_RULES         512
#define RP_ACCESS_MAX_SOURCES       8 /* CIDRs in one ipAddress */
#define RP_ACCESS_PRIORITY_MAX      2147483647
#define RP_ACCESS_NAME_MAX          64  /* bytes */
#define RP_ACCESS_DESC_MAX          256 /* bytes */
#define RP_ACCESS_MAX_HEADER_VALUES 8   /* strings in one header filter */
#define RP_ACCESS_HEADER_VALUE_MAX  64  /* bytes of one of them */
/* X-Forwarded-For addresses a check looks at (all occurrences together); later ones are
 * ignored, which can only make a filter that lists them not match. */
#define RP_ACCESS_XFF_MAX 64
/* Room for a formatted CIDR: an IPv6 address in its longest form, '/', 3 digits, NUL. */
#define RP_CIDR_STRLEN 52

typedef struct rp_access rp_access;

/*
 * Parses rules (a JSON array of rule objects; NULL or JSON null means no rules) and
 * default_action (NULL for none, or "Allow" / "Deny" in any case) into a new rp_access in *out.
 * The JSON is only read; nothing points into it afterwards.
 *
 * err (NULL, or errlen bytes) receives one line naming what is wrong, in the form
 * "rule 3 (web): ipAddress: '10.0.0.1/33' is not an IPv4 or IPv6 CIDR" (3 is the index in the
 * array, from 0; the name appears when the rule has a valid one) or "defaultAction: ...". It
 * quotes the caller's own input back (sanitised to printable ASCII) and is safe to show them.
 * On success err is "" (when errlen > 0).
 *
 * Returns 0; RP_EINVAL (malformed: wrong type, missing or unknown member, bad value);
 * RP_ETOOBIG (a count or length over its limit); RP_EUNSUPPORTED (service tags, virtual
 * network members); RP_ENOMEM. On failure *out is NULL.
 */
int rp_access_parse(const json_t *rules, const char *default_action, rp_access **out, char *err,
                    size_t errlen);

/* Frees a; accepts NULL. */
void rp_access_free(rp_access *a);

/* Number of rules (not counting the default). */
size_t rp_access_count(const rp_access *a);

/* What rp_access_check needs of a request; all borrowed for the duration of the call. */
typedef struct rp_access_req {
    const char *client_ip;    /* the TCP peer as inet_ntop prints it: "1.2.3.4", "::1",
                                 "::ffff:1.2.3.4" (matches IPv4 rules); NULL if unknown */
    const rp_header *headers; /* names compared ignoring ASCII case; may repeat */
    size_t nheaders;
} rp_access_req;

typedef struct rp_access_result {
    int allowed; /* 1 or 0 */
    int matched; /* index of the matching rule in priority order (as rp_access_to_json lists
                    them), or -1 when the default decided */
    /* The matching rule's name ("" if it has none); for the default "Allow all" / "Deny all";
       "Invalid client address" for an unreadable peer (see rp_access_check). */
    char rule[RP_ACCESS_NAME_MAX + 1];
} rp_access_result;

/*
 * Decides the request r against a and fills *res; never fails. a NULL means no rules and the
 * default Allow. A client_ip that is NULL or not an address (which the server never produces)
 * fails closed: when a has rules the request is denied with matched -1 and rule "Invalid client
 * address", even if an "Any" rule or the default would allow it; with no rules the default
 * decides as usual.
 *
 * Header values are taken as the codec leaves them (spaces and tabs around them are ignored
 * again here). X-Forwarded-Host: a ":port" suffix (digits, possibly none) is dropped and the
 * rest compared ignoring ASCII case; a value that is not a plain host name (an IPv6 literal, a
 * list) matches nothing. X-Forwarded-For: every occurrence is split at commas; each entry is
 * "1.2.3.4", "1.2.3.4:port", "2001:db8::1" or "[2001:db8::1]:port" (port optional), and entries
 * that are none of these are skipped. A filter on any header matches when any occurrence
 * matches any listed value; a request without that header matches only an empty filter.
 */
void rp_access_check(const rp_access *a, const rp_access_req *r, rp_access_result *res);

/*
 * The rules in priority order as Azure's GET shows them, as a new JSON array: every member
 * normalised (action and tag in Azure's spelling, tag "Default" when absent, CIDRs masked and in
 * inet_ntop's form with their prefix, hosts lowercase, "Any" for any source; name, description
 * and headers only when given), followed by the synthetic last rule {"ipAddress":"Any",
 * "action":"Allow"|"Deny","tag":"Default","priority":2147483647,"name":"Allow all"|"Deny all",
 * "description":"Allow all access"|"Deny all access"} for the default. Parsing the array
 * without its last element (with the same defaultAction) gives a set that decides every
 * request the same way. NULL on allocation failure.
 */
json_t *rp_access_to_json(const rp_access *a);

/*
 * An address range. IPv4 addresses are kept in IPv4-mapped IPv6 form (::ffff:a.b.c.d) with
 * v4 = 1 and bits counting from the IPv4 part (0..32); IPv6 has v4 = 0 and bits 0..128. Host
 * bits past the prefix are always zero.
 */
typedef struct rp_cidr {
    unsigned char addr[16];
    unsigned bits;
    int v4;
} rp_cidr;

/*
 * Parses s[0..n) (not NUL-terminated) as ADDRESS or ADDRESS/PREFIX, strictly: no spaces, no
 * brackets, no zone ("%eth0"), IPv4 only as a dotted quad of decimal numbers without leading
 * zeros ("01.2.3.4" is refused rather than guessed at as octal), PREFIX decimal without
 * leading zeros, 0..32 for IPv4 and 0..128 for IPv6. No prefix means a single address. Host
 * bits set past the prefix are accepted and cleared ("10.1.2.3/8" is 10.0.0.0/8), as Azure
 * accepts them. An IPv4-mapped IPv6 address ("::ffff:1.2.3.4", prefix 96 or more) is taken as
 * the IPv4 range it maps; an IPv6 range (v4 = 0) never contains an IPv4 client, so "::/0" does
 * not match IPv4 clients. Returns 0 or RP_EPARSE (*out untouched).
 */
int rp_cidr_parse(const char *s, size_t n, rp_cidr *out);

/*
 * Writes c as "a.b.c.d/bits" or "v6/bits" (inet_ntop's form) into out[cap]; rp_cidr_parse
 * gives c back. Returns 0 or RP_ETOOBIG (cap below RP_CIDR_STRLEN may not be enough).
 */
int rp_cidr_format(const rp_cidr *c, char *out, size_t cap);

/* 1 if the address addr/v4 (as rp_ip_parse leaves it) is inside c, else 0. */
int rp_cidr_contains(const rp_cidr *c, const unsigned char addr[16], int v4);

/*
 * Parses s[0..n) as a single IPv4 or IPv6 address with rp_cidr_parse's rules (no prefix):
 * addr[16] receives it, IPv4 (and IPv4-mapped IPv6) in mapped form with *v4 = 1. Returns 0
 * or RP_EPARSE.
 */
int rp_ip_parse(const char *s, size_t n, unsigned char addr[16], int *v4);

#endif
