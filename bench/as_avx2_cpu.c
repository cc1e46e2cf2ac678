/*
 * as_avx2_cpu.c: run a program as if the CPU were AVX2-only (LD_PRELOAD library, Linux x86-64).
 *
 * What a program sees of the CPU comes from two places, and both are changed:
 *   - the CPUID instruction (what oneDNN, XNNPACK's cpuinfo and TensorFlow's own checks read):
 *     with Linux's CPUID faulting (arch_prctl(ARCH_SET_CPUID, 0); the kernel lists
 *     `cpuid_fault` in /proc/cpuinfo where it can), every CPUID traps into the SIGSEGV handler
 *     below, which runs the real CPUID and clears the feature bits of AVX-512, AVX10, AMX and
 *     AVX-VNNI (and their register state in leaf 0xD) before returning;
 *   - /proc/cpuinfo (what face_detector.py's 'auto' reads): opening it gives a copy whose
 *     `flags` lines lack the same features.
 * The result is what an AVX2 + FMA CPU without VNNI reports (AMD Zen 2 / Zen 3, Intel Haswell
 * to Comet Lake), so every library dispatches to the kernels it would run there. The hardware
 * is still the host's: clock, caches and the execution of AVX2 instructions are its own (on
 * AMD Zen 4, whose AVX-512 runs on 256-bit units, that is close to Zen 3).
 *
 * CPUID faulting is per thread and inherited by threads and forks, so it is switched on in the
 * constructor, before the program starts threads. A SIGSEGV handler installed later by the
 * program with sigaction() or signal() (Python's faulthandler, GCC's cc1) is kept aside and
 * called for real faults, so it cannot take the CPUID traps.
 *
 * Build and use (bench/as_avx2_cpu.sh does both):
 *     gcc -O2 -shared -fPIC -o as_avx2_cpu.so bench/as_avx2_cpu.c -ldl
 *     LD_PRELOAD=$PWD/as_avx2_cpu.so python bench/bench_model.py
 * Without CPUID faulting the library prints one line to stderr and exits the program with 3.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* Leaf 7 subleaf 0, EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL. */
#define L7_EBX_MASK (BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31))
/* Leaf 7 subleaf 0, ECX: AVX512_VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ. */
#define L7_ECX_MASK (BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14))
/* Leaf 7 subleaf 0, EDX: AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, AMX_BF16, AVX512_FP16, AMX_TILE,
 * AMX_INT8. */
#define L7_EDX_MASK (BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25))
/* Leaf 7 subleaf 1, EAX: AVX_VNNI, AVX512_BF16, AMX_FP16, AVX_IFMA. */
#define L7S1_EAX_MASK (BIT(4) | BIT(5) | BIT(21) | BIT(23))
/* Leaf 7 subleaf 1, EDX: AVX_VNNI_INT8, AVX_NE_CONVERT, AVX_VNNI_INT16, AVX10. */
#define L7S1_EDX_MASK (BIT(4) | BIT(5) | BIT(10) | BIT(19))
/* Leaf 0xD subleaf 0, EAX: the opmask, ZMM_Hi256 and Hi16_ZMM state, AMX TILECFG and TILEDATA. */
#define LD_EAX_MASK (BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18))

/* /proc/cpuinfo flags removed: every word starting with one of these. */
static const char *const hidden_flag_prefixes[] = {"avx512", "avx10", "amx", "avx_vnni", "avx_ne_convert",
                                                   "avx_ifma", NULL};

static struct sigaction program_handler; /* the program's own SIGSEGV handler, if it set one */
static int program_handler_set;
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static char cpuinfo_copy[64]; /* "/proc/self/fd/N" of the masked copy, "" before the constructor */

static long set_cpuid_faulting(int faulting) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, !faulting); }

