/* msr/ vs the real /dev/kvm: the same KVM_X86_SET_MSR_FILTER inputs, KVM_CAP_X86_USER_SPACE_MSR
 * masks, MSR index lists (E2BIG) and feature-MSR reads are given to the host's KVM and to
 * msr/, and the outcomes (errno / success) must agree. Skips itself when /dev/kvm cannot be
 * opened (set SOFTKVM_NO_ORACLE=1 to skip explicitly). Values are not compared where they
 * depend on the host CPU; only the ABI behaviour is. */
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
    uint32_t feat[16];
    unsigned n = msr_feature_index_list(MSR_VENDOR_INTEL, feat, 16);
    for (unsigned i = 0; i < n + 1; i++) {
        uint32_t idx = i < n ? feat[i] : 0x12345;
        struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {.h.nmsrs = 1, .e.index = idx};
        int real = ioctl(kvm_fd, KVM_GET_MSRS, &m);
        uint64_t val;
        int ours = msr_feature_get(MSR_VENDOR_INTEL, idx, &val) == 0 ? 1 : 0;
        ck_assert_msg(real == ours, "feature MSR %#x: real KVM_GET_MSRS %d, softkvm %d", idx, real, ours);
    }
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
    suite_add_tcase(s, tc);
    return run_suite(s);
}
