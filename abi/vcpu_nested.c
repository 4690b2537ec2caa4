/* abi/: KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE and KVM_CAP_NESTED_STATE, as Linux
 * 6.12 x86.c kvm_arch_vcpu_ioctl answers them: a 128-byte struct kvm_nested_state header,
 * then the vendor's data. AMD (svm/nested.c svm_get/set_nested_state): in guest mode the
 * 4 KiB VMCB image (emu/svm.c fills and checks it). Intel (vmx/nested.c
 * vmx_get/set_nested_state): struct kvm_vmx_nested_state_hdr and, with a current VMCS,
 * the 4 KiB vmcs12 (emu/vmx.c; no shadow vmcs12, VMCS shadowing is not offered). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "abi/abi_internal.h"
#include "emu/emu.h"

#define HDR_SIZE sizeof(struct kvm_nested_state) /* 128: flags, format, size, hdr */
_Static_assert(sizeof(struct kvm_nested_state) == 128, "kvm_nested_state header");
_Static_assert(KVM_STATE_NESTED_SVM_VMCB_SIZE == EMU_SVM_NESTED_IMAGE_SIZE, "VMCB image");
_Static_assert(KVM_STATE_NESTED_GUEST_MODE == EMU_NESTED_GUEST_MODE &&
               KVM_STATE_NESTED_RUN_PENDING == EMU_NESTED_RUN_PENDING &&
               KVM_STATE_NESTED_GIF_SET == EMU_NESTED_GIF_SET, "nested state flags");

_Static_assert(sizeof(struct kvm_vmx_nested_state_data) == 2 * EMU_VMX_VMCS12_SIZE, "vmcs12");
_Static_assert(KVM_STATE_NESTED_EVMCS == EMU_VMX_NESTED_EVMCS &&
               KVM_STATE_NESTED_SMM_GUEST_MODE == EMU_VMX_NESTED_SMM_GUEST_MODE &&
               KVM_STATE_NESTED_SMM_VMXON == EMU_VMX_NESTED_SMM_VMXON &&
               KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE == EMU_VMX_PREEMPTION_TIMER_DEADLINE,
               "VMX nested state flags");

/* A field of the caller's struct kvm_nested_state, as an address only: the pointer may be
 * misaligned or bad (kvm-fuzz), so no member access through it (UBSan alignment). */
#define UPTR(u, member) ((void *)((char *)(u) + offsetof(struct kvm_nested_state, member)))

long abi_nested_state_max_size(enum abi_vendor vendor)
{
    /* vmx_get_nested_state(NULL): header + vmcs12 + shadow vmcs12 */
    return vendor == ABI_VENDOR_AMD ? (long)(HDR_SIZE + KVM_STATE_NESTED_SVM_VMCB_SIZE)
                                    : (long)(HDR_SIZE + sizeof(struct kvm_vmx_nested_state_data));
}

static long vmx_get(struct abi_vcpu *v, struct kvm_nested_state *u)
{
    uint32_t user_size;
    if (abi_copy_from_user(&user_size, UPTR(u, size), sizeof user_size))
        return -EFAULT;
    uint8_t *image = malloc(2 * EMU_VMX_VMCS12_SIZE);
    if (!image)
        return -ENOMEM;
    struct emu_vmx_nested_state es;
    emu_vmx_get_nested_state(v->emu, &es, image);
    struct kvm_nested_state st;
    memset(&st, 0, sizeof st);
    st.flags = (uint16_t)es.flags;
    st.format = KVM_STATE_NESTED_FORMAT_VMX;
    st.size = es.size;
    st.hdr.vmx.vmxon_pa = es.vmxon_pa;
    st.hdr.vmx.vmcs12_pa = es.vmcs12_pa;
    st.hdr.vmx.flags = es.vmx_flags;
    st.hdr.vmx.smm.flags = es.smm_flags;
    st.hdr.vmx.preemption_timer_deadline = es.preemption_timer_deadline;
    long r = 0;
    /* vmx_get_nested_state writes nothing into a buffer too small for the whole state */
    if (user_size >= st.size &&
        (abi_copy_to_user(u, &st, sizeof st) ||
         (es.has_vmcs12 && abi_copy_to_user(UPTR(u, data.vmx[0].vmcs12), image, EMU_VMX_VMCS12_SIZE)) ||
         (es.has_shadow && abi_copy_to_user(UPTR(u, data.vmx[0].shadow_vmcs12),
                                            image + EMU_VMX_VMCS12_SIZE, EMU_VMX_VMCS12_SIZE))))
        r = -EFAULT;
    free(image);
    if (r)
        return r;
    if (st.size > user_size)
        return abi_copy_to_user(UPTR(u, size), &st.size, sizeof st.size) ? -EFAULT : -E2BIG;
    return 0;
}

