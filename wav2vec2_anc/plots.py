"""Figures: the training curve, and waveforms and spectrograms of input, inverse and residual.

Long signals are shown over their first ``max_seconds`` only, and waveforms as a min/max envelope,
so a 10-minute file does not put tens of MB into the notebook.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio_io import SAMPLE_RATE
from .metrics import display_db
from .switching import WINDOW_SECONDS
from .training import loss_curve

EXACT_NOTE = "exactly 0: exact cancellation"


def loss_db(losses: np.ndarray) -> np.ndarray:
    """Normalised MSE in dB, ``10·log10(loss)`` (−NR); an exact 0 becomes −inf."""
    with np.errstate(divide="ignore"):
        return 10 * np.log10(np.asarray(losses, dtype=np.float64))


def plot_loss_curve(log_history: list[dict], path=None, heldout_before_db: float | None = None,
                    heldout_after_db: float | None = None):
    """The training loss in dB (``10·log10`` of the normalised MSE) against step, on a linear axis.

    Steps whose loss was exactly 0 (exact cancellation) are marked along the bottom and named, not
    dropped off a log axis. The held-out NR before and after fine-tuning go in the title when given.
    """
    import matplotlib.pyplot as plt

    steps, losses = loss_curve(log_history)
    values = loss_db(losses)
    finite = np.isfinite(values)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps[finite], values[finite], marker=".")
    if (~finite).any():
        floor = values[finite].min() - 3 if finite.any() else 0.0
        ax.plot(steps[~finite], np.full((~finite).sum(), floor), "v", color="tab:green", label=f"loss {EXACT_NOTE}")
        ax.legend(loc="upper right")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (dB)")
    title = "Fine-tuning loss, 10·log10(normalised MSE): −training NR"
    if heldout_before_db is not None and heldout_after_db is not None:
        title += f"\nheld-out NR {display_db(heldout_before_db)} before, {display_db(heldout_after_db)} after"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def envelope(signal: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of ``signal`` over ``points`` equal bins: ``(bin start times in s, minima, maxima)``.

    A signal of at most ``points`` samples comes back sample by sample (minima = maxima = signal).
    """
    signal = np.asarray(signal)
    if len(signal) <= points:
        return np.arange(len(signal)) / SAMPLE_RATE, signal, signal
    edges = np.linspace(0, len(signal), points + 1).astype(int)
    return edges[:-1] / SAMPLE_RATE, np.minimum.reduceat(signal, edges[:-1]), np.maximum.reduceat(signal, edges[:-1])


def mark_if_silent(ax, signal: np.ndarray) -> None:
    """Write ``EXACT_NOTE`` across an axis whose signal is exactly zero, instead of leaving it empty."""
    if not np.any(signal):
        ax.text(0.5, 0.5, EXACT_NOTE, transform=ax.transAxes, ha="center", va="center", color="tab:green")


