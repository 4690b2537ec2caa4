/* msr/: the in-kernel MSRs: host- vs guest-initiated rules, CPUID gates and the
 * save/restore property of KVM_GET_MSR_INDEX_LIST. */
#include "msr_test_util.h"

static struct kvm_cpuid_entry2 leaf(uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx,
                                    uint32_t ecx, uint32_t edx)
{
    struct kvm_cpuid_entry2 e = {.function = fn, .index = idx, .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx};
    if (fn == 7 || fn == 0xd)
        e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    return e;
}

START_TEST(feature_control_host_guest_locked)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    uint64_t val;
    /* host: any of bits 0,1,2,17,18,20 */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_FEAT_CTL, 0x160007), 0);
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_IA32_FEAT_CTL, 1ull << 3), 0);
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_IA32_FEAT_CTL, 1ull << 19), 0);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_FEAT_CTL, &val), 0);
    ck_assert_uint_eq(val, 0x160007); /* failed writes changed nothing */
    /* locked: guest writes #GP, host writes still work; host 0 leaves VMX operation */
    f->v->in_vmx_operation = true;
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, 0x160007, &reason), EMU_MSR_GP);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_FEAT_CTL, 0), 0);
    ck_assert(!f->v->in_vmx_operation);
    /* guest without VMX in CPUID: only LOCKED */
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, 4, &reason), EMU_MSR_GP);
    struct kvm_cpuid_entry2 e = leaf(1, 0, 0, 0, 1u << 5, 0);
    set_cpuid1(f, &e, 1);
    /* CPUID.VMX alone is not enough: kvm_intel nested=N leaves VMX out of the KVM caps
     * (6.12 vmx.c vmx_set_cpu_caps 7964-7965, vmx_vcpu_after_set_cpuid 7840-7855) */
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, 4, &reason), EMU_MSR_GP);
    f->vm.nested_vmx = true;
    set_cpuid1(f, &e, 1);
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, 4, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, 1ull << 18, &reason), EMU_MSR_GP); /* no SGX */
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, 1ull << 20, &reason), EMU_MSR_GP); /* no LMCE */
    ck_assert_int_eq(msr_vcpu_setup_mce(f->v, 10 | (1ull << 27)), 0);
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, (1ull << 20) | 5, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_IA32_FEAT_CTL, 0, &reason), EMU_MSR_GP); /* now locked */
    fx_free(f);
}
END_TEST

START_TEST(efer_rules)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    /* host may set LME/NX without CPUID; reserved bits fail even for the host */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_EFER, (1ull << 8) | (1ull << 11) | 1), 0);
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_EFER, 1ull << 12), 0); /* SVME: not on VMX */
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_EFER, 1ull << 1), 0);
    /* guest: NX needs CPUID */
    ck_assert_int_eq(gwr(f, MSR_EFER, (1ull << 8) | (1ull << 11), &reason), EMU_MSR_GP);
    struct kvm_cpuid_entry2 e = leaf(0x80000001, 0, 0, 0, 0, (1u << 20) | (1u << 29));
    set_cpuid1(f, &e, 1);
    ck_assert_int_eq(gwr(f, MSR_EFER, (1ull << 8) | (1ull << 11), &reason), EMU_MSR_OK);
    /* LMA is kept from the CPU; LME cannot change while paging */
    f->cpu.efer |= 1ull << 10;
    f->cpu.cr0 |= 1ull << 31;
    ck_assert_int_eq(gwr(f, MSR_EFER, 1ull << 11, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_EFER, (1ull << 8) | 1, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(f->cpu.efer, (1ull << 8) | (1ull << 10) | 1);
    /* SVM flavour: SVME with CPUID SVM */
    struct fx *a = fx_new(MSR_VENDOR_AMD);
    ck_assert_int_eq(msr_vcpu_set(a->v, MSR_EFER, 1ull << 12), 0);
    ck_assert_int_eq(gwr(a, MSR_EFER, 1ull << 12, &reason), EMU_MSR_GP);
    fx_free(a);
    fx_free(f);
}
END_TEST

START_TEST(canonical_bases)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_KERNEL_GS_BASE, 0x0000800000000000ull), 0);
    ck_assert_int_eq(gwr(f, MSR_LSTAR, 0x0001000000000000ull, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_CSTAR, 0xffffffff80000000ull, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(f->cpu.cstar, 0xffffffff80000000ull);
    /* SYSENTER_EIP through KVM: canonicalised, not refused */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_SYSENTER_EIP, 0x0000800000001234ull), 0);
    ck_assert_uint_eq(f->cpu.sysenter_eip, 0xffff800000001234ull);
    fx_free(f);
}
END_TEST

START_TEST(platform_info_cap)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    uint64_t val;
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_PLATFORM_INFO, 0xff00 | (1ull << 31)), 0);
    ck_assert_int_eq(grd(f, MSR_PLATFORM_INFO, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0xff00 | (1ull << 31));
    ck_assert_int_eq(gwr(f, MSR_PLATFORM_INFO, 0, &reason), EMU_MSR_GP);
    /* CPUID faulting: enabled through MISC_FEATURES_ENABLES while PLATFORM_INFO allows it */
    ck_assert(!msr_cpuid_faulting(f->v));
    ck_assert_int_eq(gwr(f, 0x140, 1, &reason), EMU_MSR_OK);
    ck_assert(msr_cpuid_faulting(f->v));
    ck_assert_int_eq(gwr(f, 0x140, 2, &reason), EMU_MSR_GP);
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_PLATFORM_INFO, 0), 0); /* can't withdraw while used */
    ck_assert_int_eq(gwr(f, 0x140, 0, &reason), EMU_MSR_OK);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_PLATFORM_INFO, 0xff00), 0);
    ck_assert_int_eq(gwr(f, 0x140, 1, &reason), EMU_MSR_GP); /* no longer supported */
    ck_assert_int_eq(msr_vm_enable_platform_info(&f->vm, 0), 0);
    ck_assert_int_eq(grd(f, MSR_PLATFORM_INFO, &val, &reason), EMU_MSR_GP);
    ck_assert_uint_eq(val, 0);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_PLATFORM_INFO, &val), 0); /* host still reads */
    fx_free(f);
}
END_TEST

