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

int explain_load_filter(const char *path, struct explain_filter *out, char *err, size_t errlen);

#endif
