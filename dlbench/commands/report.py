"""`dlbench report RESULTS... --html FILE --markdown FILE`: a page to look at or send, and a summary to paste."""

from __future__ import annotations

from dlbench.commands.argtypes import fraction
from dlbench.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument(
        "results",
        nargs="+",
        help="result JSON, pytest-benchmark JSON, `dlbench validate --json` reports, or directories of them",
    )
    parser.add_argument("--html", metavar="FILE.html", help="write one self-contained HTML page (needs matplotlib)")
    parser.add_argument("--markdown", metavar="FILE.md", help="write a Markdown summary; '-' prints it")
    parser.add_argument("--title", default="dlbench report", help="the page's title")
    parser.add_argument(
        "--outlier",
        type=fraction,
        default=0.05,
        metavar="FRACTION",
        help="validation reports: flag a GPU this far below the fleet median of its model (default 0.05, as "
        "`dlbench validate summarize`)",
    )


def run(args) -> int:
    from dlbench.atomic import check_writable, write_text
    from dlbench.results.load import load_paths
    from dlbench.results.report import render_html, render_markdown

    if not args.html and not args.markdown:
        raise UserError("say what to write: --html FILE.html and/or --markdown FILE.md ('-' for stdout)")
    for path in (args.html, args.markdown):
        if path and path != "-":
            check_writable(path)
    reports: list[dict] = []  # `dlbench validate` reports, told apart from run results by their tool name
    results = load_paths(args.results, reports)
    # both documents are rendered before either is written: a failure leaves no half of a report behind
    documents = []
    if args.html:
        documents.append((args.html, render_html(results, args.title, reports, args.outlier)))
    if args.markdown:
        documents.append((args.markdown, render_markdown(results, args.title, reports, args.outlier)))
    for path, text in documents:
        if path == "-":
            print(text, end="")
        else:
            write_text(path, text)
            print(f"wrote {path}")
    return 0
