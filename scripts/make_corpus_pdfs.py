#!/usr/bin/python3
"""Render the demo PDFs in corpus/ from their sources in scripts/corpus-src/.

Run with Debian's Python and pycairo (apt-get install -y python3-cairo):

    /usr/bin/python3 scripts/make_corpus_pdfs.py

Every source file scripts/corpus-src/NAME.txt becomes corpus/NAME.pdf (A4, DejaVu Sans
11 pt, "Page N of M" footer). The output is deterministic: fixed metadata dates, no
randomness, so rerunning gives the same PDF for the same cairo and font versions.

Source markup (one construct per paragraph; paragraphs are separated by blank lines,
and the lines of a plain paragraph are joined with spaces):

    # Title                      document title (bold, large)
    ## Heading                   section heading (bold)
    ### Subheading               subheading (bold, body size)
    - item                       bullet item, one per line, wrapped with a hanging indent
    1. item                      numbered item, one per line
    | text                       a short line kept on its own line (header fields)
    ! text                       a paragraph set in bold
    anything else                a normal paragraph

With --check, nothing is rendered: corpus/questions.json is verified instead (each
answer_contains phrase must appear on the stated page, on one line; pdftotext is used
for PDFs).

Each output line is drawn with a single show_text call so that text extraction
(pdftotext, poppler-cpp) returns the words of a line in order, separated by spaces.
"""

import argparse
import json
import os
import re
import subprocess
import sys

import cairo

PAGE_W, PAGE_H = 595.276, 841.89  # A4 in points
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 72.0, 72.0, 72.0, 78.0
FOOTER_BASELINE = PAGE_H - 42.0
FONT = "DejaVu Sans"
BODY = 11.0
FIXED_DATE = "2024-01-01T00:00:00Z"

# kind -> (bold, size, leading, space_before, space_after)
STYLES = {
    "title": (True, 17.0, 22.0, 0.0, 10.0),
    "h2": (True, 13.0, 18.0, 12.0, 3.0),
    "h3": (True, 11.0, 15.5, 8.0, 2.0),
    "para": (False, BODY, 15.0, 0.0, 7.0),
    "bold": (True, BODY, 15.0, 0.0, 7.0),
    "item": (False, BODY, 15.0, 0.0, 3.5),
    "field": (False, BODY, 15.0, 0.0, 1.5),
}
HEADINGS = ("title", "h2", "h3")


def parse(text):
    """Split source text into (kind, prefix, text) blocks."""
    blocks = []
    para = []

    def flush():
        if para:
            blocks.append(("para", "", " ".join(para)))
            para.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        m = re.match(r"^(#{1,3}) (.*)$", line)
        if m:
            flush()
            blocks.append(({1: "title", 2: "h2", 3: "h3"}[len(m.group(1))], "", m.group(2)))
            continue
        if line.startswith("- "):
            flush()
            blocks.append(("item", "\u2022  ", line[2:].strip()))
            continue
        m = re.match(r"^(\d+\.) (.*)$", line)
        if m and not para:
            blocks.append(("item", m.group(1) + "  ", m.group(2).strip()))
            continue
        if line.startswith("| "):
            flush()
            blocks.append(("field", "", line[2:].strip()))
            continue
        if line.startswith("! "):
            flush()
            blocks.append(("bold", "", line[2:].strip()))
            continue
        para.append(line)
    flush()
    # A list ends with a little more space than between its items.
    out = []
    for i, (kind, prefix, body) in enumerate(blocks):
        nxt = blocks[i + 1][0] if i + 1 < len(blocks) else None
        if kind in ("item", "field") and nxt != kind:
            kind = kind + "-last"
        out.append((kind, prefix, body))
    return out


def style_of(kind):
    base = kind.replace("-last", "")
    bold, size, leading, before, after = STYLES[base]
    if kind.endswith("-last"):
        after = STYLES["para"][4]
    return bold, size, leading, before, after


def set_font(ctx, bold, size):
    ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL,
                         cairo.FONT_WEIGHT_BOLD if bold else cairo.FONT_WEIGHT_NORMAL)
    ctx.set_font_size(size)


def wrap(ctx, text, first_width, rest_width):
    """Greedy word wrap measured with the current font."""
    words = text.split()
    lines, cur = [], ""
    width = first_width
    for w in words:
        cand = w if not cur else cur + " " + w
        if ctx.text_extents(cand).x_advance <= width or not cur:
            cur = cand
        else:
            lines.append(cur)
            cur = w
            width = rest_width
    if cur:
        lines.append(cur)
    return lines


