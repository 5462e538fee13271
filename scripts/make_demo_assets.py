#!/usr/bin/env python3
"""Regenerate the demo materials in src/studyshelf/demo/assets/ (all made here, so all CC0).

Needs only Python and ffmpeg (for the video and the audio). The PDF, PNG, DOCX and XLSX are
written byte by byte below, so nobody needs an office suite or an image library.

    python scripts/make_demo_assets.py [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import textwrap
import zipfile
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

ASSETS = Path(__file__).resolve().parent.parent / "src" / "studyshelf" / "demo" / "assets"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# Strip encoder versions and timestamps so a rerun changes as few bytes as possible.
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]

PDF_PAGES = [
    (
        "Cell structure",
        [
            "Biology 101 - Week 1: Cells",
            "",
            "Every living thing is made of cells. A cell is the smallest unit that can carry out "
            "the processes of life: it takes in nutrients, turns them into energy, grows, responds "
            "to its surroundings and reproduces.",
            "",
            "Cells come in two broad kinds. Prokaryotic cells, such as bacteria, have no nucleus; "
            "their DNA floats in the cytoplasm. Eukaryotic cells, such as those of plants, animals "
            "and fungi, keep their DNA inside a membrane-bound nucleus.",
            "",
            "This handout walks through the main parts of a eukaryotic cell and what each one does.",
        ],
    ),
    (
        "The parts of a cell",
        [
            "Cell membrane - a thin, flexible barrier of lipids and proteins that controls what "
            "enters and leaves the cell.",
            "",
            "Cytoplasm - the jelly-like fluid that fills the cell and holds the organelles in place.",
            "",
            "Nucleus - the control centre. It stores the cell's DNA and directs the making of proteins.",
            "",
            "Mitochondria - the power stations of the cell. They release energy from glucose in "
            "a process called cellular respiration.",
            "",
            "Ribosomes - tiny structures that read messenger RNA and join amino acids into proteins.",
            "",
            "Plant cells also have a rigid cell wall, chloroplasts for photosynthesis and a large central vacuole.",
        ],
    ),
    (
        "Check your understanding",
        [
            "1. Name two differences between prokaryotic and eukaryotic cells.",
            "",
            "2. Which organelle releases energy from glucose?",
            "",
            "3. Why does a plant cell need a cell wall when an animal cell does not?",
            "",
            "4. Look at the cell diagram in this folder and label the nucleus, the membrane and one mitochondrion.",
            "",
            "Next week: how cells divide (watch the mitosis lecture in the Media folder first).",
        ],
    ),
]


def _pdf_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(path: Path) -> None:
    """A small PDF with real, selectable text: one heading and a few paragraphs per page."""
    objects: list[bytes] = []
    page_ids = [5 + 2 * i for i in range(len(PDF_PAGES))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for number, (heading, paragraphs) in enumerate(PDF_PAGES, start=1):
        lines = ["BT", "/F1 22 Tf", "72 760 Td", f"({_pdf_text(heading)}) Tj", "/F2 11 Tf", "16 TL", "0 -34 Td"]
        for paragraph in paragraphs:
            for line in textwrap.wrap(paragraph, 86) or [""]:
                lines.append(f"({_pdf_text(line)}) Tj T*")
        lines += ["ET", "BT", "/F2 9 Tf", "72 40 Td", f"(StudyShelf demo - page {number} of {len(PDF_PAGES)}) Tj", "ET"]
        stream = "\n".join(lines).encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            + f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {len(objects) + 2} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Title (Cell structure) /Author (StudyShelf demo) /Producer (make_demo_assets.py) >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for index, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % index + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, len(objects))
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _inside(x: float, y: float, cx: float, cy: float, rx: float, ry: float) -> float:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2


def make_cell_diagram(path: Path) -> None:
    """A labelled diagram of an animal cell: membrane, cytoplasm, nucleus, nucleolus, mitochondria."""
    width, height = 640, 400
    mitochondria = [(220, 250, 38, 16), (430, 150, 34, 15), (400, 290, 36, 14)]
    ribosomes = [(180, 160), (250, 120), (470, 230), (330, 320), (280, 300), (200, 210), (500, 190)]
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            colour = (250, 250, 245)
            cell = _inside(x, y, 330, 210, 230, 160)
            if cell <= 1:
                colour = (214, 240, 214) if cell < 0.93 else (46, 125, 50)
            for mx, my, mrx, mry in mitochondria:
                m = _inside(x, y, mx, my, mrx, mry)
                if m <= 1:
                    colour = (255, 183, 77) if m < 0.7 else (230, 81, 0)
            for rx, ry in ribosomes:
                if (x - rx) ** 2 + (y - ry) ** 2 <= 16:
                    colour = (66, 66, 66)
            nucleus = _inside(x, y, 330, 200, 70, 60)
            if nucleus <= 1:
                colour = (206, 147, 216) if nucleus < 0.85 else (106, 27, 154)
            if _inside(x, y, 345, 190, 18, 16) <= 1:
                colour = (74, 20, 140)
            row += bytes(colour)
        rows.append(bytes(row))
    plain = _png(width, height, rows)
    if not FONT.exists() or shutil.which("ffmpeg") is None:
        path.write_bytes(plain)
        return
    source = path.with_suffix(".plain.png")
    source.write_bytes(plain)
    labels = [("Nucleus", 300, 268), ("Nucleolus", 408, 182), ("Mitochondrion", 150, 280), ("Cell membrane", 470, 330)]
    draw = ",".join(
        f"drawtext=fontfile={FONT}:text='{text}':x={x}:y={y}:fontsize=15:fontcolor=0x212121" for text, x, y in labels
    )
    draw += f",drawtext=fontfile={FONT}:text='An animal cell':x=20:y=14:fontsize=20:fontcolor=0x1b5e20"
    _ffmpeg(["-i", str(source), "-vf", draw, "-frames:v", "1", "-pix_fmt", "rgb24", str(path)])
    source.unlink()


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)  # noqa: S603, S607


def make_video(path: Path) -> None:
    """10 s of H.264 (main profile, yuv420p) + AAC in MP4 with the index up front: plays in every browser."""
    title = ""
    if FONT.exists():
        title = (
            f",drawtext=fontfile={FONT}:text='Mitosis — lecture':x=(w-tw)/2:y=h-60:fontsize=28:"
            "fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8"
        )
    _ffmpeg(
        [
            *("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10"),
            *("-f", "lavfi", "-i", "sine=frequency=440:beep_factor=2:sample_rate=44100:duration=10"),
            *("-vf", f"format=yuv420p{title}"),
            *("-c:v", "libx264", "-profile:v", "main", "-level:v", "3.0", "-preset", "slow", "-threads", "1"),
            *("-b:v", "220k", "-maxrate", "300k", "-bufsize", "600k", "-g", "50"),
            *("-c:a", "aac", "-b:a", "64k", "-ac", "2"),
            *("-movflags", "+faststart", "-shortest", *BITEXACT, str(path)),
        ]
    )


CAPTIONS_EN = """WEBVTT - Mitosis, lecture

