/* kvm-fuzz: the deterministic random stream (xorshift64*) and errno names. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tools/kvm_fuzz/fuzz.h"

void fz_rng_seed(struct fz_rng *r, uint64_t seed)
{
    /* splitmix64 of the seed: seeds 0, 1, 2 ... give unrelated streams, never state 0 */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s = (z ^ (z >> 31)) | 1;
}

uint64_t fz_rand(struct fz_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint64_t fz_interesting(struct fz_rng *r)
{
    switch (fz_below(r, 10)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return ~0ull;
    case 3: return fz_below(r, 16);
    case 4: return fz_below(r, 512);
    case 5: { uint64_t p = 1ull << fz_below(r, 64); return p + fz_below(r, 3) - 1; }
    case 6: return (uint32_t)fz_rand(r);
    case 7: return 0x7fffffffull + fz_below(r, 3);
    case 8: return 0xffffffffull;
    default: return fz_rand(r);
    }
}

void fz_fill(struct fz_rng *r, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len >= 8) {
        uint64_t v = fz_rand(r);
        memcpy(p, &v, 8);
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = fz_rand(r);
        memcpy(p, &v, len);
    }
}

const char *fz_errname(long err)
{
    static char buf[32];
    switch (-err) {
#define E(x) case x: return #x;
        E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
        E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV)
        E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG)
        E(ENOSPC) E(ESPIPE) E(EROFS) E(ERANGE) E(ENOSYS) E(EOPNOTSUPP) E(ENODATA)
        E(EOVERFLOW) E(EHWPOISON)
#undef E
    case 524: return "ENOTSUPP"; /* kernel-internal errno that KVM lets escape */
    default:
        snprintf(buf, sizeof buf, "E%ld", -err);
        return buf;
    }
}
