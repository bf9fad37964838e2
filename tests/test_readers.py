"""Readers: real samples where the shared folder has them, schema-exact fixtures otherwise."""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from pathlib import Path

import pytest

from lottery.data import DataFormatError, DataWarning, ReadReport, read_reviews, star_to_label
from lottery.data.readers import READERS


def _read(path, fmt, **kw):
    report = kw.pop("report", ReadReport())
    return list(read_reviews(path, fmt, report=report, **kw)), report


def _gzip_copy(src: Path, dest: Path) -> Path:
    with open(src, "rb") as fin, gzip.open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dest


# ------------------------------------------------------------------ star mapping

@pytest.mark.parametrize("rating, label", [(1, 0), (2, 0), ("1.0", 0), (2.0, 0),
                                           (4, 1), ("5", 1), (5.0, 1), ("4.0", 1),
                                           (3, None), ("3.0", None)])
def test_star_mapping_follows_the_paper(rating, label):
    assert star_to_label(rating) == label


@pytest.mark.parametrize("bad", [0, 6, 4.5, "2.5", "five", None, float("nan"), True])
def test_star_mapping_rejects_non_integer_and_out_of_range(bad):
    with pytest.raises(ValueError):
        star_to_label(bad)


# ------------------------------------------------------------------ real samples

def test_fdu_mtl_real_file(mirror):
    reviews, report = _read(mirror / "fdu-mtl/books.task.train", "fdu-mtl")
    assert len(reviews) == 1600 == report.kept
    assert sum(r.label == 0 for r in reviews) == 802
    assert reviews[0].line == 1 and reviews[-1].line == 1600
    assert reviews[0].rating is None and reviews[0].text.startswith("i am an avid reader")
    assert reviews[0].source.endswith("books.task.train")


def test_blitzer_real_files_map_stars_to_labels(mirror):
    folder = mirror / "blitzer-acl/sorted_data_acl/dvd"
    pos, pos_report = _read(folder / "positive.review", "blitzer")
    neg, _ = _read(folder / "negative.review", "blitzer")
    assert len(pos) == len(neg) == 1000 and pos_report.skipped == 0
    assert {r.rating for r in pos} <= {4.0, 5.0} and {r.label for r in pos} == {1}
    assert {r.rating for r in neg} <= {1.0, 2.0} and {r.label for r in neg} == {0}
    assert all("<" not in r.text[:1] for r in pos)  # text, not tags
    assert pos[1].line > pos[0].line > 0


def test_mcauley2014_real_sample_plain_and_gz(mirror, tmp_path):
    src = mirror / "format-samples/mcauley2014/Books_small.json"
    plain, report = _read(src, "mcauley2014")
    assert report.read == 1000 and report.kept + report.neutral + report.missing_text == 1000
    raw = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    expected = [(0 if r["overall"] < 3 else 1) for r in raw
                if r["overall"] != 3 and r["reviewText"].strip()]
    assert [r.label for r in plain] == expected
    assert report.neutral == sum(r["overall"] == 3 for r in raw) > 0
    # gzip is detected by magic bytes, with and without the .gz suffix
    for name in ("Books_small.json.gz", "Books_small_no_suffix"):
        gz, _ = _read(_gzip_copy(src, tmp_path / name), "mcauley2014")
        assert [(r.label, r.text, r.line) for r in gz] == [(r.label, r.text, r.line) for r in plain]


def test_amazon_tsv_real_samples(mirror):
    files = sorted((mirror / "format-samples/amazon-us-reviews-tsv").glob("*.tsv"))
    assert len(files) == 6
    for path in files:
        reviews, report = _read(path, "amazon-tsv")
        assert report.read == 19 and report.skipped == 0
        assert len(reviews) == 19 - report.neutral - report.missing_text
        assert all(r.line >= 2 for r in reviews)  # line 1 is the header
        assert all((r.rating >= 4) == (r.label == 1) for r in reviews)


# ------------------------------------------------------------------ schema-exact fixtures

