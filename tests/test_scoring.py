"""Scoring: PER/WER counts, TIMIT 39 folding, silence removal, transcript files, the report, the CLI, and sclite."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest

from asr_gan.scoring import (
    SILENCE_TOKENS,
    TranscriptFormatError,
    align,
    fold_to_39,
    format_report,
    read_transcripts,
    read_trn,
    remove_silence,
    score,
    timit39_map,
    write_trn,
)
from asr_gan.scoring.__main__ import main
from asr_gan.scoring.timit import timit_map_path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Debian's `sctk` package installs sclite outside PATH, behind its `sctk` front end.
DEBIAN_SCLITE = Path("/usr/lib/sctk/bin/sclite")


def tokens(text: str) -> list[str]:
    return text.split()


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ error counts


def test_one_substitution_and_one_deletion_in_four_tokens_is_50_percent():
    result = score({"u1": tokens("a b c d")}, {"u1": tokens("a x c")})
    assert (result.substitutions, result.deletions, result.insertions) == (1, 1, 0)
    assert result.errors == 2 and result.ref_tokens == 4
    assert result.error_rate == pytest.approx(0.5)
    assert result.per_utterance == [("u1", tokens("a b c d"), tokens("a x c"), 2)]
    assert result.summary("PER") == "PER 50.00% (N=4 S=1 D=1 I=0) on 1 utterances"


def test_insertions_only_are_counted_against_reference_length():
    result = score({"u1": tokens("a b")}, {"u1": tokens("x a b y z")})
    assert (result.substitutions, result.deletions, result.insertions) == (0, 0, 3)
    assert result.error_rate == pytest.approx(1.5)  # error rates above 100% are possible and kept


def test_corpus_rate_is_total_errors_over_total_reference_tokens_not_mean_of_utterance_rates():
    refs = {"short": tokens("a"), "long": tokens("a b c d e f g h i")}
    hyps = {"short": tokens("x"), "long": tokens("a b c d e f g h i")}
    assert score(refs, hyps).error_rate == pytest.approx(1 / 10)  # a mean of rates would give 0.5


def test_empty_reference_utterance_adds_no_tokens_and_counts_its_hypothesis_as_insertions():
    # Our choice, as sclite does: the utterance is scored, its hypothesis tokens are insertions.
    result = score({"u1": tokens("a b"), "empty": []}, {"u1": tokens("a b"), "empty": tokens("x y")})
    assert (result.ref_tokens, result.insertions, result.errors) == (2, 2, 2)
    assert result.error_rate == pytest.approx(1.0)
    assert ("empty", [], ["x", "y"], 2) in result.per_utterance


def test_references_without_any_token_raise_because_the_rate_is_undefined():
    with pytest.raises(ValueError, match="no tokens"):
        score({"u1": ["<SIL>"]}, {"u1": ["a"]}, remove=SILENCE_TOKENS)
    with pytest.raises(ValueError, match="no reference utterances"):
        score({}, {"u1": ["a"]})


def test_missing_hypothesis_utterances_are_scored_as_all_deletions_and_named():
    result = score({"u1": tokens("a b"), "u2": tokens("c d e")}, {"u1": tokens("a b")})
    assert result.missing == ["u2"]
    assert (result.deletions, result.errors, result.ref_tokens, result.utterances) == (3, 3, 5, 2)
    assert result.per_utterance[1] == ("u2", tokens("c d e"), [], 3)


def test_hypotheses_absent_from_the_reference_are_ignored_and_named():
    result = score({"u1": tokens("a b")}, {"u1": tokens("a b"), "stray": tokens("x y z")})
    assert result.extra == ["stray"]
    assert result.errors == 0 and result.utterances == 1
    assert [item[0] for item in result.per_utterance] == ["u1"]


def test_alignment_minimises_edit_count_where_sclite_prefers_deletion_insertion_pairs():
    # Documented difference: sclite (sctk 2.4.10) scores this 3 deletions + 3 insertions; minimum edits is 5.
    result = score({"u1": tokens("a b c d e")}, {"u1": tokens("d e x y z")})
    assert result.errors == 5


def test_ties_between_two_substitutions_and_deletion_plus_insertion_go_to_deletion_plus_insertion_as_sclite():
    # Both alignments take 2 edits; sclite (and we) report D + I and one correct token, not 2 S.
    result = score({"u1": tokens("a b")}, {"u1": tokens("b c")})
    assert (result.substitutions, result.deletions, result.insertions) == (0, 1, 1)
    assert [item.op for item in align(tokens("a b"), tokens("b c"))] == ["D", "C", "I"]


def test_alignment_counts_equal_score_counts_and_jiwer_edit_distance_on_random_pairs():
    rng = random.Random(7)
    for _ in range(300):
        ref = [rng.choice("abcde") for _ in range(rng.randint(0, 12))]
        hyp = [rng.choice("abcde") for _ in range(rng.randint(0, 12))]
        result = score({"u": ref or ["z"]}, {"u": hyp})
        ref = ref or ["z"]
        aligned = align(ref, hyp)
        assert [item.ref for item in aligned if item.ref is not None] == ref
        assert [item.hyp for item in aligned if item.hyp is not None] == hyp
        assert all((item.op == "C") == (item.ref == item.hyp) for item in aligned)
        ops = [item.op for item in aligned]
        assert (ops.count("S"), ops.count("D"), ops.count("I")) == \
            (result.substitutions, result.deletions, result.insertions)
        if hyp:  # jiwer's own count: the number of edits is never changed, only how they split
            words = jiwer.process_words(" ".join(ref), " ".join(hyp))
            assert result.errors == words.substitutions + words.deletions + words.insertions


def test_align_marks_each_column_with_its_operation():
    ops = [(item.op, item.ref, item.hyp) for item in align(tokens("a b c d"), tokens("a x c d e"))]
    assert ops == [("C", "a", "a"), ("S", "b", "x"), ("C", "c", "c"), ("C", "d", "d"), ("I", None, "e")]
    assert [item.op for item in align([], ["x"])] == ["I"]
    assert [item.op for item in align(["a"], [])] == ["D"]


# ---------------------------------------------------------------------------------------- TIMIT and silence


def _map_file_rows() -> dict[str, str | None]:
    """TIMIT-61 symbol -> 39 symbol as written in the repository's map file (parsed independently here)."""
    rows: dict[str, str | None] = {}
    for line in (REPO_ROOT / "data_prep" / "timit_phones.60-48-39.map").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            columns = line.split("\t")
            rows[columns[0]] = columns[2] if len(columns) == 3 else None
    return rows


