"""``lottery chapter`` and ``lottery book``: execute chapters (papermill) and build the
HTML book."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lottery.book import build, chapters, layout
from lottery.cli.args import add_chapter_args, chapter_params, usage_error

def chapter_table() -> str:
    """Every chapter, in the book's order: its name, its file in notebooks/ and its title."""
    rows = [f"  {'name':<11} {'file in notebooks/':<24} title"]
    rows += [f"  {ch.name:<11} {ch.source:<24} {ch.title}" for ch in chapters.CHAPTERS]
    return "\n".join(rows)


def add_chapter(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chapter", help="execute one book chapter with parameters (papermill)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="chapters (give the name or the file's stem, e.g. verdict or "
                              "06_paper_vs_book):\n" + chapter_table())
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="chapter: " + ", ".join(c.name for c in chapters.CHAPTERS)
                        + ", or its file's stem (the table below)")
    add_chapter_args(p)
    p.add_argument("--output", "-o", help="executed notebook (default: "
                                          "book/chapters/NAME.ipynb in the project)")
    p.add_argument("--list", action="store_true",
                   help="list the chapters: name, file, title and parameters with their defaults")
    p.set_defaults(run=_run_chapter)


def _list_chapters(project: str | None) -> None:
    notebooks = layout.notebooks_dir(project)
    print(f"{'name':<11} {'file in notebooks/':<24} {'title':<37} parameters (defaults)")
    for ch in chapters.CHAPTERS:
        declared = chapters.read_chapter(ch.name, notebooks).parameters
        params = ", ".join(f"{k}={v!r}" for k, v in declared.items())
        print(f"{ch.name:<11} {ch.source:<24} {ch.title:<37} {params}")
    print("executed notebooks are book/chapters/NAME.ipynb; list values are JSON: "
          "-p domains '[\"books\"]'")


def _run_chapter(args: argparse.Namespace) -> int:

    try:
        if args.list:
            _list_chapters(args.project)
            return 0
        if not args.name:
            raise ValueError("give a chapter name (or --list)")
        profile, params = chapter_params(args)
        out = build.execute_chapter(args.name, profile, params, output=args.output,
                                    project=args.project)
        if args.output is None:   # the summary pages (the table's `summary` column) follow it
            build.refresh_summaries(out.parent, args.project, executed=chapters.chapter(args.name).name)
            print("lottery chapter: rebuild the HTML with `lottery book --no-execute`")
    except (ValueError, layout.ProjectNotFoundError) as exc:
        return usage_error("chapter", exc)
    except build.ChapterError as exc:
        print(f"lottery chapter: {exc}", file=sys.stderr)
        return 1
    return 0


def add_book(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="execute every chapter and build the HTML book")
    add_chapter_args(p)
    p.add_argument("--no-execute", action="store_true",
                   help="rebuild the HTML from the already executed chapters")
    p.add_argument("--no-html", action="store_true", help="execute the chapters only")
    p.add_argument("--book-dir", help="build in this folder (a copy of book/) instead of book/")
    p.add_argument("--assets-only", action="store_true",
                   help="only put Vega and MathJax into book/_static (offline set-up)")
    p.set_defaults(run=_run_book)


def _run_book(args: argparse.Namespace) -> int:

    book_dir = Path(args.book_dir) if args.book_dir else None
    try:
        if args.assets_only:
            build.ensure_assets(book_dir or layout.find_project(args.project) / layout.BOOK_DIR)
            return 0
        profile, params = chapter_params(args)
        build.build_book(profile, params, book_dir=book_dir, execute=not args.no_execute,
                         html=not args.no_html, project=args.project)
    except (ValueError, layout.ProjectNotFoundError) as exc:
        return usage_error("book", exc)
    except RuntimeError as exc:
        print(f"lottery book: {exc}", file=sys.stderr)
        return 1
    return 0


#: The sub-commands this module adds (in ``lottery --help`` order).
COMMANDS = (add_chapter, add_book,)