00:00:00.000 --> 00:00:02.500
Mitosis is how one cell divides into two identical cells.

00:00:02.500 --> 00:00:05.000
In prophase, the chromosomes condense and the spindle forms.

00:00:05.000 --> 00:00:07.500
In metaphase, they line up along the middle of the cell.

00:00:07.500 --> 00:00:10.000
In anaphase and telophase, the copies separate and two nuclei form.
"""
CAPTIONS_DE = """1
00:00:00,000 --> 00:00:02,500
Bei der Mitose teilt sich eine Zelle in zwei gleiche Zellen.

2
00:00:02,500 --> 00:00:05,000
In der Prophase verdichten sich die Chromosomen, die Spindel entsteht.

3
00:00:05,000 --> 00:00:07,500
In der Metaphase ordnen sie sich in der Zellmitte an.

4
00:00:07,500 --> 00:00:10,000
In Anaphase und Telophase trennen sich die Kopien, zwei Kerne entstehen.
"""


def make_captions(out: Path) -> None:
    """The lecture's captions: English as WebVTT, German as SRT (the demo shows the conversion)."""
    (out / "mitosis-lecture.en.vtt").write_text(CAPTIONS_EN, encoding="utf-8")
    (out / "mitosis-lecture.de.srt").write_text(CAPTIONS_DE.replace("\n", "\r\n"), encoding="utf-8", newline="")


def make_audio(path: Path) -> None:
    """10 s of MP3: a rising and falling tone, mono, 64 kb/s."""
    _ffmpeg(
        [
            *("-f", "lavfi", "-i", "aevalsrc=0.4*sin(2*PI*(330+110*floor(mod(t\\,4)))*t):s=44100:d=10"),
            *("-c:a", "libmp3lame", "-b:a", "64k", "-ac", "1", *BITEXACT, str(path)),
        ]
    )