START_TEST(hwcr_bits)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    uint64_t val;
    for (int b = 0; b < 64; b++) {
        int r = msr_vcpu_set(f->v, MSR_K7_HWCR, 1ull << b);
        bool ok = b == 18 || b == 24 || b == 3 || b == 6 || b == 8;
        ck_assert_msg((r == 0) == ok, "HWCR bit %d", b);
        if (ok) {
            ck_assert_int_eq(msr_vcpu_get(f->v, MSR_K7_HWCR, &val), 0);
            ck_assert_uint_eq(val, (b == 18 || b == 24) ? 1ull << b : 0);
        }
    }
    fx_free(f);
}
END_TEST

START_TEST(tsc_and_adjust)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    uint64_t val;
    const uint64_t HOST = 1ull << 40, GUEST = 1ull << 41;
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_TSC, HOST), 0);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC_ADJUST, &val), 0);
    ck_assert_uint_eq(val, 0); /* host TSC write leaves TSC_ADJUST */
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC, &val), 0);
    ck_assert(val >= HOST && val - HOST < (1ull << 36));
    ck_assert_int_eq(gwr(f, MSR_IA32_TSC, GUEST, &reason), EMU_MSR_OK);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC_ADJUST, &val), 0);
    ck_assert(val >= GUEST - HOST - (1ull << 36) && val <= GUEST - HOST); /* guest write moves it */
    /* TSC_ADJUST writes are ignored without CPUID.7.0:EBX[1] */
    ck_assert_int_eq(gwr(f, MSR_IA32_TSC_ADJUST, 5, &reason), EMU_MSR_OK);
    uint64_t adj;
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC_ADJUST, &adj), 0);
    ck_assert_uint_eq(adj, val);
    struct kvm_cpuid_entry2 e = leaf(7, 0, 0, 1u << 1, 0, 0);
    set_cpuid1(f, &e, 1);
    uint64_t before = msr_guest_tsc(f->v, &f->cpu);
    ck_assert_int_eq(gwr(f, MSR_IA32_TSC_ADJUST, adj + (1ull << 44), &reason), EMU_MSR_OK);
    ck_assert(msr_guest_tsc(f->v, &f->cpu) - before >= (1ull << 44)); /* guest adjust shifts TSC */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_TSC_ADJUST, 7), 0);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC_ADJUST, &val), 0);
    ck_assert_uint_eq(val, 7);
    fx_free(f);
}
END_TEST

/* The tsc_msrs_test.c sequence, on a frozen counter so values are exact. */
static uint64_t fake_counter;
static uint64_t read_fake(void *ctx) { (void)ctx; return fake_counter; }

START_TEST(tsc_msrs_selftest_sequence)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_cpuid_entry2 e = leaf(7, 0, 0, 1u << 1, 0, 0);
    set_cpuid1(f, &e, 1);
    fake_counter = 123456789;
    msr_vcpu_set_tsc_source(f->v, read_fake, NULL, 1000000);
    const uint64_t STEP = 4ull << 30, HOST_ADJ = 64ull << 30;
    uint64_t tsc, adj, t0;
    uint32_t reason;
#define BOTH(t, a) do { ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC, &tsc), 0); \
        ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC_ADJUST, &adj), 0); \
        ck_assert_uint_eq(tsc, (t)); ck_assert_uint_eq(adj, (a)); } while (0)
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC, &t0), 0);
    ck_assert_uint_lt(t0, 1ull << 30);            /* starts near 0 */
    fake_counter += 1000;
    BOTH(t0 + 1000, 0);
    /* guest TSC write: both move */
    ck_assert_int_eq(gwr(f, MSR_IA32_TSC, STEP, &reason), EMU_MSR_OK);
    uint64_t a1 = STEP - (t0 + 1000);
    BOTH(STEP, a1);
    /* guest TSC_ADJUST write: both move by the same delta */
    ck_assert_int_eq(gwr(f, MSR_IA32_TSC_ADJUST, 2 * STEP, &reason), EMU_MSR_OK);
    uint64_t t2 = STEP + (2 * STEP - a1);
    BOTH(t2, 2 * STEP);
    /* host TSC write: TSC_ADJUST untouched */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_TSC, HOST_ADJ + t2), 0);
    BOTH(HOST_ADJ + t2, 2 * STEP);
    /* guest TSC_ADJUST write keeps the host offset */
    ck_assert_int_eq(gwr(f, MSR_IA32_TSC_ADJUST, 3 * STEP, &reason), EMU_MSR_OK);
    BOTH(HOST_ADJ + t2 + STEP, 3 * STEP);
    /* guest TSC write: the host offset shows up in TSC_ADJUST */
    ck_assert_int_eq(gwr(f, MSR_IA32_TSC, 4 * STEP, &reason), EMU_MSR_OK);
    BOTH(4 * STEP, 3 * STEP + (4 * STEP - (HOST_ADJ + t2 + STEP)));
