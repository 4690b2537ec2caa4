/* msr-explain: private declarations. */
#ifndef SOFTKVM_TOOLS_MSR_EXPLAIN_H
#define SOFTKVM_TOOLS_MSR_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

struct explain_filter {
    struct kvm_msr_filter f;
    uint8_t bitmaps[KVM_MSR_FILTER_MAX_RANGES][0x600];
};

int explain_load_filter(const char *path, struct explain_filter *out, char *err, size_t errlen);

#endif
