/* Hyper-V enlightenments (abi/hyperv*.c, msr/h_hyperv.c), checked against Linux 6.12
 * hyperv.c and x86.c:
 *  - KVM_GET_SUPPORTED_HV_CPUID on the system and vCPU fds: E2BIG below ten entries, the
 *    ten leaves of kvm_get_hv_cpuid, nothing advertised that softkvm lacks (synthetic
 *    timers, eVMCS); the Hyper-V capabilities;
 *  - the synthetic MSRs go through msr/'s guest path: a filter denying
 *    HV_X64_MSR_GUEST_OS_ID deflects the guest's RDMSR with reason FILTER; without Hyper-V
 *    in the guest CPUID the MSR is refused (kvm_hv_get_msr_common returns 1: reason
 *    INVAL); with it, the guest reads what the host wrote through KVM_SET_MSRS;
 *  - host-only VP_INDEX: KVM_SET_MSRS sets it, and a guest WRMSR is refused. */
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

#define MEM_SIZE 0x200000
#define GDT_GPA 0x1000
#define PT_GPA 0x3000
#define CODE_GPA 0x10000

struct hv_cpuid {
    struct kvm_cpuid2 h;
    struct kvm_cpuid_entry2 e[64];
};

static const struct kvm_cpuid_entry2 *leaf(const struct hv_cpuid *c, uint32_t fn)
{
    for (unsigned i = 0; i < c->h.nent; i++)
        if (c->e[i].function == fn)
            return &c->e[i];
    return NULL;
}

static void check_hv_cpuid(const struct hv_cpuid *c)
{
    ck_assert_uint_eq(c->h.nent, 10);
    const struct kvm_cpuid_entry2 *e = leaf(c, 0x40000000);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->eax, 0x40000082);
    ck_assert_int_eq(memcmp(&e->ebx, "Linu", 4), 0);
    e = leaf(c, 0x40000001);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->eax, 0x31237648); /* "Hv#1" */
    e = leaf(c, 0x40000003);
    ck_assert_ptr_nonnull(e);
    ck_assert(e->eax & (1u << 5));    /* HV_MSR_HYPERCALL_AVAILABLE */
    ck_assert(!(e->eax & (1u << 3))); /* no synthetic timers that fire */
    ck_assert(!(e->edx & (1u << 19)));
    ck_assert(e->ebx & (1u << 20));   /* extended hypercalls exit to user space */
    e = leaf(c, 0x4000000a);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->eax & 0xffff, 0); /* no eVMCS version */
    ck_assert(e->eax & (1u << 19));   /* enlightened MSR bitmap (nested SVM, emu/svm.c) */
    ck_assert(e->eax & (1u << 17));   /* direct TLB flush from L2 (nested SVM) */
    for (unsigned i = 0; i < c->h.nent; i++)
        ck_assert(c->e[i].index == 0 && c->e[i].flags == 0);
}

START_TEST(supported_hv_cpuid)
{
    struct abi_process *p = abi_process_create();
    int kvm = abi_open_dev_kvm(p, O_RDWR);
    ck_assert_int_ge(kvm, 0);
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_CPUID), 1);
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_CHECK_EXTENSION, KVM_CAP_SYS_HYPERV_CPUID), 1);
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_ENFORCE_CPUID), 1);
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_ENLIGHTENED_VMCS), 0);
    struct hv_cpuid c = {.h.nent = 9};
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_GET_SUPPORTED_HV_CPUID, (unsigned long)&c), -E2BIG);
    c.h.nent = 64;
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_GET_SUPPORTED_HV_CPUID, (unsigned long)&c), 0);
    check_hv_cpuid(&c);
    int vm = (int)abi_ioctl(p, kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(vm, 0);
    int vcpu = (int)abi_ioctl(p, vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu, 0);
    memset(&c, 0, sizeof c);
    c.h.nent = 64;
    ck_assert_int_eq(abi_ioctl(p, vcpu, KVM_GET_SUPPORTED_HV_CPUID, (unsigned long)&c), 0);
    check_hv_cpuid(&c);
    /* no in-kernel LAPIC on this vCPU: no PV IPIs recommended (kvm_get_hv_cpuid) */
    ck_assert(!(leaf(&c, 0x40000004)->eax & (1u << 10)));
    abi_test_close_all(p);
}
END_TEST

struct guest {
    struct abi_process *p;
    int kvm, vm, vcpu;
    uint8_t *mem;
    struct kvm_run *run;
};

/* mov ecx, 0x40000000; rdmsr; out 0x10, eax; hlt */
static const uint8_t rd_guest_os_id[] = {0xb9, 0x00, 0x00, 0x00, 0x40, 0x0f, 0x32,
                                         0xe7, 0x10, 0xf4};
/* mov ecx, 0x40000002; mov eax, 7; xor edx, edx; wrmsr; hlt */
static const uint8_t wr_vp_index[] = {0xb9, 0x02, 0x00, 0x00, 0x40, 0xb8, 0x07, 0x00, 0x00,
                                      0x00, 0x31, 0xd2, 0x0f, 0x30, 0xf4};