#undef BOTH
    fx_free(f);
}
END_TEST

/* vCPUs of one VM share one TSC (kvm_synchronize_tsc on a stable host TSC: a
 * synchronising write takes the current generation's offset, x86.c 2800-2815). */
static uint64_t counter_a;
static uint64_t read_a(void *ctx) { (void)ctx; return counter_a; }

START_TEST(vcpus_share_one_tsc)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct cpu cpu2 = {0};
    counter_a = 5000000000ull;
    msr_vcpu_set_tsc_source(f->v, read_a, NULL, 1000000);
    counter_a += 777; /* the second vCPU is created later */
    struct msr_vcpu *v2 = msr_vcpu_create(&f->vm, &cpu2);
    msr_vcpu_set_tsc_source(v2, read_a, NULL, 1000000);
    uint64_t t1, t2;
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC, &t1), 0);
    ck_assert_int_eq(msr_vcpu_get(v2, MSR_IA32_TSC, &t2), 0);
    ck_assert_uint_eq(t2, t1); /* creation synchronises: one offset */
    ck_assert_uint_eq(t1, 777);
    /* a host write far from the shared TSC starts a new generation; one within 1 s of
     * virtual cycles joins it exactly */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_TSC, 1ull << 40), 0);
    ck_assert_int_eq(msr_vcpu_set(v2, MSR_IA32_TSC, (1ull << 40) + 12345), 0);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC, &t1), 0);
    ck_assert_int_eq(msr_vcpu_get(v2, MSR_IA32_TSC, &t2), 0);
    ck_assert_uint_eq(t2, t1);
    ck_assert_uint_eq(t1, 1ull << 40);
    /* two seconds of cycles away: a new generation, the value as written */
    ck_assert_int_eq(msr_vcpu_set(v2, MSR_IA32_TSC, (1ull << 40) + 2000000000ull), 0);
    ck_assert_int_eq(msr_vcpu_get(v2, MSR_IA32_TSC, &t2), 0);
    ck_assert_uint_eq(t2, (1ull << 40) + 2000000000ull);
    msr_vcpu_destroy(v2);
    fx_free(f);
}
END_TEST

START_TEST(fresh_vcpu_tsc_starts_near_zero)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    uint64_t tsc;
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC, &tsc), 0);
    ck_assert_uint_lt(tsc, 1ull << 34);
    fx_free(f);
}
END_TEST

START_TEST(tsc_aux_gate_and_bits)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    ck_assert_int_eq(gwr(f, MSR_TSC_AUX, 1, &reason), EMU_MSR_GP);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_TSC_AUX, 1), 0); /* host bypasses the gate */
    struct kvm_cpuid_entry2 e[2] = {leaf(0x80000001, 0, 0, 0, 0, 1u << 27),
                                    leaf(0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69)};
    set_cpuid1(f, e, 2);
    ck_assert_int_eq(gwr(f, MSR_TSC_AUX, 1ull << 32, &reason), EMU_MSR_GP); /* Intel: reserved */
    set_cpuid1(f, e, 1); /* no vendor leaf: still "Intel-compatible" in KVM */
    ck_assert_int_eq(gwr(f, MSR_TSC_AUX, 1ull << 32, &reason), EMU_MSR_GP);
    e[1].ebx = 0x68747541; /* AuthenticAMD: bits 63:32 dropped */
    set_cpuid1(f, e, 2);
    ck_assert_int_eq(gwr(f, MSR_TSC_AUX, (1ull << 32) | 9, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(f->cpu.tsc_aux, 9);
    fx_free(f);
}
END_TEST

START_TEST(pv_msrs_enforcement)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    uint64_t val;
    static const uint32_t pv[] = {MSR_KVM_WALL_CLOCK, MSR_KVM_SYSTEM_TIME, MSR_KVM_WALL_CLOCK_NEW,
                                  MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_ASYNC_PF_EN, MSR_KVM_STEAL_TIME,
                                  MSR_KVM_PV_EOI_EN, MSR_KVM_POLL_CONTROL, MSR_KVM_ASYNC_PF_INT,
                                  MSR_KVM_ASYNC_PF_ACK};
    /* without enforcement every PV MSR is readable */
    for (unsigned i = 0; i < sizeof(pv) / sizeof(pv[0]); i++)
        ck_assert_int_eq(grd(f, pv[i], &val, &reason), EMU_MSR_OK);
    ck_assert_int_eq(msr_vcpu_enable_pv_enforcement(f->v, 1), 0);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_UNKNOWN), 0);
    for (unsigned i = 0; i < sizeof(pv) / sizeof(pv[0]); i++) {
        ck_assert_int_eq(grd(f, pv[i], &val, &reason), EMU_MSR_EXIT);
        ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_UNKNOWN);
        ck_assert_int_eq(gwr(f, pv[i], 0, &reason), EMU_MSR_EXIT);
        /* host: advertised -> reads 0 and writes of 0 succeed, non-zero writes fail */
        ck_assert_int_eq(msr_vcpu_get(f->v, pv[i], &val), 0);
        ck_assert_int_eq(msr_vcpu_set(f->v, pv[i], 0), 0);
        ck_assert_int_ne(msr_vcpu_set(f->v, pv[i], 2), 0);
    }
    /* expose KVM_FEATURE_POLL_CONTROL only */
    struct kvm_cpuid_entry2 e[2] = {leaf(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
                                    leaf(0x40000001, 0, 1u << 12, 0, 0, 0)};
    set_cpuid1(f, e, 2);
    ck_assert_int_eq(gwr(f, MSR_KVM_POLL_CONTROL, 1, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_KVM_POLL_CONTROL, 2, &reason), EMU_MSR_GP); /* INVAL, not in mask */
    ck_assert_int_eq(grd(f, MSR_KVM_STEAL_TIME, &val, &reason), EMU_MSR_EXIT);
    fx_free(f);
}
END_TEST

