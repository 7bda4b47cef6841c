/*
 * jsonmem.h - jansson's allocator for the whole process: every block it frees is wiped first.
 *
 * Secret values and key material pass through jansson (request bodies, answers, backups). Its
 * objects are freed with plain free(), which leaves the bytes in the heap for the next
 * allocation or a core dump to find. Installed once at start-up (main), the allocator wipes each
 * block (malloc_usable_size) before releasing it, so no copy outlives its json_t. Strings from
 * json_dumps that callers release with free() are not wiped by this; callers that dump secrets
 * wipe them themselves. The cost is one memset per free, small next to jansson's own work.
 *
 * Must be called before any jansson allocation (jansson requires it) and only once.
 */
#ifndef RP_BASE_JSONMEM_H
#define RP_BASE_JSONMEM_H

void rp_jsonmem_install(void);

#endif
