/* abi/: MSR ioctls, wired to msr/ (which owns the semantics).
 *
 * kvm_msrs handling mirrors arch/x86/kvm/x86.c msr_io(): at most MAX_IO_MSRS entries,
 * processing stops at the first MSR that fails and the count done is returned. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "abi/abi_internal.h"

#define MAX_IO_MSRS 256 /* x86.c */

static int guest_write(void *ctx, uint64_t gpa, const void *src, size_t len)
{
    struct abi_vm *vm = ctx;
    uint8_t *h = emu_gpa_to_host(&vm->as[0].mem, gpa, len, true);
    /* the slot's host mapping may be bad: copy as KVM's kvm_write_guest does, EFAULT */
    if (!h || abi_copy_to_user(h, src, len))
        return -EFAULT;
    abi_vm_mark_dirty(vm, gpa, len);
    return 0;
}

static int guest_read(void *ctx, uint64_t gpa, void *dst, size_t len)
{
    struct abi_vm *vm = ctx;
    const uint8_t *h = emu_gpa_to_host(&vm->as[0].mem, gpa, len, false);
    if (!h || abi_copy_from_user(dst, h, len))
        return -EFAULT;
    return 0;
}

int abi_msr_vm_init(struct abi_vm *vm)
{
    int r = msr_vm_init(&vm->msr, vm->sys->vendor == ABI_VENDOR_AMD ? MSR_VENDOR_AMD
                                                                     : MSR_VENDOR_INTEL);
    if (r)
        return r < 0 ? r : -ENOMEM;
    msr_vm_set_guest_memory(&vm->msr, guest_write, guest_read, vm);
    /* kvm_intel nested=Y (abi/module_params.c): emu/vmx.c offers VMX to an L1 hypervisor */
    vm->msr.nested_vmx = vm->sys->vendor != ABI_VENDOR_AMD;
    return 0;
}

long abi_msr_index_list(unsigned long arg, bool feature)
{
    struct kvm_msr_list hdr;
    if (abi_copy_from_user(&hdr, (void *)arg, sizeof hdr))
        return -EFAULT;
    enum msr_vendor vendor =
        abi_vendor_current() == ABI_VENDOR_AMD ? MSR_VENDOR_AMD : MSR_VENDOR_INTEL;
    unsigned total = feature ? msr_feature_index_list(vendor, NULL, 0)
                             : msr_index_list(vendor, NULL, 0);
    uint32_t want = hdr.nmsrs;
    hdr.nmsrs = total; /* KVM writes the count back before checking the size */
    if (abi_copy_to_user((void *)arg, &hdr, sizeof hdr))
        return -EFAULT;
    if (want < total)
        return -E2BIG;
    uint32_t *idx = calloc(total ? total : 1, sizeof *idx);
    if (!idx)
        return -ENOMEM;
    if (feature)
        msr_feature_index_list(vendor, idx, total);
    else
        msr_index_list(vendor, idx, total);
    long r = abi_copy_to_user((char *)arg + sizeof hdr, idx, total * sizeof *idx) ? -EFAULT : 0;
    free(idx);
    return r;
}

/* Common msr_io(): fetch the array, run `op` on each entry, optionally write back. */
static long msr_io(unsigned long arg, bool writeback,
                   int (*op)(void *ctx, struct kvm_msr_entry *e), void *ctx)
{
    struct kvm_msrs hdr;
    if (abi_copy_from_user(&hdr, (void *)arg, sizeof hdr))
        return -EFAULT;
    if (hdr.nmsrs >= MAX_IO_MSRS)
        return -E2BIG;
    size_t sz = hdr.nmsrs * sizeof(struct kvm_msr_entry);
    struct kvm_msr_entry *e = malloc(sz ? sz : 1);
    if (!e)
        return -ENOMEM;
    long r;
    if (abi_copy_from_user(e, (char *)arg + sizeof hdr, sz)) {
        r = -EFAULT;
        goto out;
    }
    unsigned i;
    for (i = 0; i < hdr.nmsrs; i++)
        if (op(ctx, &e[i]))
            break;
    r = i;
    if (writeback && abi_copy_to_user((char *)arg + sizeof hdr, e, sz))
        r = -EFAULT;
out:
    free(e);
    return r;
}

static int feature_get_one(void *ctx, struct kvm_msr_entry *e)
{
    struct abi_system *s = ctx;
    uint64_t v = 0;
    int r = msr_feature_get(s->vendor == ABI_VENDOR_AMD ? MSR_VENDOR_AMD : MSR_VENDOR_INTEL,
                            e->index, &v);
    if (!r)
        e->data = v;
    return r;
}

long abi_msr_feature_get(struct abi_system *s, unsigned long arg)
{
    return msr_io(arg, true, feature_get_one, s);
}

static int vcpu_get_one(void *ctx, struct kvm_msr_entry *e)
{
    struct abi_vcpu *v = ctx;
    uint64_t val = 0;
    int r = msr_vcpu_get(v->msr, e->index, &val);
    if (!r)
        e->data = val;
    return r;
}

static int vcpu_set_one(void *ctx, struct kvm_msr_entry *e)
{
    struct abi_vcpu *v = ctx;
    return msr_vcpu_set(v->msr, e->index, e->data);
}

long abi_vcpu_get_msrs(struct abi_vcpu *v, unsigned long arg)
{
    return msr_io(arg, true, vcpu_get_one, v);
}

long abi_vcpu_set_msrs(struct abi_vcpu *v, unsigned long arg)
{
    long r = msr_io(arg, false, vcpu_set_one, v);
    /* MSR writes can change CR-like state the interpreter caches (EFER, APIC base). */
    emu_state_changed(v->emu);
    return r;
}

long abi_vm_set_msr_filter(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_msr_filter f;
    if (abi_copy_from_user(&f, (void *)arg, sizeof f))
        return -EFAULT;
    return msr_vm_set_filter(&vm->msr, &f, abi_copy_from_user);
}