static uint8_t guest_ram[0x4000];
static int ram_write(void *ctx, uint64_t gpa, const void *src, size_t n)
{
    (void)ctx;
    if (gpa >= sizeof(guest_ram) || n > sizeof(guest_ram) - gpa)
        return -EFAULT;
    memcpy(guest_ram + gpa, src, n);
    return 0;
}
static int ram_read(void *ctx, uint64_t gpa, void *dst, size_t n)
{
    (void)ctx;
    if (gpa >= sizeof(guest_ram) || n > sizeof(guest_ram) - gpa)
        return -EFAULT;
    memcpy(dst, guest_ram + gpa, n);
    return 0;
}

START_TEST(kvmclock_writes_guest_memory)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    memset(guest_ram, 0, sizeof(guest_ram));
    msr_vm_set_guest_memory(&f->vm, ram_write, ram_read, NULL);
    ck_assert_int_eq(gwr(f, MSR_KVM_WALL_CLOCK_NEW, 0x1000, &reason), EMU_MSR_OK);
    uint32_t wc[3];
    memcpy(wc, guest_ram + 0x1000, sizeof(wc));
    ck_assert_uint_eq(wc[0], 2); /* even: update complete */
    ck_assert(wc[1] > 1600000000u);  /* seconds since 1970 at kvmclock 0 */
    ck_assert_int_eq(gwr(f, MSR_KVM_SYSTEM_TIME_NEW, 0x2001, &reason), EMU_MSR_OK);
    uint32_t version, mul;
    uint64_t tsc_ts;
    memcpy(&version, guest_ram + 0x2000, 4);
    memcpy(&tsc_ts, guest_ram + 0x2008, 8);
    memcpy(&mul, guest_ram + 0x2018, 4);
    ck_assert_uint_eq(version & 1, 0);
    ck_assert_uint_ne(version, 0);
    ck_assert_uint_ne(mul, 0);
    ck_assert_uint_ne(tsc_ts, 0);
    /* a 1 GHz counter: ns = ((delta << shift) * mul) >> 32 must be the identity */
    msr_vcpu_set_tsc_source(f->v, read_fake, NULL, 1000000);
    fake_counter = 1000;
    ck_assert_int_eq(gwr(f, MSR_KVM_SYSTEM_TIME_NEW, 0x2001, &reason), EMU_MSR_OK);
    int8_t shift;
    memcpy(&mul, guest_ram + 0x2018, 4);
    memcpy(&shift, guest_ram + 0x201c, 1);
    uint64_t delta = 123456789;
    uint64_t ns = (uint64_t)(((unsigned __int128)(shift >= 0 ? delta << shift : delta >> -shift) * mul) >> 32);
    ck_assert_uint_eq(ns, delta);
    memcpy(&tsc_ts, guest_ram + 0x2008, 8);
    uint64_t tsc_now;
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_TSC, &tsc_now), 0);
    ck_assert_uint_eq(tsc_ts, tsc_now); /* frozen counter */
    /* outside memory: accepted, nothing written, no crash */
    ck_assert_int_eq(gwr(f, MSR_KVM_WALL_CLOCK_NEW, 0x100000, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_KVM_WALL_CLOCK_NEW, sizeof(guest_ram) - 4, &reason), EMU_MSR_OK);
    fx_free(f);
}
END_TEST

/* MSR_IA32_UCODE_REV after RESET under KVM_X86_QUIRK_STUFF_FEATURE_MSRS: svm.c
 * __svm_vcpu_reset 0x01000065, vmx.c __vmx_vcpu_reset 0x100000000; INIT keeps it. */
START_TEST(ucode_rev_reset_per_vendor)
{
    const uint64_t want[2] = {0x100000000ull, 0x01000065ull};
    for (int vendor = MSR_VENDOR_INTEL; vendor <= MSR_VENDOR_AMD; vendor++) {
        struct fx *f = fx_new((enum msr_vendor)vendor);
        uint64_t val;
        uint32_t reason;
        ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_UCODE_REV, &val), 0);
        ck_assert_uint_eq(val, want[vendor]);
        ck_assert_int_eq(grd(f, MSR_IA32_UCODE_REV, &val, &reason), EMU_MSR_OK);
        ck_assert_uint_eq(val, want[vendor]);
        ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_UCODE_REV, 0x42ull << 32), 0);
        msr_vcpu_reset(f->v, true);
        ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_UCODE_REV, &val), 0);
        ck_assert_uint_eq(val, 0x42ull << 32);
        msr_vcpu_reset(f->v, false);
        ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_UCODE_REV, &val), 0);
        ck_assert_uint_eq(val, want[vendor]);
        fx_free(f);
    }
}
END_TEST