def test_timit_folding_reads_the_repository_map_file():
    assert timit_map_path().resolve() == (REPO_ROOT / "data_prep" / "timit_phones.60-48-39.map").resolve()
    rows = _map_file_rows()
    assert len(rows) == 61
    for timit61, set39 in rows.items():
        assert fold_to_39([timit61]) == ([] if set39 is None else [set39]), timit61


def test_timit_folding_examples_vowels_closures_pauses_and_q():
    assert fold_to_39(["ao", "ix", "ax", "ax-h", "axr", "ux", "zh", "el", "nx", "hv"]) == \
        ["aa", "ih", "ah", "ah", "er", "uw", "sh", "l", "n", "hh"]
    assert fold_to_39(["bcl", "dcl", "gcl", "kcl", "pcl", "tcl", "h#", "pau", "epi"]) == ["sil"] * 9
    assert fold_to_39(["h#", "q", "ix", "bcl", "b", "ao", "pau"]) == ["sil", "ih", "sil", "b", "aa", "sil"]


def test_timit39_map_also_folds_48_set_and_keeps_39_set_symbols():
    table = timit39_map()
    assert table["vcl"] == "sil" and table["cl"] == "sil" and table["q"] is None
    assert len({v for v in table.values() if v is not None}) == 39
    for set39 in {v for v in table.values() if v is not None}:
        assert table[set39] == set39
    table["aa"] = "changed"  # a copy: the cached table stays intact
    assert timit39_map()["aa"] == "aa"


