#!/usr/bin/python3
"""Generate the synthetic PDF set for the ingestion benchmark.

Run with Debian's Python and pycairo (apt-get install -y python3-cairo):

    /usr/bin/python3 bench/ingest/make_pdfs.py OUT_DIR [--docs 50] [--min-pages 10]
                                               [--max-pages 20] [--seed 1]

Writes OUT_DIR/doc-000.pdf ... (A4, DejaVu Sans 10.5 pt, a heading now and then, a
"Page N of M" footer) filled with generated prose: sentences built from templates over a
vocabulary of contract and clinical terms plus a long tail of generated words, so the
text looks like real prose to a tokenizer, a chunker and a stemmer. A full page holds
about 500-550 words, as a dense contract page does.

Deterministic: a fixed seed per document, fixed metadata dates, so the same cairo and
font versions give byte-identical files. Prints the number of files and pages.
"""

import argparse
import os
import random
import sys

import cairo

PAGE_W, PAGE_H = 595.276, 841.89  # A4 in points
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 64.0, 64.0, 64.0, 72.0
FOOTER_BASELINE = PAGE_H - 40.0
FONT = "DejaVu Sans"
BODY, LEADING = 10.5, 14.0
HEAD, HEAD_LEADING = 12.5, 20.0
FIXED_DATE = "2024-01-01T00:00:00Z"

LEGAL = """agreement party parties contractor client supplier licensee licensor indemnify
indemnification liability warranty warranties termination convenience notice breach
remedy remedies confidential confidentiality obligation obligations jurisdiction
arbitration governing law clause schedule exhibit amendment assignment subcontractor
invoice payment fees deliverables acceptance intellectual property license sublicense
representation covenant force majeure insurance audit records compliance statute
damages consequential incidental limitation cap renewal term effective date
counterpart severability waiver entire successor affiliate personnel data processor
controller subprocessor breach notification retention deletion escrow milestone""".split()

MEDICAL = """patient admission discharge diagnosis prognosis symptom symptoms dyspnea
tachycardia hypertension hypotension diabetes mellitus insulin metformin dosage dose
tablet milligrams intravenous oral contraindication contraindications adverse reaction
allergy penicillin amoxicillin anticoagulant warfarin heparin renal hepatic cardiac
pulmonary embolism infarction myocardial angina echocardiogram electrocardiogram
radiograph computed tomography magnetic resonance biopsy pathology oncology chemotherapy
follow-up outpatient inpatient nursing vital signs temperature saturation oxygen
antibiotic infection sepsis culture laboratory hemoglobin creatinine potassium sodium
physician consultant referral therapy rehabilitation physiotherapy medication""".split()

COMMON = """the of and to in a is that for it as with be on by this which or from at an are
not shall will may must any all such its other under each no been has have were their
these those within upon without after before during between than more where when
only also including provided written prior reasonable time period days months year
following applicable relevant respective further except unless subject hereto thereof
herein whether either both same first second third agreed required described set""".split()

VERBS = """shall provide may terminate must notify will review agrees to pay is responsible
for shall maintain may disclose must obtain will deliver shall comply with may request
must ensure will indemnify shall remain was admitted was discharged was prescribed
reported denied developed received underwent tolerated presented with""".split(" ")


def make_tail(rng, n):
    """A long tail of pronounceable generated words (Zipf-ish use below)."""
    cons = "bcdfghjklmnprstvwz"
    vow = "aeiou"
    words = set()
    while len(words) < n:
        k = rng.randint(2, 4)
        w = "".join(rng.choice(cons) + rng.choice(vow) for _ in range(k))
        if rng.random() < 0.4:
            w += rng.choice(["tion", "ment", "ance", "ity", "ous", "al", "ing", "ed", "er"])
        words.add(w)
    return sorted(words)


