/* msr/ vs the real /dev/kvm: the same KVM_X86_SET_MSR_FILTER inputs, KVM_CAP_X86_USER_SPACE_MSR
 * masks, MSR index lists (E2BIG) and feature-MSR reads are given to the host's KVM and to
 * msr/, and the outcomes (errno / success) must agree. Skips itself when /dev/kvm cannot be
 * opened (set SOFTKVM_NO_ORACLE=1 to skip explicitly). Values are not compared where they
 * depend on the host CPU; only the ABI behaviour is. */
#include <cpuid.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "msr_test_util.h"

static int kvm_fd = -1, vm_fd = -1;

static bool oracle_up(void)
{
    if (getenv("SOFTKVM_NO_ORACLE"))
        return false;
    if (kvm_fd < 0)
        kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0)
        return false;
    if (vm_fd < 0)
        vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    return vm_fd >= 0 && ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) > 0;
}

static int nop_read(void *c, uint32_t i, uint64_t *v) { (void)c; (void)i; *v = 0; return 0; }
static int nop_write(void *c, uint32_t i, uint64_t v) { (void)c; (void)i; (void)v; return 0; }

static int real_set_filter(const struct kvm_msr_filter *f)
{
    return ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, f) < 0 ? -errno : 0;
}

static uint8_t bm[0x608];

/* each case: a filter; real and softkvm must return the same 0/-errno */
static void fill_cases(struct kvm_msr_filter *c, unsigned *n)
{
    unsigned k = 0;
    memset(c, 0, sizeof(*c) * 16);
    c[k++].flags = 0;                                   /* empty allow: ok */
    c[k++].flags = KVM_MSR_FILTER_DEFAULT_DENY;         /* empty deny: EINVAL */
    c[k++].flags = 2;                                   /* bad flags */
    one_range(&c[k++], 0, 0, 0, 8, bm);                 /* range flags 0 */
    one_range(&c[k++], 0, 4, 0, 8, bm);                 /* range flag 4 */
    one_range(&c[k++], 0, 1, 0, 0x600 * 8, bm);         /* max bitmap: ok */
    one_range(&c[k++], 0, 1, 0, 0x600 * 8 + 1, bm);     /* too big */
    one_range(&c[k++], 0, 1, 0, 8, (uint8_t *)1);       /* EFAULT */
    one_range(&c[k], 0, 1, 0, 8, (uint8_t *)1);         /* EFAULT before EINVAL */
    one_range(&c[k++], 1, 0, 0, 8, bm);
    one_range(&c[k], 0, 0, 0, 8, bm);                   /* EINVAL before EFAULT */
    one_range(&c[k++], 1, 1, 0, 8, (uint8_t *)1);
    one_range(&c[k++], 0, 0, 0, 8, (uint8_t *)1);       /* flags checked before copy */
    c[k].flags = 4;                                     /* global flags before ranges */
    one_range(&c[k++], 0, 1, 0, 8, (uint8_t *)1);
    c[k].flags = KVM_MSR_FILTER_DEFAULT_DENY;           /* empty range with junk is skipped */
    c[k].ranges[2].flags = 0xff;
    c[k].ranges[2].bitmap = (uint8_t *)1;
    one_range(&c[k++], 7, 3, 0xc0000000u, 64, bm);
    one_range(&c[k++], 15, 3, 0xffffff00u, 0x200, bm);  /* wrapping range accepted */
    *n = k;
}

START_TEST(filter_errno_matches_real_kvm)
{
    if (!oracle_up()) {
        fprintf(stderr, "test_kvm_oracle: /dev/kvm unavailable, skipped\n");
        return;
    }
    struct kvm_msr_filter cases[16];
    unsigned n;
    fill_cases(cases, &n);
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    for (unsigned i = 0; i < n; i++) {
        int real = real_set_filter(&cases[i]);
        int ours = msr_vm_set_filter(&f->vm, &cases[i], fake_copy);
        ck_assert_msg(real == ours, "filter case %u: real KVM %d, softkvm %d", i, real, ours);
    }
    fx_free(f);
}
END_TEST

