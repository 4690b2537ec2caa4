/* msr/: KVM_X86_SET_MSR_FILTER validation order/errno, atomic replacement, lookup
 * precedence, x2APIC exemption, default policy, and per-vCPU generation sync. */
#include "msr_test_util.h"

static uint8_t allow_all[0x600], deny_all[0x600];

static void setup_bitmaps(void)
{
    memset(allow_all, 0xff, sizeof(allow_all));
    memset(deny_all, 0, sizeof(deny_all));
}

START_TEST(bad_filter_flags_einval)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {.flags = 2};
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    flt.flags = 0x80000000u;
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    fx_free(f);
}
END_TEST

START_TEST(empty_deny_einval_empty_allow_ok)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    /* ranges with nmsrs == 0 are "empty" whatever else they hold */
    flt.ranges[3].flags = 0xff;
    flt.ranges[3].bitmap = (uint8_t *)1;
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    flt.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    ck_assert(msr_filter_allows(atomic_load(&f->vm.filter), 0x10, KVM_MSR_FILTER_READ));
    fx_free(f);
}
END_TEST

START_TEST(range_flag_errors)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, 0, 0, 8, allow_all); /* flags == 0 */
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    one_range(&flt, 0, 4, 0, 8, allow_all); /* unknown range flag */
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    one_range(&flt, 0, KVM_MSR_FILTER_READ | 8, 0, 8, allow_all);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    fx_free(f);
}
END_TEST

START_TEST(bitmap_size_limit)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0, 0x600 * 8, allow_all); /* exactly 0x600 bytes */
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0, 0x600 * 8 + 1, allow_all); /* rounds to 0x608 */
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0, 0xffffffffu, allow_all);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    fx_free(f);
}
END_TEST

START_TEST(efault_bad_pointer)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0, 8, NULL);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EFAULT);
    fx_free(f);
}
END_TEST

/* KVM validates range by range: the first bad range decides EFAULT vs EINVAL. */
START_TEST(efault_einval_order_follows_ranges)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0, 8, (uint8_t *)1); /* EFAULT */
    one_range(&flt, 1, 0, 0, 8, allow_all);                      /* EINVAL */
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EFAULT);
    memset(&flt, 0, sizeof(flt));
    one_range(&flt, 0, 0, 0, 8, allow_all);                      /* EINVAL first */
    one_range(&flt, 1, KVM_MSR_FILTER_READ, 0, 8, (uint8_t *)1);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    /* bad flags on a range with a bad pointer: flags are checked before the copy */
    memset(&flt, 0, sizeof(flt));
    one_range(&flt, 0, 0, 0, 8, (uint8_t *)1);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    /* global flags are checked before any range */
    memset(&flt, 0, sizeof(flt));
    flt.flags = 4;
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0, 8, (uint8_t *)1);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EINVAL);
    fx_free(f);
}
END_TEST

START_TEST(error_keeps_old_filter)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0x10, 1, deny_all);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    const struct msr_filter *old = atomic_load(&f->vm.filter);
    uint64_t gen = atomic_load(&f->vm.filter_gen);
    one_range(&flt, 1, KVM_MSR_FILTER_READ, 0x20, 1, NULL);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), -EFAULT);
    ck_assert_ptr_eq(atomic_load(&f->vm.filter), old);
    ck_assert_uint_eq(atomic_load(&f->vm.filter_gen), gen);
    ck_assert(!msr_filter_allows(old, 0x10, KVM_MSR_FILTER_READ));
    fx_free(f);
}
END_TEST

START_TEST(first_matching_range_decides)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    one_range(&flt, 0, KVM_MSR_FILTER_WRITE, 0x100, 8, deny_all); /* write-only range: not for reads */
    one_range(&flt, 1, KVM_MSR_FILTER_READ, 0x100, 8, allow_all);
    one_range(&flt, 2, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, 0x100, 8, deny_all);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    const struct msr_filter *p = atomic_load(&f->vm.filter);
    ck_assert(msr_filter_allows(p, 0x103, KVM_MSR_FILTER_READ));   /* range 1 */
    ck_assert(!msr_filter_allows(p, 0x103, KVM_MSR_FILTER_WRITE)); /* range 0 */
    ck_assert(!msr_filter_allows(p, 0x108, KVM_MSR_FILTER_READ));  /* no range: default deny */
    ck_assert_uint_eq(p->count, 3);
    fx_free(f);
}
END_TEST

START_TEST(bit_granularity_and_default_allow)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint8_t bm[8] = {0x05}; /* allow base+0 and base+2 */
    struct kvm_msr_filter flt = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    one_range(&flt, 5, KVM_MSR_FILTER_READ, 0xc0000080u, 3, bm);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    const struct msr_filter *p = atomic_load(&f->vm.filter);
    ck_assert(msr_filter_allows(p, 0xc0000080u, KVM_MSR_FILTER_READ));
    ck_assert(!msr_filter_allows(p, 0xc0000081u, KVM_MSR_FILTER_READ));
    ck_assert(msr_filter_allows(p, 0xc0000082u, KVM_MSR_FILTER_READ));
    ck_assert(msr_filter_allows(p, 0xc0000083u, KVM_MSR_FILTER_READ)); /* outside: default allow */
    ck_assert(msr_filter_allows(p, 0xc0000081u, KVM_MSR_FILTER_WRITE)); /* range is read-only */
    /* empty ranges are dropped: the stored range is at index 0 */
    ck_assert_uint_eq(p->count, 1);
    ck_assert_uint_eq(p->ranges[0].base, 0xc0000080u);
    fx_free(f);
}
END_TEST

