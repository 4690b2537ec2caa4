#include "tools/kvm_fuzz/fuzz.h"
int fz_guest_main(const struct fz_opts *o) { (void)o; return 0; }