def test_amazon_tsv_long_field_and_stray_quote(tmp_path):
    header = ["marketplace", "customer_id", "review_id", "product_id", "product_parent",
              "product_title", "product_category", "star_rating", "helpful_votes",
              "total_votes", "vine", "verified_purchase", "review_headline", "review_body",
              "review_date"]
    long_body = "great " * 40_000  # 240 KB, beyond csv's default 128 KiB field limit
    rows = [header,
            ["US", "1", "R1", "P1", "1", "A \"quoted title", "Books", "5", "0", "0", "N", "Y",
             "h", long_body, "2015-08-31"],
            ["US", "2", "R2", "P2", "2", "t", "Books", "1", "0", "0", "N", "Y", "h",
             "awful \"stuff", "2015-08-31"]]
    path = tmp_path / "reviews.tsv"
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    reviews, report = _read(path, "amazon-tsv")
    assert [r.label for r in reviews] == [1, 0]
    assert len(reviews[0].text) == len(long_body) and reviews[1].text == 'awful "stuff'
    assert [r.line for r in reviews] == [2, 3]


def test_mcauley2018_missing_text_is_skipped_and_counted(tmp_path):
    lines = [
        {"overall": 5.0, "verified": True, "reviewerID": "A1", "asin": "B1",
         "reviewText": "Loved it", "summary": "Five Stars", "unixReviewTime": 1},
        {"overall": 1.0, "verified": True, "reviewerID": "A2", "asin": "B1",
         "summary": "One Star", "unixReviewTime": 2},  # no reviewText
        {"overall": 2.0, "reviewerID": "A3", "asin": "B2", "reviewText": "Broke", "vote": "3"},
        {"overall": 3.0, "reviewerID": "A4", "asin": "B2", "reviewText": "Meh"},
    ]
    path = tmp_path / "Books_5.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(line) + "\n" for line in lines)
    reviews, report = _read(path, "mcauley2018", on_error="raise")
    assert [(r.label, r.text, r.line) for r in reviews] == [(1, "Loved it", 1), (0, "Broke", 3)]
    assert (report.missing_text, report.neutral, report.skipped) == (1, 1, 0)


def test_amazon2023_jsonl(tmp_path):
    lines = [
        {"rating": 5.0, "title": "Great", "text": "Works well", "images": [], "asin": "B1",
         "parent_asin": "B1", "user_id": "U1", "timestamp": 1588687728923,
         "helpful_vote": 0, "verified_purchase": True},
        {"rating": 1.0, "title": "Bad", "text": "Stopped working", "asin": "B2"},
        {"rating": 3.0, "title": "Ok", "text": "Fine", "asin": "B3"},
    ]
    path = tmp_path / "Books.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    reviews, report = _read(path, "amazon2023")
    assert [(r.label, r.text) for r in reviews] == [(1, "Works well"), (0, "Stopped working")]
    assert report.neutral == 1


SNAP = """product/productId: B000GKXY4S
product/title: Crazy Shape Scissor Set
product/price: unknown
review/userId: A1QA985ULVCQOB
review/profileName: Carleen M. Amadio "Lady Dragonfly"
review/helpfulness: 2/2
review/score: 5.0
review/time: 1314057600
review/summary: Fun for adults too!
review/text: I really enjoy these scissors: for their inspiring colors.

product/productId: B000GKXY4S
review/userId: A3KQ9C0O8VSVVE
review/score: 2.0
review/summary: Not great
review/text: They fell apart.

product/productId: B000GKXY4T
review/score: 3.0
review/text: Average.
"""


@pytest.mark.parametrize("gz", [False, True])
def test_snap2013_blocks(tmp_path, gz):
    path = tmp_path / ("Arts.txt.gz" if gz else "Arts.txt")
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(SNAP)
    else:
        path.write_text(SNAP, encoding="utf-8")
    reviews, report = _read(path, "snap2013", on_error="raise")
    assert [(r.label, r.line) for r in reviews] == [(1, 1), (0, 12)]
    assert reviews[0].text == "I really enjoy these scissors: for their inspiring colors."
    assert report.neutral == 1 and report.read == 3


BLITZER = """<review>
<unique_id>
B0001:title:reviewer
</unique_id>
<unique_id>
42
</unique_id>
<asin>
B0001
</asin>
<product_name>
Pots & Pans: Kitchen
</product_name>
<rating>
4.0
</rating>
<title>
Good & cheap
</title>
<review_text>
Heats evenly & cleans up fast.

Second paragraph < first.
</review_text>
</review>
<review>
<unique_id>
B0002:x:y
</unique_id>
<rating>
1.0
</rating>
<review_text>
Rusted in a week
</review_text>
</review>
"""


