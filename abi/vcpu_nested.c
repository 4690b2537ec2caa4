/* abi/: KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE and KVM_CAP_NESTED_STATE, as Linux
 * 6.12 x86.c kvm_arch_vcpu_ioctl and svm/nested.c svm_get_nested_state /
 * svm_set_nested_state answer them: a 128-byte struct kvm_nested_state header, then, in
 * guest mode, the 4 KiB VMCB image (emu/svm.c fills and checks it). The Intel flavour's
 * VMX format is missing in softkvm so far: those ioctls fail with EINVAL there, as on a
 * KVM without nested_ops->get_state, and KVM_CAP_NESTED_STATE is 0. */
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

long abi_nested_state_max_size(enum abi_vendor vendor)
{
    return vendor == ABI_VENDOR_AMD ? (long)(HDR_SIZE + KVM_STATE_NESTED_SVM_VMCB_SIZE) : 0;
}

long abi_vcpu_get_nested_state(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_nested_state *u = (struct kvm_nested_state *)arg;
    if (v->vm->sys->vendor != ABI_VENDOR_AMD)
        return -EINVAL;
    uint32_t user_size;
    if (abi_copy_from_user(&user_size, &u->size, sizeof user_size))
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
            (guest && abi_copy_to_user(u->data.svm, image, KVM_STATE_NESTED_SVM_VMCB_SIZE)))
            r = -EFAULT;
    } else if (st.flags & KVM_STATE_NESTED_GUEST_MODE) {
        st.size += KVM_STATE_NESTED_SVM_VMCB_SIZE;
    }
    free(image);
    if (r)
        return r;
    /* x86.c: a state larger than the buffer reports its size and fails with E2BIG */
    if (st.size > user_size)
        return abi_copy_to_user(&u->size, &st.size, sizeof st.size) ? -EFAULT : -E2BIG;
    return 0;
}

long abi_vcpu_set_nested_state(struct abi_vcpu *v, unsigned long arg)
{
    const struct kvm_nested_state *u = (const struct kvm_nested_state *)arg;
    if (v->vm->sys->vendor != ABI_VENDOR_AMD)
        return -EINVAL;
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
    /* svm_set_nested_state, in its order: format and flags, EFER.SVME, leaving guest mode,
     * the VMCB address and size, the copy (EFAULT), then the VMCB checks (emu/svm.c) */
    if (st.format != KVM_STATE_NESTED_FORMAT_SVM)
        return -EINVAL;
    if (st.flags & ~(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING |
                     KVM_STATE_NESTED_GIF_SET))
        return -EINVAL;
    if (!(st.flags & KVM_STATE_NESTED_GUEST_MODE))
        return emu_svm_set_nested_state(v->emu, st.flags, 0, NULL);
    if (!(emu_cpu(v->emu)->efer & (1ull << 12)))
        return -EINVAL; /* guest mode needs EFER.SVME */
    if (st.hdr.svm.vmcb_pa & 0xfff)
        return -EINVAL;
    if (st.size < HDR_SIZE + KVM_STATE_NESTED_SVM_VMCB_SIZE)
        return -EINVAL;
    uint8_t *image = malloc(KVM_STATE_NESTED_SVM_VMCB_SIZE);
    if (!image)
        return -ENOMEM;
    long r = -EFAULT;
    if (!abi_copy_from_user(image, u->data.svm, KVM_STATE_NESTED_SVM_VMCB_SIZE))
        r = emu_svm_set_nested_state(v->emu, st.flags, st.hdr.svm.vmcb_pa, image);
    free(image);
    return r;
}