START_TEST(user_space_msr_mask_matches_real_kvm)
{
    if (!oracle_up())
        return;
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    for (uint64_t mask = 0; mask < 32; mask++) {
        struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args = {mask}};
        int real = ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0 ? -errno : 0;
        int ours = msr_vm_enable_user_space_msr(&f->vm, mask);
        ck_assert_msg(real == ours, "mask %#lx: real %d, softkvm %d", (unsigned long)mask, real, ours);
    }
    ck_assert_int_eq(ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR), 1);
    fx_free(f);
}
END_TEST

/* E2BIG with the needed count for a short buffer, on both index lists. */
static void check_list_e2big(unsigned long req, unsigned ours_count)
{
    struct kvm_msr_list probe = {.nmsrs = 0};
    int r = ioctl(kvm_fd, req, &probe);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(errno, E2BIG);
    ck_assert_uint_gt(probe.nmsrs, 0);
    /* the right size succeeds and fills exactly nmsrs entries */
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
    l->nmsrs = probe.nmsrs;
    ck_assert_int_eq(ioctl(kvm_fd, req, l), 0);
    ck_assert_uint_eq(l->nmsrs, probe.nmsrs);
    free(l);
    ck_assert_uint_gt(ours_count, 0);
}

START_TEST(index_lists_e2big_like_real_kvm)
{
    if (!oracle_up())
        return;
    check_list_e2big(KVM_GET_MSR_INDEX_LIST, msr_index_list(MSR_VENDOR_INTEL, NULL, 0));
    check_list_e2big(KVM_GET_MSR_FEATURE_INDEX_LIST, msr_feature_index_list(MSR_VENDOR_INTEL, NULL, 0));
}
END_TEST

/* Every feature MSR we advertise is one real KVM also reads successfully on the system fd,
 * and an unknown index fails on both. */
START_TEST(feature_msr_reads_like_real_kvm)
{
    if (!oracle_up())
        return;
    uint32_t feat[32];
    unsigned n = msr_feature_index_list(MSR_VENDOR_INTEL, feat, 32);
    for (unsigned i = 0; i < n + 1; i++) {
        uint32_t idx = i < n ? feat[i] : 0x12345;
        /* the nested VMX caps (0x480-0x491) are Intel-only: an AMD host's KVM has none
         * (svm_get_feature_msr); only a kvm_intel host can judge them */
        if (idx >= 0x480 && idx <= 0x491 && access("/sys/module/kvm_intel", F_OK) != 0)
            continue;
        struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {.h.nmsrs = 1, .e.index = idx};
        int real = ioctl(kvm_fd, KVM_GET_MSRS, &m);
        uint64_t val;
        int ours = msr_feature_get(MSR_VENDOR_INTEL, idx, &val) == 0 ? 1 : 0;
        ck_assert_msg(real == ours, "feature MSR %#x: real KVM_GET_MSRS %d, softkvm %d", idx, real, ours);
    }
}
END_TEST

/* Host-initiated KVM_SET_MSRS / KVM_GET_MSRS on a fresh vCPU (no KVM_SET_CPUID2): success
 * or failure must agree for each (MSR, value). */
struct host_case {
    uint32_t index;
    uint64_t value;
};

/* Cases where this machine's /dev/kvm (PVM-based, Linux 6.18: its own get/set_msr instead of
 * vmx.c) is known to differ from Linux 6.12 VMX, which softkvm's Intel flavour mirrors.
 * They are printed, not asserted. Each was checked against the 6.12 source:
 *  - FEATURE_CONTROL host writes: vmx.c accepts LOCKED/VMX/SGX/LMCE bits;
 *  - PAT types 2/3 and reserved bits: kvm_pat_valid() refuses them;
 *  - XSS = 0: accepted (supported_xss check only);
 *  - SMBASE: readable/writable by the host with CONFIG_KVM_SMM;
 *  - FS_BASE/LSTAR: non-canonical (48-bit CPU) refused for the host too;
 *  - DEBUGCTL bit 5: refused (vmx_get_supported_debugctl). */
