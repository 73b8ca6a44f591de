// Used by bench/ggml/logits_vs_llamacpp.sh (NOAMX=1): llama.cpp without its AMX kernels on an AMX CPU.
// LD_PRELOAD shim: make arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) fail, so ggml's AMX init
// (ggml_amx_init) reports "AMX is not ready" and the AMX extra buffer type is not registered.
// Every other syscall() call is passed through unchanged.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long n, ...) {
    va_list ap; long a[6];
    va_start(ap, n);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_arch_prctl && a[0] == 0x1023 /* ARCH_REQ_XCOMP_PERM */) { errno = EPERM; return -1; }
    static long (*real)(long, ...) = 0;
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