START_TEST(mce_rules)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    uint64_t val;
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_MCG_CAP, &val), 0);
    ck_assert_uint_eq(val, 32);
    ck_assert_int_eq(gwr(f, MSR_IA32_MCG_CAP, 0, &reason), EMU_MSR_GP);
    ck_assert_int_eq(grd(f, MSR_IA32_MCG_CTL, &val, &reason), EMU_MSR_GP); /* no MCG_CTL_P */
    ck_assert_int_eq(msr_vcpu_setup_mce(f->v, 0), -EINVAL);
    ck_assert_int_eq(msr_vcpu_setup_mce(f->v, 33), -EINVAL);
    ck_assert_int_eq(msr_vcpu_setup_mce(f->v, 4 | (1ull << 8)), 0);
    ck_assert_int_eq(grd(f, MSR_IA32_MCG_CTL, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, ~0ull);
    ck_assert_int_eq(gwr(f, MSR_IA32_MCG_CTL, 5, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_IA32_MC0_CTL + 4, ~0ull & ~(1ull << 10), &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_IA32_MC0_CTL + 4, 0x10, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_IA32_MC0_CTL + 1, 1, &reason), EMU_MSR_GP);  /* STATUS non-zero */
    ck_assert_int_eq(gwr(f, MSR_IA32_MC0_CTL + 1, 0, &reason), EMU_MSR_OK);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_MC0_CTL + 1, 1), 0);         /* host may */
    ck_assert_int_eq(grd(f, MSR_IA32_MC0_CTL + 16, &val, &reason), EMU_MSR_GP); /* bank 4 > count */
    fx_free(f);
}
END_TEST

START_TEST(mtrr_and_pat)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    uint64_t val;
    ck_assert_int_eq(grd(f, MSR_MTRRcap, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0x508);
    ck_assert_int_eq(gwr(f, MSR_MTRRcap, 0, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_MTRRdefType, 0xc06, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_MTRRdefType, 0x002, &reason), EMU_MSR_GP); /* type 2 */
    ck_assert_int_eq(gwr(f, MSR_MTRRdefType, 0x106, &reason), EMU_MSR_GP); /* bit 8 */
    ck_assert_int_eq(gwr(f, MSR_MTRRfix64K_00000, 0x0606060606060606ull, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_MTRRfix4K_C0000, 0x0706060606060606ull, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, 0x200, 0x80000006, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, 0x200, 0x80000106, &reason), EMU_MSR_GP);     /* base bits 11:8 */
    ck_assert_int_eq(gwr(f, 0x201, 0xf80000800ull, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, 0x201, 0x1000000800ull, &reason), EMU_MSR_GP); /* above MAXPHYADDR 36 */
    ck_assert_int_eq(grd(f, 0x251, &val, &reason), EMU_MSR_GP);            /* hole */
    ck_assert_int_eq(grd(f, MSR_IA32_CR_PAT, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0x0007040600070406ull);
    ck_assert_int_eq(gwr(f, MSR_IA32_CR_PAT, 0x0007040600070402ull, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_IA32_CR_PAT, 0x0007040600070408ull, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_IA32_CR_PAT, 0x0707070707070707ull, &reason), EMU_MSR_OK);
    fx_free(f);
}
END_TEST

START_TEST(apic_base_rules)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0xfee00d00, &reason), EMU_MSR_GP); /* no x2APIC CPUID */
    struct kvm_cpuid_entry2 e = leaf(1, 0, 0, 0, 1u << 21, 0);
    set_cpuid1(f, &e, 1);
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0xfee00d00, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0xfee00900, &reason), EMU_MSR_GP); /* x2 -> x */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_APICBASE, 0xfee00900), 0);       /* host may */
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0xfee00500, &reason), EMU_MSR_GP); /* EXTD w/o EN */
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0xfee00901, &reason), EMU_MSR_GP); /* reserved */
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0x1000000900ull, &reason), EMU_MSR_GP); /* > MAXPHYADDR */
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_IA32_APICBASE, 0xfee00c00, &reason), EMU_MSR_GP); /* disabled -> x2 */
    fx_free(f);
}
END_TEST

START_TEST(misc_enable_and_capabilities)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint32_t reason;
    uint64_t val;
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_ARCH_CAPABILITIES, 0x21), 0); /* before KVM_RUN */
    ck_assert_int_eq(grd(f, MSR_IA32_MISC_ENABLE, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0x1800);
    ck_assert_int_eq(gwr(f, MSR_IA32_MISC_ENABLE, 0x0800, &reason), EMU_MSR_GP); /* RO bit 12 */
    ck_assert_int_eq(gwr(f, MSR_IA32_MISC_ENABLE, 0x1880, &reason), EMU_MSR_OK);
    ck_assert_int_eq(grd(f, MSR_IA32_MISC_ENABLE, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0x1800); /* EMON write ignored */
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_MISC_ENABLE, 0x80), 0);
    ck_assert_int_eq(grd(f, MSR_IA32_ARCH_CAPABILITIES, &val, &reason), EMU_MSR_GP);
    ck_assert_int_eq(grd(f, MSR_IA32_PERF_CAPABILITIES, &val, &reason), EMU_MSR_GP);
    /* the vCPU has run now: feature MSRs are frozen except for rewriting the same value */
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_IA32_ARCH_CAPABILITIES, 0x23), 0);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_ARCH_CAPABILITIES, 0x21), 0);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_UCODE_REV, 0x42), 0); /* not immutable */
    struct kvm_cpuid_entry2 e = leaf(7, 0, 0, 0, 0, 1u << 29);
    set_cpuid1(f, &e, 1);
    ck_assert_int_eq(grd(f, MSR_IA32_ARCH_CAPABILITIES, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, 0x21);
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_IA32_PERF_CAPABILITIES, 1), 0);
    /* frozen: only its own value (kvm_caps.supported_perf_cap at creation) is accepted */
    uint64_t perf_cap = ~0ull;
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_PERF_CAPABILITIES, &perf_cap), 0);
    ck_assert_uint_eq(perf_cap, msr_pmu_supported_perf_cap(f->vm.vendor));
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_PERF_CAPABILITIES, perf_cap), 0);
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_IA32_PERF_CAPABILITIES, perf_cap ^ (1ull << 13)), 0);
    /* XSS: no supported bits; guest needs XSAVES */
    ck_assert_int_eq(gwr(f, MSR_IA32_XSS, 0, &reason), EMU_MSR_GP);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_XSS, 0), 0);
    for (int b = 0; b < 64; b++)
        ck_assert_int_ne(msr_vcpu_set(f->v, MSR_IA32_XSS, 1ull << b), 0);
    fx_free(f);
}
END_TEST