def test_fold_to_39_names_unknown_symbols():
    with pytest.raises(ValueError, match="'<SIL>'"):
        fold_to_39(["aa", "<SIL>"])


def test_remove_silence_drops_project_and_timit_silence_tokens():
    assert set(SILENCE_TOKENS) == {"<SIL>", "sil"}
    assert remove_silence(tokens("<SIL> hh ih sil z <SIL>")) == tokens("hh ih z")
    # score() takes the same tokens; a single token passed as a string is one token, not its characters.
    assert score({"u1": tokens("<SIL> a S")}, {"u1": tokens("a S")}, remove="<SIL>").errors == 0


def test_score_folds_before_removing_silence_so_closures_are_removed_too():
    refs = {"u1": tokens("h# q ix bcl b ao pau")}
    hyps = {"u1": tokens("<SIL> ih b aa")}
    result = score(refs, hyps, remove=SILENCE_TOKENS, fold=timit39_map())
    assert result.per_utterance == [("u1", tokens("ih b aa"), tokens("ih b aa"), 0)]
    assert result.ref_tokens == 3 and result.errors == 0
    # Without removal the reference keeps its three `sil` (h#, bcl, pau): 6 tokens.
    assert score(refs, hyps, fold=timit39_map()).ref_tokens == 6


# ---------------------------------------------------------------------------------------------- transcript files


def test_read_transcripts_keeps_order_and_reads_an_id_alone_as_an_empty_transcript(tmp_path):
    path = write_text(tmp_path / "hyp.phn", ["u2 a  b\tc", "", "u1", "u3 d\r"])
    assert read_transcripts(path) == {"u2": ["a", "b", "c"], "u1": [], "u3": ["d"]}
    assert list(read_transcripts(path)) == ["u2", "u1", "u3"]


def test_read_transcripts_non_utf8_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.wrd"
    path.write_bytes("u1 caf\u00e9\n".encode("utf-8") + "u2 na\u00efve\n".encode("latin-1"))
    with pytest.raises(TranscriptFormatError, match=re.escape(f"{path}:2: not UTF-8")):
        read_transcripts(path)


def test_read_transcripts_duplicate_id_names_both_lines(tmp_path):
    path = write_text(tmp_path / "ref.phn", ["u1 a", "u2 b", "u1 c"])
    expected = f"{path}:3: duplicate utterance id 'u1' (first on line 1)"
    with pytest.raises(TranscriptFormatError, match=re.escape(expected)):
        read_transcripts(path)


def test_read_transcripts_missing_file_error_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.phn"))):
        read_transcripts(tmp_path / "nope.phn")


def test_trn_round_trip_keeps_ids_order_and_empty_transcripts(tmp_path):
    transcripts = {"fadg0_si1279": tokens("hh ih z <SIL>"), "fadg0_sx19": [], "lbi-1272-128104-0000": ["a"]}
    write_trn(tmp_path / "out" / "hyp.trn", transcripts)
    assert (tmp_path / "out" / "hyp.trn").read_text(encoding="utf-8").splitlines() == [
        "hh ih z <SIL> (fadg0_si1279)", "(fadg0_sx19)", "a (lbi-1272-128104-0000)"]
    assert read_trn(tmp_path / "out" / "hyp.trn") == transcripts


def test_write_trn_refuses_tokens_sclite_would_misread(tmp_path):
    for bad in ("(laugh)", "@", "/"):
        with pytest.raises(ValueError, match="u1"):
            write_trn(tmp_path / "x.trn", {"u1": ["a", bad]})
    with pytest.raises(ValueError, match="utterance id"):
        write_trn(tmp_path / "x.trn", {"u(1)": ["a"]})


def test_read_trn_error_names_line_without_an_id(tmp_path):
    path = write_text(tmp_path / "bad.trn", ["a b (u1)", "c d"])
    with pytest.raises(TranscriptFormatError, match=re.escape(f"{path}:2:")):
        read_trn(path)


# ------------------------------------------------------------------------------------------------------ report


