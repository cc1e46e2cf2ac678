"""What this machine's CPU lets TensorFlow do in bfloat16, for tests whose expectations differ.

TensorFlow's oneDNN bfloat16 pass (Grappler's auto_mixed_precision_onednn_bfloat16) rewrites a
graph only where `IsBF16SupportedByOneDNNOnThisCPU()` (tensorflow/core/util/util.cc) holds:
the CPU has AVX512F or AVX_NE_CONVERT. On others (AVX2-only x86-64 CPUs, say) it returns the
graph in float32, and FaceDetector(precision='bfloat16') runs float32 and says so. Tests
assert the rewrite where these flags exist and the fallback where they do not; the fallback
is also tested everywhere with the pass faked to do nothing.
"""
import pytest

# /proc/cpuinfo flags under which TensorFlow's oneDNN bfloat16 pass rewrites graphs.
ONEDNN_BFLOAT16_FLAGS = ("avx512f", "avx_ne_convert")


def cpu_flags(cpuinfo_path="/proc/cpuinfo"):
    """The first 'flags' line of `cpuinfo_path` as a set of names; None where it cannot be read."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return None


def onednn_rewrites_bfloat16(cpuinfo_path="/proc/cpuinfo"):
    """True/False from the CPU flags; None where they cannot be read (not Linux)."""
    flags = cpu_flags(cpuinfo_path)
    return None if flags is None else any(flag in flags for flag in ONEDNN_BFLOAT16_FLAGS)


REWRITES_BFLOAT16 = onednn_rewrites_bfloat16()
needs_bfloat16_rewrite = pytest.mark.skipif(
    not REWRITES_BFLOAT16,
    reason="TensorFlow's oneDNN bfloat16 pass does not rewrite on this CPU (no AVX512F / AVX_NE_CONVERT "
           "flag, or no /proc/cpuinfo); the float32 fallback is tested instead")
knows_cpu_flags = pytest.mark.skipif(REWRITES_BFLOAT16 is None, reason="no /proc/cpuinfo to read CPU flags from")