def plot_waveforms(noise: np.ndarray, inverse: np.ndarray, title: str, path=None, zoom_seconds: float = 0.02,
                   max_seconds: float = 30.0):
    """Input, predicted inverse and residual: the first ``max_seconds`` as an envelope (left), and
    ``zoom_seconds`` around the loudest sample of that window (right)."""
    import matplotlib.pyplot as plt

    shown = slice(0, int(max_seconds * SAMPLE_RATE))
    noise, inverse = np.asarray(noise)[shown], np.asarray(inverse)[shown]
    residual = noise + inverse
    centre = int(np.argmax(np.abs(noise)))
    half = int(zoom_seconds * SAMPLE_RATE / 2)
    zoom = slice(max(0, centre - half), min(len(noise), centre + half))
    fig, axes = plt.subplots(3, 2, figsize=(12, 7), sharex="col", sharey=True)
    for row, (name, signal) in enumerate([("input", noise), ("predicted inverse", inverse), ("residual", residual)]):
        times, low, high = envelope(signal)
        axes[row, 0].fill_between(times, low, high, linewidth=0.6)
        axes[row, 1].plot(np.arange(zoom.start, zoom.stop) / SAMPLE_RATE, signal[zoom], linewidth=0.6)
        for ax in axes[row]:
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            mark_if_silent(ax, signal)
    axes[2, 0].set_xlabel(f"time (s), the first {len(noise) / SAMPLE_RATE:.1f} s")
    axes[2, 1].set_xlabel(f"time (s), {zoom_seconds * 1000:g} ms around the peak")
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_spectrograms(noise: np.ndarray, inverse: np.ndarray, title: str, path=None, max_seconds: float = 30.0):
    """Log-magnitude spectrograms of input, predicted inverse and residual on one colour scale (first ``max_seconds``)."""
    import librosa
    import librosa.display
    import matplotlib.pyplot as plt

    shown = slice(0, int(max_seconds * SAMPLE_RATE))
    noise, inverse = np.asarray(noise, dtype=np.float32)[shown], np.asarray(inverse, dtype=np.float32)[shown]
    signals = [("input", noise), ("predicted inverse", inverse), ("residual", noise + inverse)]
    reference = float(np.max(np.abs(librosa.stft(noise, n_fft=1024, hop_length=256))))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True, layout="constrained")
    for ax, (name, signal) in zip(axes, signals):
        magnitude = np.abs(librosa.stft(signal, n_fft=1024, hop_length=256))
        db = librosa.amplitude_to_db(magnitude, ref=reference, amin=1e-10, top_db=None)
        image = librosa.display.specshow(
            db, sr=SAMPLE_RATE, hop_length=256, x_axis="time", y_axis="log", ax=ax, vmin=-120, vmax=0
        )
        ax.set_title(name)
        mark_if_silent(ax, signal)
    fig.colorbar(image, ax=axes, format="%+.0f dB")
    fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_paths(plant, path=None):
    """The scene's paths: impulse responses (P, S and the identified Ŝ) and their magnitude responses in dB."""
    import matplotlib.pyplot as plt
    from scipy.signal import freqz

    responses = {"primary P": plant.scene.primary, "secondary S": plant.scene.secondary,
                 "identified Ŝ": plant.secondary_estimate}
    fig, (time_ax, freq_ax) = plt.subplots(1, 2, figsize=(13, 3.8))
    for label, response in responses.items():
        time_ax.plot(np.arange(len(response)) / SAMPLE_RATE * 1000, response, linewidth=0.8, label=label)
        frequencies, gain = freqz(response, worN=2048, fs=SAMPLE_RATE)
        freq_ax.semilogx(frequencies[1:], 20 * np.log10(np.maximum(np.abs(gain[1:]), 1e-6)), linewidth=0.8, label=label)
    time_ax.set_xlabel("time (ms)")
    time_ax.set_title(f"impulse responses: lead {plant.scene.lead_samples} samples")
    freq_ax.set_xlabel("frequency (Hz)")
    freq_ax.set_ylabel("gain (dB)")
    freq_ax.set_title("magnitude responses")
    for ax in (time_ax, freq_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    eta = "linear" if plant.eta is None else f"η = {plant.eta:.3g}"
    fig.suptitle(f"scene {plant.scene.name}, loudspeaker {plant.loudspeaker} ({eta})")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_switching(records: list[dict], path=None, floor_db: float = -10.0, ceiling_db: float = 60.0):
    """NR in 100-ms windows against time, one line per method, one panel per setting; switches dashed, clips named."""
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys((r["scene"], r["loudspeaker"], r["latency_ms"]) for r in records))
    fig, axes = plt.subplots(len(settings), 1, figsize=(14, 3.8 * len(settings)), squeeze=False)
    for ax, setting in zip(axes[:, 0], settings):
        rows = [r for r in records if (r["scene"], r["loudspeaker"], r["latency_ms"]) == setting]
        for r in rows:
            values = np.clip(np.asarray(r["window_nr_db_100ms"], dtype=np.float64), floor_db, ceiling_db)
            ax.plot((np.arange(len(values)) + 0.5) * WINDOW_SECONDS, values, label=r["method"], linewidth=1.0)
        for clip, start, stop, _ in rows[0]["segments"]:
            ax.axvline(start / SAMPLE_RATE, color="k", linestyle="--", linewidth=0.6)
            ax.text((start + stop) / 2 / SAMPLE_RATE, ceiling_db, Path(clip).stem, ha="center", va="top", fontsize=6)
        ax.set_ylim(floor_db, ceiling_db + 2)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("NR in 100 ms (dB)")
        ax.set_title(f"{setting[2]:g} ms, scene {setting[0]}, loudspeaker {setting[1]} "
                     f"(values clipped to [{floor_db:g}, {ceiling_db:g}] dB)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=len(rows), loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