/* A 64-bit guest running `code`; with_hv: the supported CPUID plus the Hyper-V leaves
 * (what the selftests' vcpu_set_hv_cpuid does) and the Hyper-V signature; user-space MSR
 * exits for INVAL and FILTER. */
static void guest_setup(struct guest *g, const uint8_t *code, size_t len, bool with_hv)
{
    g->p = abi_process_create();
    g->kvm = abi_open_dev_kvm(g->p, O_RDWR);
    ck_assert_int_ge(g->kvm, 0);
    g->vm = (int)abi_ioctl(g->p, g->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(g->vm, 0);
    g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g->mem, MAP_FAILED);
    abi_test_flat_tables(g->mem, GDT_GPA, PT_GPA);
    memcpy(g->mem + CODE_GPA, code, len);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)g->mem};
    ck_assert_int_eq(abi_ioctl(g->p, g->vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&r), 0);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_FILTER}};
    ck_assert_int_eq(abi_ioctl(g->p, g->vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    struct abi_test_cpuid cp;
    g->vcpu = abi_test_vcpu_supported(g->p, g->kvm, g->vm, &g->run, &cp);
    if (with_hv)
        abi_test_set_hv_cpuid(g->p, g->kvm, g->vcpu, &cp);
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(g->p, g->vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    abi_test_flat_sregs(&s, true, GDT_GPA, 0, 0, PT_GPA);
    ck_assert_int_eq(abi_ioctl(g->p, g->vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
    ck_assert_int_eq(abi_ioctl(g->p, g->vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
}

static void guest_teardown(struct guest *g)
{
    abi_test_close_all(g->p);
    munmap(g->mem, MEM_SIZE);
}

static int set_msr(struct guest *g, uint32_t index, uint64_t value)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e = {.index = index, .data = value}};
    return (int)abi_ioctl(g->p, g->vcpu, KVM_SET_MSRS, (unsigned long)&m);
}

static uint64_t get_msr(struct guest *g, uint32_t index)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e = {.index = index}};
    ck_assert_int_eq(abi_ioctl(g->p, g->vcpu, KVM_GET_MSRS, (unsigned long)&m), 1);
    return m.e.data;
}

START_TEST(guest_os_id_through_filter)
{
    struct guest g;
    guest_setup(&g, rd_guest_os_id, sizeof rd_guest_os_id, true);
    uint64_t deny = 0; /* bit clear = denied */
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    f.ranges[0] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ, .nmsrs = 1,
                                                .base = 0x40000000, .bitmap = (uint8_t *)&deny};
    ck_assert_int_eq(abi_ioctl(g.p, g.vm, KVM_X86_SET_MSR_FILTER, (unsigned long)&f), 0);
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_X86_RDMSR);
    ck_assert_uint_eq(g.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
    ck_assert_uint_eq(g.run->msr.index, 0x40000000);
    guest_teardown(&g);
}
END_TEST

START_TEST(guest_os_id_needs_hyperv_cpuid)
{
    struct guest g;
    guest_setup(&g, rd_guest_os_id, sizeof rd_guest_os_id, false);
    ck_assert_int_eq(set_msr(&g, 0x40000000, 0x8100ull << 48), 1); /* host: always */
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_X86_RDMSR);
    ck_assert_uint_eq(g.run->msr.reason, KVM_MSR_EXIT_REASON_INVAL);
    guest_teardown(&g);
}
END_TEST

START_TEST(guest_os_id_read)
{
    struct guest g;
    guest_setup(&g, rd_guest_os_id, sizeof rd_guest_os_id, true);
    ck_assert_int_eq(set_msr(&g, 0x40000000, 0x81000000c0ffeeull), 1);
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(g.run->io.port, 0x10);
    uint32_t v;
    memcpy(&v, (uint8_t *)g.run + g.run->io.data_offset, 4);
    ck_assert_uint_eq(v, 0x00c0ffee);
    guest_teardown(&g);
}
END_TEST

START_TEST(vp_index_host_only)
{
    struct guest g;
    guest_setup(&g, wr_vp_index, sizeof wr_vp_index, true);
    ck_assert_uint_eq(get_msr(&g, 0x40000002), 0); /* the vCPU's index */
    ck_assert_int_eq(set_msr(&g, 0x40000002, 65), 1);
    ck_assert_uint_eq(get_msr(&g, 0x40000002), 65);
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_X86_WRMSR);
    ck_assert_uint_eq(g.run->msr.reason, KVM_MSR_EXIT_REASON_INVAL);
    ck_assert_uint_eq(g.run->msr.index, 0x40000002);
    guest_teardown(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hyperv");
    TCase *tc = tcase_create("cpuid");
    tcase_add_test(tc, supported_hv_cpuid);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("msr");
    tcase_add_test(tm, guest_os_id_through_filter);
    tcase_add_test(tm, guest_os_id_needs_hyperv_cpuid);
    tcase_add_test(tm, guest_os_id_read);
    tcase_add_test(tm, vp_index_host_only);
    suite_add_tcase(s, tm);
    return softkvm_check_run(s);
}
