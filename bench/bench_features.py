"""Times-real-time of the feature frontends: MFCC on CPU, a wav2vec 2.0 LARGE-sized model (randomly
initialised, torchaudio's `wav2vec2_large`, output of block 14 as in wav2vec-U) on GPU when there is one and
on CPU over a few seconds of audio.

    python bench/bench_features.py [--mfcc-seconds 120] [--ssl-cpu-seconds 4] [--ssl-gpu-seconds 120]

xRT = seconds of audio processed per second of wall time (higher is faster).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from asr_gan.features.frontends import FrontendConfig, build_frontend
from asr_gan.features.vad import remove_silence


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    # Amplitude-modulated noise: speech-like energy changes, so the VAD has something to decide.
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 0.7 * t)) ** 2
    return (rng.standard_normal(len(t)) * 0.05 * envelope).astype(np.float32)


def _time(fn, repeats: int = 1) -> float:
    fn()  # warm-up (allocations, cuDNN autotune)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def bench_spectral(seconds: float, threads: int) -> list[tuple]:
    torch.set_num_threads(threads)
    utterances = [_audio(10.0, seed) for seed in range(int(max(1, seconds // 10)))]
    total = 10.0 * len(utterances)
    rows = []
    for kind in ("mfcc", "fbank", "kaldi_fbank"):
        frontend = build_frontend(FrontendConfig(kind=kind))
        wall = _time(lambda: [frontend(u) for u in utterances])
        rows.append((kind, f"cpu x{threads}", "10 s utts", total, wall))
    wall = _time(lambda: [remove_silence(u) for u in utterances])
    rows.append(("vad", f"cpu x{threads}", "10 s utts", total, wall))
    return rows


def _large_model(device: torch.device) -> torch.nn.Module:
    from torchaudio.models import wav2vec2_large

    torch.manual_seed(0)
    return wav2vec2_large().eval().to(device)


@torch.no_grad()
def bench_ssl(device: torch.device, seconds: float, batch: int, dtype: torch.dtype, layer: int = 14) -> tuple:
    model = _large_model(device).to(dtype)
    per_utt = seconds / batch
    waves = torch.from_numpy(np.stack([_audio(per_utt, s) for s in range(batch)])).to(device, dtype)

    def run():
        model.extract_features(waves, num_layers=layer + 1)

    wall = _time(run)
    name = f"wav2vec2 LARGE L{layer} {str(dtype).removeprefix('torch.')}"
    where = f"{device.type} x{torch.get_num_threads()}" if device.type == "cpu" else torch.cuda.get_device_name(device)
    return (name, where, f"batch {batch}x{per_utt:.0f} s", seconds, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mfcc-seconds", type=float, default=120.0)
    parser.add_argument("--ssl-cpu-seconds", type=float, default=4.0)
    parser.add_argument("--ssl-gpu-seconds", type=float, default=160.0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (one per worker process in extraction)")
    args = parser.parse_args()

    rows = bench_spectral(args.mfcc_seconds, args.threads)
    torch.set_num_threads(args.threads)
    rows.append(bench_ssl(torch.device("cpu"), args.ssl_cpu_seconds, 1, torch.float32))
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        for dtype in (torch.float32, torch.float16):
            rows.append(bench_ssl(gpu, args.ssl_gpu_seconds, 8, dtype))

    print(f"\n{'frontend':<30} {'device':<28} {'input':<16} {'audio s':>8} {'wall s':>8} {'xRT':>8}")
    for name, device, shape, audio, wall in rows:
        print(f"{name:<30} {device:<28} {shape:<16} {audio:>8.1f} {wall:>8.3f} {audio / wall:>8.1f}")


if __name__ == "__main__":
    main()
