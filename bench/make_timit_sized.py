"""A TIMIT-sized corpus in TIMIT's layout, synthesised with espeak-ng, to time `recipes/run_timit.sh` where no
TIMIT copy is at hand (the recipe's wall time on a 2-core CPU is what it measures; the speech is TTS, so its PER
says nothing about real TIMIT).

    python -m bench.make_timit_sized --out /data/timit_sized            # 462 train, 50 dev, 24 core-test speakers
    bash recipes/run_timit.sh --timit /data/timit_sized/TIMIT --exp exp/timit_sized

Sizes after preparation are TIMIT's standard ones: train 3696 utterances, dev 400, core test 192 (8 SI + SX
sentences per speaker; SA1/SA2 are written and excluded by preparation as for the real corpus). Dev and core-test
speakers carry the real speaker ids of data_prep's lists; train speakers get made-up ids. It reuses the test
fixture's writer (tests/fixtures/timit_layout.py) with larger speaker and sentence pools.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from tests.fixtures import timit_layout as layout

ROOT = Path(__file__).resolve().parents[1]
# More SI words than the fixture's 252 triples: 12 x 12 x 12 = 1728 unique sentences, all words in CMUdict.
SUBJECTS = ["the old farmer", "my sister", "a quiet teacher", "the young pilot", "our neighbor", "the tall doctor",
            "his brother", "the busy nurse", "a kind stranger", "the little girl", "my uncle", "the strong sailor"]
VERBS = ["painted", "carried", "opened", "found", "watched", "cleaned", "bought", "sold", "fixed", "lifted",
         "pushed", "washed"]
OBJECTS = ["the red door", "a heavy box", "the garden gate", "an empty bottle", "the blue boat", "a small window",
           "the wooden chair", "a green jacket", "the silver car", "a paper bag", "the kitchen table", "an old map"]


def _speaker_ids(path: Path) -> list[str]:
    return [line.strip().upper() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder that receives TIMIT/")
    parser.add_argument("--train-speakers", type=int, default=462)
    args = parser.parse_args()

    sexes = itertools.cycle("FM")
    layout.TRAIN_SPEAKERS = [f"{next(sexes)}T{i:03d}0" for i in range(args.train_speakers)]
    dr = itertools.cycle([f"DR{i}" for i in range(1, 9)])
    layout.DEV_SPEAKERS = [(s, next(dr)) for s in _speaker_ids(ROOT / "data_prep" / "timit_dev_speakers.txt")]
    layout.CORE_TEST_SPEAKERS = [(s, next(dr))
                                 for s in _speaker_ids(ROOT / "data_prep" / "timit_core_test_speakers.txt")]
    layout._SI_SUBJECTS, layout._SI_VERBS, layout._SI_OBJECTS = SUBJECTS, VERBS, OBJECTS
    started = time.perf_counter()
    corpus = layout.make_timit_fixture(args.out, n_train_speakers=len(layout.TRAIN_SPEAKERS), utts_per_speaker=10,
                                       n_dev_speakers=len(layout.DEV_SPEAKERS),
                                       n_core_test_speakers=len(layout.CORE_TEST_SPEAKERS), n_other_test_speakers=0)
    print(f"wrote {corpus} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
