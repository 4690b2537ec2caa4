/* KVM_PRE_FAULT_MEMORY (abi/vcpu_prefault.c) as 6.12 kvm_main.c kvm_vcpu_pre_fault_memory
 * (4455-4497) and the ioctl (4703-4714), with mmu.c kvm_tdp_map_page's results:
 *   - flags, an unaligned gpa or size, or a wrapping range: EINVAL, range untouched;
 *   - pages with a memslot are "mapped", the range left is copied back;
 *   - no memslot: ENOENT (RET_PF_EMULATE) if nothing was mapped, else 0 with the rest left;
 *   - a slot whose host page cannot be read: EFAULT (the error pfn);
 *   - an unreadable argument: EFAULT. */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>

#include <check.h>

#include "abi/kvm_compat.h"
#include "tests/abi/abi_test_guest.h"
#include "tests/check_main.h"

struct ctx {
    struct abi_process *p;
    int sys, vm, vcpu;
    uint8_t *mem;
};

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    abi_host_fault(si->si_addr);
    signal(sig, SIG_DFL);
}

/* slot 0: 16 pages at gpa 0x100000, the 4th page of its host memory PROT_NONE */
static void open_vm(struct ctx *c)
{
    struct sigaction a = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigaction(SIGSEGV, &a, NULL);
    c->p = abi_process_create();
    c->sys = abi_open_dev_kvm(c->p, 0);
    c->vm = (int)abi_ioctl(c->p, c->sys, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    c->mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_int_eq(mprotect(c->mem + 0x3000, 0x1000, PROT_NONE), 0);
    struct kvm_userspace_memory_region m = {.slot = 0, .guest_phys_addr = 0x100000,
                                            .memory_size = 0x10000,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), 0);
    c->vcpu = (int)abi_ioctl(c->p, c->vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(c->vcpu, 0);
}

static long pf(struct ctx *c, struct kvm_pre_fault_memory *r)
{
    return abi_ioctl(c->p, c->vcpu, KVM_PRE_FAULT_MEMORY, (uintptr_t)r);
}

START_TEST(pre_fault_memory_as_6_12)
{
    struct ctx c;
    open_vm(&c);
    ck_assert_int_eq(abi_ioctl(c.p, c.sys, KVM_CHECK_EXTENSION, KVM_CAP_PRE_FAULT_MEMORY), 1);
    struct kvm_pre_fault_memory r = {.gpa = 0x100000, .size = 0x1000, .flags = 1};
    ck_assert_int_eq(pf(&c, &r), -EINVAL);
    r = (struct kvm_pre_fault_memory){.gpa = 0x100800, .size = 0x1000};
    ck_assert_int_eq(pf(&c, &r), -EINVAL);
    r = (struct kvm_pre_fault_memory){.gpa = 0x100000, .size = 0x800};
    ck_assert_int_eq(pf(&c, &r), -EINVAL);
    r = (struct kvm_pre_fault_memory){.gpa = 0x100000, .size = 0};
    ck_assert_int_eq(pf(&c, &r), -EINVAL); /* gpa + size <= gpa */
    r = (struct kvm_pre_fault_memory){.gpa = ~0xfffull, .size = 0x2000};
    ck_assert_int_eq(pf(&c, &r), -EINVAL);
    ck_assert_uint_eq(r.size, 0x2000); /* untouched on EINVAL */
    /* the first three pages: all mapped */
    r = (struct kvm_pre_fault_memory){.gpa = 0x100000, .size = 0x3000};
    ck_assert_int_eq(pf(&c, &r), 0);
    ck_assert_uint_eq(r.size, 0);
    ck_assert_uint_eq(r.gpa, 0x103000);
    /* into the unreadable host page: 0 after one page, then EFAULT with nothing done */
    r = (struct kvm_pre_fault_memory){.gpa = 0x102000, .size = 0x3000};
    ck_assert_int_eq(pf(&c, &r), 0);
    ck_assert_uint_eq(r.gpa, 0x103000);
    ck_assert_uint_eq(r.size, 0x2000);
    ck_assert_int_eq(pf(&c, &r), -EFAULT);
    ck_assert_uint_eq(r.size, 0x2000);
    /* past the slot's end: the slot's part, then ENOENT (pre_fault_memory_test's case) */
    r = (struct kvm_pre_fault_memory){.gpa = 0x10f000, .size = 0x2000};
    ck_assert_int_eq(pf(&c, &r), 0);
    ck_assert_uint_eq(r.size, 0x1000);
    ck_assert_int_eq(pf(&c, &r), -ENOENT);
    ck_assert_uint_eq(r.size, 0x1000);
    ck_assert_uint_eq(r.gpa, 0x110000);
    r = (struct kvm_pre_fault_memory){.gpa = 0, .size = 0x1000};
    ck_assert_int_eq(pf(&c, &r), -ENOENT);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_PRE_FAULT_MEMORY, 8), -EFAULT);
    abi_test_close_all(c.p);
    munmap(c.mem, 0x10000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prefault");
    TCase *tc = tcase_create("prefault");
    tcase_add_test(tc, pre_fault_memory_as_6_12);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
