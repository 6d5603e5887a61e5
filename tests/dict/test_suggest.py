"""Keys, Levenshtein search and suggestions: exact where promised, fast on 100k+ keys."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ionet.dict import cedict
from ionet.dict.keys import alnum, fold, key_for, soundex
from ionet.dict.suggest import KeyIndex, levenshtein

WN_INDEX = Path("/usr/share/dictd/wn.index")


def test_fold_and_alnum() -> None:
    assert fold("  Apple\tPIE ") == "apple pie"
    assert fold("STRASSE") == fold("straße")
    assert alnum("'Hood") == "hood" and alnum("rock 'n' roll") == "rock n roll"
    assert key_for("A-B", "alnum") == "ab"
    with pytest.raises(ValueError):
        key_for("x", "nope")


def test_soundex() -> None:
    assert [soundex(w) for w in ("Robert", "Rupert", "Ashcraft", "Tymczak", "Pfister")] == [
        "R163", "R163", "A261", "T522", "P236"]
    assert soundex("苹果") == ""


def test_levenshtein_counts_transpositions_as_one() -> None:
    assert levenshtein("appel", "apple") == 1
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abcdef", "ab", limit=2) == 3


WORDS = ["apple", "apply", "ape", "maple", "applet", "appeal", "apple pie", "banana", "bandana",
         "cab", "abc", "acb", "b", "", "zz", "苹果", "苹", "电脑"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcelpnz苹果", max_size=7))
def test_within_one_is_exact(word: str) -> None:
    index = KeyIndex([w for w in WORDS if w])
    expected = sorted(k for k in index.keys if levenshtein(word, k) <= 1)
    assert sorted(k for _, k in index.within(word, 1)) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcelpnz", max_size=8))
def test_within_two_finds_only_true_matches(word: str) -> None:
    index = KeyIndex([w for w in WORDS if w])
    found = index.within(word, 2)
    assert all(levenshtein(word, k) == d <= 2 for d, k in found)


def test_prefix_suffix_substring_soundex() -> None:
    index = KeyIndex(WORDS[:-5])
    assert index.prefix("appl") == ["apple", "apple pie", "applet", "apply"]
    assert index.prefix("appl", limit=2) == ["apple", "apple pie"]
    assert index.suffix("ple") == ["apple", "maple"]
    assert index.substring("ana") == ["banana", "bandana"]
    assert "apple" in index.sounds_like("apel") and "applet" not in index.sounds_like("apel")
    assert "apple" in index and "appl" not in index and 3 not in index


def test_suggestions_rank_one_edit_first() -> None:
    index = KeyIndex(WORDS)
    assert index.suggest("appel")[:2] == ["apple", "appeal"]  # a swap, then an edit
    assert index.suggest("ap")[:1] == ["ape"]
    assert index.suggest("") == []
    assert index.suggest("qqqqqqqq") == []


def _timed_misses(index: KeyIndex, words: list[str]) -> float:
    """The slowest suggestion, in CPU seconds of this thread: other processes
    on a busy CI machine slow the wall clock, not the work."""
    worst = 0.0
    for word in words:
        started = time.thread_time()
        index.suggest(word)
        worst = max(worst, time.thread_time() - started)
    return worst


def test_a_miss_on_wordnet_answers_in_milliseconds() -> None:
    keys = [fold(line.split("\t", 1)[0]) for line in WN_INDEX.open(encoding="utf-8")]
    index = KeyIndex(keys)
    assert len(index) > 140_000
    assert index.suggest("recieve")[0] == "receive"
    assert index.suggest("definately")[0] == "definitely"
    rng = random.Random(7)
    typos = []
    for word in rng.sample(index.keys, 200):
        at = rng.randrange(len(word))
        typos.append(word[:at] + "q" + word[at + 1:])
    typos += ["seperate", "acommodation", "xyzzyq", "a", "pythn"]
    started = time.thread_time()
    worst = _timed_misses(index, typos)
    mean = (time.thread_time() - started) / len(typos)
    # What this guards is the algorithm, not the speed (bench/dict.py measures
    # that): comparing a typo with all 147,000 keys in Python takes seconds
    # per miss, the index about 7 ms on a quiet machine.  The bounds leave
    # room for a machine several times slower (CI once measured a 10.06 ms
    # mean against an earlier 10 ms bound), and none for a full scan.
    assert mean < 0.050 and worst < 0.500, (mean, worst)


def test_a_miss_on_cedict_answers_in_milliseconds() -> None:
    _, entries = cedict.read_file(cedict.default_data_file())
    chinese = KeyIndex([fold(e.word) for e in cedict.chinese_english(entries)])
    english = KeyIndex([fold(e.word) for e in cedict.english_chinese(entries)])
    assert "苹果" in chinese.suggest("苹裹") and "apple" in english.suggest("appel")
    worst = max(_timed_misses(chinese, ["苹裹", "电恼", "中国人民共和", "你"]),
                _timed_misses(english, ["appel", "compuetr", "elephent", "teh"]))
    assert worst < 0.500, worst  # the algorithm, as above: a full scan takes seconds
