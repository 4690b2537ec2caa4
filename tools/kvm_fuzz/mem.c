/* kvm-fuzz: host mappings surrounded by PROT_NONE guard pages.
 *
 * Every buffer the fuzzer hands to an ioctl and every memory slot's host memory lives in
 * such a mapping, so a host access that runs off the end of a slot or of a user buffer
 * (instead of going through copy_from_user-like checks) faults at once and is reported
 * as a guard touch rather than silently reading neighbouring memory. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "tools/kvm_fuzz/fuzz.h"

#define PAGE 4096u
#define MAX_GUARDS 64

struct guard {
    const uint8_t *lo, *hi; /* [lo, hi) is PROT_NONE guard memory */
    const char *label;
};
static struct guard guards[MAX_GUARDS];
static unsigned nguards;

static void add_guard(const uint8_t *lo, size_t len, const char *label)
{
    if (nguards < MAX_GUARDS)
        guards[nguards++] = (struct guard){lo, lo + len, label};
}

void *fz_map_guarded(size_t pages, size_t guard, const char *label)
{
    size_t total = (pages + 2 * guard) * PAGE;
    uint8_t *m = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        perror("kvm-fuzz: mmap");
        exit(2);
    }
    uint8_t *body = m + guard * PAGE;
    if (mprotect(body, pages * PAGE, PROT_READ | PROT_WRITE)) {
        perror("kvm-fuzz: mprotect");
        exit(2);
    }
    add_guard(m, guard * PAGE, label);
    add_guard(body + pages * PAGE, guard * PAGE, label);
    return body;
}

const char *fz_guard_label(const void *addr)
{
    const uint8_t *a = addr;
    for (unsigned i = 0; i < nguards; i++)
        if (a >= guards[i].lo && a < guards[i].hi)
            return guards[i].label;
    return NULL;
}