static bool pvm_divergence(const struct host_case *c)
{
    switch (c->index) {
    case MSR_IA32_FEAT_CTL: return c->value != 0 && c->value != 8 && c->value != (1ull << 19);
    case MSR_IA32_CR_PAT: return c->value == 2 || c->value == 8;
    case MSR_IA32_XSS: return c->value == 0;
    case MSR_IA32_SMBASE: return true;
    case MSR_FS_BASE: case MSR_LSTAR: return true;
    case MSR_IA32_DEBUGCTLMSR: return c->value != 0;
    default: return false;
    }
}

static const struct host_case host_cases[] = {
    {MSR_IA32_FEAT_CTL, 0}, {MSR_IA32_FEAT_CTL, 1}, {MSR_IA32_FEAT_CTL, 4}, {MSR_IA32_FEAT_CTL, 8},
    {MSR_IA32_FEAT_CTL, 1ull << 19}, {MSR_IA32_FEAT_CTL, 0x160007},
    {MSR_PLATFORM_INFO, 0}, {MSR_PLATFORM_INFO, 0xff00},
    {MSR_IA32_MISC_ENABLE, 0}, {MSR_IA32_MISC_ENABLE, 0x1880},
    {MSR_IA32_CR_PAT, 0x0007040600070406ull}, {MSR_IA32_CR_PAT, 2}, {MSR_IA32_CR_PAT, 8},
    {MSR_MTRRdefType, 0xc06}, {MSR_MTRRdefType, 0x2}, {MSR_MTRRdefType, 0x100},
    {0x200, 0x80000006}, {0x200, 0x80000106}, {0x201, 0x800}, {0x201, 0x801},
    {MSR_EFER, 0}, {MSR_EFER, 1ull << 1}, {MSR_EFER, 1ull << 9}, {MSR_EFER, 0x501},
    {MSR_IA32_XSS, 0}, {MSR_IA32_XSS, 1}, {MSR_IA32_XSS, 1ull << 8},
    {0x12345, 0}, {0x12345, 1}, {0x474f4f00, 0},
    {MSR_TSC_AUX, 1}, {MSR_TSC_AUX, 1ull << 40},
    {MSR_IA32_MCG_CTL, 0}, {MSR_IA32_MCG_CTL, ~0ull}, {MSR_IA32_MCG_STATUS, 5},
    {MSR_IA32_MC0_CTL, ~0ull}, {MSR_IA32_MC0_CTL, 0x10}, {MSR_IA32_MC0_CTL + 1, 3},
    {MSR_IA32_MC0_CTL2, 0}, {MSR_IA32_MC0_CTL2, 1},
    {MSR_IA32_ARCH_CAPABILITIES, 0}, {MSR_IA32_PERF_CAPABILITIES, 0},
    {MSR_IA32_TSC_ADJUST, 5}, {MSR_IA32_SMBASE, 0x30000}, {MSR_SMI_COUNT, 3},
    {MSR_KVM_POLL_CONTROL, 1}, {MSR_KVM_POLL_CONTROL, 2}, {MSR_KVM_STEAL_TIME, 0},
    {MSR_KVM_STEAL_TIME, 0x1002}, {MSR_KVM_PV_EOI_EN, 0}, {MSR_KVM_PV_EOI_EN, 2},
    {MSR_KVM_ASYNC_PF_EN, 0x10},
    {MSR_IA32_APICBASE, 0xfee00900}, {MSR_IA32_APICBASE, 0xfee00901},
    {MSR_IA32_APICBASE, 0xfee00500},
    {MSR_FS_BASE, 0x0000800000000000ull}, {MSR_KERNEL_GS_BASE, 0xffff800000000000ull},
    {MSR_LSTAR, 0x0001000000000000ull}, {MSR_IA32_SYSENTER_EIP, 0x0000800000000000ull},
    {MSR_IA32_UCODE_REV, 0x100000000ull}, {MSR_IA32_POWER_CTL, 7},
    {MSR_IA32_VMX_BASIC, 0}, {MSR_IA32_BNDCFGS, 0}, {MSR_IA32_DEBUGCTLMSR, 0},
    {MSR_IA32_DEBUGCTLMSR, 1ull << 5},
};

