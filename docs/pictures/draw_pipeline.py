"""Draws docs/pictures/pipeline.png, the README's picture: `.venv/bin/python docs/pictures/draw_pipeline.py`."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

BOXES = {  # name: (x, y, text, colour)
    "audio": (0.0, 1.0, "unlabelled audio\n(data_prep, audio/)", "#dbe9f6"),
    "feats": (1.0, 1.0, "frames -> segments\nMFCC | SSL layer |\nshipped phone encoder\n(features/)", "#dbe9f6"),
    "gen": (2.0, 1.0, "phone log-probs\nGAN generator (train/)\nor encoder + IPA table\n(decode/refine)", "#fde5c8"),
    "words": (3.0, 1.0, "words\nlexicon + word LM\nflashlight (decode/)", "#d9f0d3"),
    "score": (4.0, 1.0, "PER / WER\n(scoring/, results/)", "#eeeeee"),
    "text": (1.0, 0.0, "unpaired text\n(data_prep)", "#f3d9f0"),
    "lms": (2.0, 0.0, "phones, lexicon,\nphone + word LMs (text/)", "#f3d9f0"),
}
ARROWS = [("audio", "feats"), ("feats", "gen"), ("gen", "words"), ("words", "score"), ("text", "lms"),
          ("lms", "gen"), ("lms", "words")]
LABELS = {("lms", "gen"): "discriminator,\nselection", ("lms", "words"): "decoding"}


def main(out: Path = Path(__file__).with_name("pipeline.png")) -> None:
    fig, ax = plt.subplots(figsize=(11, 3.4))
    w, h = 0.8, 0.62
    for x, y, text, colour in BOXES.values():
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=colour, ec="#555"))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)
    for a, b in ARROWS:
        (xa, ya, *_), (xb, yb, *_) = BOXES[a], BOXES[b]
        start = (xa + w / 2, ya) if ya == yb else (xa + (0.2 if xb > xa else 0), ya + h / 2)
        end = (xb - w / 2, yb) if ya == yb else (xb - (0.2 if xb > xa else 0), yb - h / 2)
        ax.annotate("", end, start, arrowprops=dict(arrowstyle="->", color="#333"))
        if (a, b) in LABELS:
            ax.text((start[0] + end[0]) / 2 + 0.05, (start[1] + end[1]) / 2, LABELS[(a, b)], fontsize=7.5,
                    color="#444")
    ax.set_xlim(-0.5, 4.5)
    ax.set_ylim(-0.4, 1.4)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
