/* msr/: VMX bitmap / SVM MSRPM layouts, KVM's default pass-through lists, CPUID-dependent
 * and dynamic pass-through, and revocation by a deny filter. */
#include "msr_test_util.h"

static bool vmx_bit(struct fx *f, uint32_t idx, bool w)
{
    struct msr_bitpos p;
    if (!msr_vmx_bitpos(idx, w, &p))
        return true;
    return (f->v->vmx_bitmap[p.byte] >> p.bit) & 1;
}

static bool svm_bit(struct fx *f, uint32_t idx, bool w)
{
    struct msr_bitpos p;
    if (!msr_svm_bitpos(idx, w, &p))
        return true;
    return (f->v->svm_msrpm[p.byte] >> p.bit) & 1;
}

START_TEST(vmx_layout_positions)
{
    struct msr_bitpos p;
    ck_assert(msr_vmx_bitpos(0x10, false, &p));
    ck_assert_uint_eq(p.byte, 0x002); ck_assert_uint_eq(p.bit, 0);
    ck_assert(msr_vmx_bitpos(0x10, true, &p));
    ck_assert_uint_eq(p.byte, 0x802); ck_assert_uint_eq(p.bit, 0);
    ck_assert(msr_vmx_bitpos(0x1fff, false, &p));
    ck_assert_uint_eq(p.byte, 0x3ff); ck_assert_uint_eq(p.bit, 7);
    ck_assert(msr_vmx_bitpos(0xc0000100u, false, &p)); /* FS_BASE */
    ck_assert_uint_eq(p.byte, 0x400 + 0x20); ck_assert_uint_eq(p.bit, 0);
    ck_assert(msr_vmx_bitpos(0xc0000102u, true, &p));  /* KERNEL_GS_BASE write */
    ck_assert_uint_eq(p.byte, 0xc00 + 0x20); ck_assert_uint_eq(p.bit, 2);
    ck_assert(msr_vmx_bitpos(0x174, true, &p));
    ck_assert_uint_eq(p.byte, 0x800 + 0x2e); ck_assert_uint_eq(p.bit, 4);
    ck_assert(!msr_vmx_bitpos(0x2000, false, &p));
    ck_assert(!msr_vmx_bitpos(0xc0010015u, false, &p)); /* AMD range: not in VMX bitmap */
    ck_assert(!msr_vmx_bitpos(0x4b564d00u, false, &p));
}
END_TEST

START_TEST(svm_layout_positions)
{
    struct msr_bitpos p;
    ck_assert(msr_svm_bitpos(0x10, false, &p));
    ck_assert_uint_eq(p.byte, 0x004); ck_assert_uint_eq(p.bit, 0);
    ck_assert(msr_svm_bitpos(0x10, true, &p));
    ck_assert_uint_eq(p.byte, 0x004); ck_assert_uint_eq(p.bit, 1);
    ck_assert(msr_svm_bitpos(0x13, true, &p));
    ck_assert_uint_eq(p.byte, 0x004); ck_assert_uint_eq(p.bit, 7);
    ck_assert(msr_svm_bitpos(0xc0000081u, false, &p)); /* STAR */
    ck_assert_uint_eq(p.byte, 0x800 + 0x20); ck_assert_uint_eq(p.bit, 2);
    ck_assert(msr_svm_bitpos(0xc0010130u, true, &p));  /* GHCB */
    ck_assert_uint_eq(p.byte, 0x1000 + 0x4c); ck_assert_uint_eq(p.bit, 1);
    ck_assert(msr_svm_bitpos(0xc0011fffu, true, &p));
    ck_assert_uint_eq(p.byte, 0x17ff); ck_assert_uint_eq(p.bit, 7);
    ck_assert(!msr_svm_bitpos(0xc0012000u, false, &p));
    ck_assert(!msr_svm_bitpos(0x2000, false, &p));
}
END_TEST

START_TEST(vmx_default_passthrough)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    ck_assert(!vmx_bit(f, MSR_FS_BASE, false) && !vmx_bit(f, MSR_FS_BASE, true));
    ck_assert(!vmx_bit(f, MSR_GS_BASE, false) && !vmx_bit(f, MSR_KERNEL_GS_BASE, true));
    ck_assert(!vmx_bit(f, MSR_IA32_SYSENTER_EIP, true));
    ck_assert(!vmx_bit(f, MSR_IA32_TSC, false));
    ck_assert(vmx_bit(f, MSR_IA32_TSC, true));          /* TSC writes intercepted */
    ck_assert(vmx_bit(f, MSR_STAR, false));             /* not in the VMX list */
    ck_assert(vmx_bit(f, MSR_EFER, true));
    ck_assert(vmx_bit(f, MSR_IA32_SPEC_CTRL, false));   /* dynamic: not yet */
    ck_assert(vmx_bit(f, MSR_IA32_PRED_CMD, true));     /* CPUID lacks IBPB */
    ck_assert(vmx_bit(f, MSR_CORE_C1_RES, false));      /* no C-states in guest */
    /* bytes of unrelated MSRs stay all-ones */
    ck_assert_uint_eq(f->v->vmx_bitmap[0x100], 0xff);
    fx_free(f);
}
END_TEST

