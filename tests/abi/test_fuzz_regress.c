/* Regression tests for what kvm-fuzz (tools/kvm_fuzz/) found in abi/:
 *   - a triple fault made every later KVM_RUN a KVM_EXIT_SHUTDOWN (KVM reports it once),
 *     and on the SVM flavour it did not INIT-reset the vCPU;
 *   - a slot with userspace_addr 0 let emu dereference a null pointer (UBSan);
 *   - a KVM_SET_SIGNAL_MASK blocking SIGSEGV killed the process on a guest access to bad
 *     slot memory (KVM_RUN must fail with EFAULT);
 *   - the page walker set A/D bits in page tables inside a KVM_MEM_READONLY slot;
 *   - KVM_SET_SREGS (PAE PDPTE load) and KVM_TRANSLATE read bad slot memory outside
 *     KVM_RUN and crashed;
 *   - KVM_GET/SET_NESTED_STATE accessed members through a misaligned user pointer (UBSan). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include <check.h>

#include "tests/abi/abi_test_guest.h"
#include "tests/check_main.h"

struct ctx {
    struct abi_process *p;
    int sys, vm, vcpu;
    struct kvm_run *run;
    uint8_t *mem;
};

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    abi_host_fault(si->si_addr); /* a guest access: does not return */
    signal(sig, SIG_DFL);        /* anything else: crash for real */
}

static void open_vm(struct ctx *c, uint64_t slot_uaddr, bool own_memory)
{
    struct sigaction a = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigaction(SIGSEGV, &a, NULL);
    sigaction(SIGBUS, &a, NULL);
    c->p = abi_process_create();
    c->sys = abi_open_dev_kvm(c->p, 0);
    c->vm = (int)abi_ioctl(c->p, c->sys, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    c->mem = NULL;
    if (own_memory) {
        c->mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        slot_uaddr = (uintptr_t)c->mem;
    }
    struct kvm_userspace_memory_region m = {.slot = 0, .guest_phys_addr = 0,
                                            .memory_size = 0x10000, .userspace_addr = slot_uaddr};
    ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), 0);
    c->vcpu = (int)abi_ioctl(c->p, c->vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(c->vcpu, 0);
    c->run = mmap(NULL, ABI_VCPU_MMAP_PAGES * ABI_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  c->vcpu, 0);
    ck_assert_ptr_ne(c->run, MAP_FAILED);
}

/* Real mode at CS:IP 0:ip. */
static void real_mode_at(struct ctx *c, uint64_t ip)
{
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    s.cs.base = 0;
    s.cs.selector = 0;
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
    struct kvm_regs r = {.rip = ip, .rflags = 2, .rsp = 0x8000};
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_SET_REGS, (uintptr_t)&r), 0);
}

static void close_vm(struct ctx *c)
{
    munmap(c->run, ABI_VCPU_MMAP_PAGES * ABI_PAGE_SIZE);
    abi_test_close_all(c->p);
    if (c->mem)
        munmap(c->mem, 0x10000);
}

START_TEST(shutdown_is_reported_once)
{
    struct ctx c;
    open_vm(&c, 0, true);
    /* IDT limit 0: INT3 -> #GP -> #DF -> triple fault */
    c.mem[0x100] = 0xcc;
    c.mem[0x200] = 0xf4; /* hlt */
    real_mode_at(&c, 0x100);
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    s.idt.limit = 0;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_SHUTDOWN);
    /* user space puts the vCPU somewhere sane: it runs again (x86.c consumes
     * KVM_REQ_TRIPLE_FAULT when it reports the exit) */
    real_mode_at(&c, 0x200);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_HLT);
    close_vm(&c);
}
END_TEST

/* After a triple fault in guest code the SVM flavour INIT-resets the vCPU (svm.c
 * shutdown_interception 2252-2280: clear_page(vmcb), kvm_vcpu_reset(vcpu, true)), so it
 * stands at F000:FFF0 with the VMCB-held MSRs cleared and PAT kept; the VMX flavour
 * (handle_triple_fault) leaves everything as it was. A shutdown KVM asked for itself
 * (KVM_SET_VCPU_EVENTS triple_fault.pending -> KVM_REQ_TRIPLE_FAULT, x86.c
 * vcpu_enter_guest) resets nothing on either. */