def test_blitzer_tolerates_bare_ampersand_and_repeated_unique_id(tmp_path):
    path = tmp_path / "positive.review"
    path.write_text(BLITZER, encoding="utf-8")
    reviews, report = _read(path, "blitzer", on_error="raise")
    assert [(r.label, r.rating, r.line) for r in reviews] == [(1, 4.0, 1), (0, 1.0, 26)]
    assert reviews[0].text == "Heats evenly & cleans up fast.\n\nSecond paragraph < first."


def test_blitzer_gz_real_file(mirror, tmp_path):
    src = mirror / "blitzer-acl/sorted_data_acl/books/negative.review"
    plain, _ = _read(src, "blitzer")
    gz, _ = _read(_gzip_copy(src, tmp_path / "negative.review.gz"), "blitzer")
    assert len(gz) == 1000 and [r.text for r in gz] == [r.text for r in plain]


# ------------------------------------------------------------------ malformed input

MALFORMED = {
    "fdu-mtl": ("1\tgood one\nno tab here\n0\tbad one\n", 2, "label"),
    "mcauley2014": ('{"overall": 5, "reviewText": "a"}\n{"overall": 5, "reviewText": \n'
                    '{"overall": 1, "reviewText": "b"}\n', 2, "<json>"),
    "amazon2023": ('{"rating": 5, "text": "a"}\n{"rating": 4.5, "text": "half"}\n'
                   '{"rating": 1, "text": "b"}\n', 2, "rating"),
    "snap2013": ("review/score: 5.0\nreview/text: a\n\nreview/score: 9.0\nreview/text: x\n\n"
                 "review/score: 1.0\nreview/text: b\n", 4, "review/score"),
    "blitzer": ("<review>\n<rating>\n5.0\n</rating>\n<review_text>\na\n</review_text>\n</review>\n"
                "<review>\n<review_text>\nno rating\n</review_text>\n</review>\n"
                "<review>\n<rating>\n1.0\n</rating>\n<review_text>\nb\n</review_text>\n</review>\n",
                9, "rating"),
}


@pytest.mark.parametrize("fmt", sorted(MALFORMED))
def test_malformed_raise_names_file_line_and_field(tmp_path, fmt):
    content, line, field = MALFORMED[fmt]
    path = tmp_path / f"bad.{fmt}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        list(read_reviews(path, fmt, on_error="raise"))
    assert isinstance(info.value, ValueError)
    assert f"{path}:{line}:" in str(info.value) and repr(field) in str(info.value)
    assert (info.value.line, info.value.field) == (line, field)


@pytest.mark.parametrize("fmt", sorted(MALFORMED))
def test_malformed_skip_counts_and_warns(tmp_path, fmt):
    content, line, _ = MALFORMED[fmt]
    path = tmp_path / f"bad.{fmt}"
    path.write_text(content, encoding="utf-8")
    report = ReadReport()
    with pytest.warns(DataWarning, match="malformed skipped 1"):
        reviews = list(read_reviews(path, fmt, on_error="skip", report=report))
    assert [r.label for r in reviews] == [1, 0]
    assert report.skipped == 1 and report.kept == 2
    assert f":{line}:" in report.examples[0]


def test_tsv_wrong_column_count(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("star_rating\treview_body\n5\tgood\n4\n1\tbad\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.tsv:3: field '<row>'"):
        list(read_reviews(path, "amazon-tsv", on_error="raise"))
    report = ReadReport()
    with pytest.warns(DataWarning):
        assert len(list(read_reviews(path, "amazon-tsv", report=report))) == 2
    assert report.skipped == 1


def test_clean_file_gives_no_warning(mirror):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(read_reviews(mirror / "fdu-mtl/dvd.task.test", "fdu-mtl"))) == 400


def test_unknown_format_and_policy(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("1\ta\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown review format"):
        read_reviews(path, "yelp")
    with pytest.raises(ValueError, match="on_error"):
        list(read_reviews(path, "fdu-mtl", on_error="ignore"))  # type: ignore[arg-type]
    assert set(READERS) >= {"fdu-mtl", "blitzer", "mcauley2014", "mcauley2018", "amazon2023",
                            "snap2013", "amazon-tsv"}
