/* emu/: the vmcs12 field table (see emu/vmcs.h). Offsets are those of KVM 6.12's struct
 * vmcs12 (vmx/vmcs12.h, frozen there for migration): header 0, abort 4, launch state 8. */
#include <string.h>

#include "emu/vmcs.h"

static const struct { uint16_t enc, off; } fields[] = {
    {VF_VIRTUAL_PROCESSOR_ID, 960},
    {VF_POSTED_INTR_NV, 962},
    {VF_GUEST_ES_SELECTOR, 964},
    {VF_GUEST_CS_SELECTOR, 966},
    {VF_GUEST_SS_SELECTOR, 968},
    {VF_GUEST_DS_SELECTOR, 970},
    {VF_GUEST_FS_SELECTOR, 972},
    {VF_GUEST_GS_SELECTOR, 974},
    {VF_GUEST_LDTR_SELECTOR, 976},
    {VF_GUEST_TR_SELECTOR, 978},
    {VF_GUEST_INTR_STATUS, 980},
    {VF_GUEST_PML_INDEX, 996},
    {VF_HOST_ES_SELECTOR, 982},
    {VF_HOST_CS_SELECTOR, 984},
    {VF_HOST_SS_SELECTOR, 986},
    {VF_HOST_DS_SELECTOR, 988},
    {VF_HOST_FS_SELECTOR, 990},
    {VF_HOST_GS_SELECTOR, 992},
    {VF_HOST_TR_SELECTOR, 994},
    {VF_IO_BITMAP_A, 40},
    {VF_IO_BITMAP_B, 48},
    {VF_MSR_BITMAP, 56},
    {VF_VM_EXIT_MSR_STORE_ADDR, 64},
    {VF_VM_EXIT_MSR_LOAD_ADDR, 72},
    {VF_VM_ENTRY_MSR_LOAD_ADDR, 80},
    {VF_PML_ADDRESS, 312},
    {VF_TSC_OFFSET, 88},
    {VF_VIRTUAL_APIC_PAGE_ADDR, 96},
    {VF_APIC_ACCESS_ADDR, 104},
    {VF_POSTED_INTR_DESC_ADDR, 112},
    {VF_VM_FUNCTION_CONTROL, 296},
    {VF_EPT_POINTER, 120},
    {VF_EOI_EXIT_BITMAP0, 128},
    {VF_EOI_EXIT_BITMAP1, 136},
    {VF_EOI_EXIT_BITMAP2, 144},
    {VF_EOI_EXIT_BITMAP3, 152},
    {VF_EPTP_LIST_ADDRESS, 304},
    {VF_VMREAD_BITMAP, 280},
    {VF_VMWRITE_BITMAP, 288},
    {VF_XSS_EXIT_BITMAP, 160},
    {VF_ENCLS_EXITING_BITMAP, 320},
    {VF_TSC_MULTIPLIER, 328},
    {VF_GUEST_PHYSICAL_ADDRESS, 168},
    {VF_VMCS_LINK_POINTER, 176},
    {VF_GUEST_IA32_DEBUGCTL, 184},
    {VF_GUEST_IA32_PAT, 192},
    {VF_GUEST_IA32_EFER, 200},
    {VF_GUEST_IA32_PERF_GLOBAL_CTRL, 208},
    {VF_GUEST_PDPTR0, 216},
    {VF_GUEST_PDPTR1, 224},
    {VF_GUEST_PDPTR2, 232},
    {VF_GUEST_PDPTR3, 240},
    {VF_GUEST_BNDCFGS, 248},
    {VF_HOST_IA32_PAT, 256},
    {VF_HOST_IA32_EFER, 264},
    {VF_HOST_IA32_PERF_GLOBAL_CTRL, 272},
    {VF_PIN_BASED_VM_EXEC_CONTROL, 744},
    {VF_CPU_BASED_VM_EXEC_CONTROL, 748},
    {VF_EXCEPTION_BITMAP, 752},
    {VF_PAGE_FAULT_ERROR_CODE_MASK, 756},
    {VF_PAGE_FAULT_ERROR_CODE_MATCH, 760},
    {VF_CR3_TARGET_COUNT, 764},
    {VF_VM_EXIT_CONTROLS, 768},
    {VF_VM_EXIT_MSR_STORE_COUNT, 772},
    {VF_VM_EXIT_MSR_LOAD_COUNT, 776},
    {VF_VM_ENTRY_CONTROLS, 780},
    {VF_VM_ENTRY_MSR_LOAD_COUNT, 784},
    {VF_VM_ENTRY_INTR_INFO_FIELD, 788},
    {VF_VM_ENTRY_EXCEPTION_ERROR_CODE, 792},
    {VF_VM_ENTRY_INSTRUCTION_LEN, 796},
    {VF_TPR_THRESHOLD, 800},
    {VF_SECONDARY_VM_EXEC_CONTROL, 804},
    {VF_VM_INSTRUCTION_ERROR, 808},
    {VF_VM_EXIT_REASON, 812},
    {VF_VM_EXIT_INTR_INFO, 816},
    {VF_VM_EXIT_INTR_ERROR_CODE, 820},
    {VF_IDT_VECTORING_INFO_FIELD, 824},
    {VF_IDT_VECTORING_ERROR_CODE, 828},
    {VF_VM_EXIT_INSTRUCTION_LEN, 832},
    {VF_VMX_INSTRUCTION_INFO, 836},
    {VF_GUEST_ES_LIMIT, 840},
    {VF_GUEST_CS_LIMIT, 844},
    {VF_GUEST_SS_LIMIT, 848},
    {VF_GUEST_DS_LIMIT, 852},
    {VF_GUEST_FS_LIMIT, 856},
    {VF_GUEST_GS_LIMIT, 860},
    {VF_GUEST_LDTR_LIMIT, 864},
    {VF_GUEST_TR_LIMIT, 868},
    {VF_GUEST_GDTR_LIMIT, 872},
    {VF_GUEST_IDTR_LIMIT, 876},
    {VF_GUEST_ES_AR_BYTES, 880},
    {VF_GUEST_CS_AR_BYTES, 884},
    {VF_GUEST_SS_AR_BYTES, 888},
    {VF_GUEST_DS_AR_BYTES, 892},
    {VF_GUEST_FS_AR_BYTES, 896},
    {VF_GUEST_GS_AR_BYTES, 900},
    {VF_GUEST_LDTR_AR_BYTES, 904},
    {VF_GUEST_TR_AR_BYTES, 908},
    {VF_GUEST_INTERRUPTIBILITY_INFO, 912},
    {VF_GUEST_ACTIVITY_STATE, 916},
    {VF_GUEST_SYSENTER_CS, 920},
    {VF_VMX_PREEMPTION_TIMER_VALUE, 928},
    {VF_HOST_IA32_SYSENTER_CS, 924},
    {VF_CR0_GUEST_HOST_MASK, 344},
    {VF_CR4_GUEST_HOST_MASK, 352},
    {VF_CR0_READ_SHADOW, 360},
    {VF_CR4_READ_SHADOW, 368},
    {VF_EXIT_QUALIFICATION, 408},
    {VF_GUEST_LINEAR_ADDRESS, 416},
    {VF_GUEST_CR0, 424},
    {VF_GUEST_CR3, 432},
    {VF_GUEST_CR4, 440},
    {VF_GUEST_ES_BASE, 448},
    {VF_GUEST_CS_BASE, 456},
    {VF_GUEST_SS_BASE, 464},
    {VF_GUEST_DS_BASE, 472},
    {VF_GUEST_FS_BASE, 480},
    {VF_GUEST_GS_BASE, 488},
    {VF_GUEST_LDTR_BASE, 496},
    {VF_GUEST_TR_BASE, 504},
    {VF_GUEST_GDTR_BASE, 512},
    {VF_GUEST_IDTR_BASE, 520},
    {VF_GUEST_DR7, 528},
    {VF_GUEST_RSP, 536},
    {VF_GUEST_RIP, 544},
    {VF_GUEST_RFLAGS, 552},
    {VF_GUEST_PENDING_DBG_EXCEPTIONS, 560},
    {VF_GUEST_SYSENTER_ESP, 568},
    {VF_GUEST_SYSENTER_EIP, 576},
    {VF_HOST_CR0, 584},
    {VF_HOST_CR3, 592},
    {VF_HOST_CR4, 600},
    {VF_HOST_FS_BASE, 608},
    {VF_HOST_GS_BASE, 616},
    {VF_HOST_TR_BASE, 624},
    {VF_HOST_GDTR_BASE, 632},
    {VF_HOST_IDTR_BASE, 640},
    {VF_HOST_IA32_SYSENTER_ESP, 648},
    {VF_HOST_IA32_SYSENTER_EIP, 656},
    {VF_HOST_RSP, 664},
    {VF_HOST_RIP, 672},
};