START_TEST(svm_default_passthrough)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    ck_assert(!svm_bit(f, MSR_STAR, false) && !svm_bit(f, MSR_STAR, true));
    ck_assert(!svm_bit(f, MSR_LSTAR, true) && !svm_bit(f, MSR_SYSCALL_MASK, false));
    ck_assert(!svm_bit(f, MSR_FS_BASE, false) && !svm_bit(f, MSR_KERNEL_GS_BASE, true));
    ck_assert(!svm_bit(f, MSR_AMD64_SEV_ES_GHCB, false));
    ck_assert(svm_bit(f, MSR_IA32_TSC, false));         /* SVM: TSC not in the list */
    ck_assert(svm_bit(f, MSR_EFER, false));             /* SEV-ES only */
    /* SYSENTER_EIP/ESP pass through only for AMD-compatible guests; no CPUID counts as Intel */
    ck_assert(svm_bit(f, MSR_IA32_SYSENTER_EIP, false));
    struct kvm_cpuid_entry2 e = {.function = 0, .ebx = 0x68747541, .edx = 0x69746e65, .ecx = 0x444d4163};
    set_cpuid1(f, &e, 1);
    ck_assert(!svm_bit(f, MSR_IA32_SYSENTER_EIP, false));
    ck_assert(!svm_bit(f, MSR_IA32_SYSENTER_ESP, true));
    e.ebx = 0x756e6547; /* GenuineIntel */
    set_cpuid1(f, &e, 1);
    ck_assert(svm_bit(f, MSR_IA32_SYSENTER_EIP, false));
    ck_assert(svm_bit(f, MSR_IA32_SYSENTER_ESP, true));
    ck_assert(!svm_bit(f, MSR_IA32_SYSENTER_CS, true));
    fx_free(f);
}
END_TEST

START_TEST(cpuid_dependent_pred_cmd_flush)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_cpuid_entry2 e = {.function = 7, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                 .edx = (1u << 26) | (1u << 28)};
    set_cpuid1(f, &e, 1);
    ck_assert(!vmx_bit(f, MSR_IA32_PRED_CMD, true));
    ck_assert(vmx_bit(f, MSR_IA32_PRED_CMD, false));
    ck_assert(!vmx_bit(f, MSR_IA32_FLUSH_CMD, true));
    ck_assert(!svm_bit(f, MSR_IA32_PRED_CMD, true));
    set_cpuid1(f, NULL, 0);
    ck_assert(vmx_bit(f, MSR_IA32_PRED_CMD, true));
    fx_free(f);
}
END_TEST

START_TEST(spec_ctrl_passthrough_after_nonzero_write)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_cpuid_entry2 e = {.function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .edx = 1u << 26};
    set_cpuid1(f, &e, 1);
    uint32_t reason;
    ck_assert_int_eq(hw_wr(f, MSR_IA32_SPEC_CTRL, 0, &reason), EMU_MSR_OK);
    ck_assert(vmx_bit(f, MSR_IA32_SPEC_CTRL, true));
    ck_assert_int_eq(hw_wr(f, MSR_IA32_SPEC_CTRL, 1, &reason), EMU_MSR_OK);
    ck_assert(!vmx_bit(f, MSR_IA32_SPEC_CTRL, true));
    ck_assert(!vmx_bit(f, MSR_IA32_SPEC_CTRL, false));
    /* a host write (state restore) of a non-zero value does the same */
    struct fx *g = fx_new(MSR_VENDOR_AMD);
    ck_assert_int_eq(msr_vcpu_set(g->v, MSR_IA32_SPEC_CTRL, 0), 0);
    ck_assert(svm_bit(g, MSR_IA32_SPEC_CTRL, true));
    ck_assert_int_eq(msr_vcpu_set(g->v, MSR_IA32_SPEC_CTRL, 4), 0);
    ck_assert(!svm_bit(g, MSR_IA32_SPEC_CTRL, true));
    fx_free(g);
    uint64_t hits = f->v->stats.passthrough_hits, val;
    ck_assert_int_eq(hw_rd(f, MSR_IA32_SPEC_CTRL, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 1);
    ck_assert_uint_eq(f->v->stats.passthrough_hits, hits + 1);
    fx_free(f);
}
END_TEST

