/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and KVM_CLEAR_DIRTY_LOG through abi_ioctl,
 * against virt/kvm/kvm_main.c (6.12): kvm_vm_ioctl_enable_cap_generic's flag
 * rule, kvm_clear_dirty_log_protect's errnos and range rules, GET_DIRTY_LOG
 * keeping the bits with manual protection, KVM_DIRTY_LOG_INITIALLY_SET
 * filling a new bitmap with exactly the slot's pages, and a real-mode guest
 * whose writes set bits again after CLEAR (softkvm logs every write instead
 * of write-protecting, so no re-protection is needed for that). */
#include <check.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

#define MANUAL KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
#define INIT_SET KVM_DIRTY_LOG_INITIALLY_SET
#define BIG_PAGES 100 /* not a multiple of 64: exercises the tail rules */
#define BIG_GPA 0x100000ull

struct vmctx {
    struct abi_process *p;
    int kvm, vm;
    void *big;    /* BIG_PAGES pages for slot 1 */
    uint8_t *low; /* 64 KiB at gpa 0 for the guest (slot 0) */
};

static long io(struct vmctx *c, int fd, unsigned long req, const void *arg)
{
    return abi_ioctl(c->p, fd, req, (unsigned long)arg);
}

static void vm_open(struct vmctx *c)
{
    memset(c, 0, sizeof *c);
    c->p = abi_process_create();
    ck_assert_ptr_nonnull(c->p);
    c->kvm = abi_open_dev_kvm(c->p, O_RDWR);
    ck_assert_int_ge(c->kvm, 0);
    c->vm = (int)io(c, c->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    c->big = mmap(NULL, BIG_PAGES * 4096ul, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    ck_assert_ptr_ne(c->big, MAP_FAILED);
}

static void vm_close(struct vmctx *c)
{
    abi_test_close_all(c->p);
    munmap(c->big, BIG_PAGES * 4096ul);
    if (c->low)
        munmap(c->low, 0x10000);
}

static long enable_manual(struct vmctx *c, uint64_t flags, uint32_t cap_flags)
{
    struct kvm_enable_cap e = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .flags = cap_flags,
                               .args = {flags}};
    return io(c, c->vm, KVM_ENABLE_CAP, &e);
}

static long set_slot(struct vmctx *c, uint32_t slot, uint64_t gpa, void *host, uint64_t size,
                     uint32_t flags)
{
    struct kvm_userspace_memory_region r = {.slot = slot, .flags = flags, .guest_phys_addr = gpa,
                                            .memory_size = size,
                                            .userspace_addr = (uintptr_t)host};
    return io(c, c->vm, KVM_SET_USER_MEMORY_REGION, &r);
}

static long get_log(struct vmctx *c, uint32_t slot, uint64_t bits[2])
{
    bits[0] = bits[1] = 0xa5a5a5a5a5a5a5a5ull; /* must be overwritten */
    struct kvm_dirty_log l = {.slot = slot, .dirty_bitmap = bits};
    return io(c, c->vm, KVM_GET_DIRTY_LOG, &l);
}

static long clear_log(struct vmctx *c, uint32_t slot, uint64_t first, uint32_t num, void *bits)
{
    struct kvm_clear_dirty_log l = {.slot = slot, .num_pages = num, .first_page = first,
                                    .dirty_bitmap = bits};
    return io(c, c->vm, KVM_CLEAR_DIRTY_LOG, &l);
}

#define TAIL_MASK ((1ull << (BIG_PAGES - 64)) - 1) /* slot 1's pages 64..99 */

START_TEST(manual_protect_cap)
{
    struct vmctx c;
    vm_open(&c);
    ck_assert_int_eq(io(&c, c.kvm, KVM_CHECK_EXTENSION,
                        (void *)(long)KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), MANUAL | INIT_SET);
    ck_assert_int_eq(io(&c, c.vm, KVM_CHECK_EXTENSION,
                        (void *)(long)KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), MANUAL | INIT_SET);
    ck_assert_int_eq(enable_manual(&c, INIT_SET, 0), -EINVAL); /* only with ENABLE */
    ck_assert_int_eq(enable_manual(&c, 4, 0), -EINVAL);
    ck_assert_int_eq(enable_manual(&c, MANUAL | 4, 0), -EINVAL);
    ck_assert_int_eq(enable_manual(&c, MANUAL, 1), -EINVAL); /* cap->flags */
    ck_assert_int_eq(enable_manual(&c, 0, 0), 0);
    ck_assert_int_eq(enable_manual(&c, MANUAL | INIT_SET, 0), 0);
    ck_assert_int_eq(enable_manual(&c, MANUAL, 0), 0);
    vm_close(&c);
}
END_TEST

START_TEST(clear_errnos)
{
    struct vmctx c;
    vm_open(&c);
    ck_assert_int_eq(set_slot(&c, 1, BIG_GPA, c.big, BIG_PAGES * 4096ull, KVM_MEM_LOG_DIRTY_PAGES), 0);
    ck_assert_int_eq(set_slot(&c, 2, 2 * BIG_GPA, c.big, 16 * 4096ull, 0), 0); /* not logged */
    uint64_t m[2] = {~0ull, ~0ull};

    ck_assert_int_eq(io(&c, c.vm, KVM_CLEAR_DIRTY_LOG, (void *)8), -EFAULT);
    ck_assert_int_eq(clear_log(&c, 1u << 16 | 1, 0, 64, m), -EINVAL); /* address space 1 */
    ck_assert_int_eq(clear_log(&c, ABI_USER_MEM_SLOTS, 0, 64, m), -EINVAL);
    ck_assert_int_eq(clear_log(&c, 5, 1, 64, m), -EINVAL); /* alignment before the lookup */
    ck_assert_int_eq(clear_log(&c, 5, 0, 64, m), -ENOENT);
    ck_assert_int_eq(clear_log(&c, 2, 0, 16, m), -ENOENT);
    ck_assert_int_eq(clear_log(&c, 1, 32, 64, m), -EINVAL);   /* first_page & 63 */
    ck_assert_int_eq(clear_log(&c, 1, 128, 0, m), -EINVAL);   /* starts past the slot */
    ck_assert_int_eq(clear_log(&c, 1, 64, 37, m), -EINVAL);   /* runs past the slot */
    ck_assert_int_eq(clear_log(&c, 1, 0, 32, m), -EINVAL);    /* short and unaligned */
    ck_assert_int_eq(clear_log(&c, 1, 0, BIG_PAGES + 1, m), -EINVAL);
    ck_assert_int_eq(clear_log(&c, 1, 0, 64, (void *)8), -EFAULT);
    ck_assert_int_eq(clear_log(&c, 1, 0, 0, (void *)8), 0);   /* nothing to copy */
    ck_assert_int_eq(clear_log(&c, 1, 64, 36, m), 0);         /* unaligned tail to the end */
    ck_assert_int_eq(clear_log(&c, 1, 0, 64, m), 0);
    ck_assert_int_eq(clear_log(&c, 1, 0, BIG_PAGES, m), 0);
    ck_assert_int_eq(clear_log(&c, 1, BIG_PAGES - 36, 36, m), 0); /* first_page 64 */
    vm_close(&c);
}
END_TEST

START_TEST(initially_set_and_manual_get)
{
    struct vmctx c;
    vm_open(&c);
    uint64_t b[2];
    /* without the cap a new bitmap starts clear */
    ck_assert_int_eq(set_slot(&c, 1, BIG_GPA, c.big, BIG_PAGES * 4096ull, KVM_MEM_LOG_DIRTY_PAGES), 0);
    ck_assert_int_eq(get_log(&c, 1, b), 0);
    ck_assert_uint_eq(b[0], 0);
    ck_assert_uint_eq(b[1], 0);
    /* INITIALLY_SET applies to bitmaps created afterwards: exactly the slot's pages */
    ck_assert_int_eq(enable_manual(&c, MANUAL | INIT_SET, 0), 0);
    ck_assert_int_eq(set_slot(&c, 1, BIG_GPA, c.big, BIG_PAGES * 4096ull, 0), 0);
    ck_assert_int_eq(set_slot(&c, 1, BIG_GPA, c.big, BIG_PAGES * 4096ull, KVM_MEM_LOG_DIRTY_PAGES), 0);
    ck_assert_int_eq(get_log(&c, 1, b), 0);
    ck_assert_uint_eq(b[0], ~0ull);
    ck_assert_uint_eq(b[1], TAIL_MASK);
    ck_assert_int_eq(get_log(&c, 1, b), 0); /* manual: GET does not clear */
    ck_assert_uint_eq(b[0], ~0ull);
    ck_assert_uint_eq(b[1], TAIL_MASK);

    uint64_t m[2] = {0x00ff00ff00ff00ffull, 0};
    ck_assert_int_eq(clear_log(&c, 1, 0, 64, m), 0);
    ck_assert_int_eq(get_log(&c, 1, b), 0);
    ck_assert_uint_eq(b[0], ~m[0]);
    ck_assert_uint_eq(b[1], TAIL_MASK);
    m[0] = 0xf;
    ck_assert_int_eq(clear_log(&c, 1, 64, BIG_PAGES - 64, m), 0); /* word 1 */
    ck_assert_int_eq(get_log(&c, 1, b), 0);
    ck_assert_uint_eq(b[0], ~0x00ff00ff00ff00ffull);
    ck_assert_uint_eq(b[1], TAIL_MASK & ~0xfull);

    /* args[0] = 0 turns manual protection off: GET clears again */
    ck_assert_int_eq(enable_manual(&c, 0, 0), 0);
    ck_assert_int_eq(get_log(&c, 1, b), 0);
    ck_assert_uint_eq(b[1], TAIL_MASK & ~0xfull);
    ck_assert_int_eq(get_log(&c, 1, b), 0);
    ck_assert_uint_eq(b[0], 0);
    ck_assert_uint_eq(b[1], 0);
    /* MANUAL alone: a new bitmap starts clear */
    ck_assert_int_eq(enable_manual(&c, MANUAL, 0), 0);
    ck_assert_int_eq(set_slot(&c, 3, 4 * BIG_GPA, c.big, 64 * 4096ull, KVM_MEM_LOG_DIRTY_PAGES), 0);
    ck_assert_int_eq(get_log(&c, 3, b), 0);
    ck_assert_uint_eq(b[0], 0);
    vm_close(&c);
}
END_TEST

/* Real mode at 0x1000: store to pages 3 and 5, report, store to page 3, report, HLT. */
static const uint8_t guest_code[] = {
    0xa2, 0x00, 0x30, /* mov [0x3000], al */
    0xa2, 0x00, 0x50, /* mov [0x5000], al */
    0xe6, 0x10,       /* out 0x10, al */
    0xa2, 0x00, 0x30, /* mov [0x3000], al */
    0xe6, 0x10,       /* out 0x10, al */
    0xf4,             /* hlt */
};

static uint32_t run_exit(struct vmctx *c, int vcpu, struct kvm_run *run)
{
    ck_assert_int_eq(io(c, vcpu, KVM_RUN, 0), 0);
    return run->exit_reason;
}

START_TEST(guest_writes_after_clear)
{
    struct vmctx c;
    vm_open(&c);
    ck_assert_int_eq(enable_manual(&c, MANUAL, 0), 0);
    c.low = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(c.low, MAP_FAILED);
    memcpy(c.low + 0x1000, guest_code, sizeof guest_code);
    ck_assert_int_eq(set_slot(&c, 0, 0, c.low, 0x10000, KVM_MEM_LOG_DIRTY_PAGES), 0);
    int vcpu = (int)io(&c, c.vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu, 0);
    long sz = io(&c, c.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    ck_assert_ptr_ne(run, MAP_FAILED);
    struct kvm_sregs s;
    ck_assert_int_eq(io(&c, vcpu, KVM_GET_SREGS, &s), 0);
    s.cs.base = 0;
    s.cs.selector = 0;
    ck_assert_int_eq(io(&c, vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_regs r = {.rip = 0x1000, .rflags = 2, .rax = 0x5a};
    ck_assert_int_eq(io(&c, vcpu, KVM_SET_REGS, &r), 0);

    uint64_t b[2], m[2] = {0, 0};
    ck_assert_uint_eq(run_exit(&c, vcpu, run), KVM_EXIT_IO);
    ck_assert_uint_eq(c.low[0x3000], 0x5a);
    ck_assert_int_eq(get_log(&c, 0, b), 0);
    ck_assert_uint_eq(b[0], 1u << 3 | 1u << 5);
    ck_assert_int_eq(get_log(&c, 0, b), 0);
    ck_assert_uint_eq(b[0], 1u << 3 | 1u << 5); /* still there */
    m[0] = 1u << 5;
    ck_assert_int_eq(clear_log(&c, 0, 0, 16, m), 0);
    ck_assert_int_eq(get_log(&c, 0, b), 0);
    ck_assert_uint_eq(b[0], 1u << 3);
    m[0] = 1u << 3;
    ck_assert_int_eq(clear_log(&c, 0, 0, 16, m), 0);
    ck_assert_int_eq(get_log(&c, 0, b), 0);
    ck_assert_uint_eq(b[0], 0);

    ck_assert_uint_eq(run_exit(&c, vcpu, run), KVM_EXIT_IO);
    ck_assert_int_eq(get_log(&c, 0, b), 0);
    ck_assert_uint_eq(b[0], 1u << 3); /* the write after CLEAR is logged again */
    ck_assert_uint_eq(run_exit(&c, vcpu, run), KVM_EXIT_HLT);
    munmap(run, (size_t)sz);
    vm_close(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dirty_log");
    TCase *tc = tcase_create("dirty_log");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, manual_protect_cap);
    tcase_add_test(tc, clear_errnos);
    tcase_add_test(tc, initially_set_and_manual_get);
    tcase_add_test(tc, guest_writes_after_clear);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