class Prose:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        tail_rng = random.Random(12345)  # the same tail for every document
        self.tail = make_tail(tail_rng, 8000)
        self.domain = LEGAL if seed % 2 == 0 else MEDICAL

    def word(self):
        r = self.rng.random()
        if r < 0.45:
            return self.rng.choice(COMMON)
        if r < 0.75:
            return self.rng.choice(self.domain)
        if r < 0.82:
            return self.rng.choice(LEGAL + MEDICAL)
        # Zipf-like draw from the tail: low indexes much more often.
        i = int(len(self.tail) * (self.rng.random() ** 3))
        return self.tail[i]

    def sentence(self):
        n = self.rng.randint(8, 26)
        words = [self.word() for _ in range(n)]
        if self.rng.random() < 0.5:
            words.insert(self.rng.randint(1, len(words) - 1), self.rng.choice(VERBS).strip())
        if self.rng.random() < 0.25:
            words.insert(self.rng.randint(1, len(words) - 1),
                         "%d.%d" % (self.rng.randint(1, 30), self.rng.randint(1, 9)))
        if self.rng.random() < 0.15:
            words[-1] += ","
            words += [self.word() for _ in range(self.rng.randint(3, 8))]
        s = " ".join(words)
        return s[0].upper() + s[1:] + "."

    def paragraph(self):
        return " ".join(self.sentence() for _ in range(self.rng.randint(3, 8)))

    def heading(self, n):
        words = [self.rng.choice(self.domain).capitalize() for _ in range(self.rng.randint(2, 4))]
        return "%d. %s" % (n, " ".join(words))


def wrap(ctx, text, width):
    lines, line = [], ""
    for w in text.split():
        cand = w if not line else line + " " + w
        if ctx.text_extents(cand).x_advance <= width:
            line = cand
        else:
            if line:
                lines.append(line)
            line = w
    if line:
        lines.append(line)
    return lines


def layout(prose, n_pages, ctx):
    """Returns pages, each a list of (bold, size, y, text) lines; exactly n_pages."""
    width = PAGE_W - MARGIN_L - MARGIN_R
    bottom = PAGE_H - MARGIN_B
    pages, cur, y = [], [], MARGIN_T
    section = 0
    while len(pages) < n_pages:
        if prose.rng.random() < 0.18:
            section += 1
            if y + HEAD_LEADING * 2 > bottom:
                pages.append(cur)
                cur, y = [], MARGIN_T
                if len(pages) == n_pages:
                    break
            y += HEAD_LEADING
            cur.append((True, HEAD, y, prose.heading(section)))
            y += 4
        ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_NORMAL)
        ctx.set_font_size(BODY)
        for line in wrap(ctx, prose.paragraph(), width):
            if y + LEADING > bottom:
                pages.append(cur)
                cur, y = [], MARGIN_T
                if len(pages) == n_pages:
                    break
            y += LEADING
            cur.append((False, BODY, y, line))
        y += 6
    return pages


def render(path, seed, n_pages):
    prose = Prose(seed)
    surface = cairo.PDFSurface(path, PAGE_W, PAGE_H)
    surface.set_metadata(cairo.PDF_METADATA_TITLE, "Synthetic document %d" % seed)
    surface.set_metadata(cairo.PDF_METADATA_CREATE_DATE, FIXED_DATE)
    surface.set_metadata(cairo.PDF_METADATA_MOD_DATE, FIXED_DATE)
    ctx = cairo.Context(surface)
    pages = layout(prose, n_pages, ctx)
    for i, lines in enumerate(pages):
        for bold, size, y, text in lines:
            ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL,
                                 cairo.FONT_WEIGHT_BOLD if bold else cairo.FONT_WEIGHT_NORMAL)
            ctx.set_font_size(size)
            ctx.move_to(MARGIN_L, y)
            ctx.show_text(text)
        ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_NORMAL)
        ctx.set_font_size(9.0)
        footer = "Page %d of %d" % (i + 1, len(pages))
        ctx.move_to((PAGE_W - ctx.text_extents(footer).x_advance) / 2, FOOTER_BASELINE)
        ctx.show_text(footer)
        ctx.show_page()
    surface.finish()
    return len(pages)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--docs", type=int, default=50)
    ap.add_argument("--min-pages", type=int, default=10)
    ap.add_argument("--max-pages", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.docs < 1 or a.min_pages < 1 or a.max_pages < a.min_pages:
        sys.exit("make_pdfs.py: bad sizes")
    os.makedirs(a.out_dir, exist_ok=True)
    sizes = random.Random(a.seed)
    total = 0
    for d in range(a.docs):
        n = sizes.randint(a.min_pages, a.max_pages)
        total += render(os.path.join(a.out_dir, "doc-%03d.pdf" % d), a.seed * 1000 + d, n)
    print("%d PDFs, %d pages in %s" % (a.docs, total, a.out_dir))


if __name__ == "__main__":
    main()