def _zip(path: Path, entries: list[tuple[str, str]]) -> None:
    """Write an OOXML package; [Content_Types].xml goes first so content sniffers recognise it."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))


XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

HANDBOOK = [
    ("Title", "Biology 101 — Course handbook"),
    ("Heading1", "Welcome"),
    ("Normal", "This course introduces the living cell: its structure, how it makes energy and how it divides."),
    ("Heading1", "How the course works"),
    ("Normal", "Each week has a short reading, a video lecture and a quiz in Moodle. Materials live in StudyShelf."),
    ("Normal", "Read the handout before the lecture; the quiz opens on Friday and closes the following Monday."),
    ("Heading1", "Assessment"),
    ("Normal", "Weekly quizzes 30 %, lab reports 30 %, final exam 40 %."),
]


def make_docx(path: Path) -> None:
    """A minimal, valid Word document with a title, headings and paragraphs."""
    body = "".join(
        f'<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr>'
        f'<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        for style, text in HANDBOOK
    )
    styles = "".join(
        f'<w:style w:type="paragraph" w:styleId="{sid}"><w:name w:val="{name}"/><w:basedOn w:val="Normal"/>'
        f'<w:rPr><w:b/><w:sz w:val="{size}"/></w:rPr></w:style>'
        for sid, name, size in (("Title", "Title", 48), ("Heading1", "heading 1", 32))
    )
    _zip(
        path,
        [
            (
                "[Content_Types].xml",
                XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/word/document.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
                '<Override PartName="/word/styles.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>'
                "</Types>",
            ),
            (
                "_rels/.rels",
                XML + f'<Relationships xmlns="{PKG_RELS}">'
                f'<Relationship Id="rId1" Type="{DOC_RELS}/officeDocument" Target="word/document.xml"/>'
                "</Relationships>",
            ),
            ("word/document.xml", XML + f'<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'),
            (
                "word/_rels/document.xml.rels",
                XML + f'<Relationships xmlns="{PKG_RELS}">'
                f'<Relationship Id="rId1" Type="{DOC_RELS}/styles" Target="styles.xml"/></Relationships>',
            ),
            (
                "word/styles.xml",
                XML + f'<w:styles xmlns:w="{W_NS}"><w:style w:type="paragraph" w:default="1" w:styleId="Normal">'
                f'<w:name w:val="Normal"/></w:style>{styles}</w:styles>',
            ),
        ],
    )


MARKS: list[tuple[str | int, ...]] = [
    ("Student", "Quiz 1", "Quiz 2", "Lab report"),
    ("A. Example", 8, 9, 72),
    ("B. Example", 7, 10, 81),
]


def make_xlsx(path: Path) -> None:
    """A minimal, valid spreadsheet: a marks template with inline strings and numbers."""

    def cell(ref: str, value: str | int) -> str:
        if isinstance(value, int):
            return f'<c r="{ref}"><v>{value}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'

    rows = "".join(
        f'<row r="{r}">' + "".join(cell(f"{'ABCD'[c]}{r}", v) for c, v in enumerate(values)) + "</row>"
        for r, values in enumerate(MARKS, start=1)
    )
    sheet_ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    _zip(
        path,
        [
            (
                "[Content_Types].xml",
                XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/worksheets/sheet1.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                "</Types>",
            ),
            (
                "_rels/.rels",
                XML + f'<Relationships xmlns="{PKG_RELS}">'
                f'<Relationship Id="rId1" Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
                "</Relationships>",
            ),
            (
                "xl/workbook.xml",
                XML + f'<workbook xmlns="{sheet_ns}" xmlns:r="{DOC_RELS}">'
                '<sheets><sheet name="Marks" sheetId="1" r:id="rId1"/></sheets></workbook>',
            ),
            (
                "xl/_rels/workbook.xml.rels",
                XML + f'<Relationships xmlns="{PKG_RELS}">'
                f'<Relationship Id="rId1" Type="{DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
                "</Relationships>",
            ),
            (
                "xl/worksheets/sheet1.xml",
                XML + f'<worksheet xmlns="{sheet_ns}"><sheetData>{rows}</sheetData></worksheet>',
            ),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS)
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed for the video and the audio (apt-get install ffmpeg)")
    make_pdf(out / "cell-structure.pdf")
    make_cell_diagram(out / "cell-diagram.png")
    make_video(out / "mitosis-lecture.mp4")
    make_captions(out)
    make_audio(out / "pronunciation-guide.mp3")
    make_docx(out / "course-handbook.docx")
    make_xlsx(out / "marks-template.xlsx")
    for path in sorted(out.iterdir()):
        print(f"{path.stat().st_size:>9}  {path.name}")


if __name__ == "__main__":
    main()
