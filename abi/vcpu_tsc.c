/* abi/: the guest TSC's rate (KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ on vCPU and VM fds,
 * KVM_CAP_TSC_CONTROL, KVM_CAP_VM_TSC_CONTROL). Mirrors 6.12 x86.c kvm_set_tsc_khz and
 * set_tsc_khz with hardware TSC scaling present (kvm_caps.has_tsc_control): the ratio is
 * fixed point with VMX's 48 or SVM's 32 fraction bits, limited by the vendor's largest
 * multiplier, and a rate within 250 ppm of the host's runs unscaled. emu keeps every ratio
 * at 48 bits (emu/cpu.h), so an SVM ratio is computed at 32 bits and widened. */
#include <errno.h>

#include "abi/abi_internal.h"
#include "emu/cpu.h"

#define TSC_TOLERANCE_PPM 250 /* x86.c tsc_tolerance_ppm */

static unsigned frac_bits(enum abi_vendor vendor)
{
    return vendor == ABI_VENDOR_AMD ? 32 : 48; /* svm.c / vmx.c tsc_scaling_ratio_frac_bits */
}

/* SVM_TSC_RATIO_MAX (svm.h), KVM_VMX_TSC_MULTIPLIER_MAX (vmx.h) */
static uint64_t max_ratio(enum abi_vendor vendor)
{
    return vendor == ABI_VENDOR_AMD ? 0x000000ffffffffffull : ~0ull;
}

/* kvm_caps.max_guest_tsc_khz: min(0x7fffffff, __scale_tsc(max ratio, tsc_khz)) */
static uint64_t max_guest_khz(enum abi_vendor vendor, uint64_t host_khz)
{
    uint64_t m = (uint64_t)(((unsigned __int128)host_khz * max_ratio(vendor)) >> frac_bits(vendor));
    return m < 0x7fffffffull ? m : 0x7fffffffull;
}

static uint32_t adjust_khz(uint64_t khz, int64_t ppm)
{
    return (uint32_t)(khz * (uint64_t)(1000000 + ppm) / 1000000);
}

/* kvm_set_tsc_khz + set_tsc_khz: 0 or -1 */
static int set_rate(struct abi_vcpu *v, uint32_t user_khz)
{
    struct cpu *c = emu_cpu(v->emu);
    enum abi_vendor vendor = v->vm->sys->vendor;
    uint64_t host_khz = v->vm->msr.tsc_khz;
    if (user_khz == 0 || host_khz == 0) {
        emu_cpu_set_l1_tsc(c, emu_cpu_l1_tsc_offset(c), EMU_TSC_ONE);
        return -1;
    }
    c->tsc_khz = user_khz; /* virtual_tsc_khz */
    uint64_t ratio = EMU_TSC_ONE;
    if (user_khz < adjust_khz(host_khz, -TSC_TOLERANCE_PPM) ||
        user_khz > adjust_khz(host_khz, TSC_TOLERANCE_PPM)) {
        unsigned fb = frac_bits(vendor);
        uint64_t r = (uint64_t)(((unsigned __int128)1 << fb) * user_khz / host_khz);
        if (r == 0 || r >= max_ratio(vendor))
            return -1;
        ratio = r << (EMU_TSC_FRAC - fb);
    }
    /* kvm_vcpu_write_tsc_multiplier: the offset stays, so the TSC value follows the new
     * rate from here (user space sets the rate before the TSC) */
    emu_cpu_set_l1_tsc(c, emu_cpu_l1_tsc_offset(c), ratio);
    return 0;
}

/* the KVM_SET_TSC_KHZ argument check shared by the vCPU and VM ioctls; 0 = host rate */
static long check_khz(struct abi_vm *vm, unsigned long arg, uint32_t *khz)
{
    uint32_t k = (uint32_t)arg;
    if (k >= max_guest_khz(vm->sys->vendor, vm->msr.tsc_khz))
        return -EINVAL;
    *khz = k ? k : (uint32_t)vm->msr.tsc_khz;
    return 0;
}

long abi_vcpu_set_tsc_khz(struct abi_vcpu *v, unsigned long arg)
{
    uint32_t khz;
    long r = check_khz(v->vm, arg, &khz);
    if (r)
        return r;
    return set_rate(v, khz) ? -EINVAL : 0;
}

long abi_vcpu_get_tsc_khz(struct abi_vcpu *v)
{
    return (long)emu_cpu(v->emu)->tsc_khz;
}

/* The VM ioctl sets the rate of vCPUs created from now on (kvm->arch.default_tsc_khz). */
long abi_vm_set_tsc_khz(struct abi_vm *vm, unsigned long arg)
{
    uint32_t khz;
    long r = check_khz(vm, arg, &khz);
    if (r)
        return r;
    __atomic_store_n(&vm->default_tsc_khz, khz, __ATOMIC_RELAXED);
    return 0;
}

long abi_vm_get_tsc_khz(struct abi_vm *vm)
{
    uint32_t k = __atomic_load_n(&vm->default_tsc_khz, __ATOMIC_RELAXED);
    return (long)(k ? k : vm->msr.tsc_khz);
}

/* kvm_arch_vcpu_create: kvm_set_tsc_khz(vcpu, kvm->arch.default_tsc_khz), before the
 * creation's TSC synchronisation */
void abi_vcpu_init_tsc_rate(struct abi_vcpu *v)
{
    set_rate(v, (uint32_t)abi_vm_get_tsc_khz(v->vm));
}
