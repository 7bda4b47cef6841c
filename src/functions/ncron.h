/*
 * ncron.h - timer trigger schedules: six-field NCRONTAB expressions (UTC) and TimeSpan periods
 * (shared/specs/azure-platform-controls.md 1.9, 1.12; issue 6).
 *
 * The timer trigger parses a function's "schedule" once, after %AppSetting% expansion (the
 * caller's job), and asks rp_ncron_next for the first occurrence after "now" each time it
 * re-arms. Parsing and the next-occurrence search are pure: no allocation, no locale, no time
 * zone (UTC only; WEBSITE_TIME_ZONE is not supported), no libc time conversion.
 *
 * Azure Functions hands the string to NCrontab (atifaziz/NCrontab 3.3.3, package
 * ncrontab.signed, as referenced by Azure/azure-webjobs-sdk-extensions WebJobs.Extensions.csproj;
 * CronSchedule.TryCreate, then TimeSpan.TryParse in TimerSchedule.Create). This module accepts
 * what NCrontab accepts and means what it means, with the exceptions marked "(rampart)":
 *
 *   {second} {minute} {hour} {day} {month} {day-of-week}      ranges 0-59 0-59 0-23 1-31 1-12 0-6
 *
 * - Fields are separated by one or more SPACES; leading and trailing spaces are ignored. A tab
 *   or newline does not separate fields (NCrontab splits on ' ' only).
 * - Six fields, or five: exactly five tokens are classic cron, {minute} {hour} {day} {month}
 *   {day-of-week} with the seconds fixed at 0, as the WebJobs extension reads them
 *   (CronSchedule.HasSeconds, since 2017), so an app written that way runs unchanged. Errors
 *   then count fields as the user wrote them ("field 1 (minute)").
 * - An item is "*", a value, a range "a-b", or any of those followed by a step "/n"; a field
 *   is one item or a comma-separated list of them. "a/n" means "a-<field max>/n".
 * - A reversed range is swapped: "17-9" is "9-17" (NCrontab swaps, it does not wrap around).
 * - A step of 0 or a negative step means 1 (star stepped by 0 is star). The step is parsed
 *   like .NET int.Parse: an optional sign, and tabs/newlines around the digits are allowed.
 * - A value must be in the field's range, including both ends of a range and the start of
 *   "a/n"; 7 is NOT Sunday (day-of-week is 0-6).
 * - Month and day names: any case-insensitive prefix of the full English name ("JAN",
 *   "January", "Augu", "sept", "m"); when a prefix fits several names the first in calendar
 *   order wins ("Ju" = June, "Ma" = March, "S" = Sunday, "T" = Tuesday). (rampart) Names are
 *   ASCII letters only; NCrontab compares culture-aware, which may ignore some characters.
 * - A number may be followed by tabs or newlines (int.Parse's trailing whitespace): "5\t" is 5,
 *   but "*\t" and "MON\t" are refused, as in NCrontab.
 * - Empty list items ("1,,2", "1,", ",1") and empty range ends ("5-") are refused.
 * - Day-of-month AND day-of-week: a time matches only when both match. "0 0 0 13 * 5" is
 *   Friday the 13th (Vixie cron would run on every 13th and every Friday).
 * - (rampart) Values or steps that overflow a 32-bit int are refused with a reason (NCrontab
 *   throws an unhandled OverflowException), and so are NUL and non-ASCII bytes.
 *
 * TimeSpan form, tried when the string is one token (after trimming whitespace):
 * "hh:mm:ss" or "d.hh:mm:ss" with hh 0-23, mm and ss 0-59, d at most 10675199, the whole
 * greater than zero and at most a .NET TimeSpan. (rampart) The other forms TimeSpan.Parse
 * knows ("d", "hh:mm", "d.hh:mm", fractions, negative values) are refused.
 */
#ifndef RP_FUNCTIONS_NCRON_H
#define RP_FUNCTIONS_NCRON_H

#include <stddef.h>
#include <stdint.h>

#define RP_NCRON_MAX_LEN 256 /* bytes in a schedule string */
/* next() looks this far past `after` (50 years) before giving up: far enough for the rarest
 * possible schedule (Feb 29 on a given weekday recurs within 40 years, across 2100 too), so
 * RP_ENOENT means the schedule never runs ("0 0 0 30 2 *"). */
#define RP_NCRON_HORIZON_S ((int64_t)18263 * 86400)
/* Times next() works with: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z (.NET DateTime's). */
#define RP_NCRON_TIME_MIN (-62135596800LL)
#define RP_NCRON_TIME_MAX 253402300799LL
/* The longest TimeSpan period in whole seconds (TimeSpan.MaxValue is 10675199.02:48:05.477). */
#define RP_NCRON_PERIOD_MAX 922337203685LL

/*
 * A parsed schedule. The caller owns it (no resources; copy freely) and reads it only: bit v
 * of a set is on when value v matches. A zeroed struct is not a valid schedule.
 */
typedef struct rp_ncron {
    uint64_t second;  /* bits 0-59 */
    uint64_t minute;  /* bits 0-59 */
    uint32_t hour;    /* bits 0-23 */
    uint32_t day;     /* bits 1-31: day of the month */
    uint16_t month;   /* bits 1-12 */
    uint8_t wday;     /* bits 0-6: day of the week, 0 = Sunday */
    int64_t period_s; /* > 0: TimeSpan form, the sets are unused; 0: NCRONTAB */
} rp_ncron;

/*
 * Parses s[0..n) (need not be NUL-terminated; at most RP_NCRON_MAX_LEN bytes) into *out.
 * 0, with why[0] = '\0'. RP_EPARSE: *out is zeroed and why[0..cap) says what is wrong, naming
 * the field when one is ("field 3 (hour): 25 is out of range 0-23"); why may be NULL.
 * RP_EINVAL when s (with n > 0) or out is NULL.
 */
int rp_ncron_parse(const char *s, size_t n, rp_ncron *out, char *why, size_t cap);

/*
 * The first occurrence strictly after `after` (Unix seconds, UTC) into *next; pass "now"
 * rounded down, as NCrontab ignores the fraction (it starts from the base time's second + 1).
 * TimeSpan form: after + period. 0, or RP_ENOENT when there is none in
 * (after, after + RP_NCRON_HORIZON_S] or before the end of year 9999 ("0 0 0 30 2 *" never
 * occurs; Feb 29 on a given weekday may be decades away), or RP_EINVAL when c is not a parsed
 * schedule or `after` is outside RP_NCRON_TIME_MIN..RP_NCRON_TIME_MAX. Cost: it skips by
 * month, day, hour, minute and second, never second by second: a few passes per day searched
 * at worst (about 0.25 us for an impossible date on a 2020s x86 core).
 */
int rp_ncron_next(const rp_ncron *c, int64_t after, int64_t *next);

#endif
