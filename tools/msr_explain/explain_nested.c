/* msr-explain --l2: the nested step in front of the L0 path, for an access L2 makes while
 * an L1 hypervisor runs it (emu/svm.c svm_msr; Linux 6.12 svm/nested.c
 * nested_svm_exit_handled_msr and nested_svm_merge_msrpm, vmx/nested.c
 * nested_vmx_exit_handled_msr and nested_vmx_prepare_msr_bitmap). */
#include <stdio.h>
#include <string.h>

#include "msr/bitmap.h"
#include "msr_explain.h"

bool explain_nested(const struct msr_vcpu *v, uint32_t idx, bool write, enum explain_l1 l1)
{
    bool amd = v->vm->vendor == MSR_VENDOR_AMD;
    struct msr_bitpos p;
    bool in = amd ? msr_svm_bitpos(idx, write, &p) : msr_vmx_bitpos(idx, write, &p);
    printf("1a. nested: L2 makes the access; L1's %s decides first\n",
           amd ? "MSRPM (MSR_PROT intercept)" : "MSR bitmap (\"use MSR bitmaps\" control)");
    if (l1 == EXPLAIN_L1_OFF) {
        printf("   L1 %s -> %s\n",
               amd ? "does not intercept MSR_PROT" : "does not use MSR bitmaps",
               amd ? "L0 decides, as for an L1 access (steps below)"
                   : "every RDMSR/WRMSR exits to L1 (exit reason 31/32); nothing below runs");
        return !amd;
    }
    bool l1_bit = !in || l1 == EXPLAIN_L1_SET;
    if (!in)
        printf("   MSR outside L1's bitmap ranges -> L1's bit counts as set\n");
    else
        printf("   L1's byte 0x%04x bit %u = %d (the same layout as L0's below)\n", p.byte, p.bit,
               l1_bit);
    bool l0_bit = msr_bitmap_intercepted(v, idx, write);
    printf("   merged bitmap L2 runs with (L1 | L0): %d | %d = %d\n", l1_bit, l0_bit,
           l1_bit || l0_bit);
    if (l1_bit) {
        if (amd)
            printf("   -> #VMEXIT(MSR) 0x7c to L1, EXITINFO1 = %d; L0's filter is never asked\n",
                   write ? 1 : 0);
        else
            printf("   -> VM exit to L1, reason %d (%s); L0's filter is never asked\n",
                   write ? 32 : 31, write ? "WRMSR" : "RDMSR");
        return true;
    }
    printf("   -> not L1's: L0 handles it exactly as an L1 access (steps below)\n");
    return false;
}
