/* tests/msr: shared fixtures for the msr/ unit tests (not a test executable itself). */
#ifndef SOFTKVM_TESTS_MSR_UTIL_H
#define SOFTKVM_TESTS_MSR_UTIL_H

#include <check.h>
#include "tests/check_main.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msr/msr.h"
#include "msr/bitmap.h"
#include "msr/internal.h"

struct fx {
    struct msr_vm vm;
    struct cpu cpu;
    struct msr_vcpu *v;
};

static inline struct fx *fx_new(enum msr_vendor vendor)
{
    struct fx *f = calloc(1, sizeof(*f));
    ck_assert_int_eq(msr_vm_init(&f->vm, vendor), 0);
    f->cpu.apic_base = 0xfee00900;
    f->v = msr_vcpu_create(&f->vm, &f->cpu);
    ck_assert_ptr_nonnull(f->v);
    return f;
}

static inline void fx_free(struct fx *f)
{
    msr_vcpu_destroy(f->v);
    msr_vm_destroy(&f->vm);
    free(f);
}

/* copy_from_user stand-in: NULL or the poison pointer 0x1 are "unreadable". */
static inline int fake_copy(void *dst, const void *src, size_t n)
{
    if (src == NULL || src == (const void *)1)
        return -EFAULT;
    memcpy(dst, src, n);
    return 0;
}

static inline enum emu_msr_result grd(struct fx *f, uint32_t idx, uint64_t *val, uint32_t *reason)
{
    *val = 0xdeadbeef;
    *reason = 0;
    return msr_emu_ops.rdmsr(f->v, &f->cpu, idx, val, reason);
}

static inline enum emu_msr_result gwr(struct fx *f, uint32_t idx, uint64_t val, uint32_t *reason)
{
    *reason = 0;
    return msr_emu_ops.wrmsr(f->v, &f->cpu, idx, val, reason);
}

/* Guest access through the full "hardware" path: bitmap gate first, then intercept. */
static inline enum emu_msr_result hw_rd(struct fx *f, uint32_t idx, uint64_t *val, uint32_t *reason)
{
    if (!msr_bitmap_intercepted(f->v, idx, false))
        return msr_passthrough_read(f->v, &f->cpu, idx, val);
    return grd(f, idx, val, reason);
}

static inline enum emu_msr_result hw_wr(struct fx *f, uint32_t idx, uint64_t val, uint32_t *reason)
{
    if (!msr_bitmap_intercepted(f->v, idx, true))
        return msr_passthrough_write(f->v, &f->cpu, idx, val);
    return gwr(f, idx, val, reason);
}

/* A filter with one range over [base, base+nmsrs) with the given bitmap byte pattern. */
static inline void one_range(struct kvm_msr_filter *flt, unsigned slot, uint32_t flags,
                             uint32_t base, uint32_t nmsrs, uint8_t *bitmap)
{
    flt->ranges[slot].flags = flags;
    flt->ranges[slot].base = base;
    flt->ranges[slot].nmsrs = nmsrs;
    flt->ranges[slot].bitmap = bitmap;
}

static inline void set_cpuid1(struct fx *f, const struct kvm_cpuid_entry2 *e, unsigned n)
{
    msr_vcpu_set_cpuid(f->v, e, n);
}

static inline int run_suite(Suite *s)
{
    return softkvm_check_run(s);
}

#endif