START_TEST(deny_filter_revokes_passthrough)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint8_t deny[8] = {0};
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, MSR_FS_BASE, 1, deny);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    /* before the vCPU syncs, the gate intercepts everything (stale generation) */
    ck_assert(msr_bitmap_intercepted(f->v, MSR_GS_BASE, false));
    msr_vcpu_sync(f->v);
    ck_assert(vmx_bit(f, MSR_FS_BASE, false));   /* read denied -> intercepted */
    ck_assert(!vmx_bit(f, MSR_FS_BASE, true));   /* write still passes */
    ck_assert(!vmx_bit(f, MSR_GS_BASE, false));
    ck_assert(svm_bit(f, MSR_FS_BASE, false));   /* both models follow the filter */
    ck_assert(!svm_bit(f, MSR_FS_BASE, true));
    /* a denied FS_BASE read now exits with FILTER instead of succeeding silently */
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_FILTER), 0);
    uint64_t val;
    uint32_t reason;
    ck_assert_int_eq(hw_rd(f, MSR_FS_BASE, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_FILTER);
    ck_assert_uint_eq(val, 0);
    /* removing the filter restores the pass-through */
    memset(&flt, 0, sizeof(flt));
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    msr_vcpu_sync(f->v);
    ck_assert(!vmx_bit(f, MSR_FS_BASE, false));
    fx_free(f);
}
END_TEST

START_TEST(stale_generation_intercepts_then_resyncs)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    uint8_t deny[8] = {0};
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_WRITE, MSR_LSTAR, 1, deny);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    uint32_t reason;
    /* no explicit sync: the hardware path must still refuse the write */
    ck_assert_int_eq(hw_wr(f, MSR_LSTAR, 0x1000, &reason), EMU_MSR_GP);
    ck_assert_uint_eq(f->cpu.lstar, 0);
    ck_assert(!msr_bitmap_intercepted(f->v, MSR_STAR, true)); /* synced by the intercept */
    ck_assert(msr_bitmap_intercepted(f->v, MSR_LSTAR, true));
    fx_free(f);
}
END_TEST

/* emu may call the ops without the gate: the ops apply the bitmap themselves */
START_TEST(ops_apply_the_gate_too)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 7), 0);
    uint32_t reason = 0;
    uint64_t val;
    f->cpu.seg[EMU_FS].base = 0x1234;
    ck_assert_int_eq(grd(f, MSR_FS_BASE, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0x1234);
    ck_assert_uint_eq(f->v->stats.passthrough_hits, 1);
    ck_assert_uint_eq(f->v->stats.rdmsr_intercepts, 0);
    /* a hardware #GP on a passed-through MSR never becomes a user-space exit */
    ck_assert_int_eq(gwr(f, MSR_FS_BASE, 0x8000000000000000ull, &reason), EMU_MSR_GP);
    ck_assert_uint_eq(f->v->stats.gp_injected, 1);
    fx_free(f);
}
END_TEST

START_TEST(passthrough_write_checks)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    ck_assert_int_eq(hw_wr(f, MSR_FS_BASE, 0x8000000000000000ull, &reason), EMU_MSR_GP);
    ck_assert_int_eq(hw_wr(f, MSR_FS_BASE, 0xffff800000000000ull, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(f->cpu.seg[EMU_FS].base, 0xffff800000000000ull);
    ck_assert_int_eq(hw_wr(f, MSR_IA32_SYSENTER_EIP, 0x0000800000000000ull, &reason), EMU_MSR_GP);
    f->cpu.cr4 |= 1ull << 12; /* CR4.LA57 does not matter: the check is static */
    ck_assert_int_eq(hw_wr(f, MSR_GS_BASE, 0x0080000000000000ull - 1, &reason), EMU_MSR_GP);
    f->vm.la57 = true;        /* a CPU with 5-level paging: 57-bit canonical */
    ck_assert_int_eq(hw_wr(f, MSR_GS_BASE, 0x0080000000000000ull - 1, &reason), EMU_MSR_OK);
    fx_free(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msr_bitmap");
    TCase *tc = tcase_create("bitmap");
    tcase_add_test(tc, vmx_layout_positions);
    tcase_add_test(tc, svm_layout_positions);
    tcase_add_test(tc, vmx_default_passthrough);
    tcase_add_test(tc, svm_default_passthrough);
    tcase_add_test(tc, cpuid_dependent_pred_cmd_flush);
    tcase_add_test(tc, spec_ctrl_passthrough_after_nonzero_write);
    tcase_add_test(tc, deny_filter_revokes_passthrough);
    tcase_add_test(tc, stale_generation_intercepts_then_resyncs);
    tcase_add_test(tc, passthrough_write_checks);
    tcase_add_test(tc, ops_apply_the_gate_too);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
