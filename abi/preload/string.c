/* abi/preload: the preload library's own memcpy, memmove, memset and memcmp.
 *
 * Why: an undefined memcpy in a shared library binds to the first definition in the
 * process, and a program may define its own. The KVM selftests do (lib/string_override.c:
 * byte loops, so guest code can call them), which made every bulk copy of softkvm's a
 * byte loop: slow, and not even the access widths a guest store must keep. These are
 * local to the library (exports.map keeps everything but the wrappers local), so the
 * library's calls bind here whatever the program defines; test_transport checks that
 * the library imports none of them.
 *
 * x86-64 string instructions: fast for bulk sizes on CPUs with ERMSB/FSRM, and short
 * sizes go through fixed-size moves (GCC's __builtin_memcpy with a constant size is an
 * inline load/store, never a call). Built with -fno-builtin and without loop-to-call
 * transformation (abi/CMakeLists.txt) so none of this turns back into a call of itself. */
#include <stddef.h>
#include <stdint.h>

static inline void copy_short(unsigned char *d, const unsigned char *s, size_t n)
{
    /* 0..16 bytes: two possibly overlapping moves of the largest fitting width; all
     * loads before the stores, so an overlapping memmove is fine too */
    if (n >= 8) {
        uint64_t a, b;
        __builtin_memcpy(&a, s, 8);
        __builtin_memcpy(&b, s + n - 8, 8);
        __builtin_memcpy(d, &a, 8);
        __builtin_memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        __builtin_memcpy(&a, s, 4);
        __builtin_memcpy(&b, s + n - 4, 4);
        __builtin_memcpy(d, &a, 4);
        __builtin_memcpy(d + n - 4, &b, 4);
    } else if (n) {
        unsigned char a = s[0], b = s[n / 2], c = s[n - 1];
        d[0] = a;
        d[n / 2] = b;
        d[n - 1] = c;
    }
}

void *memcpy(void *dst, const void *src, size_t n)
{
    if (n <= 16) {
        copy_short(dst, src, n);
        return dst;
    }
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n <= 16) {
        copy_short(d, s, n);
        return dst;
    }
    if (d <= s || d >= s + n) { /* a forward copy never reads what it already wrote */
        __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
        return dst;
    }
    d += n - 1;
    s += n - 1;
    __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t p, q;
        __builtin_memcpy(&p, x + i, 8);
        __builtin_memcpy(&q, y + i, 8);
        if (p != q)
            break;
    }
    for (; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}