static uint64_t get_msr(struct ctx *c, uint32_t index)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = index};
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_GET_MSRS, (uintptr_t)&m), 1);
    return m.e.data;
}

static void set_msr(struct ctx *c, uint32_t index, uint64_t v)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = index, .e.data = v};
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_SET_MSRS, (uintptr_t)&m), 1);
}

static void shutdown_case(const char *vendor, bool requested, bool smm)
{
    setenv("SOFTKVM_VENDOR", vendor, 1);
    bool amd = !strcmp(vendor, "amd");
    struct ctx c;
    open_vm(&c, 0, true);
    c.mem[0x100] = 0xcc; /* INT3 with IDT limit 0: #GP -> #DF -> triple fault */
    real_mode_at(&c, 0x100);
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    s.idt.limit = 0;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
    set_msr(&c, 0xc0000081, 0x0023001000000000ull); /* STAR */
    set_msr(&c, 0x174, 0x10);                       /* SYSENTER_CS */
    set_msr(&c, 0x277, 0x0606060606060606ull);      /* PAT */
    if (requested) {
        struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_TRIPLE_FAULT_EVENT, .args = {1}};
        ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_ENABLE_CAP, (uintptr_t)&cap), 0);
        struct kvm_vcpu_events e = {.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT};
        e.triple_fault.pending = 1;
        ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_VCPU_EVENTS, (uintptr_t)&e), 0);
    }
    if (smm) { /* SMM's address space 1 maps the same memory (an empty one would be MMIO) */
        struct kvm_userspace_memory_region m = {.slot = 1u << 16, .memory_size = 0x10000,
                                                .userspace_addr = (uintptr_t)c.mem};
        ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), 0);
        struct kvm_vcpu_events e = {.flags = KVM_VCPUEVENT_VALID_SMM};
        e.smi.smm = 1;
        ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_VCPU_EVENTS, (uintptr_t)&e), 0);
    }
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_SHUTDOWN);
    struct kvm_regs r;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_REGS, (uintptr_t)&r), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    ck_assert_uint_eq(get_msr(&c, 0x277), 0x0606060606060606ull); /* PAT: kept either way */
    if (smm) { /* svm.c 2271-2273: the INIT after a SHUTDOWN intercept leaves SMM first */
        struct kvm_vcpu_events e;
        ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_VCPU_EVENTS, (uintptr_t)&e), 0);
        bool left = amd && !requested;
        ck_assert_uint_eq(e.smi.smm, !left);
        ck_assert_uint_eq(!!(c.run->flags & KVM_RUN_X86_SMM), !left);
    }
    if (amd && !requested) {
        ck_assert_uint_eq(r.rip, 0xfff0);
        ck_assert_uint_eq(s.cs.base, 0xffff0000u);
        ck_assert_uint_eq(s.idt.limit, 0xffff);
        ck_assert_uint_eq(get_msr(&c, 0xc0000081), 0);
        ck_assert_uint_eq(get_msr(&c, 0x174), 0);
    } else {
        ck_assert_uint_ne(r.rip, 0xfff0);
        ck_assert_uint_eq(s.idt.limit, 0);
        ck_assert_uint_eq(get_msr(&c, 0xc0000081), 0x0023001000000000ull);
        ck_assert_uint_eq(get_msr(&c, 0x174), 0x10);
    }
    close_vm(&c);
    unsetenv("SOFTKVM_VENDOR");
}

START_TEST(svm_shutdown_inits_the_vcpu)
{
    for (int smm = 0; smm < 2; smm++) {
        shutdown_case("amd", false, smm);
        shutdown_case("amd", true, smm);
        shutdown_case("intel", false, smm);
        shutdown_case("intel", true, smm);
    }
}
END_TEST

START_TEST(null_userspace_addr_slot_is_efault)
{
    struct ctx c;
    open_vm(&c, 0, false); /* KVM accepts userspace_addr 0 (access_ok) */
    real_mode_at(&c, 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), -EFAULT);
    /* and the slot can go away again */
    struct kvm_userspace_memory_region m = {.slot = 0};
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), 0);
    close_vm(&c);
}
END_TEST