def test_report_puts_worst_utterance_first_with_aligned_s_d_i_markers():
    refs = {"good": tokens("a b c d"), "bad": tokens("a b c d"), "gone": tokens("e f")}
    hyps = {"good": tokens("a b c d"), "bad": tokens("a xx c e d")}
    report = format_report(score(refs, hyps), "PER", ["ref: r.phn"])
    lines = report.splitlines()
    assert lines[0] == "PER 40.00% (N=10 S=1 D=2 I=1) on 3 utterances"
    assert lines[1] == "ref: r.phn"
    assert "scored as all deletions (1): gone" in report
    blocks = [line.split()[0] for line in lines if re.match(r"^\S+  \d+ errors", line)]
    assert blocks == ["gone", "bad", "good"]
    bad_at = lines.index(next(line for line in lines if line.startswith("bad  ")))
    assert lines[bad_at] == "bad  2 errors / 4 tokens = 50.00%  (S=1 D=0 I=1)"
    assert lines[bad_at + 1:bad_at + 4] == [
        "REF:  a b  c * d",
        "HYP:  a xx c e d",
        "EVAL:   S    I",
    ]


# ---------------------------------------------------------------------------------------------------------- CLI


def test_cli_prints_summary_and_writes_result_alignment_and_trn_files(tmp_path, capsys):
    ref = write_text(tmp_path / "test.phn", ["u1 sil a b c d sil", "u2 e f", "u3 g"])
    hyp = write_text(tmp_path / "hyp.phn", ["u1 <SIL> a x c", "u3", "stray z"])
    out = tmp_path / "score"
    assert main(["--ref", str(ref), "--hyp", str(hyp), "--remove-silence", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "PER 71.43% (N=7 S=1 D=4 I=0) on 3 utterances"
    assert "missing from" in captured.err and "u2" in captured.err
    assert "stray" in captured.err
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert (result["substitutions"], result["deletions"], result["insertions"]) == (1, 4, 0)
    assert result["missing"] == ["u2"] and result["extra"] == ["stray"]
    assert result["error_rate"] == pytest.approx(5 / 7) and result["metric"] == "PER"
    assert result["removed_tokens"] == ["<SIL>", "sil"]
    assert read_trn(out / "ref.trn") == {"u1": tokens("a b c d"), "u2": tokens("e f"), "u3": ["g"]}
    assert read_trn(out / "hyp.trn") == {"u1": tokens("a x c"), "u2": [], "u3": []}
    assert (out / "alignment.txt").read_text(encoding="utf-8").startswith("PER 71.43%")


def test_cli_reports_wer_for_a_word_reference_and_folds_timit_phones(tmp_path, capsys):
    ref = write_text(tmp_path / "test.wrd", ["u1 the cat sat"])
    hyp = write_text(tmp_path / "hyp.wrd", ["u1 the cat sat down"])
    assert main(["--ref", str(ref), "--hyp", str(hyp)]) == 0
    assert capsys.readouterr().out.startswith("WER 33.33% (N=3 S=0 D=0 I=1)")
    ref = write_text(tmp_path / "test.phn", ["u1 h# q ix bcl b ao pau"])
    hyp = write_text(tmp_path / "hyp.phn", ["u1 sil ih sil b aa sil"])
    assert main(["--ref", str(ref), "--hyp", str(hyp), "--fold-timit39"]) == 0
    assert capsys.readouterr().out.startswith("PER 0.00% (N=6 S=0 D=0 I=0)")
    # A token the TIMIT map lacks is scored unchanged, with a warning naming it.
    hyp = write_text(tmp_path / "hyp.phn", ["u1 <SIL> ih sil b aa sil"])
    assert main(["--ref", str(ref), "--hyp", str(hyp), "--fold-timit39"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("PER 16.67% (N=6 S=1 D=0 I=0)")
    assert "not in the TIMIT map" in captured.err and "<SIL> (x1)" in captured.err


def test_cli_non_utf8_or_missing_file_exits_1_naming_the_file(tmp_path):
    ref = write_text(tmp_path / "ref.phn", ["u1 a b"])
    hyp = tmp_path / "hyp.phn"
    hyp.write_bytes(b"u1 a \xff\n")
    command = [sys.executable, "-m", "asr_gan.scoring", "--ref", str(ref), "--hyp", str(hyp)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert completed.returncode == 1
    assert f"{hyp}:1: not UTF-8" in completed.stderr
    completed = subprocess.run(command[:-1] + [str(tmp_path / "absent.phn")], capture_output=True, text=True,
                               cwd=REPO_ROOT)
    assert completed.returncode == 1
    assert f"{tmp_path / 'absent.phn'}: file not found" in completed.stderr


# ------------------------------------------------------------------------------------------------- NIST sclite


def find_sclite() -> str:
    """sclite on PATH, else where Debian's `sctk` package puts it; fails (not skips): CI installs it."""
    found = shutil.which("sclite") or (str(DEBIAN_SCLITE) if DEBIAN_SCLITE.is_file() else None)
    if found is None:
        pytest.fail("NIST sclite not found (neither on PATH nor at /usr/lib/sctk/bin/sclite); "
                    "run tools/setup.sh, which installs the Debian package `sctk`")
    return found


def random_transcripts(seed: int, utterances: int = 20) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """References of 5-25 words from a 30-word vocabulary and hypotheses with seeded substitutions (10% of words),
    deletions (8%) and insertions (7% after each word) drawn from the same vocabulary, as a phone recogniser
    confuses phones of one inventory. Shared words create the ties between two substitutions and a
    deletion-match-insertion that jiwer alone breaks differently from sclite. Lower-case: sclite folds case.
    """
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(30)]
    refs, hyps = {}, {}
    for index in range(utterances):
        utt_id = f"spk{index % 4}-utt{index:02d}"
        ref = [rng.choice(vocabulary) for _ in range(rng.randint(5, 25))]
        hyp = []
        for word in ref:
            draw = rng.random()
            if draw < 0.10:
                hyp.append(rng.choice([other for other in vocabulary if other != word]))  # substitution
            elif draw < 0.18:
                pass  # deletion
            else:
                hyp.append(word)
            if rng.random() < 0.07:
                hyp.append(rng.choice(vocabulary))  # insertion
        refs[utt_id], hyps[utt_id] = ref, hyp
    return refs, hyps


def run_sclite(sclite: str, ref_trn: Path, hyp_trn: Path) -> dict[str, float]:
    """Sum/Avg (percent) and Sum (counts) rows of `sclite ... -o sum rsum stdout`."""
    completed = subprocess.run([sclite, "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "rm",
                                "-o", "sum", "rsum", "stdout"], capture_output=True, text=True, check=True)
    rows = {}
    for line in completed.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in ("Sum/Avg", "Sum"):
            rows[cells[0]] = [float(value) for value in (cells[1] + " " + cells[2]).split()]
    assert set(rows) == {"Sum/Avg", "Sum"}, completed.stdout
    # Columns: # Snt, # Wrd, Corr, Sub, Del, Ins, Err, S.Err
    counts, percents = rows["Sum"], rows["Sum/Avg"]
    return {"sentences": counts[0], "words": counts[1], "sub": counts[3], "del": counts[4], "ins": counts[5],
            "err": counts[6], "err_percent": percents[6]}


@pytest.mark.parametrize("seed", range(5))
def test_error_counts_and_rate_match_nist_sclite_on_random_edits(tmp_path, seed):
    sclite = find_sclite()
    refs, hyps = random_transcripts(seed)
    # Edge cases sclite must agree on: an empty reference (insertions only) and an empty hypothesis.
    refs["spk0-empty_ref"], hyps["spk0-empty_ref"] = [], ["w1", "w2"]
    refs["spk1-empty_hyp"], hyps["spk1-empty_hyp"] = ["w3", "w4", "w5"], []
    write_trn(tmp_path / "ref.trn", refs)
    write_trn(tmp_path / "hyp.trn", hyps)
    nist = run_sclite(sclite, tmp_path / "ref.trn", tmp_path / "hyp.trn")
    ours = score(refs, hyps)
    assert ours.substitutions > 0 and ours.deletions > 0 and ours.insertions > 0  # the data exercises all three
    assert (nist["sentences"], nist["words"]) == (22, ours.ref_tokens)
    assert (nist["sub"], nist["del"], nist["ins"], nist["err"]) == \
        (ours.substitutions, ours.deletions, ours.insertions, ours.errors)
    assert 100 * ours.error_rate == pytest.approx(nist["err_percent"], abs=0.1)


def test_chance_hypotheses_are_text_phones_of_the_reference_length_and_score_near_chance(tmp_path, capsys):
    from asr_gan.scoring.chance import main as chance_main
    from asr_gan.scoring.chance import text_hypotheses

    refs = {"u1": ["<SIL>", "a", "b", "c", "<SIL>"], "u2": ["d"] * 7}
    text = [["<SIL>", "x", "y", "<SIL>"], ["z"], ["<SIL>"]]
    hyps = text_hypotheses(refs, text, seed=1)
    assert [len(h) for h in hyps.values()] == [3, 7]
    assert set(hyps["u1"] + hyps["u2"]) <= {"x", "y", "z"}
    assert hyps == text_hypotheses(refs, text, seed=1)  # seeded: the same file every run
    with pytest.raises(ValueError, match="no phones"):
        text_hypotheses(refs, [["<SIL>"]])
    assert [len(h) for h in text_hypotheses(refs, text, seed=1, length_ratio=0.5).values()] == [2, 4]
    assert [len(h) for h in text_hypotheses(refs, text, seed=1, length_ratio=0.1).values()] == [1, 1]

    (tmp_path / "ref.phn").write_text("u1 a b c\nu2 d d d d d d d\n")
    (tmp_path / "text.phn").write_text("x y\nz\n")
    assert chance_main(["--ref", str(tmp_path / "ref.phn"), "--text", str(tmp_path / "text.phn"),
                        "--out", str(tmp_path / "chance" / "hyp.phn")]) == 0
    scored = score(read_transcripts(tmp_path / "ref.phn"), read_transcripts(tmp_path / "chance" / "hyp.phn"))
    assert scored.error_rate == 1.0  # no shared phone: every position is a substitution
    ratios = json.loads((tmp_path / "chance" / "hyp_ratios.json").read_text())
    assert len(ratios["per_by_ratio"]) == 7 and set(ratios["per_by_ratio"].values()) == {1.0}
    (tmp_path / "bad.phn").write_bytes(b"\xff\xfe x\n")
    assert chance_main(["--ref", str(tmp_path / "ref.phn"), "--text", str(tmp_path / "bad.phn"),
                        "--out", str(tmp_path / "o.phn")]) == 1
    assert chance_main(["--ref", str(tmp_path / "missing.phn"), "--text", str(tmp_path / "text.phn"),
                        "--out", str(tmp_path / "o.phn")]) == 1
    err = capsys.readouterr().err
    assert "bad.phn: not UTF-8" in err and "missing.phn" in err


def test_chance_level_is_the_lowest_per_over_hypothesis_lengths():
    """Random text shorter than the reference scores lower than random text of its length; chance takes the lowest."""
    from asr_gan.scoring.chance import lowest_chance

    rng = np.random.default_rng(0)
    phones = [f"p{i}" for i in range(8)]
    refs = {f"u{i}": list(rng.choice(phones, size=30)) for i in range(20)}
    text = [list(rng.choice(phones, size=12)) for _ in range(200)]
    ratio, hyps, pers = lowest_chance(refs, text, seed=3, ratios=(0.5, 1.0))
    assert pers[ratio] == min(pers.values()) and ratio == 0.5 and pers[0.5] < pers[1.0] - 0.02
    assert score(refs, hyps).error_rate == pytest.approx(pers[0.5])
    with pytest.raises(ValueError, match="positive"):
        lowest_chance(refs, text, ratios=(0.0, 1.0))
