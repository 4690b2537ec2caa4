/* msr-explain: private declarations. */
#ifndef SOFTKVM_TOOLS_MSR_EXPLAIN_H
#define SOFTKVM_TOOLS_MSR_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

struct explain_filter {
    struct kvm_msr_filter f;
    uint8_t bitmaps[KVM_MSR_FILTER_MAX_RANGES][0x600];
};

/* --l2: L1's bitmap bit for the access (set / clear), or L1 not using bitmaps (off). */
enum explain_l1 { EXPLAIN_L1_NONE, EXPLAIN_L1_SET, EXPLAIN_L1_CLEAR, EXPLAIN_L1_OFF };
struct msr_vcpu;
/* Prints the nested step; true when the access exits to L1 (the L0 steps do not run). */
bool explain_nested(const struct msr_vcpu *v, uint32_t idx, bool write, enum explain_l1 l1);

/* explain_cases.c: the steps of issue 15, printed to `o` (Linux 6.12 lines cited). */
#include <stdio.h>
#include "msr/msr.h"
/* CPL step; true when the access ends here in #GP(0) (cpl > 0). */
bool explain_cpl(FILE *o, unsigned cpl);
/* An MSR the CPU itself reads/writes for `insn` (syscall, sysret, sysenter, sysexit,
 * swapgs, rdtscp, rdpid): 0 printed, -1 insn does not use that MSR, -2 unknown insn. */
int explain_implicit(FILE *o, uint32_t idx, const char *insn);
/* What a filter replacement while the vCPU runs means for this access. */
void explain_filter_change(FILE *o, const struct msr_vcpu *v, uint32_t idx, bool write);
/* A pass-through MSR the filter denies: intercepted after all. */
void explain_pt_filter(FILE *o, const struct msr_vcpu *v, uint32_t idx, bool write);
/* KVM_CAP_ENFORCE_PV_FEATURE_CPUID for a PV MSR (nothing for other MSRs). */
void explain_pv(FILE *o, const struct msr_vcpu *v, uint32_t idx);
/* INIT (kvm_vcpu_reset(init_event = true)): "kept ..." / "reset to ..." or NULL. */
const char *explain_init_rule(enum msr_vendor vendor, uint32_t idx);

int explain_load_filter(const char *path, struct explain_filter *out, char *err, size_t errlen);

#endif
