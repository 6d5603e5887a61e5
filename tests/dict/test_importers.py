"""Each import reader on small files the tests write, dictd on the real dict-wn,
and the whole of CC-CEDICT once."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ionet.core.errors import UserError
from ionet.dict import cedict, importers
from ionet.dict.importers.dictd import b64_encode, b64_number
from ionet.dict.service import DictService
from ionet.dict.sqlite import SQLiteStore
from ionet.dict.store import Entry

WN_INDEX = Path("/usr/share/dictd/wn.index")


def read_one(path: Path, fmt: str = "auto", name: str | None = None) -> tuple[str, list[Entry]]:
    [item] = importers.read(path, fmt, name)
    return item.meta.name, list(item.entries)


# -- dictd ------------------------------------------------------------------------------


def write_dictd(folder: Path, name: str, entries: list[tuple[str, str]], allchars: bool,
                compress: bool) -> Path:
    """A dictd database as dictfmt writes one: metadata entries, base-64 offsets."""
    meta = [("00-database-short", f"00-database-short\n     Test dictionary {name}\n"),
            ("00-database-info", "00-database-info\nMade by the tests.\nLicence: none.\n"),
            ("00-database-url", "00-database-url\n     https://example.org/\n")]
    if allchars:
        meta.append(("00-database-allchars", "00-database-allchars\n"))
    data, index = b"", []
    for headword, text in meta + entries:
        raw = text.encode()
        index.append(f"{headword}\t{b64_encode(len(data))}\t{b64_encode(len(raw))}")
        data += raw
    (folder / f"{name}.index").write_text("\n".join(sorted(index)) + "\n", encoding="utf-8")
    if compress:
        (folder / f"{name}.dict.dz").write_bytes(gzip.compress(data))
    else:
        (folder / f"{name}.dict").write_bytes(data)
    return folder / f"{name}.index"


def test_base64_numbers() -> None:
    assert [b64_number(s) for s in ("A", "B", "BA", "/", "B+S")] == [0, 1, 64, 63, 8082]
    assert all(b64_number(b64_encode(n)) == n for n in (0, 1, 63, 64, 4095, 10**9))
    with pytest.raises(ValueError):
        b64_number("a-b")


@pytest.mark.parametrize("compress", [False, True], ids=["dict", "dict.dz"])
def test_dictd_reader(tmp_path: Path, compress: bool) -> None:
    path = write_dictd(tmp_path, "mini", [("apple", "apple\n  a fruit\n"),
                                          ("'hood", "'hood\n  neighbourhood\n"),
                                          ("Zürich", "Zürich\n  a city\n")],
                       allchars=False, compress=compress)
    [item] = importers.read(path.with_suffix(".dict.dz" if compress else ".dict"))
    entries = {e.word: e.text for e in item.entries}
    assert item.meta.name == "mini" and item.meta.short == "Test dictionary mini"
    assert "Made by the tests." in item.meta.info and "https://example.org/" in item.meta.info
    assert item.meta.keyrule == "alnum"  # no 00-database-allchars: dictd's rule
    assert entries == {"apple": "apple\n  a fruit", "'hood": "'hood\n  neighbourhood",
                       "Zürich": "Zürich\n  a city"}
    assert not any(word.startswith("00") for word in entries)


def test_dictd_keys_follow_the_dictd_rule(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.db")
    store.setup()
    for name, allchars in (("plain", False), ("every", True)):
        [item] = importers.read(write_dictd(tmp_path, name, [("'hood", "'hood\n  n\n")],
                                            allchars, False))
        store.replace_dictionary(item.meta, item.entries)
    service = DictService(store)
    assert [d.db for d in service.define("hood").definitions] == ["plain"]
    assert [d.db for d in service.define("'HOOD").definitions] == ["plain", "every"]
    store.close()


def test_dictd_errors(tmp_path: Path) -> None:
    (tmp_path / "lonely.index").write_text("a\tA\tB\n")
    with pytest.raises(UserError, match="no lonely.dict"):
        importers.read(tmp_path / "lonely.index")
    (tmp_path / "lonely.dict").write_bytes(b"x")
    (tmp_path / "lonely.index").write_text("a\tA\tZZ\n")
    with pytest.raises(UserError, match="beyond the end"):
        importers.read(tmp_path / "lonely.index")
    (tmp_path / "lonely.index").write_text("no tabs here\n")
    with pytest.raises(UserError, match="line 1"):
        importers.read(tmp_path / "lonely.index")


def test_dict_wn_imports_in_under_a_minute(tmp_path: Path) -> None:
    """The Debian dict-wn package: 147k entries."""
    assert WN_INDEX.exists(), "install the Debian package dict-wn"
    store = SQLiteStore(tmp_path / "wn.db")
    store.setup()
    started = time.monotonic()
    [item] = importers.read(WN_INDEX)
    count = store.replace_dictionary(item.meta, item.entries)
    elapsed = time.monotonic() - started
    assert count > 147_000 and elapsed < 60, (count, elapsed)
    [db] = store.databases()
    assert (db.name, db.short, db.keyrule) == ("wn", "WordNet (r) 3.0 (2006)", "fold")
    assert "Princeton University" in db.info
    service = DictService(store)
    [apple] = service.define("Apple").definitions
    assert apple.word == "apple" and "fruit with red or yellow or green skin" in apple.text
    assert service.define("'hood").definitions  # allchars: the apostrophe is kept
    assert "apple" in service.define("appel").suggestions
    store.close()


# -- StarDict -----------------------------------------------------------------------------


def write_stardict(folder: Path, name: str, records: list[tuple[str, bytes]],
                   sametypes: str | None, synonyms: list[tuple[str, int]] = (),  # type: ignore[assignment]
                   gz_idx: bool = False, dz: bool = False, bits: int = 32) -> Path:
    data, idx = b"", b""
    for word, block in sorted(records):
        fmt = ">QI" if bits == 64 else ">II"
        idx += word.encode() + b"\0" + struct.pack(fmt, len(data), len(block))
        data += block
    ifo = ["StarDict's dict ifo file", "version=3.0.0", f"bookname=Test {name}",
           f"wordcount={len(records)}", f"idxfilesize={len(idx)}", "author=The tests",
           "description=A tiny StarDict.<br>Second line."]
    if sametypes:
        ifo.append(f"sametypesequence={sametypes}")
    if bits == 64:
        ifo.append("idxoffsetbits=64")
    if synonyms:
        ifo.append(f"synwordcount={len(synonyms)}")
        (folder / f"{name}.syn").write_bytes(b"".join(
            w.encode() + b"\0" + struct.pack(">I", n) for w, n in synonyms))
    (folder / f"{name}.ifo").write_text("\n".join(ifo) + "\n", encoding="utf-8")
    if gz_idx:
        (folder / f"{name}.idx.gz").write_bytes(gzip.compress(idx))
    else:
        (folder / f"{name}.idx").write_bytes(idx)
    (folder / f"{name}.dict{'.dz' if dz else ''}").write_bytes(gzip.compress(data) if dz else data)
    return folder / f"{name}.ifo"


def test_stardict_same_type_sequence(tmp_path: Path) -> None:
    path = write_stardict(tmp_path, "plain", [("apple", "苹果; 苹果树".encode()),
                                              ("banana", b"a yellow fruit")], "m",
                          synonyms=[("pomme", 0)], gz_idx=True, dz=True, bits=64)
    name, entries = read_one(path.with_suffix(".idx.gz"))
    texts = {e.word: e.text for e in entries}
    assert name == "plain"
    assert texts == {"apple": "apple\n   苹果; 苹果树", "banana": "banana\n   a yellow fruit",
                     "pomme": "apple\n   苹果; 苹果树"}
    [item] = importers.read(path)
    assert item.meta.short == "Test plain" and "Second line." in item.meta.info


def test_stardict_typed_fields_and_markup(tmp_path: Path) -> None:
    typed = (b"t" + "ˈæpəl".encode() + b"\0" + b"h<b>apple</b><br>a fruit &amp; tree\0"
             + b"W" + struct.pack(">I", 3) + b"wav")
    path = write_stardict(tmp_path, "typed", [("apple", typed)], None)
    _, [entry] = read_one(path)
    assert entry.text == "apple\n   [ˈæpəl]\n   apple\n   a fruit & tree"
    multi = write_stardict(tmp_path, "multi", [("cat", "kæt".encode() + b"\0" + b"a small pet")],
                           "tm")
    _, [entry] = read_one(multi)
    assert entry.text == "cat\n   [kæt]\n   a small pet"


def test_stardict_missing_files(tmp_path: Path) -> None:
    (tmp_path / "half.ifo").write_text("StarDict's dict ifo file\nbookname=x\n")
    with pytest.raises(UserError, match=r"no \.idx"):
        importers.read(tmp_path / "half.ifo")


# -- CSV, lines, CC-CEDICT ---------------------------------------------------------------


def test_ecdict_csv(tmp_path: Path) -> None:
    path = tmp_path / "ecdict.csv"
    path.write_text(
        "word,phonetic,definition,translation,pos,collins,oxford,tag,bnc,frq,exchange,detail,audio\n"
        'apple,\'æpl,"n. fruit with red or yellow or green skin\\nn. native Eurasian tree",'
        '"n. 苹果, 家族, 苹果树\\n[计] 苹果公司",,3,1,zk gk,2446,1989,s:apples,,\n'
        "zebra,'zi:brə,n. any of several fleet striped African equines,n. 斑马,,,,cet4,,,,,\n",
        encoding="utf-8")
    name, entries = read_one(path)
    assert name == "ecdict"
    assert entries[0] == Entry("apple", "apple ['æpl]\n   n. 苹果, 家族, 苹果树\n   [计] 苹果公司\n"
                                        "   n. fruit with red or yellow or green skin\n"
                                        "   n. native Eurasian tree\n   (中考, 高考)")
    assert entries[1].text.startswith("zebra ['zi:brə]\n   n. 斑马")


def test_two_column_csv(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("word,translation\napple,苹果\\n苹果树\nbanana,香蕉\n\n", encoding="utf-8")
    _, entries = read_one(path, name="pairs")
    assert entries == [Entry("apple", "apple\n   苹果\n   苹果树"),
                       Entry("banana", "banana\n   香蕉")]


def test_course_word_lines(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_text("a                indef art one\nabandon          v.  go away from\n"
                    "a priori   adj. from cause to effect\n\nlonely\n", encoding="utf-8")
    name, entries = read_one(path)
    assert name == "dict"
    assert [(e.word, e.text.split("\n")[1].strip()) for e in entries] == [
        ("a", "indef art one"), ("abandon", "v.  go away from"),
        ("a priori", "adj. from cause to effect")]
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("苹果   apple\n".encode("gb18030"))
    assert read_one(gbk)[1] == [Entry("苹果", "苹果\n   apple")]


def test_cedict_text_gives_two_dictionaries(tmp_path: Path) -> None:
    path = tmp_path / "mini.u8"
    path.write_text(
        "# CC-CEDICT\n#! date=2023-11-07T06:42:16Z\n#! entries=3\n"
        "蘋果 苹果 [ping2 guo3] /apple/CL:個|个[ge4],顆|颗[ke1]/\n"
        "行 行 [xing2] /to walk/to go/capable/\n"
        "行 行 [hang2] /row/line/\n"
        "喫 吃 [chi1] /variant of 吃[chi1]/\n"
        "吃 吃 [chi1] /to eat; to consume/surname Chi/(slang) to suffer (a defeat)/\n",
        encoding="utf-8")
    assert importers.detect_format(path) == "cedict"
    zh, en = importers.read(path, name="mini")
    assert (zh.meta.name, en.meta.name) == ("mini", "mini-en")
    assert "CC BY-SA 4.0" in zh.meta.info and "2023-11-07" in en.meta.info
    chinese = list(zh.entries)
    assert [e.word for e in chinese] == ["苹果", "蘋果", "行", "行", "吃", "喫", "吃"]
    assert chinese[0].text == "苹果 (蘋果) [píng guǒ]\n   1. apple\n   2. CL:個|个[ge4],顆|颗[ke1]"
    english = {e.word: e.text for e in en.entries}
    assert set(english) == {"apple", "walk", "go", "capable", "row", "line", "eat", "consume",
                            "suffer"}
    assert english["apple"] == "apple\n   苹果 (蘋果) [píng guǒ] apple"
    assert "吃 [chī] to eat; to consume" in english["eat"]


def test_pinyin_marks() -> None:
    assert cedict.pinyin_marks("ping2 guo3") == "píng guǒ"
    assert cedict.pinyin_marks("lu:4 nu:3 xue2 sheng5") == "lǜ nǚ xué sheng"
    assert cedict.pinyin_marks("Ou1 zhou1 liu2 gui4 er2 r5") == "Ōu zhōu liú guì ér r"
    assert cedict.pinyin_marks("xx5 A B") == "xx A B"


def test_reversed_glosses() -> None:
    assert cedict.reversed_gloss("to eat (a meal)") == "eat"
    for dropped in ("CL:個|个[ge4]", "variant of 吃[chi1]", "old variant of 喫", "surname Li",
                    "see 蘋果[ping2 guo3]", "abbr. for 中國", "a very long gloss that is a whole "
                    "sentence about something"):
        assert cedict.reversed_gloss(dropped) is None


def test_detect_format(tmp_path: Path) -> None:
    for name, expected in [("x.index", "dictd"), ("x.ifo", "stardict"), ("x.csv", "csv"),
                           ("cedict_ts.u8", "cedict")]:
        assert importers.detect_format(tmp_path / name) == expected
    plain = tmp_path / "words.txt"
    plain.write_text("apple   a fruit\n")
    assert importers.detect_format(plain) == "lines"
    with pytest.raises(UserError, match="no such file"):
        importers.read(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="bad dictionary name"):
        importers.read(plain, name="two words")


def test_import_and_lookup_commands(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("apple   a fruit\nbanana   a long fruit\n", encoding="utf-8")
    db = str(tmp_path / "cli.db")
    run = [sys.executable, "-m", "ionet", "dict"]
    done = subprocess.run(run + ["import", str(words), "--name", "fruit", "--db", db],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "imported 2 entries into 'fruit'" in done.stderr
    found = subprocess.run(run + ["lookup", "Apple", "--db", db, "--no-default-data"],
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and "[fruit] apple" in found.stdout and "a fruit" in found.stdout
    missing = subprocess.run(run + ["lookup", "banan", "--db", db, "--no-default-data"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "did you mean: banana" in missing.stdout
    bad = subprocess.run(run + ["import", str(tmp_path / "nope.txt"), "--db", db],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
