"""The phone encoder's own head transcribes English speech it never heard, through the IPA -> ARPAbet table."""

import shutil
import subprocess

import pytest
import soundfile
import torch

from asr_gan.audio import load_audio
from asr_gan.decode.cross_lingual import CrossLingualTranscriber, main
from asr_gan.edits import edit_counts
from asr_gan.features.encoder.checkpoint import load_encoder
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.text.ipa_arpabet import IPA_TO_ARPABET, ipa_to_arpabet

torch.set_num_threads(1)
ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH "
           "<SIL>").split()
# CMUdict's pronunciations, stress removed.
SENTENCES = {
    "a big blue cat": "AH B IH G B L UW K AE T",
    "seven oranges": "S EH V AH N AO R AH N JH AH Z",
    "the sun is hot": "DH AH S AH N IH Z HH AA T",
    "green trees grow": "G R IY N T R IY Z G R OW",
    "we sing songs": "W IY S IH NG S AO NG Z",
}


def test_table_maps_every_encoder_phone_and_joins_diphthongs():
    assert set(load_encoder().phones) <= set(IPA_TO_ARPABET), "every phone the encoder emits has an ARPAbet reading"
    assert ipa_to_arpabet(["m", "a", "ɪ", "n"], ARPABET) == ["M", "AY", "N"]
    assert ipa_to_arpabet(["ts", "ʔ", "o", "ʊ"], ARPABET) == ["T", "S", "OW"]
    timit = "aa ae ah aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw v w y z sil".split()
    assert ipa_to_arpabet(["ʒ", "ɔ"], timit) == ["sh", "aa"]  # TIMIT's 39 set folds ZH and AO
    with pytest.raises(ValueError, match="NG is not in the target inventory"):
        ipa_to_arpabet(["ŋ"], ["N", "G"])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_encoder_transcribes_unheard_english_far_better_than_chance(tmp_path):
    utts = []
    for i, text in enumerate(SENTENCES):
        path = tmp_path / f"utt{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True)
        info = soundfile.info(str(path))
        utts.append(Utterance(utt_id=f"utt{i}", audio=str(path), num_samples=info.frames,
                              sample_rate=info.samplerate, speaker="spk"))
    transcriber = CrossLingualTranscriber(ARPABET)
    errors = total = 0
    for utt, ref in zip(utts, SENTENCES.values()):
        counts = edit_counts(ref.split(), transcriber(load_audio(utt.audio)))
        errors += counts.substitutions + counts.deletions + counts.insertions
        total += len(ref.split())
    assert errors / total < 0.6, errors / total  # 19% here; chance on the demo is 83%
    # The CLI: a corrupt file is named and skipped, the rest are written.
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not a wave")
    utts.append(Utterance(utt_id="corrupt", audio=str(corrupt), num_samples=16000, sample_rate=16000, speaker="spk"))
    write_manifest(tmp_path / "m.jsonl", utts)
    (tmp_path / "phones.txt").write_text("\n".join(ARPABET) + "\n")
    assert main(["--manifest", str(tmp_path / "m.jsonl"), "--phones", str(tmp_path / "phones.txt"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 0
    hyps = (tmp_path / "out" / "hyp.phn").read_text().splitlines()
    assert [line.split()[0] for line in hyps] == [f"utt{i}" for i in range(5)]
    assert "corrupt" in (tmp_path / "out" / "skipped.txt").read_text()