static int real_set(int vcpu_fd, uint32_t index, uint64_t value)
{
    struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {.h.nmsrs = 1, .e.index = index, .e.data = value};
    return ioctl(vcpu_fd, KVM_SET_MSRS, &m);
}

static int real_get(int vcpu_fd, uint32_t index, uint64_t *value)
{
    struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {.h.nmsrs = 1, .e.index = index};
    int r = ioctl(vcpu_fd, KVM_GET_MSRS, &m);
    *value = m.e.data;
    return r;
}

START_TEST(host_msr_rules_match_real_kvm)
{
    if (!oracle_up())
        return;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x756e6547) { /* the cases mirror the Intel/VMX flavour */
        fprintf(stderr, "test_kvm_oracle: host is not Intel, host-MSR comparison skipped\n");
        return;
    }
    int vm2 = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    ck_assert_int_ge(vm2, 0);
    ck_assert_int_eq(ioctl(vm2, KVM_CREATE_IRQCHIP, 0), 0);
    int vcpu_fd = ioctl(vm2, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu_fd, 0);
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    f->v->apic.read = nop_read;
    f->v->apic.write = nop_write;
    unsigned agree = 0, diverge = 0, n = sizeof(host_cases) / sizeof(host_cases[0]);
    for (unsigned i = 0; i < n; i++) {
        const struct host_case *c = &host_cases[i];
        int real = real_set(vcpu_fd, c->index, c->value);
        int ours = msr_vcpu_set(f->v, c->index, c->value) == 0 ? 1 : 0;
        uint64_t rv, ov;
        int realg = real_get(vcpu_fd, c->index, &rv);
        int oursg = msr_vcpu_get(f->v, c->index, &ov) == 0 ? 1 : 0;
        bool same = real == ours && realg == oursg;
        if (pvm_divergence(c)) {
            diverge++;
            fprintf(stderr, "  (host-KVM divergence, not asserted) MSR %#x = %#llx: real set %d, softkvm set %d\n",
                    c->index, (unsigned long long)c->value, real, ours);
            continue;
        }
        if (same)
            agree++;
        else
            fprintf(stderr, "host case %u: MSR %#x = %#llx: real set %d get %d, softkvm set %d get %d\n",
                    i, c->index, (unsigned long long)c->value, real, realg, ours, oursg);
    }
    fprintf(stderr, "test_kvm_oracle: host MSR rules agree on %u/%u cases (%u known divergences)\n",
            agree, n - diverge, diverge);
    ck_assert_uint_eq(agree, n - diverge);
    fx_free(f);
    close(vcpu_fd);
    close(vm2);
}
END_TEST

int main(void)
{
    memset(bm, 0xff, sizeof(bm));
    Suite *s = suite_create("msr_kvm_oracle");
    TCase *tc = tcase_create("oracle");
    tcase_add_test(tc, filter_errno_matches_real_kvm);
    tcase_add_test(tc, user_space_msr_mask_matches_real_kvm);
    tcase_add_test(tc, index_lists_e2big_like_real_kvm);
    tcase_add_test(tc, feature_msr_reads_like_real_kvm);
    tcase_add_test(tc, host_msr_rules_match_real_kvm);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