START_TEST(spec_ctrl_family)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    uint32_t reason;
    uint64_t val;
    ck_assert_int_eq(grd(f, MSR_IA32_SPEC_CTRL, &val, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_IA32_PRED_CMD, 1, &reason), EMU_MSR_GP);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_SPEC_CTRL, 4), 0);
    ck_assert_int_ne(msr_vcpu_set(f->v, MSR_IA32_SPEC_CTRL, 8), 0);
    struct kvm_cpuid_entry2 e = leaf(0x80000008, 0, 48, (1u << 12) | (1u << 14), 0, 0);
    set_cpuid1(f, &e, 1);
    ck_assert_int_eq(hw_wr(f, MSR_IA32_PRED_CMD, 1, &reason), EMU_MSR_OK);
    ck_assert_int_eq(hw_wr(f, MSR_IA32_PRED_CMD, 2, &reason), EMU_MSR_GP);
    ck_assert_int_eq(grd(f, MSR_IA32_PRED_CMD, &val, &reason), EMU_MSR_GP); /* write-only */
    ck_assert_int_eq(gwr(f, MSR_IA32_SPEC_CTRL, 1, &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_IA32_FLUSH_CMD, 1, &reason), EMU_MSR_GP);  /* no FLUSH_L1D */
    ck_assert_int_eq(grd(f, MSR_AMD64_VIRT_SPEC_CTRL, &val, &reason), EMU_MSR_GP);
    fx_free(f);
}
END_TEST

START_TEST(vm_cr_and_hsave)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    uint32_t reason;
    uint64_t val;
    ck_assert_int_eq(gwr(f, MSR_VM_CR, 1ull << 5, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_VM_CR, (1ull << 4) | (1ull << 3), &reason), EMU_MSR_OK);
    ck_assert_int_eq(gwr(f, MSR_VM_CR, 0, &reason), EMU_MSR_OK); /* LOCK/SVMDIS now frozen */
    ck_assert_int_eq(grd(f, MSR_VM_CR, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(val, (1ull << 4) | (1ull << 3));
    ck_assert_int_eq(gwr(f, MSR_VM_HSAVE_PA, 0x1001, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(f, MSR_VM_HSAVE_PA, 0x2000, &reason), EMU_MSR_OK);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_VM_HSAVE_PA, 0x1001), 0);
    /* TSC_RATIO: host-only, 1.0 by default, bits 63:40 reserved */
    ck_assert_int_eq(msr_vcpu_get(f->v, 0xc0000104, &val), 0);
    ck_assert_uint_eq(val, 1ull << 32);
    ck_assert_int_eq(grd(f, 0xc0000104, &val, &reason), EMU_MSR_GP);
    ck_assert_int_ne(msr_vcpu_set(f->v, 0xc0000104, 1ull << 40), 0);
    struct fx *i = fx_new(MSR_VENDOR_INTEL);
    ck_assert_int_ne(msr_vcpu_get(i->v, 0xc0000104, &val), 0); /* AMD only */
    ck_assert_int_eq(grd(i, MSR_VM_CR, &val, &reason), EMU_MSR_GP);
    ck_assert_int_eq(gwr(i, MSR_VM_HSAVE_PA, 0x1001, &reason), EMU_MSR_OK); /* VMX: dropped */
    fx_free(i);
    fx_free(f);
}
END_TEST

/* Every MSR KVM_GET_MSR_INDEX_LIST reports can be read by the host and written back
 * (what VMMs do for migration). */
static int nop_apic_read(void *c, uint32_t i, uint64_t *v) { (void)c; (void)i; *v = 0; return 0; }
static int nop_apic_write(void *c, uint32_t i, uint64_t v) { (void)c; (void)i; (void)v; return 0; }

static void save_restore(enum msr_vendor vendor)
{
    struct fx *f = fx_new(vendor);
    f->v->apic.read = nop_apic_read;
    f->v->apic.write = nop_apic_write;
    /* the nested VMX caps are readable only with CPUID.1:ECX.VMX (vmx_get_msr), and a
     * restore of their own value must succeed (vmx_set_vmx_msr) */
    struct kvm_cpuid_entry2 l1 = {.function = 1, .ecx = 1u << 5};
    if (vendor == MSR_VENDOR_INTEL) {
        f->vm.nested_vmx = true; /* kvm_intel nested=Y, as abi sets it */
        msr_vcpu_set_cpuid(f->v, &l1, 1);
    }
    uint32_t idx[512];
    unsigned n = msr_index_list(vendor, NULL, 0);
    ck_assert_uint_gt(n, 30);
    ck_assert_uint_le(n, 512);
    ck_assert_uint_eq(msr_index_list(vendor, idx, n), n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t val;
        ck_assert_msg(msr_vcpu_get(f->v, idx[i], &val) == 0, "get %#x", idx[i]);
        ck_assert_msg(msr_vcpu_set(f->v, idx[i], val) == 0, "set %#x = %#lx", idx[i], (unsigned long)val);
        for (unsigned j = 0; j < i; j++)
            ck_assert_msg(idx[j] != idx[i], "duplicate %#x", idx[i]);
    }
    fx_free(f);
}

