/* msr/ at guest level: KVM_CAP_ENFORCE_PV_FEATURE_CPUID (case 4 of issue 15). With
 * enforcement on, each KVM PV MSR needs its KVM_FEATURE_* bit in CPUID 0x40000001.EAX,
 * else kvm_get/set_msr_common return KVM_MSR_RET_UNSUPPORTED, i.e. exit reason UNKNOWN
 * (Linux 6.12 x86.c kvm_msr_reason 1602-1611). Lines of 6.12 x86.c per MSR, set / get:
 *   KVM_WALL_CLOCK      0x11       CLOCKSOURCE  (0)  3554-3556 / 3922-3924
 *   KVM_SYSTEM_TIME     0x12       CLOCKSOURCE  (0)  3567-3569 / 3934-3936
 *   KVM_WALL_CLOCK_NEW  0x4b564d00 CLOCKSOURCE2 (3)  3547-3549 / 3928-3930
 *   KVM_SYSTEM_TIME_NEW 0x4b564d01 CLOCKSOURCE2 (3)  3561-3563 / 3940-3942
 *   KVM_ASYNC_PF_EN     0x4b564d02 ASYNC_PF     (4)  3573-3575 / 3946-3948
 *   KVM_STEAL_TIME      0x4b564d03 STEAL_TIME   (5)  3595-3597 / 3964-3966
 *   KVM_PV_EOI_EN       0x4b564d04 PV_EOI       (6)  3613-3615 / 3970-3972
 *   KVM_POLL_CONTROL    0x4b564d05 POLL_CONTROL (12) 3621-3623 / 3976-3978
 *   KVM_ASYNC_PF_INT    0x4b564d06 ASYNC_PF_INT (14) 3580-3582 / 3952-3954
 *   KVM_ASYNC_PF_ACK    0x4b564d07 ASYNC_PF_INT (14) 3587-3589 / 3958-3960
 * guest_pv_has (cpuid.h 214-221) is true whenever enforcement is off.
 *
 * ctest also runs these guests on the host's /dev/kvm (msr_test_guest_pv_realkvm): the
 * gating agrees with 6.12 there; the one difference is a gh_pvm() below. */
#include "guest_harness.h"
#include "msr/msr_index.h"

static const struct {
    uint32_t index;
    unsigned bit;
} pv[] = {
    {0x11, 0},        {0x12, 0},        {0x4b564d00, 3}, {0x4b564d01, 3}, {0x4b564d02, 4},
    {0x4b564d03, 5},  {0x4b564d04, 6},  {0x4b564d05, 12}, {0x4b564d06, 14}, {0x4b564d07, 14},
};
#define NPV (sizeof(pv) / sizeof(pv[0]))

static uint32_t pv_bits; /* what the mutate callback puts in 0x40000001.EAX */
static bool pv_leaf = true;

static void cpuid_pv(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    /* drop whatever hypervisor leaves the supported CPUID has, then add KVM's */
    unsigned k = 0;
    for (unsigned i = 0; i < *n; i++)
        if ((e[i].function & 0xffff0000u) != 0x40000000u)
            e[k++] = e[i];
    *n = k;
    if (!pv_leaf)
        return;
    struct kvm_cpuid_entry2 *b = gh_leaf_add(e, n, 0x40000000, 0);
    b->eax = 0x40000001;
    b->ebx = 0x4b4d564b; /* "KVMKVMKVM\0\0\0" */
    b->ecx = 0x564b4d56;
    b->edx = 0x4d;
    gh_leaf_add(e, n, 0x40000001, 0)->eax = pv_bits;
}

static void enforce(struct gh *g, uint64_t on)
{
    struct kvm_enable_cap cap = {.cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID, .args = {on}};
    ck_assert_int_eq(gh_io(g, g->vcpu, KVM_ENABLE_CAP, &cap), 0);
}

/* RDMSR then WRMSR 0 of every PV MSR. */
static void pv_ops(struct gh *g)
{
    struct gh_op ops[2 * NPV];
    for (unsigned i = 0; i < NPV; i++) {
        ops[2 * i] = (struct gh_op){GH_RD, pv[i].index, 0};
        ops[2 * i + 1] = (struct gh_op){GH_WR, pv[i].index, 0};
    }
    gh_ops(g, ops, 2 * NPV);
}

