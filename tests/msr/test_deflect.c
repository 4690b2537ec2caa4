/* msr/: KVM_CAP_X86_USER_SPACE_MSR mask validation and the exit reason KVM picks
 * (FILTER / UNKNOWN / INVAL), #GP when the reason is not in the mask, no data leaks,
 * and the per-vCPU counters. */
#include "msr_test_util.h"

START_TEST(mask_validation)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 7), 0);
    ck_assert_uint_eq(atomic_load(&f->vm.user_space_msr_mask), 7);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 8), -EINVAL);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 1ull << 32), -EINVAL);
    ck_assert_uint_eq(atomic_load(&f->vm.user_space_msr_mask), 7); /* old mask stays */
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 0), 0);
    ck_assert_uint_eq(atomic_load(&f->vm.user_space_msr_mask), 0);
    fx_free(f);
}
END_TEST

START_TEST(unknown_msr_reason_unknown)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint64_t val;
    uint32_t reason;
    ck_assert_int_eq(grd(f, 0xdeadbeef, &val, &reason), EMU_MSR_GP);
    ck_assert_uint_eq(val, 0);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_UNKNOWN), 0);
    ck_assert_int_eq(grd(f, 0xdeadbeef, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_UNKNOWN);
    ck_assert_uint_eq(val, 0);
    ck_assert_int_eq(gwr(f, 0xdeadbeef, 5, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_UNKNOWN);
    /* FEATURE_CONTROL does not exist on the SVM flavour: UNKNOWN there */
    struct fx *a = fx_new(MSR_VENDOR_AMD);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&a->vm, 7), 0);
    ck_assert_int_eq(grd(a, MSR_IA32_FEAT_CTL, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_UNKNOWN);
    ck_assert_int_eq(grd(f, MSR_IA32_FEAT_CTL, &val, &reason), EMU_MSR_OK);
    fx_free(a);
    fx_free(f);
}
END_TEST

/* 6.12 x86.c: kvm_get_msr_common reads MSR_MTRRcap (kvm_mtrr_get_msr) but
 * kvm_set_msr_common has no case for it, so a guest WRMSR reaches the default case:
 * KVM_MSR_RET_UNSUPPORTED, deflected with reason UNKNOWN (not INVAL), on both flavours. */
START_TEST(mtrrcap_write_is_unknown)
{
    for (int vendor = MSR_VENDOR_INTEL; vendor <= MSR_VENDOR_AMD; vendor++) {
        struct fx *f = fx_new((enum msr_vendor)vendor);
        uint64_t val;
        uint32_t reason;
        ck_assert_int_eq(gwr(f, MSR_MTRRcap, 0, &reason), EMU_MSR_GP);
        ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_INVAL), 0);
        ck_assert_int_eq(gwr(f, MSR_MTRRcap, 0, &reason), EMU_MSR_GP); /* not an INVAL */
        ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_UNKNOWN), 0);
        ck_assert_int_eq(gwr(f, MSR_MTRRcap, 0, &reason), EMU_MSR_EXIT);
        ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_UNKNOWN);
        ck_assert_int_eq(grd(f, MSR_MTRRcap, &val, &reason), EMU_MSR_OK); /* reads stay */
        ck_assert_int_ne(msr_vcpu_set(f->v, MSR_MTRRcap, 0), 0);          /* host too */
        fx_free(f);
    }
}
END_TEST

