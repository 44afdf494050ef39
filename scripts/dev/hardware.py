"""Peak matrix throughput of known GPUs, the denominator of "fraction of peak" in the benchmarks.

Figures are NVIDIA's datasheet numbers in TFLOP/s: dense bf16 on the tensor cores (the datasheets
print the 2:4-sparse figure, twice the dense one) and plain fp32 without tensor cores, which is what
PyTorch uses for fp32 matmuls unless TF32 is switched on. Measured bf16 matmul rates on an H100 stay
below the datasheet's 989 (SXM), so fractions of it are conservative. A CPU or an unknown GPU
has no entry: its fraction is reported as n/a rather than guessed.
"""
import re

# (pattern on torch.cuda.get_device_name(), dense bf16, fp32); the first match wins, so the
# specific variants (PCIe, NVL) come before the plain name.
PEAK_TFLOPS = (
    (r"H100.*PCIe", 756.0, 51.0),
    (r"H100.*NVL", 835.0, 60.0),
    (r"H200.*NVL", 835.0, 60.0),
    (r"H100|H200", 989.0, 67.0),  # H100 SXM ("NVIDIA H100 80GB HBM3"), H200 SXM, GH200
    (r"A100", 312.0, 19.5),
    (r"L40S", 362.0, 91.6),
    (r"\bL4\b", 121.0, 30.3),
)


def peak_tflops(device_name: str, precision: str) -> float | None:
    """Dense peak TFLOP/s of the named device at 'bf16' or 'fp32'; None when it is not known."""
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision must be bf16 or fp32, not {precision!r}")
    for pattern, bf16, fp32 in PEAK_TFLOPS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return bf16 if precision == "bf16" else fp32
    return None