START_TEST(index_list_save_restore_intel) { save_restore(MSR_VENDOR_INTEL); }
END_TEST
START_TEST(index_list_save_restore_amd) { save_restore(MSR_VENDOR_AMD); }
END_TEST

START_TEST(index_list_contents_and_features)
{
    uint32_t idx[512];
    unsigned n = msr_index_list(MSR_VENDOR_INTEL, idx, 512);
    bool has_feat = false, has_hwcr = false, has_fs = false;
    for (unsigned i = 0; i < n; i++) {
        has_feat |= idx[i] == MSR_IA32_FEAT_CTL;
        has_hwcr |= idx[i] == MSR_K7_HWCR;
        has_fs |= idx[i] == MSR_FS_BASE;
    }
    ck_assert(has_feat && has_hwcr && !has_fs);
    n = msr_index_list(MSR_VENDOR_AMD, idx, 512);
    for (unsigned i = 0; i < n; i++)
        ck_assert_uint_ne(idx[i], MSR_IA32_FEAT_CTL);
    /* short buffer: count is still the full count, nothing written past cap */
    idx[2] = 0xabcdef;
    ck_assert_uint_eq(msr_index_list(MSR_VENDOR_AMD, idx, 2), n);
    ck_assert_uint_eq(idx[2], 0xabcdef);
    uint32_t feat[32];
    unsigned nf = msr_feature_index_list(MSR_VENDOR_INTEL, feat, 32);
    ck_assert_uint_eq(nf, 3 + 18); /* + IA32_VMX_BASIC..VMFUNC (x86.c kvm_init_msr_lists) */
    for (unsigned i = 0; i < nf; i++) {
        uint64_t val;
        ck_assert_int_eq(msr_feature_get(MSR_VENDOR_INTEL, feat[i], &val), 0);
    }
    ck_assert_uint_eq(msr_feature_index_list(MSR_VENDOR_AMD, feat, 16), 4); /* + DE_CFG */
    uint64_t val = 7;
    ck_assert_int_eq(msr_feature_get(MSR_VENDOR_INTEL, MSR_IA32_ARCH_CAPABILITIES, &val), 0);
    ck_assert_uint_eq(val, MSR_ARCH_CAP_DEFAULT);
    ck_assert_int_ne(msr_feature_get(MSR_VENDOR_INTEL, 0x12345, &val), 0);
    ck_assert_int_eq(msr_feature_get(MSR_VENDOR_INTEL, MSR_IA32_VMX_BASIC, &val), 0); /* nested=Y */
    ck_assert_uint_eq((uint32_t)val, 0x11e57ed0u); /* VMCS12_REVISION */
    ck_assert_int_ne(msr_feature_get(MSR_VENDOR_AMD, MSR_IA32_VMX_BASIC, &val), 0);
    ck_assert_int_eq(msr_feature_get(MSR_VENDOR_INTEL, MSR_STAR, &val), 0); /* advertised: 0 */
    ck_assert_uint_eq(val, 0);
}
END_TEST

START_TEST(table_is_well_formed)
{
    for (unsigned i = 0; i < msr_table_len; i++) {
        const struct msr_entry *e = &msr_table[i];
        ck_assert_msg(e->first <= e->last, "%s", e->name);
        ck_assert_ptr_nonnull(e->name);
        ck_assert_ptr_nonnull(e->rules);
        ck_assert_msg(e->get || e->set, "%s has no handler", e->name);
        ck_assert(e->vendors != 0);
        if (i > 0)
            ck_assert_msg(msr_table[i - 1].first <= e->first, "%s is out of order", e->name);
        /* no two rows of the same flavour overlap */
        for (unsigned j = i + 1; j < msr_table_len; j++) {
            const struct msr_entry *o = &msr_table[j];
            bool overlap = e->first <= o->last && o->first <= e->last;
            ck_assert_msg(!(overlap && (e->vendors & o->vendors)), "%s overlaps %s", e->name, o->name);
            /* cross-flavour overlaps only as identical ranges in adjacent rows (lookup relies on it) */
            if (overlap)
                ck_assert_msg(j == i + 1 && e->first == o->first && e->last == o->last,
                              "%s / %s overlap is not an adjacent identical pair", e->name, o->name);
        }
    }
}
END_TEST

/* lookup agrees with a plain scan for every index in and around every row */
START_TEST(lookup_matches_linear_scan)
{
    for (int vend = 0; vend < 2; vend++) {
        for (unsigned i = 0; i < msr_table_len; i++) {
            uint32_t probes[] = {msr_table[i].first - 1, msr_table[i].first, msr_table[i].last,
                                 msr_table[i].last + 1};
            for (unsigned p = 0; p < 4; p++) {
                const struct msr_entry *want = NULL;
                for (unsigned k = 0; k < msr_table_len && !want; k++)
                    if (probes[p] >= msr_table[k].first && probes[p] <= msr_table[k].last &&
                        (msr_table[k].vendors & (1u << vend)))
                        want = &msr_table[k];
                ck_assert_ptr_eq(msr_table_lookup((enum msr_vendor)vend, probes[p]), want);
            }
        }
    }
}
END_TEST