def layout(ctx, blocks):
    """Return pages: each a list of (bold, size, x, baseline_y, text)."""
    text_w = PAGE_W - MARGIN_L - MARGIN_R
    bottom = PAGE_H - MARGIN_B
    # First turn blocks into lists of lines with their metrics.
    laid = []
    for kind, prefix, body in blocks:
        bold, size, leading, before, after = style_of(kind)
        set_font(ctx, bold, size)
        indent = ctx.text_extents(prefix).x_advance if prefix else 0.0
        if kind.startswith("field"):
            indent_rest = 18.0
            lines = wrap(ctx, body, text_w, text_w - indent_rest)
            placed = [(0.0 if i == 0 else indent_rest, l) for i, l in enumerate(lines)]
        else:
            lines = wrap(ctx, body, text_w - indent, text_w - indent)
            placed = [(0.0 if i == 0 else indent, (prefix + l) if i == 0 else l)
                      for i, l in enumerate(lines)]
        laid.append((kind, bold, size, leading, before, after, placed))

    pages, cur = [], []
    y = MARGIN_T
    for bi, (kind, bold, size, leading, before, after, placed) in enumerate(laid):
        if cur:
            y += before
        need = leading * len(placed)
        base_kind = kind.replace("-last", "")
        if base_kind in HEADINGS and bi + 1 < len(laid):
            nxt = laid[bi + 1]
            # keep a heading with at least two lines of what follows
            need += nxt[4] + nxt[3] * min(2, len(nxt[6]))
        elif len(placed) <= 3:
            need = leading * len(placed)  # keep short blocks together
        else:
            need = leading * 2  # avoid a single orphan line at the page foot
        if cur and y + need > bottom:
            pages.append(cur)
            cur, y = [], MARGIN_T
        for dx, text in placed:
            if cur and y + leading > bottom:
                pages.append(cur)
                cur, y = [], MARGIN_T
            y += leading
            cur.append((bold, size, MARGIN_L + dx, y - (leading - size) * 0.5 - size * 0.22, text))
        y += after
    if cur:
        pages.append(cur)
    return pages


def render(src_path, out_path):
    with open(src_path, encoding="utf-8") as f:
        blocks = parse(f.read())
    title = next((b for k, _, b in blocks if k == "title"), os.path.basename(src_path))

    # Measure on a scratch surface so that the real one only receives final pages.
    scratch = cairo.ImageSurface(cairo.FORMAT_ARGB32, 8, 8)
    pages = layout(cairo.Context(scratch), blocks)

    surface = cairo.PDFSurface(out_path, PAGE_W, PAGE_H)
    for key, value in ((cairo.PDF_METADATA_TITLE, title),
                       (cairo.PDF_METADATA_AUTHOR, "ragd demo corpus (fictional)"),
                       (cairo.PDF_METADATA_SUBJECT, "Fictional demonstration document"),
                       (cairo.PDF_METADATA_CREATOR, "scripts/make_corpus_pdfs.py"),
                       (cairo.PDF_METADATA_CREATE_DATE, FIXED_DATE),
                       (cairo.PDF_METADATA_MOD_DATE, FIXED_DATE)):
        surface.set_metadata(key, value)
    ctx = cairo.Context(surface)
    total = len(pages)
    for n, lines in enumerate(pages, 1):
        ctx.set_source_rgb(0, 0, 0)
        for bold, size, x, y, text in lines:
            set_font(ctx, bold, size)
            ctx.move_to(x, y)
            ctx.show_text(text)
        footer = "Page %d of %d" % (n, total)
        set_font(ctx, False, 9.0)
        ctx.set_source_rgb(0.35, 0.35, 0.35)
        fw = ctx.text_extents(footer).x_advance
        ctx.move_to((PAGE_W - fw) / 2.0, FOOTER_BASELINE)
        ctx.show_text(footer)
        ctx.show_page()
    surface.finish()
    return total


def page_text(path, page):
    """Text of one page: the whole file for text and Markdown, pdftotext for a PDF."""
    if not path.endswith(".pdf"):
        if page != 1:
            raise ValueError("text and Markdown files have a single page")
        with open(path, encoding="utf-8") as f:
            return f.read()
    return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), path, "-"],
                          check=True, capture_output=True, text=True).stdout


def check(corpus):
    """Verify corpus/questions.json: each answer phrase is on the stated page, on one line."""
    with open(os.path.join(corpus, "questions.json"), encoding="utf-8") as f:
        questions = json.load(f)
    bad = 0
    for i, q in enumerate(questions):
        path = os.path.join(corpus, q["document"])
        phrase = q["answer_contains"]
        try:
            text = page_text(path, q["page"])
        except (OSError, ValueError, subprocess.CalledProcessError) as e:
            print("FAIL %d %s p.%s: %s" % (i, q["document"], q["page"], e))
            bad += 1
            continue
        if phrase not in text:
            print("FAIL %d %s p.%d: %r not found" % (i, q["document"], q["page"], phrase))
            bad += 1
        else:
            print("ok   %d %s p.%d: %r" % (i, q["document"], q["page"], phrase))
    print("%d of %d questions verified" % (len(questions) - bad, len(questions)))
    return bad == 0


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=os.path.join(root, "scripts", "corpus-src"))
    ap.add_argument("--out", default=os.path.join(root, "corpus"))
    ap.add_argument("--check", action="store_true",
                    help="only verify corpus/questions.json against the corpus (needs pdftotext)")
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if check(args.out) else 1)
    names = sorted(n for n in os.listdir(args.src) if n.endswith(".txt"))
    if not names:
        sys.exit("no .txt sources in " + args.src)
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        out = os.path.join(args.out, name[:-4] + ".pdf")
        pages = render(os.path.join(args.src, name), out)
        print("%s: %d pages, %d bytes" % (os.path.relpath(out, root), pages, os.path.getsize(out)))


if __name__ == "__main__":
    main()