START_TEST(sigmask_blocking_sigsegv_is_still_efault)
{
    struct ctx c;
    /* host memory of the slot: reserved, never readable */
    void *hole = mmap(NULL, 0x10000, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    open_vm(&c, (uintptr_t)hole, false);
    real_mode_at(&c, 0);
    uint8_t buf[sizeof(struct kvm_signal_mask) + 8];
    struct kvm_signal_mask *sm = (void *)buf;
    sm->len = 8;
    uint64_t mask = ~0ull; /* everything, SIGSEGV and SIGBUS included */
    memcpy(sm->sigset, &mask, 8);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_SIGNAL_MASK, (uintptr_t)buf), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), -EFAULT);
    close_vm(&c);
    munmap(hole, 0x10000);
}
END_TEST

static void add_slot(struct ctx *c, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
                     void *host)
{
    struct kvm_userspace_memory_region m = {.slot = slot, .flags = flags, .guest_phys_addr = gpa,
                                            .memory_size = size, .userspace_addr = (uintptr_t)host};
    ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), 0);
}

START_TEST(no_accessed_bit_in_readonly_page_table)
{
    struct ctx c;
    open_vm(&c, 0, true);
    /* 32-bit paging, the page directory in a read-only slot: one 4 MiB page, A clear */
    uint32_t *pd = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pd[0] = 0x87; /* P | W | U | PS */
    add_slot(&c, 1, KVM_MEM_READONLY, 0x10000, 4096, pd);
    c.mem[0x1000] = 0xf4; /* hlt */
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    abi_test_flat_sregs(&s, false, 0x2000, 0x3000, 0, 0);
    s.cr0 |= 0x80000000u;
    s.cr4 = 0x10; /* PSE */
    s.cr3 = 0x10000;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
    struct kvm_regs r = {.rip = 0x1000, .rflags = 2};
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_REGS, (uintptr_t)&r), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_HLT);
    /* paging_tmpl.h: A/D bits are not processed in read-only slots */
    ck_assert_uint_eq(pd[0], 0x87);
    close_vm(&c);
    munmap(pd, 4096);
}
END_TEST

START_TEST(ioctls_reading_bad_slot_memory)
{
    struct ctx c;
    void *hole = mmap(NULL, 0x10000, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    open_vm(&c, (uintptr_t)hole, false);
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    abi_test_flat_sregs(&s, false, 0x2000, 0x3000, 0, 0);
    s.cr0 |= 0x80000000u;
    s.cr4 = 0x20; /* PAE: KVM_SET_SREGS loads the PDPTEs from CR3, which is in the hole */
    s.cr3 = 0x1000;
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
    struct kvm_translation t = {.linear_address = 0x1234};
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_TRANSLATE, (uintptr_t)&t), 0);
    ck_assert_uint_eq(t.valid, 0);
    s.cr4 = 0; /* 32-bit paging: the walk itself reads the hole */
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_TRANSLATE, (uintptr_t)&t), 0);
    ck_assert_uint_eq(t.valid, 0);
    close_vm(&c);
    munmap(hole, 0x10000);
}
END_TEST

START_TEST(nested_state_misaligned_pointer)
{
    struct ctx c;
    open_vm(&c, 0, true);
    static uint8_t buf[0x4000 + 16];
    uint8_t *u = buf + 3; /* a user pointer may have any alignment */
    uint32_t size = 16;   /* smaller than any state: E2BIG, and the size written back */
    memcpy(u + 4, &size, 4);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_GET_NESTED_STATE, (uintptr_t)u), -E2BIG);
    memcpy(&size, u + 4, 4);
    ck_assert_uint_gt(size, 16);
    close_vm(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuzz_regress");
    TCase *tc = tcase_create("fuzz_regress");
    tcase_add_test(tc, shutdown_is_reported_once);
    tcase_add_test(tc, svm_shutdown_inits_the_vcpu);
    tcase_add_test(tc, null_userspace_addr_slot_is_efault);
    tcase_add_test(tc, sigmask_blocking_sigsegv_is_still_efault);
    tcase_add_test(tc, no_accessed_bit_in_readonly_page_table);
    tcase_add_test(tc, ioctls_reading_bad_slot_memory);
    tcase_add_test(tc, nested_state_misaligned_pointer);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
