/* abi/preload: CPUID as a program under softkvm sees it (host_cpuid.c). */
#ifndef SOFTKVM_ABI_PRELOAD_HOST_CPUID_H
#define SOFTKVM_ABI_PRELOAD_HOST_CPUID_H

#include <signal.h>
#include <stdbool.h>

/* Turns CPUID faulting on for this thread (and what it forks/clones). False when the
 * host cannot (ENODEV) or SOFTKVM_HOST_CPUID=plain. */
bool host_cpuid_init(void);
/* From the SIGSEGV handler: true when the fault was a CPUID, now emulated. */
bool host_cpuid_emulate(siginfo_t *info, void *uctx);

#endif
