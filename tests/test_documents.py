"""Real documents: the type told from the bytes, each format's text, the limits, the language."""

from __future__ import annotations

import resource

import pytest

from gateway.config import Settings
from providers.base import DocumentError, Upload
from providers.documents import detect
from providers.documents.limits import DocumentLimits
from providers.documents.parse import parse
from providers.extraction import DefaultExtractor, tidy
from tests.factories import make_docx, make_pdf

LIMITS = DocumentLimits()
RTF = rb"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 Dear Ms. M\'fcller,\par your invoice {\b INV-2024-0042} is due.}"
PAGE = """<!DOCTYPE html><html><head><title>Invoice help</title><style>p {color: red}</style>
<script>var tracking = "do not read me";</script></head><body>
<header><a href="/">Home</a> | <a href="/pricing">Pricing</a></header>
<nav><ul><li>Products</li><li>Support</li></ul></nav>
<div id="cookie-banner">We use cookies. <button>Accept all</button></div>
<main><h1>Your invoice</h1><p>Invoice <b>INV-2024-0042</b> is due on
   12 April 2024.</p><p>Questions? Write to billing@example.com.</p></main>
<aside class="sidebar">Related articles</aside>
<footer>&copy; 2024 Example Ltd. All rights reserved.</footer></body></html>"""


def test_the_settings_document_the_limits_the_extractor_has_by_default():
    assert DocumentLimits(**Settings().document_limits) == DocumentLimits()


def test_the_type_is_told_from_the_bytes_whatever_the_declared_name_or_type():
    assert detect.sniff(make_pdf(["Hello"])) == detect.PDF
    assert detect.sniff(make_docx(["Hello"])) == detect.DOCX
    assert detect.sniff(RTF) == detect.RTF
    assert detect.sniff(PAGE.encode()) == detect.HTML
    assert (
        detect.sniff(b"# Title\n\n- one item\n- another [link](http://x.org)\n") == detect.MARKDOWN
    )
    assert detect.sniff(b"Just a note, <3 and 2 > 1.") == detect.TEXT
    with pytest.raises(DocumentError, match="Unsupported document type image/png"):
        detect.sniff(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DocumentError, match=r"application/zip \(not a DOCX\)"):
        detect.sniff(_zip_without_word())


def _zip_without_word() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


def test_a_pdf_gives_its_pages_text_and_page_count_within_the_page_limits():
    pdf = make_pdf(["Invoice INV-2024-0042\nTotal: 249,90 EUR", "Page two.", "Page three."])

    result = parse(pdf, LIMITS)

    assert result == {
        "content_type": "application/pdf",
        "text": "Invoice INV-2024-0042\nTotal: 249,90 EUR\n\nPage two.\n\nPage three.",
        "pages": 3,
    }
    partial = parse(pdf, DocumentLimits(max_pages_processed=2))
    assert (partial["pages"], partial["pages_processed"]) == (3, 2)
    assert "Page three" not in partial["text"]
    with pytest.raises(DocumentError, match="3 pages: more than MAX_PDF_PAGES=2"):
        parse(pdf, DocumentLimits(max_pages=2))


def test_a_docx_gives_its_body_paragraphs_without_its_page_header():
    docx = make_docx(["Sehr geehrte Frau Müller,", "Kundennummer K-448210."], header="Confidential")

    result = parse(docx, LIMITS)

    assert result["text"] == "Sehr geehrte Frau Müller,\nKundennummer K-448210."
    assert result["content_type"] == detect.DOCX


def test_html_keeps_the_content_and_drops_scripts_styles_navigation_banners_and_footers():
    result = parse(PAGE.encode(), LIMITS)

    assert result["text"] == (
        "Your invoice\nInvoice INV-2024-0042 is due on 12 April 2024.\n"
        "Questions? Write to billing@example.com."
    )
    assert result["title"] == "Invoice help"


def test_html_table_cells_stay_apart_and_rows_make_lines():
    table = "<html><body><table><tr><th>Item</th><th>Total</th></tr>"
    table += "<tr><td>Total</td><td>104,49 €</td></tr></table></body></html>"

    assert parse(table.encode(), LIMITS)["text"] == "Item Total\nTotal 104,49 €"


def test_rtf_and_text_in_other_encodings_are_read():
    assert " ".join(parse(RTF, LIMITS)["text"].split()) == (
        "Dear Ms. Müller, your invoice INV-2024-0042 is due."
    )
    german = "Sehr geehrte Damen und Herren, bitte überweisen Sie 249,90 € bis zum 20. März 2024."
    for encoded in (german.encode("cp1252"), german.encode("utf-16"), german.encode("utf-8-sig")):
        assert parse(encoded, LIMITS) == {"content_type": "text/plain", "text": german}


def test_a_document_over_the_limit_of_its_type_or_of_any_type_fails_naming_the_setting():
    with pytest.raises(DocumentError, match=r"HTML document is .* more than MAX_HTML_BYTES=1 KiB"):
        parse(PAGE.encode() * 2, DocumentLimits(max_html_bytes=1024))
    with pytest.raises(DocumentError, match="more than MAX_DOCUMENT_BYTES=100 bytes"):
        parse(b"a" * 101, DocumentLimits(max_document_bytes=100))
    with pytest.raises(DocumentError, match="The document is empty"):
        parse(b" \n ", LIMITS)


