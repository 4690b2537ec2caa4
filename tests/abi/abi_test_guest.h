/* Shared helpers for the ABI tests that run guests in-process through abi_ioctl (not a test
 * executable itself): closing a process's KVM fds, and the flat segment/control state of a
 * 32-bit or 64-bit guest with code selector 8 and data selector 0x10. */
#ifndef SOFTKVM_TESTS_ABI_TEST_GUEST_H
#define SOFTKVM_TESTS_ABI_TEST_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <check.h>

#include <linux/kvm.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

/* Close every fd softkvm handed out (as the process exiting would) and free the process. */
static inline void abi_test_close_all(struct abi_process *p)
{
    for (int fd = 0; fd < p->nfds; fd++)
        if (p->fds[fd]) {
            close(fd);
            abi_fd_closed(p, fd);
        }
    abi_process_destroy(p);
}

/* Flat protected mode: 64-bit long mode with 4-level paging at `cr3` (PAE, EFER.LME|LMA),
 * or 32-bit without paging (cr3 unused). GDT at `gdt` (null, code, data), IDT at `idt`. */
static inline void abi_test_flat_sregs(struct kvm_sregs *s, bool long_mode, uint64_t gdt,
                                       uint64_t idt, uint16_t idt_limit, uint64_t cr3)
{
    s->cs = (struct kvm_segment){.limit = 0xffffffff, .selector = 8, .type = 0xb, .present = 1,
                                 .s = 1, .l = long_mode, .db = !long_mode, .g = 1};
    struct kvm_segment ds = {.limit = 0xffffffff, .selector = 0x10, .type = 3, .present = 1,
                             .s = 1, .db = 1, .g = 1};
    s->ds = s->es = s->fs = s->gs = s->ss = ds;
    s->gdt.base = gdt;
    s->gdt.limit = 23;
    s->idt.base = idt;
    s->idt.limit = idt_limit;
    s->cr0 = long_mode ? 0x80000011 : 0x11;
    s->cr3 = long_mode ? cr3 : 0;
    s->cr4 = long_mode ? 0x20 : 0;
    s->efer = long_mode ? 0x500 : 0;
}

/* The memory of a flat 64-bit guest: GDT at `gdt` (null, 64-bit code, data) and 4-level
 * page tables at pml4 (3 pages) identity-mapping the first 2 MiB. */
static inline void abi_test_flat_tables(uint8_t *mem, uint64_t gdt, uint64_t pml4)
{
    uint64_t *g = (uint64_t *)(mem + gdt);
    g[1] = 0x00209a0000000000ull; /* 64-bit code */
    g[2] = 0x00cf92000000ffffull; /* data */
    uint64_t *pt = (uint64_t *)(mem + pml4);
    pt[0] = (pml4 + 0x1000) | 3;   /* PML4[0] -> PDPT */
    pt[512] = (pml4 + 0x2000) | 3; /* PDPT[0] -> PD */
    pt[1024] = 0x83;               /* PD[0]: 2 MiB identity page */
}

/* A vCPU with the supported CPUID set and its kvm_run mapped; the caller checks the
 * CPUID leaf it needs through *cpuid_out (the copy that was set). */
struct abi_test_cpuid {
    struct kvm_cpuid2 h;
    struct kvm_cpuid_entry2 e[64];
};
static inline int abi_test_vcpu_supported(struct abi_process *p, int kvm, int vm,
                                          struct kvm_run **run, struct abi_test_cpuid *cp)
{
    int vcpu = (int)abi_ioctl(p, vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu, 0);
    cp->h.nent = 64;
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_GET_SUPPORTED_CPUID, (unsigned long)cp), 0);
    ck_assert_int_eq(abi_ioctl(p, vcpu, KVM_SET_CPUID2, (unsigned long)cp), 0);
    long sz = abi_ioctl(p, kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    ck_assert_ptr_ne(*run, MAP_FAILED);
    return vcpu;
}

/* The supported CPUID of `cp` with the Hyper-V leaves replaced by KVM_GET_SUPPORTED_HV_CPUID's
 * (what vcpu_set_hv_cpuid does in the selftests), set on the vCPU. */
static inline void abi_test_set_hv_cpuid(struct abi_process *p, int kvm, int vcpu,
                                         struct abi_test_cpuid *cp)
{
    struct abi_test_cpuid hv = {.h.nent = 64};
    ck_assert_int_eq(abi_ioctl(p, kvm, KVM_GET_SUPPORTED_HV_CPUID, (unsigned long)&hv), 0);
    unsigned n = 0;
    for (unsigned i = 0; i < cp->h.nent; i++)
        if (cp->e[i].function < 0x40000000 || cp->e[i].function >= 0x40000100)
            cp->e[n++] = cp->e[i];
    ck_assert_uint_le(n + hv.h.nent, 64);
    memcpy(&cp->e[n], hv.e, hv.h.nent * sizeof hv.e[0]);
    cp->h.nent = n + hv.h.nent;
    ck_assert_int_eq(abi_ioctl(p, vcpu, KVM_SET_CPUID2, (unsigned long)cp), 0);
}

/* The L2 MSR matrix's L0 side (test_nested_vmx/svm l2_msr_matrix): user-space deflection of
 * filtered accesses, and a filter denying reads and writes of one MSR. */
static inline void abi_test_deflect_filtered(struct abi_process *p, int vm)
{
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
}

static inline void abi_test_deny_msr(struct abi_process *p, int vm, uint32_t msr)
{
    static uint8_t none = 0;
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    f.ranges[0] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, .base = msr, .nmsrs = 1,
        .bitmap = &none};
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_X86_SET_MSR_FILTER, (unsigned long)&f), 0);
}

#endif
