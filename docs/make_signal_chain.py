"""Draw the signal chain of the notebook's two tasks: ``python docs/make_signal_chain.py`` writes ``docs/signal_chain.png``.

Top: no scene, the anti-noise meets the input itself. Bottom: an acoustic scene, where the anti-noise leaves a
loudspeaker and meets the noise at the ear.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def box(ax, x, y, text, colour="#e8eef7"):
    ax.text(x, y, text, ha="center", va="center", fontsize=10,
            bbox=dict(boxstyle="round,pad=0.4", facecolor=colour, edgecolor="#345"))


def arrow(ax, start, end, label=""):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="#345", lw=1.3))
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, label, ha="center", fontsize=9, color="#345")


def draw(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    ax.text(0.1, 4.35, "No scene (ACOUSTIC_SCENE = \"none\")", fontsize=11, weight="bold")
    box(ax, 0.9, 3.6, "noise x")
    box(ax, 3.3, 3.6, "model\n(input ≥ LATENCY_MS old)", "#fdebd0")
    box(ax, 6.2, 3.6, "anti-noise y")
    box(ax, 8.6, 3.6, "x + y\n(what is left)", "#d5f5e3")
    arrow(ax, (1.5, 3.6), (2.2, 3.6))
    arrow(ax, (4.4, 3.6), (5.4, 3.6))
    arrow(ax, (7.0, 3.6), (7.8, 3.6))
    ax.annotate("", xy=(8.6, 3.95), xytext=(0.9, 3.95),
                arrowprops=dict(arrowstyle="->", color="#345", lw=1.0, connectionstyle="arc3,rad=-0.12"))
    ax.text(0.1, 2.35, "A scene (\"room\", \"bandpass\"): the anti-noise meets the noise at the ear",
            fontsize=11, weight="bold")
    box(ax, 0.9, 1.5, "noise")
    box(ax, 2.6, 1.5, "reference\nmicrophone x")
    box(ax, 4.6, 1.5, "model", "#fdebd0")
    box(ax, 6.4, 1.5, "loudspeaker")
    box(ax, 8.2, 1.5, "secondary\npath S")
    box(ax, 10.0, 0.9, "ear: error\nmicrophone", "#d5f5e3")
    box(ax, 5.5, 0.35, "primary path P (the air from the noise to the ear)")
    arrow(ax, (1.4, 1.5), (1.9, 1.5))
    arrow(ax, (3.4, 1.5), (4.1, 1.5))
    arrow(ax, (5.1, 1.5), (5.7, 1.5), "y")
    arrow(ax, (7.1, 1.5), (7.6, 1.5))
    arrow(ax, (8.8, 1.4), (9.5, 1.05), "S∗y")
    arrow(ax, (0.9, 1.2), (2.75, 0.4))
    arrow(ax, (8.25, 0.35), (9.45, 0.7))
    ax.text(9.0, 0.25, "P∗noise", ha="center", fontsize=9, color="#345")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    draw(Path(__file__).resolve().parent / "signal_chain.png")