static void mask_cpuid(unsigned leaf, unsigned subleaf, unsigned reg[4]) {
  if (leaf == 7 && subleaf == 0) {
    reg[1] &= ~L7_EBX_MASK;
    reg[2] &= ~L7_ECX_MASK;
    reg[3] &= ~L7_EDX_MASK;
  } else if (leaf == 7 && subleaf == 1) {
    reg[0] &= ~L7S1_EAX_MASK;
    reg[3] &= ~L7S1_EDX_MASK;
  } else if (leaf == 0xD && subleaf == 0) {
    reg[0] &= ~LD_EAX_MASK;
  } else if (leaf == 0x1D || leaf == 0x1E || leaf == 0x24) { /* AMX tiles, TMUL, AVX10 */
    reg[0] = reg[1] = reg[2] = reg[3] = 0;
  }
}

static void pass_to_program(int signal_number, siginfo_t *info, void *context) {
  if (program_handler_set && (program_handler.sa_flags & SA_SIGINFO)) {
    program_handler.sa_sigaction(signal_number, info, context);
  } else if (program_handler_set && program_handler.sa_handler != SIG_DFL &&
             program_handler.sa_handler != SIG_IGN) {
    program_handler.sa_handler(signal_number);
  } else {
    /* Default action: return, and the faulting instruction faults again without this handler. */
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &fallback, NULL);
  }
}

static void on_sigsegv(int signal_number, siginfo_t *info, void *context) {
  greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
  /* A faulting CPUID raises #GP: SIGSEGV with si_code SI_KERNEL; page faults have other codes. */
  if (info->si_code == SI_KERNEL) {
    const unsigned char *at = (const unsigned char *)regs[REG_RIP];
    if (at[0] == 0x0F && at[1] == 0xA2) {
      unsigned reg[4], leaf = (unsigned)regs[REG_RAX], subleaf = (unsigned)regs[REG_RCX];
      set_cpuid_faulting(0);
      __cpuid_count(leaf, subleaf, reg[0], reg[1], reg[2], reg[3]);
      set_cpuid_faulting(1);
      mask_cpuid(leaf, subleaf, reg);
      /* CPUID writes the low 32 bits and zeroes the high 32 bits of each register. */
      regs[REG_RAX] = reg[0];
      regs[REG_RBX] = reg[1];
      regs[REG_RCX] = reg[2];
      regs[REG_RDX] = reg[3];
      regs[REG_RIP] += 2;
      return;
    }
  }
  pass_to_program(signal_number, info, context);
}

/* SIGSEGV stays ours: the program's handler is recorded and called for real faults. */
int sigaction(int signal_number, const struct sigaction *action, struct sigaction *old_action) {
  if (!real_sigaction) real_sigaction = dlsym(RTLD_NEXT, "sigaction");
  if (signal_number != SIGSEGV || !cpuinfo_copy[0]) return real_sigaction(signal_number, action, old_action);
  if (old_action) {
    if (program_handler_set) {
      *old_action = program_handler;
    } else {
      memset(old_action, 0, sizeof *old_action);
      old_action->sa_handler = SIG_DFL;
    }
  }
  if (action) {
    program_handler = *action;
    program_handler_set = 1;
  }
  return 0;
}

sighandler_t signal(int signal_number, sighandler_t handler) {
  struct sigaction action, old_action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  action.sa_flags = SA_RESTART; /* glibc's signal(): BSD semantics */
  if (sigaction(signal_number, &action, &old_action) != 0) return SIG_ERR;
  return (old_action.sa_flags & SA_SIGINFO) ? (sighandler_t)old_action.sa_sigaction : old_action.sa_handler;
}

static int is_hidden_flag(const char *word, size_t length) {
  for (const char *const *prefix = hidden_flag_prefixes; *prefix; prefix++) {
    size_t n = strlen(*prefix);
    if (length >= n && strncmp(word, *prefix, n) == 0) return 1;
  }
  return 0;
}