START_TEST(x2apic_never_filtered)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    one_range(&flt, 0, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, 0x7f0, 0x200, deny_all);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    const struct msr_filter *p = atomic_load(&f->vm.filter);
    ck_assert(msr_filter_allows(p, 0x800, KVM_MSR_FILTER_READ));
    ck_assert(msr_filter_allows(p, 0x8ff, KVM_MSR_FILTER_WRITE));
    ck_assert(!msr_filter_allows(p, 0x7ff, KVM_MSR_FILTER_READ));
    ck_assert(!msr_filter_allows(p, 0x900, KVM_MSR_FILTER_READ));
    fx_free(f);
}
END_TEST

START_TEST(base_plus_nmsrs_wraps_like_kvm)
{
    /* KVM computes end = base + nmsrs in u32: a range that wraps matches nothing */
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, 0xffffff00u, 0x200, deny_all);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    ck_assert(msr_filter_allows(atomic_load(&f->vm.filter), 0xffffff10u, KVM_MSR_FILTER_READ));
    fx_free(f);
}
END_TEST

START_TEST(new_filter_seen_before_next_access)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    uint64_t val;
    uint32_t reason;
    /* STAR: intercepted on VMX, in-kernel handler */
    ck_assert_int_eq(grd(f, MSR_STAR, &val, &reason), EMU_MSR_OK);
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ, MSR_STAR, 1, deny_all);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&f->vm, KVM_MSR_EXIT_REASON_FILTER), 0);
    ck_assert_int_eq(grd(f, MSR_STAR, &val, &reason), EMU_MSR_EXIT);
    ck_assert_uint_eq(reason, KVM_MSR_EXIT_REASON_FILTER);
    /* replacing it with allow-all takes effect too */
    memset(&flt, 0, sizeof(flt));
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    ck_assert_int_eq(grd(f, MSR_STAR, &val, &reason), EMU_MSR_OK);
    ck_assert_uint_eq(f->v->filter_gen, atomic_load(&f->vm.filter_gen));
    fx_free(f);
}
END_TEST

/* A writer thread swaps filters while the vCPU thread accesses MSRs: every access sees one
 * whole filter (old or new), never a torn one, and nothing is freed under the reader. */
#include <pthread.h>
struct race { struct fx *f; _Atomic int stop; };

static void *swapper(void *p)
{
    struct race *r = p;
    static uint8_t deny[8] = {0}, allow[8] = {0xff};
    for (int i = 0; i < 5000; i++) {
        struct kvm_msr_filter flt = {0};
        one_range(&flt, 0, KVM_MSR_FILTER_READ, MSR_STAR, 1, (i & 1) ? deny : allow);
        one_range(&flt, 1, KVM_MSR_FILTER_READ, MSR_LSTAR, 1, (i & 1) ? deny : allow);
        ck_assert_int_eq(msr_vm_set_filter(&r->f->vm, &flt, fake_copy), 0);
    }
    atomic_store(&r->stop, 1);
    return NULL;
}

START_TEST(concurrent_replacement)
{
    struct race r = {.f = fx_new(MSR_VENDOR_INTEL)};
    ck_assert_int_eq(msr_vm_enable_user_space_msr(&r.f->vm, KVM_MSR_EXIT_REASON_FILTER), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, swapper, &r), 0);
    unsigned long n = 0, denied = 0;
    do {
        uint64_t val;
        uint32_t reason;
        /* the same filter generation is used for both reads unless a sync happens between */
        msr_vcpu_sync(r.f->v);
        const struct msr_filter *snap = r.f->v->filter;
        bool a = msr_filter_allows(snap, MSR_STAR, KVM_MSR_FILTER_READ);
        bool b = msr_filter_allows(snap, MSR_LSTAR, KVM_MSR_FILTER_READ);
        ck_assert(a == b); /* one whole filter */
        enum emu_msr_result res = grd(r.f, MSR_STAR, &val, &reason);
        denied += res == EMU_MSR_EXIT;
        n++;
    } while (!atomic_load(&r.stop));
    pthread_join(t, NULL);
    ck_assert_uint_gt(n, 0);
    /* after the last (odd: deny) filter, the next access is denied */
    uint64_t val;
    uint32_t reason;
    ck_assert_int_eq(grd(r.f, MSR_STAR, &val, &reason), EMU_MSR_EXIT);
    (void)denied;
    fx_free(r.f);
}
END_TEST

int main(void)
{
    setup_bitmaps();
    Suite *s = suite_create("msr_filter");
    TCase *tc = tcase_create("filter");
    tcase_add_test(tc, bad_filter_flags_einval);
    tcase_add_test(tc, empty_deny_einval_empty_allow_ok);
    tcase_add_test(tc, range_flag_errors);
    tcase_add_test(tc, bitmap_size_limit);
    tcase_add_test(tc, efault_bad_pointer);
    tcase_add_test(tc, efault_einval_order_follows_ranges);
    tcase_add_test(tc, error_keeps_old_filter);
    tcase_add_test(tc, first_matching_range_decides);
    tcase_add_test(tc, bit_granularity_and_default_allow);
    tcase_add_test(tc, x2apic_never_filtered);
    tcase_add_test(tc, base_plus_nmsrs_wraps_like_kvm);
    tcase_add_test(tc, new_filter_seen_before_next_access);
    tcase_add_test(tc, concurrent_replacement);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