/* Allowed: reads give the reset values (POLL_CONTROL 1: kvm_arch_vcpu_create 11640),
 * writes of 0 succeed, except ASYNC_PF_INT, which needs an in-kernel LAPIC
 * (kvm_pv_enable_async_pf_int 3177-3178: 1 -> INVAL, here #GP as only UNKNOWN is asked). */
static void expect_allowed(struct gh *g, uint32_t bits_present, bool enforced)
{
    for (unsigned i = 0; i < NPV; i++) {
        bool ok = !enforced || (bits_present >> pv[i].bit & 1);
        if (!ok) {
            gh_expect_msr_exit(g, false, pv[i].index, KVM_MSR_EXIT_REASON_UNKNOWN, 0);
            gh_complete(g, 1, 0);
            gh_expect_gp(g);
            gh_expect_msr_exit(g, true, pv[i].index, KVM_MSR_EXIT_REASON_UNKNOWN, 0);
            gh_complete(g, 1, 0);
            gh_expect_gp(g);
            continue;
        }
        gh_expect_rd(g, pv[i].index == 0x4b564d05 ? 1 : 0);
        if (pv[i].index == 0x4b564d06)
            gh_expect_gp(g);
    }
    gh_expect_done(g);
}

static void pv_case(const char *vendor, uint32_t bits, bool enforced)
{
    struct gh g;
    pv_bits = bits;
    pv_leaf = true;
    gh_open(&g, vendor, cpuid_pv);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_UNKNOWN);
    enforce(&g, enforced);
    pv_ops(&g);
    gh_start(&g, gh_gpa(gh_script), 0);
    expect_allowed(&g, bits, enforced);
    gh_close(&g);
}

/* Enforcement on, no feature bit: every PV MSR access is UNKNOWN. */
START_TEST(pv_msrs_gated_by_cpuid_when_enforced_intel) { pv_case("intel", 0, true); }
END_TEST
START_TEST(pv_msrs_gated_by_cpuid_when_enforced_amd) { pv_case("amd", 0, true); }
END_TEST

/* Enforcement on, some bits: exactly those MSRs work (bit by bit, both flavours). */
START_TEST(pv_msrs_follow_each_feature_bit)
{
    const uint32_t sets[] = {1u << 0, 1u << 3, (1u << 4) | (1u << 14), 1u << 5, 1u << 6, 1u << 12,
                             0x7fff};
    for (int v = 0; v < 2; v++)
        for (unsigned s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
            pv_case(v ? "amd" : "intel", sets[s], true);
}
END_TEST

/* Enforcement off: allowed without any bit (guest_pv_has, cpuid.h 217-218). */
START_TEST(pv_msrs_allowed_without_enforcement)
{
    pv_case("intel", 0, false);
    pv_case("amd", 0, false);
}
END_TEST

/* kvm_update_pv_runtime (cpuid.c 266-276) stores the feature word only when the KVM leaf
 * is found: a later KVM_SET_CPUID2 without the leaf keeps the old bits (here all of
 * them), so the MSRs stay allowed under enforcement; enabling the cap re-runs it
 * (x86.c 5400-5404) with the same result. */
START_TEST(pv_features_survive_cpuid_without_kvm_leaf)
{
    struct gh g;
    pv_bits = 0x7fff;
    pv_leaf = true;
    gh_open(&g, "intel", cpuid_pv);
    pv_leaf = false;
    cpuid_pv(g.cpuid.e, &g.cpuid.h.nent);
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_SET_CPUID2, &g.cpuid), 0);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_UNKNOWN);
    enforce(&g, 1);
    pv_ops(&g);
    gh_start(&g, gh_gpa(gh_script), 0);
    if (gh_pvm(&g, "KVM_SET_CPUID2 without the KVM leaf clears the PV feature word: every PV "
                   "MSR is then UNKNOWN under enforcement"))
        expect_allowed(&g, 0, true);
    else
        expect_allowed(&g, 0x7fff, true);
    gh_close(&g);
}
END_TEST

GH_BLOB_END();

int main(void)
{
    gh_require_oracle();
    Suite *s = suite_create("msr_guest_pv");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 120);
    gh_add(tc, pv_msrs_gated_by_cpuid_when_enforced_intel, "intel");
    gh_add(tc, pv_msrs_gated_by_cpuid_when_enforced_amd, "amd");
    gh_add(tc, pv_msrs_follow_each_feature_bit, NULL);
    gh_add(tc, pv_msrs_allowed_without_enforcement, NULL);
    gh_add(tc, pv_features_survive_cpuid_without_kvm_leaf, NULL);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