static long vmx_set(struct abi_vcpu *v, const struct kvm_nested_state *u,
                    const struct kvm_nested_state *st)
{
    /* vmx_set_nested_state, in its order (emu/vmx.c); the vmcs12 is copied up front when
     * the size holds one, a copy failure reported where KVM's copy_from_user is */
    if (st->format != KVM_STATE_NESTED_FORMAT_VMX)
        return -EINVAL;
    struct emu_vmx_nested_state es = {
        .flags = st->flags, .vmxon_pa = st->hdr.vmx.vmxon_pa, .vmcs12_pa = st->hdr.vmx.vmcs12_pa,
        .smm_flags = st->hdr.vmx.smm.flags, .vmx_flags = st->hdr.vmx.flags,
        .preemption_timer_deadline = st->hdr.vmx.preemption_timer_deadline, .size = st->size};
    uint8_t *image = NULL;
    bool copy_failed = false;
    if (st->size >= HDR_SIZE + EMU_VMX_VMCS12_SIZE) {
        image = malloc(2 * EMU_VMX_VMCS12_SIZE);
        if (!image)
            return -ENOMEM;
        copy_failed = abi_copy_from_user(image, UPTR(u, data.vmx[0].vmcs12), EMU_VMX_VMCS12_SIZE) != 0;
        es.has_vmcs12 = true;
        if (st->size >= HDR_SIZE + 2 * EMU_VMX_VMCS12_SIZE) {
            es.has_shadow = true;
            copy_failed |= abi_copy_from_user(image + EMU_VMX_VMCS12_SIZE,
                                              UPTR(u, data.vmx[0].shadow_vmcs12), EMU_VMX_VMCS12_SIZE) != 0;
        }
    }
    long r = emu_vmx_set_nested_state(v->emu, &es, image, copy_failed);
    free(image);
    return r;
}

long abi_vcpu_get_nested_state(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_nested_state *u = (struct kvm_nested_state *)arg;
    if (v->vm->sys->vendor != ABI_VENDOR_AMD)
        return vmx_get(v, u);
    uint32_t user_size;
    if (abi_copy_from_user(&user_size, UPTR(u, size), sizeof user_size))
        return -EFAULT;
    uint8_t *image = malloc(KVM_STATE_NESTED_SVM_VMCB_SIZE);
    if (!image)
        return -ENOMEM;
    struct kvm_nested_state st;
    memset(&st, 0, sizeof st);
    uint64_t pa = 0;
    st.flags = (uint16_t)emu_svm_get_nested_state(v->emu, &pa, image);
    st.format = KVM_STATE_NESTED_FORMAT_SVM;
    st.size = HDR_SIZE;
    long r = 0;
    /* svm_get_nested_state: nothing is written when the buffer cannot hold the header */
    if (user_size >= HDR_SIZE) {
        bool guest = st.flags & KVM_STATE_NESTED_GUEST_MODE;
        if (guest) {
            st.hdr.svm.vmcb_pa = pa;
            st.size += KVM_STATE_NESTED_SVM_VMCB_SIZE;
        }
        if (abi_copy_to_user(u, &st, sizeof st) ||
            (guest && abi_copy_to_user(UPTR(u, data.svm), image, KVM_STATE_NESTED_SVM_VMCB_SIZE)))
            r = -EFAULT;
    } else if (st.flags & KVM_STATE_NESTED_GUEST_MODE) {
        st.size += KVM_STATE_NESTED_SVM_VMCB_SIZE;
    }
    free(image);
    if (r)
        return r;
    /* x86.c: a state larger than the buffer reports its size and fails with E2BIG */
    if (st.size > user_size)
        return abi_copy_to_user(UPTR(u, size), &st.size, sizeof st.size) ? -EFAULT : -E2BIG;
    return 0;
}

long abi_vcpu_set_nested_state(struct abi_vcpu *v, unsigned long arg)
{
    const struct kvm_nested_state *u = (const struct kvm_nested_state *)arg;
    struct kvm_nested_state st;
    if (abi_copy_from_user(&st, u, sizeof st))
        return -EFAULT;
    /* x86.c kvm_arch_vcpu_ioctl(KVM_SET_NESTED_STATE) */
    if (st.size < HDR_SIZE)
        return -EINVAL;
    if (st.flags & ~(KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_GUEST_MODE |
                     KVM_STATE_NESTED_EVMCS | KVM_STATE_NESTED_MTF_PENDING |
                     KVM_STATE_NESTED_GIF_SET))
        return -EINVAL;
    if ((st.flags & KVM_STATE_NESTED_RUN_PENDING) && !(st.flags & KVM_STATE_NESTED_GUEST_MODE))
        return -EINVAL;
    if (v->vm->sys->vendor != ABI_VENDOR_AMD)
        return vmx_set(v, u, &st);
    /* svm_set_nested_state, in its order: format and flags, EFER.SVME, leaving guest mode,
     * the VMCB address and size, the copy (EFAULT), then the VMCB checks (emu/svm.c) */
    if (st.format != KVM_STATE_NESTED_FORMAT_SVM)
        return -EINVAL;
    if (st.flags & ~(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING |
                     KVM_STATE_NESTED_GIF_SET))
        return -EINVAL;
    if (!(emu_cpu(v->emu)->efer & (1ull << 12)) && st.flags != KVM_STATE_NESTED_GIF_SET)
        return -EINVAL; /* GIF=1 and no guest mode without EFER.SVME */
    if (emu_cpu(v->emu)->ev.smm && (st.flags & KVM_STATE_NESTED_GUEST_MODE))
        return -EINVAL; /* SMM temporarily disables SVM: no guest mode */
    if (!(st.flags & KVM_STATE_NESTED_GUEST_MODE))
        return emu_svm_set_nested_state(v->emu, st.flags, 0, NULL);
    if (st.hdr.svm.vmcb_pa & 0xfff)
        return -EINVAL;
    if (st.size < HDR_SIZE + KVM_STATE_NESTED_SVM_VMCB_SIZE)
        return -EINVAL;
    uint8_t *image = malloc(KVM_STATE_NESTED_SVM_VMCB_SIZE);
    if (!image)
        return -ENOMEM;
    long r = -EFAULT;
    if (!abi_copy_from_user(image, UPTR(u, data.svm), KVM_STATE_NESTED_SVM_VMCB_SIZE))
        r = emu_svm_set_nested_state(v->emu, st.flags, st.hdr.svm.vmcb_pa, image);
    free(image);
    return r;
}
