"""The labelled sample corpus (tests/data/corpus): documents, their gold labels, and the PDF
and DOCX copies made from their text.

Each document `NAME.EXT` (txt, eml, md, html) has a sidecar `NAME.json`:

    {"language": "de", "category": "billing", "derive": ["pdf", "docx"], "batch": 2,
     "entities": [["PERSON", "Anna Weber"], ["DATE", "31. März 2024"], …]}

`entities` lists each entity the document holds, as its type and its text as written (a
person without title, an identifier without its label, an amount with its currency).
`batch` numbers the batch the document was written in (1 by default; see bench.quality).
`derive` asks for PDF and DOCX copies of the document's text, written here with the standard
library only, so that the same gold labels are scored on every format.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
FORMATS = {".txt": "txt", ".eml": "eml", ".md": "md", ".html": "html"}


@dataclass(frozen=True)
class Document:
    """One document of the corpus in one format, with its gold labels."""

    name: str
    format: str
    content: bytes
    language: str
    category: str
    entities: tuple[tuple[str, str], ...]
    batch: int = 1


def load(corpus: Path = CORPUS) -> list[Document]:
    """Every document of the corpus, then the PDF and DOCX copies its sidecars ask for."""
    documents: list[Document] = []
    for sidecar in sorted(corpus.glob("*.json")):
        labels = json.loads(sidecar.read_text("utf-8"))
        (source,) = (p for p in corpus.glob(f"{sidecar.stem}.*") if p.suffix in FORMATS)
        content = source.read_bytes()
        gold = tuple((kind, text) for kind, text in labels["entities"])
        common = {
            "language": labels["language"],
            "category": labels["category"],
            "entities": gold,
            "batch": labels.get("batch", 1),
        }
        documents.append(Document(sidecar.stem, FORMATS[source.suffix], content, **common))
        text = content.decode("utf-8")
        for kind in labels.get("derive", []):
            made = {"pdf": pdf_of, "docx": docx_of}[kind](text)
            documents.append(Document(sidecar.stem, kind, made, **common))
    return documents


def pdf_of(text: str, lines_per_page: int = 48) -> bytes:
    """A PDF showing `text` line by line in Helvetica (WinAnsi encoding, hence cp1252 only)."""
    lines = text.splitlines() or [""]
    pages = [lines[i : i + lines_per_page] for i in range(0, len(lines), lines_per_page)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the pages are numbered
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for page in pages:
        shown = b"".join(_pdf_string(line) + b" Tj T* " for line in page)
        stream = b"BT /F1 10 Tf 12 TL 40 800 Td " + shown + b"ET"
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % len(objects)
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(pages))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def _pdf_string(line: str) -> bytes:
    """A PDF literal string of `line` in cp1252, with the characters PDF reserves escaped."""
    raw = line.encode("cp1252", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def docx_of(text: str) -> bytes:
    """A minimal WordprocessingML document with one paragraph per line of `text`."""
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(line)}</w:t></w:r></w:p>'
        for line in text.splitlines()
    )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
        ),
        "word/document.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body>{body}</w:body></w:document>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in parts.items():
            archive.writestr(name, xml)
    return out.getvalue()