def test_the_text_is_normalised_but_never_expanded():
    assert tidy("ﬁne\u00a0 print\r\n\r\n\r\n\tnext  line ") == "fine print\n\nnext line"
    assert tidy("\ufdfa") == "\ufdfa"  # NFKC would make 18 characters of it


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID 2342", "en"),
        ("Guten Tag, ich möchte mein Abonnement zum 20. März 2024 kündigen. Danke!", "de"),
        ("Bonjour, je voudrais annuler mon abonnement avant le 12 avril 2024. Merci.", "fr"),
        ("Hola, quiero cancelar mi suscripción antes del 1 de junio de 2024. Gracias.", "es"),
    ],
)
def test_a_text_sent_as_text_gets_its_stats_and_language(text, language):
    extractor = DefaultExtractor()

    result = extractor.process(text, timeout=10)

    assert result["language"] == language
    assert result["content_type"] == "text/plain"
    assert result["text"] == text
    assert result["stats"]["words"] == len(text.split()) - text.count(" - ")
    assert result["stats"]["sentences"] >= 2
    assert extractor.process(text, timeout=10) == result  # seeded: the same answer every time


def test_the_language_is_one_of_the_configured_ones():
    french = "Bonjour, je voudrais annuler mon abonnement. Merci beaucoup pour votre aide."

    assert DefaultExtractor(languages=("en", "de")).process(french, timeout=10)["language"] in (
        "en",
        "de",
    )
    assert DefaultExtractor(languages=("de",)).process(french, timeout=10)["language"] == "de"
    assert DefaultExtractor().process("12 345 678", timeout=10)["language"] is None
    with pytest.raises(ValueError, match="no language profile for xx"):
        DefaultExtractor(languages=("en", "xx"))


def test_an_upload_is_parsed_in_the_sandbox():
    result = DefaultExtractor().process(
        Upload(make_pdf(["Hello there. General Kenobi!"])), timeout=30
    )

    assert result["content_type"] == "application/pdf"
    assert result["pages"] == 1
    assert result["stats"] == {"characters": 28, "words": 4, "sentences": 2, "lines": 1}


MAIL = b"""From: Anna Weber <anna.weber@example.de>
To: kundenservice@example.com
Subject: =?utf-8?q?K=C3=BCndigung?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

hiermit k=C3=BCndige ich zum 31. M=C3=A4rz 2024.
--b1
Content-Type: text/html; charset=utf-8

<p>hiermit k&uuml;ndige ich</p>
--b1--
"""


def test_an_email_gives_its_main_headers_and_its_decoded_plain_body():
    result = parse(MAIL, LIMITS)

    assert result == {
        "content_type": "message/rfc822",
        "text": "From: Anna Weber <anna.weber@example.de>\nTo: kundenservice@example.com\n"
        "Subject: Kündigung\n\nhiermit kündige ich zum 31. März 2024.",
    }
    html_only = MAIL.replace(b"text/plain", b"text/x-other")
    assert parse(html_only, LIMITS)["text"].endswith("\n\nhiermit kündige ich")
    assert detect.sniff(b"From: someone\nnot an e-mail, one header only") == detect.TEXT


def test_an_email_without_a_declared_charset_keeps_its_characters():
    head = "From: Anna Weber <anna@example.de>\nTo: billing@example.com\nSubject: Invoice\n\n"
    body = "Le total est de 1 284,60 € pour la période de mars."

    for encoding in ("utf-8", "cp1252"):
        result = parse(head.encode() + body.encode(encoding), LIMITS)

        assert result["text"].endswith("\n\n" + body), encoding


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_uploaded_utf8_text_is_read_in_the_worker_and_anything_else_in_the_sandbox():
    extractor = DefaultExtractor()
    text = "Dear Ms. Müller, your invoice INV-2024-0042 is due on 12 April 2024."

    before = _children_cpu()
    plain = extractor.process(Upload(text.encode(), "application/pdf", "invoice.pdf"), timeout=30)
    assert _children_cpu() == before  # no child process ran
    legacy = extractor.process(Upload(text.encode("cp1252")), timeout=30)
    assert _children_cpu() > before

    assert (plain["content_type"], plain["text"]) == ("text/plain", text)
    assert (legacy["content_type"], legacy["text"]) == ("text/plain", text)
    with pytest.raises(DocumentError, match="The text is 40 bytes: more than MAX_TEXT_BYTES=20"):
        DefaultExtractor(document_limits=DocumentLimits(max_text_bytes=20)).process(
            Upload(b"x" * 40), timeout=30
        )


def test_an_emails_language_is_its_bodys():
    mail = (
        "From: Gabriela Santos <gabriela@example.com>\nTo: soporte@example.es\n"
        "Subject: Cancel\nDate: Mon, 12 Feb 2024 09:14:03 +0000\n\n"
        "Hi, my name is Gabriela Santos, please cancel my subscription. SubscriptionID 2342.\n"
    )

    result = DefaultExtractor().process(Upload(mail.encode()), timeout=30)

    assert (result["content_type"], result["language"]) == ("message/rfc822", "en")