START_TEST(refused_access_reason_inval)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint64_t val;
    uint32_t reason;
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_INVAL), 0);
    /* reserved EFER bit */
    ck_assert_int_eq(gwr(f, MSR_EFER, 1ull << 2, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_INVAL);
    /* TSC_AUX without RDTSCP/RDPID in CPUID */
    ck_assert_int_eq(grd(f, MSR_TSC_AUX, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_INVAL);
    /* ARCH_CAPABILITIES is read-only for the guest */
    ck_assert_int_eq(gwr(f, MSR_IA32_ARCH_CAPABILITIES, 0, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_INVAL);
    /* VMX capability MSRs without nested: known but refused (vmx_get_msr returns 1) */
    ck_assert_int_eq(grd(f, MSR_IA32_VMX_BASIC, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_INVAL);
    ck_assert_int_ne(msr_vcpu_get(f->v, MSR_IA32_VMX_BASIC, &val), 0);
    /* UNKNOWN not in the mask -> #GP */
    ck_assert_int_eq(grd(f, 0x12345, &val, &reason), EMU_MSR_GP);
    fx_free(f);
}
END_TEST

START_TEST(filter_reason_beats_handler)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint8_t deny[8] = {0};
    struct kvm_msr_filter flt = {0};
    /* an unknown MSR that is also denied: the filter is consulted first */
    one_range(&flt, 0, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, 0xdead0000u, 1, deny);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 7), 0);
    uint64_t val;
    uint32_t reason;
    ck_assert_int_eq(grd(f, 0xdead0000u, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_FILTER);
    ck_assert_int_eq(gwr(f, 0xdead0000u, 1, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_FILTER);
    ck_assert_int_eq(grd(f, 0xdead0001u, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_UNKNOWN);
    /* FILTER only: the filter exit still happens, others #GP */
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_FILTER), 0);
    ck_assert_int_eq(grd(f, 0xdead0001u, &val, &reason), EMU_MSR_GP);
    fx_free(f);
}
END_TEST

START_TEST(x2apic_not_filtered_and_no_lapic_is_inval)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint8_t deny[0x40] = {0};
    struct kvm_msr_filter flt = {.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0x800, 0x100, deny);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 7), 0);
    uint64_t val;
    uint32_t reason;
    /* no in-kernel LAPIC: kvm_x2apic_msr_read returns 1 -> INVAL, never FILTER */
    ck_assert_int_eq(grd(f, 0x802, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_INVAL);
    fx_free(f);
}
END_TEST

static int fake_apic_read(void *ctx, uint32_t index, uint64_t *value)
{
    (void)ctx;
    *value = 0x1000 + index;
    return 0;
}
static int fake_apic_write(void *ctx, uint32_t index, uint64_t value)
{
    *(uint64_t *)ctx = ((uint64_t)index << 32) | (uint32_t)value;
    return 0;
}

START_TEST(x2apic_hook_in_x2apic_mode_only)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    uint64_t last = 0, val;
    uint32_t reason;
    f->v->apic = (struct msr_apic_ops){.read = fake_apic_read, .write = fake_apic_write, .ctx = &last};
    ck_assert_int_eq(grd(f, 0x803, &val, &reason), EMU_MSR_GP); /* xAPIC mode */
    f->cpu.apic_base = 0xfee00d00; /* EN | EXTD | BSP */
    ck_assert_int_eq(grd(f, 0x803, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0x1803);
    ck_assert_int_eq(gwr(f, 0x830, 0x55, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(last, (0x830ull << 32) | 0x55);
    fx_free(f);
}
END_TEST

START_TEST(counters)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_UNKNOWN), 0);
    uint64_t val;
    uint32_t reason;
    grd(f, 0x12345, &val, &reason);
    grd(f, 0x12345, &val, &reason);
    gwr(f, MSR_EFER, 1ull << 3, &reason); /* reserved -> INVAL, not in mask -> #GP */
    hw_rd(f, MSR_FS_BASE, &val, &reason);  /* fast path */
    ck_assert_uint_eq(f->v->stats.exits[1], 2);
    ck_assert_uint_eq(f->v->stats.exits[0], 0);
    ck_assert_uint_eq(f->v->stats.gp_injected, 1);
    ck_assert_uint_eq(f->v->stats.rdmsr_intercepts, 2);
    ck_assert_uint_eq(f->v->stats.wrmsr_intercepts, 1);
    ck_assert_uint_eq(f->v->stats.passthrough_hits, 1);
    /* the stats-fd names cover every counter at distinct offsets */
    ck_assert_uint_eq(msr_stat_nfields, sizeof(struct msr_stats) / sizeof(uint64_t));
    uint64_t seen = 0;
    for (unsigned i = 0; i < msr_stat_nfields; i++) {
        ck_assert_uint_eq(msr_stat_fields[i].offset % 8, 0);
        seen |= 1ull << (msr_stat_fields[i].offset / 8);
    }
    ck_assert_uint_eq(seen, (1ull << msr_stat_nfields) - 1);
    const uint8_t *base = (const uint8_t *)&f->v->stats;
    ck_assert_uint_eq(*(const uint64_t *)(base + msr_stat_fields[1].offset), 2); /* unknown exits */
    fx_free(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msr_deflect");
    TCase *tc = tcase_create("deflect");
    tcase_add_test(tc, mask_validation);
    tcase_add_test(tc, unknown_msr_reason_unknown);
    tcase_add_test(tc, refused_access_reason_inval);
    tcase_add_test(tc, filter_reason_beats_handler);
    tcase_add_test(tc, x2apic_not_filtered_and_no_lapic_is_inval);
    tcase_add_test(tc, x2apic_hook_in_x2apic_mode_only);
    tcase_add_test(tc, counters);
    tcase_add_test(tc, mtrrcap_write_is_unknown);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