/* Writes /proc/cpuinfo without the hidden flags to a memfd; returns the fd or -1. */
static int masked_cpuinfo(void) {
  static char text[1 << 20], out[1 << 20];
  int in = (int)syscall(SYS_openat, AT_FDCWD, "/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
  if (in < 0) return -1;
  size_t size = 0;
  ssize_t got;
  while (size < sizeof text - 1 && (got = read(in, text + size, sizeof text - 1 - size)) > 0) size += (size_t)got;
  close(in);
  text[size] = '\0';
  size_t n = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    size_t length = end ? (size_t)(end - line + 1) : strlen(line);
    int is_flags = strncmp(line, "flags", 5) == 0 && memchr(line, ':', length);
    if (!is_flags) {
      memcpy(out + n, line, length);
      n += length;
    } else {
      char *colon = memchr(line, ':', length);
      size_t head = (size_t)(colon - line + 1);
      memcpy(out + n, line, head);
      n += head;
      for (char *word = colon + 1; word < line + length;) {
        while (word < line + length && (*word == ' ' || *word == '\t' || *word == '\n')) word++;
        char *stop = word;
        while (stop < line + length && *stop != ' ' && *stop != '\t' && *stop != '\n') stop++;
        if (stop > word && !is_hidden_flag(word, (size_t)(stop - word))) {
          out[n++] = ' ';
          memcpy(out + n, word, (size_t)(stop - word));
          n += (size_t)(stop - word);
        }
        word = stop;
      }
      out[n++] = '\n';
    }
    line += length;
  }
  int fd = (int)syscall(SYS_memfd_create, "cpuinfo_as_avx2", MFD_CLOEXEC);
  if (fd < 0) return -1;
  for (size_t done = 0; done < n;) {
    ssize_t put = write(fd, out + done, n - done);
    if (put <= 0) return -1;
    done += (size_t)put;
  }
  return fd;
}

static const char *redirect(const char *path) {
  return (cpuinfo_copy[0] && path && strcmp(path, "/proc/cpuinfo") == 0) ? cpuinfo_copy : path;
}

#define OPEN_LIKE(name)                                                               \
  int name(const char *path, int flags, ...) {                                        \
    static int (*real)(const char *, int, ...);                                       \
    if (!real) real = dlsym(RTLD_NEXT, #name);                                        \
    va_list args;                                                                     \
    va_start(args, flags);                                                            \
    int mode = va_arg(args, int);                                                     \
    va_end(args);                                                                     \
    return real(redirect(path), flags, mode);                                         \
  }
#define OPENAT_LIKE(name)                                                             \
  int name(int directory, const char *path, int flags, ...) {                         \
    static int (*real)(int, const char *, int, ...);                                  \
    if (!real) real = dlsym(RTLD_NEXT, #name);                                        \
    va_list args;                                                                     \
    va_start(args, flags);                                                            \
    int mode = va_arg(args, int);                                                     \
    va_end(args);                                                                     \
    return real(directory, redirect(path), flags, mode);                              \
  }
#define FOPEN_LIKE(name)                                                              \
  FILE *name(const char *path, const char *mode) {                                    \
    static FILE *(*real)(const char *, const char *);                                 \
    if (!real) real = dlsym(RTLD_NEXT, #name);                                        \
    return real(redirect(path), mode);                                                \
  }
OPEN_LIKE(open)
OPEN_LIKE(open64)
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)
FOPEN_LIKE(fopen)
FOPEN_LIKE(fopen64)

__attribute__((constructor)) static void start_as_avx2_cpu(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigsegv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK; /* on the thread's alternate stack where it set one */
  sigemptyset(&action.sa_mask);
  int copy = masked_cpuinfo();
  if (copy < 0 || sigaction(SIGSEGV, &action, NULL) != 0 || set_cpuid_faulting(1) != 0) {
    fprintf(stderr, "as_avx2_cpu: cannot hide AVX-512 here (this kernel or CPU has no CPUID faulting: "
                    "no 'cpuid_fault' in /proc/cpuinfo)\n");
    exit(3);
  }
  snprintf(cpuinfo_copy, sizeof cpuinfo_copy, "/proc/self/fd/%d", copy);
}