START_TEST(reset_vs_init)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint64_t val;
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_KVM_POLL_CONTROL, &val), 0);
    ck_assert_uint_eq(val, 1);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_SMBASE, &val), 0);
    ck_assert_uint_eq(val, 0x30000);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_CR_PAT, 0x0606060606060606ull), 0);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_KVM_STEAL_TIME, 0x1000), 0);
    ck_assert_int_eq(msr_vcpu_set(f->v, MSR_IA32_MISC_ENABLE, 0x1801), 0);
    msr_vcpu_reset(f->v, true); /* INIT keeps PAT/MISC_ENABLE, clears PV state */
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_CR_PAT, &val), 0);
    ck_assert_uint_eq(val, 0x0606060606060606ull);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_KVM_STEAL_TIME, &val), 0);
    ck_assert_uint_eq(val, 0);
    msr_vcpu_reset(f->v, false);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_CR_PAT, &val), 0);
    ck_assert_uint_eq(val, 0x0007040600070406ull);
    ck_assert_int_eq(msr_vcpu_get(f->v, MSR_IA32_MISC_ENABLE, &val), 0);
    ck_assert_uint_eq(val, 0x1800);
    fx_free(f);
}
END_TEST

/* Every row, both flavours, guest and host, read and write of edge values: only the defined
 * outcomes occur (ASan/UBSan catch any out-of-bounds state access). */
START_TEST(every_row_sweep)
{
    static const uint64_t vals[] = {0, 1, ~0ull, 0x8000000000000000ull, 0xfee00900};
    for (int vend = 0; vend < 2; vend++) {
        struct fx *f = fx_new((enum msr_vendor)vend);
        ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, 7), 0);
        for (unsigned i = 0; i < msr_table_len; i++) {
            uint32_t idx[2] = {msr_table[i].first, msr_table[i].last};
            for (int k = 0; k < 2; k++) {
                uint64_t val;
                uint32_t reason;
                enum emu_msr_result r = grd(f, idx[k], &val, &reason);
                ck_assert(r == EMU_MSR_OK || r == EMU_MSR_GP ||
                          (r == EMU_MSR_EXIT && (reason == KVM_MSR_EXIT_REASON_INVAL ||
                                                 reason == KVM_MSR_EXIT_REASON_UNKNOWN)));
                if (r != EMU_MSR_OK)
                    ck_assert_uint_eq(val, 0);
                for (unsigned j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
                    r = gwr(f, idx[k], vals[j], &reason);
                    ck_assert(r == EMU_MSR_OK || r == EMU_MSR_GP ||
                              (r == EMU_MSR_EXIT && reason != KVM_MSR_EXIT_REASON_FILTER));
                    (void)msr_vcpu_set(f->v, idx[k], vals[j]);
                    (void)msr_vcpu_get(f->v, idx[k], &val);
                }
            }
        }
        ck_assert_uint_eq(f->v->stats.filter_denials, 0);
        fx_free(f);
    }
}
END_TEST

START_TEST(unknown_host_access_fails)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint64_t val = 5;
    ck_assert_int_ne(msr_vcpu_get(f->v, 0x12345, &val), 0);
    ck_assert_uint_eq(val, 0);
    ck_assert_int_ne(msr_vcpu_set(f->v, 0x12345, 0), 0); /* not advertised: even 0 fails */
    /* advertised but unsupported in this flavour (UMWAIT on AMD isn't listed): fails */
    struct fx *a = fx_new(MSR_VENDOR_AMD);
    ck_assert_int_ne(msr_vcpu_get(a->v, MSR_IA32_UMWAIT_CONTROL, &val), 0);
    fx_free(a);
    fx_free(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msr_table");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, feature_control_host_guest_locked);
    tcase_add_test(tc, efer_rules);
    tcase_add_test(tc, canonical_bases);
    tcase_add_test(tc, platform_info_cap);
    tcase_add_test(tc, hwcr_bits);
    tcase_add_test(tc, tsc_and_adjust);
    tcase_add_test(tc, tsc_msrs_selftest_sequence);
    tcase_add_test(tc, fresh_vcpu_tsc_starts_near_zero);
    tcase_add_test(tc, vcpus_share_one_tsc);
    tcase_add_test(tc, tsc_aux_gate_and_bits);
    tcase_add_test(tc, pv_msrs_enforcement);
    tcase_add_test(tc, kvmclock_writes_guest_memory);
    tcase_add_test(tc, mce_rules);
    tcase_add_test(tc, mtrr_and_pat);
    tcase_add_test(tc, apic_base_rules);
    tcase_add_test(tc, misc_enable_and_capabilities);
    tcase_add_test(tc, spec_ctrl_family);
    tcase_add_test(tc, vm_cr_and_hsave);
    tcase_add_test(tc, index_list_save_restore_intel);
    tcase_add_test(tc, index_list_save_restore_amd);
    tcase_add_test(tc, index_list_contents_and_features);
    tcase_add_test(tc, table_is_well_formed);
    tcase_add_test(tc, unknown_host_access_fails);
    tcase_add_test(tc, lookup_matches_linear_scan);
    tcase_add_test(tc, reset_vs_init);
    tcase_add_test(tc, every_row_sweep);
    tcase_add_test(tc, ucode_rev_reset_per_vendor);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
