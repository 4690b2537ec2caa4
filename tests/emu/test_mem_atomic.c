/* tests/emu: a guest load or store of 1/2/4/8 bytes is one host access (single-copy
 * atomic, SDM vol.3 9.1.1), whatever memcpy() the program brings. The KVM selftests
 * define their own memcpy, a byte loop (string_override.c), which the preload library's
 * calls bind to; a generic-path store copied through it was seen half-written by another
 * vCPU (hyperv_tlb_flush: 0x0000000000020202 for 0x0202020202020202). This program
 * defines such a memcpy too and counts the calls that touch the guest's data page. */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>

#include "tests/emu/emu_test_vm.h"

static volatile int watch;
static const uint8_t *watch_lo, *watch_hi;
static volatile unsigned watch_hits;

/* A byte loop like the selftests' string_override.c; volatile so the compiler does not
 * turn it back into a call to memcpy */
void *memcpy(void *dst, const void *src, size_t n)
{
    volatile uint8_t *d = dst;
    const volatile uint8_t *s = src;
    if (watch && (((const uint8_t *)dst < watch_hi && (const uint8_t *)dst + n > watch_lo) ||
                  ((const uint8_t *)src < watch_hi && (const uint8_t *)src + n > watch_lo)))
        watch_hits = watch_hits + 1;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
    return dst;
}

static struct tvm T;
static struct emu_exit X;

static void setup(void) { tvm_init64(&T); }
static void teardown(void) { tvm_destroy(&T); }

#define CODE(...) do { static const uint8_t c_[] = {__VA_ARGS__}; tvm_code(&T, c_, sizeof c_); } while (0)

/* The generic paths: a store that misses the TLB (translate, then the page copy), a STOSQ
 * through emu_lin_write's TLB hit, a 2- and a 4-byte store of the same kind, the loads
 * back. None of them may go through memcpy() on guest memory. */
START_TEST(guest_accesses_do_not_go_through_memcpy)
{
#if SOFTKVM_SANITIZE
    /* ASan intercepts memcpy itself; this check is for the plain build */
    return;
#endif
    /* mov rax,0x0202020202020202; mov [DATA],rax; mov rdi,DATA+8; stosq; stosd; stosw;
     * mov rbx,[DATA]; mov ecx,[DATA+16]; hlt */
    CODE(0x48, 0xb8, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
         0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00,
         0x48, 0xc7, 0xc7, 0x08, 0x00, 0x20, 0x00,
         0x48, 0xab, 0xab, 0x66, 0xab,
         0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x20, 0x00,
         0x8b, 0x0c, 0x25, 0x10, 0x00, 0x20, 0x00, 0xf4);
    watch_lo = T.ram + TVM_DATA;
    watch_hi = watch_lo + 4096;
    watch_hits = 0;
    watch = 1;
    enum emu_exit_reason r = tvm_run(&T, &X);
    watch = 0;
    ck_assert_int_eq(r, EMU_EXIT_HLT);
    ck_assert_uint_eq(tvm_r64(&T, TVM_DATA), 0x0202020202020202ull);
    ck_assert_uint_eq(tvm_r64(&T, TVM_DATA + 8), 0x0202020202020202ull);
    ck_assert_uint_eq(tvm_r64(&T, TVM_DATA + 16), 0x0000020202020202ull);
    ck_assert_uint_eq(T.c->gpr[EMU_RBX], 0x0202020202020202ull);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 0x02020202u);
    ck_assert_uint_eq(watch_hits, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_mem_atomic");
    TCase *t = tcase_create("atomic");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, guest_accesses_do_not_go_through_memcpy);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
