"""bench/as_avx2_cpu.sh: a command run through it sees an AVX2-only CPU in CPUID (what oneDNN,
XNNPACK and TensorFlow read) and in /proc/cpuinfo (what FaceDetector's 'auto' reads), and real
crashes still crash. Skipped where the kernel offers no CPUID faulting or no C compiler exists (the
script then refuses in one line, also tested)."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'bench', 'as_avx2_cpu.sh')
COMPILER = shutil.which('cc') or shutil.which('gcc') or shutil.which('clang')
with open('/proc/cpuinfo') as f:
    CPUINFO = f.read()
CAN_HIDE = 'cpuid_fault' in CPUINFO.split() and COMPILER is not None
needs_cpuid_faulting = pytest.mark.skipif(not CAN_HIDE, reason='no CPUID faulting or no C compiler here')
# What a CPUID probe prints: leaf 7's AVX2 and AVX512F bits, leaf 7 subleaf 1's AVX512_BF16 bit.
PROBE = r'''
#include <cpuid.h>
#include <stdio.h>
int main(void) {
  unsigned a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  printf("avx2=%u avx512f=%u avx512_vnni=%u", (b >> 5) & 1, (b >> 16) & 1, (c >> 11) & 1);
  __cpuid_count(7, 1, a, b, c, d);
  printf(" avx512_bf16=%u\n", (a >> 5) & 1);
  return 0;
}
'''


def _run(command, env=None, **kwargs):
    return subprocess.run(['bash', SCRIPT] + command, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})), **kwargs)


def _flags(text):
    return set(next(line for line in text.splitlines() if line.startswith('flags')).split(':', 1)[1].split())


@pytest.fixture(scope='module')
def probe(tmp_path_factory):
    folder = tmp_path_factory.mktemp('probe')
    (folder / 'probe.c').write_text(PROBE)
    subprocess.run([COMPILER, '-O1', '-o', str(folder / 'probe'), str(folder / 'probe.c')], check=True)
    return str(folder / 'probe')


@needs_cpuid_faulting
def test_cpuid_loses_avx512_and_keeps_avx2(probe, tmp_path):
    native = subprocess.run([probe], capture_output=True, text=True, check=True).stdout.split()
    flags = _flags(CPUINFO)
    assert native == [f'avx2={int("avx2" in flags)}', f'avx512f={int("avx512f" in flags)}',
                      f'avx512_vnni={int("avx512_vnni" in flags)}', f'avx512_bf16={int("avx512_bf16" in flags)}']
    done = _run([probe], env={'XDG_CACHE_HOME': str(tmp_path)})  # builds the library afresh
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f'avx2={int("avx2" in flags)}', 'avx512f=0', 'avx512_vnni=0', 'avx512_bf16=0']
    assert len(list((tmp_path / 'faceboxes').glob('as_avx2_cpu-*.so'))) == 1


@needs_cpuid_faulting
def test_proc_cpuinfo_loses_the_same_flags_and_nothing_else():
    code = 'import sys; sys.stdout.write(open("/proc/cpuinfo").read())'
    done = _run([sys.executable, '-c', code])
    assert done.returncode == 0, done.stderr
    real, seen = _flags(CPUINFO), _flags(done.stdout)
    hidden = {flag for flag in real if flag.startswith(('avx512', 'avx10', 'amx', 'avx_vnni', 'avx_ne_convert',
                                                        'avx_ifma'))}
    assert seen == real - hidden
    assert {'avx2', 'fma'} & real <= seen

    def others(text):
        return [line for line in text.splitlines() if not line.startswith('flags')]

    assert others(done.stdout) == others(CPUINFO)


@needs_cpuid_faulting
def test_tensorflow_and_face_detector_see_an_avx2_cpu():
    code = ('import tensorflow as tf, face_detector\n'
            'x = tf.ones([1, 8, 8, 4]); tf.nn.conv2d(x, tf.ones([3, 3, 4, 4]), 1, "SAME").numpy()\n'
            'print("native bfloat16:", face_detector.cpu_has_native_bfloat16())\n')
    done = _run([sys.executable, '-c', code], env={'ONEDNN_VERBOSE': '1', 'TF_ENABLE_ONEDNN_OPTS': '1'}, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'native bfloat16: False' in done.stdout
    isa = [line for line in (done.stdout + done.stderr).splitlines() if 'info,cpu,isa:' in line]
    assert isa and all(line.rstrip().endswith('isa:Intel AVX2') for line in isa), isa


@needs_cpuid_faulting
def test_a_real_crash_still_reaches_the_programs_handler():
    # faulthandler installs its SIGSEGV handler after the library did: the library keeps the
    # CPUID traps and hands real faults on, so the traceback is printed and the process dies.
    code = 'import ctypes, faulthandler; faulthandler.enable(); ctypes.string_at(0)'
    done = _run([sys.executable, '-c', code])
    assert done.returncode == -11, done
    assert 'Segmentation fault' in done.stderr and 'line 1' in done.stderr
    # Without a handler of the program's, the default action.
    done = _run([sys.executable, '-c', 'import ctypes; ctypes.string_at(0)'])
    assert done.returncode == -11 and done.stderr == '', done


@needs_cpuid_faulting
def test_a_program_that_sets_its_handler_with_signal_runs(tmp_path):
    # GCC's cc1 sets its SIGSEGV handler with signal(): it must not take the CPUID traps either.
    (tmp_path / 'probe.c').write_text(PROBE)
    done = _run([COMPILER, '-O1', '-o', str(tmp_path / 'probe'), str(tmp_path / 'probe.c')])
    assert done.returncode == 0, done.stderr
    assert 'avx512f=0' in _run([str(tmp_path / 'probe')]).stdout


OVERFLOW = r'''
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void on_fault(int sig) { (void)sig; write(1, "caught\n", 7); _exit(0); }
static int down(volatile int n) { volatile char pad[256]; pad[0] = (char)n; return down(n + 1) + pad[0]; }
static void *run(void *arg) {
  stack_t alt = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16, .ss_flags = 0};
  struct sigaction action;
  (void)arg;
  sigaltstack(&alt, NULL);
  memset(&action, 0, sizeof action);
  action.sa_handler = on_fault;
  action.sa_flags = SA_ONSTACK;
  sigaction(SIGSEGV, &action, NULL);
  return (void *)(long)down(0);
}
int main(void) {
  pthread_attr_t attr;
  pthread_t thread;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 16);
  pthread_create(&thread, &attr, run, NULL);
  pthread_join(thread, NULL);
  return 1;
}
'''


@needs_cpuid_faulting
def test_a_stack_overflow_reaches_the_programs_handler_on_its_alternate_stack(tmp_path):
    # A thread overflows its 64 KB stack; its handler (SA_ONSTACK, as faulthandler's) must run on the
    # alternate stack it set, so the library's own handler has to run there too.
    (tmp_path / 'overflow.c').write_text(OVERFLOW)
    subprocess.run([COMPILER, '-O0', '-o', str(tmp_path / 'overflow'), str(tmp_path / 'overflow.c'), '-lpthread'],
                   check=True)
    assert subprocess.run([str(tmp_path / 'overflow')], capture_output=True, text=True).stdout == 'caught\n'
    done = _run([str(tmp_path / 'overflow')])
    assert (done.returncode, done.stdout) == (0, 'caught\n'), done


def test_refuses_in_one_line_without_cpuid_faulting_or_a_compiler(tmp_path):
    tools = tmp_path / 'bin'  # the tools the script needs, without any C compiler
    tools.mkdir()
    for tool in ('grep', 'sed', 'dirname', 'mkdir', 'mv', 'true'):
        os.symlink(shutil.which(tool), tools / tool)
    done = subprocess.run([shutil.which('bash'), SCRIPT, 'true'], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PATH=str(tools)))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1, done
    assert ('no C compiler' if 'cpuid_fault' in CPUINFO.split() else 'no CPUID faulting') in lines[0]