bool emu_vmcs_locate(uint32_t enc, unsigned *offset, unsigned *width)
{
    if (enc >> 15 || (enc & (1u << 12)))
        return false;
    unsigned w = (enc >> 13) & 3; /* 0: 16-bit, 1: 64-bit, 2: 32-bit, 3: natural width */
    bool high = w == 1 && (enc & 1);
    if ((enc & 1) && w != 1)
        return false; /* only 64-bit fields have a HIGH form */
    uint32_t base = enc & ~1u;
    unsigned lo = 0, hi = sizeof fields / sizeof fields[0];
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (fields[mid].enc < base)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == sizeof fields / sizeof fields[0] || fields[lo].enc != base)
        return false;
    *offset = fields[lo].off + (high ? 4 : 0);
    *width = high ? 4 : w == 0 ? 2 : w == 2 ? 4 : 8;
    return true;
}

uint64_t emu_vmcs_get(const uint8_t *vmcs, uint32_t enc)
{
    unsigned off, w;
    uint64_t x = 0;
    if (emu_vmcs_locate(enc, &off, &w))
        memcpy(&x, vmcs + off, w);
    return x;
}

void emu_vmcs_put(uint8_t *vmcs, uint32_t enc, uint64_t val)
{
    unsigned off, w;
    if (emu_vmcs_locate(enc, &off, &w))
        memcpy(vmcs + off, &val, w);
}
